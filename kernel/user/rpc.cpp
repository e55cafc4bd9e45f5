// SPDX-License-Identifier: MIT OR Apache-2.0
// User program "rpc": a server that takes one request from each of its clients and then
// answers them in reverse order (out of order), round after round; and its clients, which
// check that every reply is the answer to their own request.
//
// Start arguments: role (0 server, 1 client), the endpoint handle, clients (server) or
// the client's index (client), rounds. Role 2, a hoarding server (endpoint, calls): takes
// `calls` calls before answering any; role 3, a client that calls once and exits with 2 if
// the server could hold no more calls (EndpointBusy).
#include "vipc_user.hpp"

namespace {

using namespace vipc_user;

constexpr uint64_t MAX_CLIENTS = 4;

int64_t server(uint64_t endpoint, uint64_t clients, uint64_t rounds) {
    if (clients > MAX_CLIENTS) return 1;
    Message requests[MAX_CLIENTS];
    for (uint64_t round = 0; round < rounds; ++round) {
        for (uint64_t c = 0; c < clients; ++c) {
            if (int64_t s = receive(endpoint, requests[c]); s != 0) {
                Line() << "server: receive failed: " << s;
                return 1;
            }
            if (requests[c].handle == 0) {
                Line() << "server: a request came without a reply handle";
                return 1;
            }
        }
        for (uint64_t c = clients; c-- > 0;) {
            Message answer;
            answer.data[0] = requests[c].data[0] * 2 + 1;
            answer.data[1] = requests[c].data[1];
            answer.data[2] = requests[c].badge;
            answer.data[3] = requests[c].sender;
            if (int64_t s = reply(requests[c].handle, answer); s != 0) {
                Line() << "server: reply failed: " << s;
                return 1;
            }
            // A reply handle is one-shot.
            if (int64_t s = reply(requests[c].handle, answer);
                s != vipc_abi::ERR_INVALID_CAPABILITY) {
                Line() << "server: a second reply through one handle gave " << s;
                return 1;
            }
        }
    }
    return 0;
}

int64_t client(uint64_t endpoint, uint64_t index, uint64_t rounds) {
    for (uint64_t round = 0; round < rounds; ++round) {
        Message m;
        m.data[0] = index * 1000 + round;
        m.data[1] = index;
        m.data[2] = 0xBAD6E;  // a badge of its own choosing: not what the server sees
        if (int64_t s = call(endpoint, m); s != 0) {
            Line() << "client " << index << ": call failed: " << s;
            return 1;
        }
        if (m.data[0] != (index * 1000 + round) * 2 + 1 || m.data[1] != index) {
            Line() << "client " << index << ": got a reply meant for another caller";
            return 1;
        }
        if (m.data[2] != index + 1) {
            Line() << "client " << index << ": the server saw badge " << m.data[2] << ", expected "
                   << index + 1;
            return 1;
        }
    }
    return 0;
}

// Takes `calls` calls before answering: the kernel holds 8 reply slots per server, so the
// ninth comes without a reply handle (its caller got EndpointBusy); then answers the rest.
int64_t hoarding_server(uint64_t endpoint, uint64_t calls) {
    constexpr uint64_t MAX_CALLS = 16;
    if (calls > MAX_CALLS) return 1;
    Message held[MAX_CALLS];
    uint64_t with_reply = 0, without = 0;
    for (uint64_t i = 0; i < calls; ++i) {
        Message m;
        if (int64_t s = receive(endpoint, m); s != 0) return 1;
        if (m.handle != 0) {
            held[with_reply++] = m;
        } else {
            ++without;
        }
    }
    for (uint64_t i = 0; i < with_reply; ++i) {
        Message answer;
        answer.data[0] = held[i].data[0] * 2 + 1;
        if (reply(held[i].handle, answer) != 0) return 1;
    }
    Line() << "hoarding server: " << with_reply << " calls held with reply handles, " << without
           << " without";
    return with_reply == 8 && without == calls - 8 ? 0 : 1;
}

int64_t busy_tolerant_client(uint64_t endpoint, uint64_t index) {
    Message m;
    m.data[0] = index;
    const int64_t s = call(endpoint, m);
    if (s == vipc_abi::ERR_ENDPOINT_BUSY) return 2;
    return s == 0 && m.data[0] == index * 2 + 1 ? 0 : 1;
}

}  // namespace

extern "C" int64_t user_main(uint64_t role, uint64_t endpoint, uint64_t a2, uint64_t rounds) {
    switch (role) {
        case 0:
            return server(endpoint, a2, rounds);
        case 1:
            return client(endpoint, a2, rounds);
        case 2:
            return hoarding_server(endpoint, a2);
        case 3:
            return busy_tolerant_client(endpoint, a2);
        default:
            return 99;
    }
}
