// SPDX-License-Identifier: MIT OR Apache-2.0
// Scale across real processes: a server with thousands of connections from several client
// processes (vipc_scale_peer) of which only some send, received by one and by several
// threads; a client that lies in the ready map; connections that come and go while several
// threads receive.
#include <dirent.h>
#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace veridian::ipc::posix::test {
namespace {

struct Tagged {
    u32 tag = 0, index = 0, seq = 0;
};

Tagged read_tagged(std::span<const std::byte> payload) {
    Tagged t;
    if (payload.size() != 12) return Tagged{~0u, ~0u, ~0u};
    std::memcpy(&t.tag, payload.data(), 4);
    std::memcpy(&t.index, payload.data() + 4, 4);
    std::memcpy(&t.seq, payload.data() + 8, 4);
    return t;
}

// Receives `expected` payloads with `threads` threads (receive_view: a connection whose view
// is out is not read by another thread, so each connection's messages are handled one at a
// time, in order). Checks every (tag, index) sequence runs 0, 1, 2, ... in the order handled.
struct Collector {
    std::mutex mu;
    std::map<std::pair<u32, u32>, u32> next;  // (tag, index) → next sequence expected
    u32 received = 0;
    u32 out_of_order = 0;
    u32 failures = 0;
    std::string first_failure;

    void run(Server& server, u32 threads, u32 expected) {
        std::vector<std::thread> ts;
        for (u32 t = 0; t < threads; ++t) {
            ts.emplace_back([&] {
                for (;;) {
                    {
                        std::lock_guard<std::mutex> lock(mu);
                        if (received >= expected || failures != 0) return;
                    }
                    auto in = server.receive_view(after_ms(200));
                    if (!in) {
                        if (in.error() == IpcError::Timeout) continue;
                        std::lock_guard<std::mutex> lock(mu);
                        ++failures;
                        if (first_failure.empty()) first_failure = error_name(in.error());
                        return;
                    }
                    const Tagged m = read_tagged(in->payload);
                    std::lock_guard<std::mutex> lock(mu);
                    u32& want = next[{m.tag, m.index}];
                    if (m.seq != want) ++out_of_order;
                    want = m.seq + 1;
                    ++received;
                }
            });
        }
        for (auto& t : ts)
            t.join();
    }
};

// Descriptors this process holds.
long open_descriptors() {
    long n = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
        while (readdir(d) != nullptr)
            ++n;
        closedir(d);
    }
    return n;
}

void thousands_of_connections(u32 threads) {
    constexpr u32 PEERS = 4, PER_PEER = 500, EVERY = 25, MESSAGES = 20;
    const long descriptors_before = open_descriptors();
    RuntimeDir dir;
    ServerOptions options = dir.server_options();
    options.max_connections = PEERS * PER_PEER + 16;
    options.pool_bytes = 0;
    auto server = Server::publish("demo/scale", options);
    ASSERT_TRUE(server) << last_error_detail();
    std::vector<std::unique_ptr<Peer>> peers;
    for (u32 p = 0; p < PEERS; ++p) {
        peers.push_back(std::make_unique<Peer>(
            "send", dir.path(), "demo/scale",
            std::vector<std::string>{std::to_string(PER_PEER), std::to_string(EVERY),
                                     std::to_string(MESSAGES), std::to_string(p)},
            "", VIPC_SCALE_PEER_PATH));
    }
    const u32 active = PEERS * ((PER_PEER + EVERY - 1) / EVERY);
    const u32 expected = active * MESSAGES;
    Collector got;
    got.run(*server, threads, expected);
    for (auto& p : peers)
        EXPECT_TRUE(p->wait_for_line("DONE", 20'000));
    // The server holds one descriptor per connection (its socket, which also carries the
    // notifications of a pollable descriptor) and one per client process (its pidfd), and a
    // few of its own (listening socket, epoll sets, eventfds, its pages).
    const long held = open_descriptors() - descriptors_before;
    EXPECT_GE(held, static_cast<long>(PEERS * PER_PEER + PEERS));
    EXPECT_LE(held, static_cast<long>(PEERS * PER_PEER + PEERS + 32));
    EXPECT_EQ(got.failures, 0u) << got.first_failure;
    EXPECT_EQ(got.received, expected);
    EXPECT_EQ(got.out_of_order, 0u);
    // Exactly the active connections, each with all its messages.
    EXPECT_EQ(got.next.size(), active);
    for (const auto& [key, next] : got.next) {
        EXPECT_EQ(key.second % EVERY, 0u) << "an idle connection delivered something";
        EXPECT_EQ(next, MESSAGES) << "tag " << key.first << " connection " << key.second;
    }
    // Nothing more arrives (no duplicate left behind).
    auto extra = server->try_receive_view();
    EXPECT_FALSE(extra);
    const EndpointInfo info = server->info();
    EXPECT_EQ(info.per_connection.size(), PEERS * PER_PEER);
    std::printf(
        "[ measured ] %u connections from %u processes, %u active: %u messages by %u "
        "receiving thread(s); the server holds %ld descriptors for them\n",
        PEERS * PER_PEER, PEERS, active, got.received, threads, held);
}

TEST(Scale, ThousandsOfConnectionsOneReceiverServesExactlyTheActiveOnesInOrder) {
    thousands_of_connections(1);
}

TEST(Scale, ThousandsOfConnectionsFourReceiversServeExactlyTheActiveOnesInOrder) {
    thousands_of_connections(4);
}

u64 thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<u64>(ts.tv_sec) * 1'000'000'000u + static_cast<u64>(ts.tv_nsec);
}

TEST(Scale, AClientThatSetsEveryReadyBitCostsTheServerChecksNotAScanAndStallsNobody) {
    RuntimeDir dir;
    ServerOptions options = dir.server_options();
    options.max_connections = 2048;
    auto server = Server::publish("demo/bogus", options);
    ASSERT_TRUE(server) << last_error_detail();
    // Many idle connections, so that a scan would cost.
    Peer idle("send", dir.path(), "demo/bogus", {"1500", "100000", "0", "9"}, "",
              VIPC_SCALE_PEER_PATH);
    ASSERT_TRUE(idle.wait_for_line("DONE", 20'000));
    Peer liar("bogus", dir.path(), "demo/bogus", {"1000"}, "", VIPC_SCALE_PEER_PATH);
    ASSERT_TRUE(liar.wait_for_line("STARTED", 10'000));
    auto honest = Connection::connect("demo/bogus", dir.connect_options());
    ASSERT_TRUE(honest) << last_error_detail();
    std::atomic<bool> stop{false};
    std::atomic<u64> calls{0}, failed{0};
    std::thread caller([&] {
        while (!stop.load()) {
            auto r = honest->call(small_message(OP_DATA, 1), after_ms(5'000));
            (r ? calls : failed).fetch_add(1);
            std::this_thread::sleep_for(std::chrono::microseconds(500));
        }
    });
    // The server's receiving thread, for the liar's second (its CPU time is measured).
    const u64 cpu0 = thread_cpu_ns();
    const u64 wall0 = now_ns();
    u64 served = 0;
    while (now_ns() - wall0 < 900'000'000) {
        auto in = server->receive_sync(after_ms(50));
        if (!in) continue;
        ++served;
        (void)server->reply(*in, in->message);
    }
    const u64 cpu = thread_cpu_ns() - cpu0;
    stop.store(true);
    caller.join();
    EXPECT_TRUE(liar.wait_for_line("DONE", 10'000));
    std::printf(
        "[ measured ] while a client set every ready bit for 0.9 s among 1500 idle "
        "connections: the receiver used %.1f ms of CPU, served %llu honest calls "
        "(%llu failed)\n",
        cpu / 1e6, static_cast<unsigned long long>(served),
        static_cast<unsigned long long>(failed.load()));
    EXPECT_EQ(failed.load(), 0u);
    EXPECT_GE(calls.load(), 100u);  // about 1800 at one call per 0.5 ms when nothing stalls
    // The bogus bits cost at most READY_BOGUS_BUDGET checks per millisecond window; a scan
    // of 1500 connections per bell would keep the receiver busy the whole time.
    EXPECT_LT(cpu, 600'000'000u);
}

TEST(Scale, ConnectionsComingAndGoingWhileSeveralThreadsReceive) {
    constexpr u32 CHURNERS = 3, ROUNDS = 150;
    RuntimeDir dir;
    ServerOptions options = dir.server_options();
    options.max_connections = 64;
    options.pool_bytes = 0;
    auto server = Server::publish("demo/churn", options);
    ASSERT_TRUE(server) << last_error_detail();
    std::vector<std::unique_ptr<Peer>> peers;
    for (u32 p = 0; p < CHURNERS; ++p) {
        peers.push_back(std::make_unique<Peer>(
            "churn", dir.path(), "demo/churn",
            std::vector<std::string>{std::to_string(ROUNDS), std::to_string(p)}, "",
            VIPC_SCALE_PEER_PATH));
    }
    // And one in this process (under ThreadSanitizer too).
    std::thread local([&] {
        ConnectOptions co = dir.connect_options();
        co.pool_bytes = 0;
        for (u32 round = 0; round < ROUNDS; ++round) {
            auto c = Connection::connect("demo/churn", co);
            if (!c) {
                ADD_FAILURE() << "connect " << round << ": " << last_error_detail();
                return;
            }
            std::byte payload[12];
            const u32 fields[3] = {CHURNERS, round, 0};
            std::memcpy(payload, fields, sizeof payload);
            EXPECT_TRUE(c->send_sync(1, 0, payload, after_ms(10'000)));
            (void)c->close();
        }
    });
    Collector got;
    got.run(*server, 3, (CHURNERS + 1) * ROUNDS);
    local.join();
    for (auto& p : peers)
        EXPECT_TRUE(p->wait_for_line("DONE", 20'000));
    EXPECT_EQ(got.failures, 0u) << got.first_failure;
    EXPECT_EQ(got.received, (CHURNERS + 1) * ROUNDS);
    EXPECT_EQ(got.out_of_order, 0u);
    // Every round of every client arrived once: (tag, round) each with sequence 0 → next 1.
    EXPECT_EQ(got.next.size(), (CHURNERS + 1) * ROUNDS);
    for (const auto& [key, next] : got.next)
        EXPECT_EQ(next, 1u) << "tag " << key.first << " round " << key.second;
    // The connections that ended are forgotten (their slots reused: more rounds than the
    // limit's 64 went through).
    EXPECT_LE(server->info().per_connection.size(), 8u);
}

}  // namespace
}  // namespace veridian::ipc::posix::test
