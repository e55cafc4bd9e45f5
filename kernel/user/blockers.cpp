// SPDX-License-Identifier: MIT OR Apache-2.0
// User program "blockers": processes that block — in receive, in send on a full queue, in
// a call — and expect to be woken with an error; the process that closes the endpoints
// under them; a sender and a receiver across a small queue under preemption; deadlines.
//
// Start arguments: the role, then up to three role arguments (below).
#include "vipc_user.hpp"

namespace {

using namespace vipc_user;

enum Role : uint64_t {
    RECEIVER = 0,        // (endpoint): receive -> EndpointNotFound
    SENDER = 1,          // (endpoint): send -> EndpointNotFound
    CALLER = 2,          // (endpoint): call -> EndpointNotFound
    SILENT_SERVER = 3,   // (endpoint): take one call, never answer, receive -> EndpointNotFound
    CLOSER = 4,          // (A, B, D): wait until all are blocked, close A, B and D
    QUEUE_SENDER = 5,    // (endpoint, count): send 0..count-1
    QUEUE_RECEIVER = 6,  // (endpoint, count, capacity): spin until the sender blocks, drain
    DEADLINES = 7,       // (empty endpoint, full endpoint): Timeout both ways
};

int64_t expect_closed(const char* what, int64_t status) {
    if (status == vipc_abi::ERR_ENDPOINT_NOT_FOUND) return 0;
    Line() << what << " ended with " << status << ", expected EndpointNotFound (-3)";
    return 1;
}

int64_t silent_server(uint64_t endpoint) {
    Message m;
    if (int64_t s = receive(endpoint, m); s != 0 || m.handle == 0) {
        Line() << "silent server: the call did not arrive: " << s;
        return 1;
    }
    return expect_closed("silent server's second receive", receive(endpoint, m));
}

int64_t closer(uint64_t a, uint64_t b, uint64_t d) {
    // Wait (yielding) until every party is observably blocked.
    for (;;) {
        EndpointStats sa, sb, sd;
        if (stats(a, sa) != 0 || stats(b, sb) != 0 || stats(d, sd) != 0) {
            Line() << "closer: stats failed";
            return 1;
        }
        if (sa.blocked_receivers == 2 && sb.blocked_senders == 2 && sd.awaiting_reply == 1 &&
            sd.blocked_receivers == 1) {
            break;
        }
        yield();
    }
    Checker c;
    c.expect_status(close(a), 0, "close A");
    c.expect_status(close(b), 0, "close B");
    c.expect_status(close(d), 0, "close D");
    c.expect_status(close(a), 0, "closing A again (idempotent)");
    // Every party must have left its wait because of the close, while this process (the
    // endpoints' owner, whose exit would also wake them) still runs.
    for (;;) {
        EndpointStats sa, sb, sd;
        if (stats(a, sa) != 0 || stats(b, sb) != 0 || stats(d, sd) != 0) {
            Line() << "closer: stats on the closed endpoints failed";
            return 1;
        }
        if (sa.blocked_receivers == 0 && sb.blocked_senders == 0 && sd.awaiting_reply == 0 &&
            sd.blocked_receivers == 0) {
            break;
        }
        yield();
    }
    return c.exit_code();
}

int64_t queue_sender(uint64_t endpoint, uint64_t count) {
    for (uint64_t i = 0; i < count; ++i) {
        Message m;
        m.data[0] = i;
        if (int64_t s = send(endpoint, m); s != 0) {
            Line() << "queue sender: send " << i << " failed: " << s;
            return 1;
        }
    }
    return 0;
}

int64_t queue_receiver(uint64_t endpoint, uint64_t count, uint64_t capacity) {
    // Spin without yielding until the sender is blocked on the full queue: the sender can
    // only run because the timer preempts this process.
    uint64_t spins = 0;
    for (;;) {
        EndpointStats st;
        if (stats(endpoint, st) != 0) return 1;
        if (st.blocked_senders >= 1 && st.queued == capacity) break;
        ++spins;
    }
    Checker c;
    for (uint64_t i = 0; i < count; ++i) {
        Message m;
        const int64_t s = receive(endpoint, m);
        c.expect_status(s, 0, "receive");
        if (s != 0) return 1;
        if (m.data[0] != i) {
            Line() << "queue receiver: message " << i << " arrived as " << m.data[0];
            return 1;
        }
    }
    // The queue is empty now: fast_send fills it, then says ChannelFull; it never blocks.
    uint64_t accepted = 0;
    int64_t last = 0;
    for (uint64_t i = 0; i < capacity + 1; ++i) {
        Message m;
        last = fast_send(endpoint, m);
        if (last == 0) ++accepted;
    }
    c.expect(accepted == capacity, "fast_send accepted exactly the queue's capacity");
    c.expect_status(last, vipc_abi::ERR_CHANNEL_FULL, "fast_send on a full queue");
    for (uint64_t i = 0; i < accepted; ++i) {
        Message m;
        c.expect_status(receive(endpoint, m), 0, "draining");
    }
    Line() << "queue receiver: " << count << " messages in order; spun " << spins
           << " times until the sender blocked";
    return c.exit_code();
}

int64_t deadlines(uint64_t empty, uint64_t full) {
    Checker c;
    Message m;
    c.expect_status(receive_deadline(empty, m, 1'000'000), vipc_abi::ERR_TIMEOUT,
                    "receive with a 1 ms deadline on an empty endpoint");
    c.expect_status(send_deadline(full, m, 1'000'000), vipc_abi::ERR_TIMEOUT,
                    "send with a 1 ms deadline on a full endpoint");
    c.expect_status(receive_deadline(empty, m, 0), vipc_abi::ERR_TIMEOUT,
                    "receive with a deadline already passed");
    c.expect_status(fast_send(full, m), vipc_abi::ERR_CHANNEL_FULL, "fast_send on a full queue");
    // A deadline that does not expire: a message is there to take.
    Message sent;
    sent.data[0] = 0xDEAD11E;
    c.expect_status(fast_send(empty, sent), 0, "fast_send to itself");
    c.expect_status(receive_deadline(empty, m, 1'000'000), 0, "receive with a deadline");
    c.expect(m.data[0] == 0xDEAD11E, "the message taken before the deadline");
    c.expect_status(receive_deadline(empty, m, 1'000'000), vipc_abi::ERR_TIMEOUT,
                    "and then nothing more");
    return c.exit_code();
}

}  // namespace

extern "C" int64_t user_main(uint64_t role, uint64_t a1, uint64_t a2, uint64_t a3) {
    Message m;
    switch (role) {
        case RECEIVER:
            return expect_closed("receive", receive(a1, m));
        case SENDER:
            return expect_closed("send", send(a1, m));
        case CALLER:
            return expect_closed("call", call(a1, m));
        case SILENT_SERVER:
            return silent_server(a1);
        case CLOSER:
            return closer(a1, a2, a3);
        case QUEUE_SENDER:
            return queue_sender(a1, a2);
        case QUEUE_RECEIVER:
            return queue_receiver(a1, a2, a3);
        case DEADLINES:
            return deadlines(a1, a2);
        default:
            return 99;
    }
}
