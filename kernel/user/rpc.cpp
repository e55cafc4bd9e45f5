// SPDX-License-Identifier: MIT OR Apache-2.0
// User program "rpc": a server that takes one request from each of its clients and then
// answers them in reverse order (out of order), round after round; and its clients, which
// check that every reply is the answer to their own request.
//
// Start arguments: role (0 server, 1 client), the endpoint handle, clients (server) or
// the client's index (client), rounds.
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
            answer.data[2] = requests[c].sender;
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
        if (int64_t s = call(endpoint, m); s != 0) {
            Line() << "client " << index << ": call failed: " << s;
            return 1;
        }
        if (m.data[0] != (index * 1000 + round) * 2 + 1 || m.data[1] != index) {
            Line() << "client " << index << ": got a reply meant for another caller";
            return 1;
        }
    }
    return 0;
}

}  // namespace

extern "C" int64_t user_main(uint64_t role, uint64_t endpoint, uint64_t a2, uint64_t rounds) {
    return role == 0 ? server(endpoint, a2, rounds) : client(endpoint, a2, rounds);
}
