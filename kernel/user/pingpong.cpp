// SPDX-License-Identifier: MIT OR Apache-2.0
// User program "pingpong": a server answering calls with reply_receive, and a client
// that measures each round trip (call + the server's reply_receive) with rdtsc. Under
// QEMU's -icount the TSC advances one tick per instruction, so the counts are instructions.
//
// Start arguments: role (0 server, 1 client), the endpoint handle, general (1: keep every
// call on the general path), rounds.
#include "vipc_user.hpp"

namespace {

using namespace vipc_user;

constexpr uint64_t MAX_ROUNDS = 2048;
uint64_t g_samples[MAX_ROUNDS];

int64_t server(uint64_t endpoint, bool general, uint64_t rounds) {
    Message m;
    if (int64_t s = receive(endpoint, m); s != 0) {
        Line() << "server: first receive failed: " << s;
        return 1;
    }
    for (uint64_t i = 0; i < rounds; ++i) {
        if (m.handle == 0) {
            Line() << "server: request " << i << " came without a reply handle";
            return 1;
        }
        Message answer;
        answer.opcode = m.opcode;
        answer.data[0] = m.data[0] + 1;
        const uint64_t reply_to = m.handle;
        const int64_t s = i + 1 == rounds ? reply(reply_to, answer)
                                          : reply_receive(reply_to, answer, endpoint, m, general);
        if (s != 0) {
            Line() << "server: reply " << i << " failed: " << s;
            return 1;
        }
    }
    return 0;
}

void sort(uint64_t* v, uint64_t n) {
    for (uint64_t i = 1; i < n; ++i) {
        const uint64_t x = v[i];
        uint64_t j = i;
        for (; j > 0 && v[j - 1] > x; --j)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

int64_t client(uint64_t endpoint, bool general, uint64_t rounds) {
    if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
    // What rdtsc itself adds between two reads (subtracted below).
    const uint64_t t0 = rdtsc();
    const uint64_t t1 = rdtsc();
    const uint64_t rdtsc_cost = t1 - t0;
    for (uint64_t i = 0; i < rounds; ++i) {
        Message m;
        m.opcode = 7;
        m.data[0] = i * 3;
        const uint64_t begin = rdtsc();
        const int64_t s = call(endpoint, m, general);
        const uint64_t end = rdtsc();
        if (s != 0) {
            Line() << "client: call " << i << " failed: " << s;
            return 1;
        }
        if (m.data[0] != i * 3 + 1 || (m.flags & vipc_abi::FLAG_IS_REPLY) == 0) {
            Line() << "client: reply " << i << " does not match its request";
            return 1;
        }
        g_samples[i] = end - begin - rdtsc_cost;
    }
    sort(g_samples, rounds);
    Line() << "round trip, " << (general ? "general path" : "fast path") << ": min " << g_samples[0]
           << ", median " << g_samples[rounds / 2] << ", max " << g_samples[rounds - 1]
           << " TSC ticks over " << rounds
           << " calls (instructions under -icount shift=0; rdtsc pair " << rdtsc_cost << ")";
    return 0;
}

}  // namespace

extern "C" int64_t user_main(uint64_t role, uint64_t endpoint, uint64_t general, uint64_t rounds) {
    return role == 0 ? server(endpoint, general != 0, rounds)
                     : client(endpoint, general != 0, rounds);
}
