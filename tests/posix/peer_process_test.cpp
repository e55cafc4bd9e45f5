// SPDX-License-Identifier: MIT OR Apache-2.0
// Peer death is the peer process's exit, not its socket's hang-up: a peer killed while a child
// it fork()ed (without exec) still holds every descriptor is noticed within the bound, on
// both sides; its name is free again at once. The helpers fork their child before printing
// READY, so the child holds the connection's socket, memfds and (for a server) the listening
// socket and lock file descriptor. Each figure is printed; only a generous bound is asserted.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace veridian::ipc::posix::test {
namespace {

constexpr u64 kGenerousBoundNs = 1'000'000'000u;  // the bound to keep is 100 ms

// The helper's forked child, killed and reaped... by init: it is not our child. Kill it by
// pid at the end (the helper printed it).
class ForkedChild {
public:
    explicit ForkedChild(const std::string& ready_line) {
        pid_ = static_cast<pid_t>(std::atol(ready_line.c_str() + 6));  // "READY <pid>"
    }
    ~ForkedChild() {
        if (pid_ > 0) ::kill(pid_, SIGKILL);
    }
    ForkedChild(const ForkedChild&) = delete;
    ForkedChild& operator=(const ForkedChild&) = delete;
    bool alive() const { return pid_ > 0 && ::kill(pid_, 0) == 0; }
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
};

TEST(PeerProcess, TheServerNoticesAClientDieWhileItsForkedChildHoldsTheSocket) {
    RuntimeDir dir;
    auto server = Server::publish("sec/fork", dir.server_options(4));
    ASSERT_TRUE(server);
    Peer client("fork-holder-client", dir.path(), "sec/fork", {}, "", VIPC_ABUSE_PEER_PATH);
    std::string line;
    ASSERT_TRUE(client.wait_for_line("READY", 5000, &line));
    ForkedChild child(line);
    ASSERT_TRUE(child.alive());
    ASSERT_EQ(server->connections().size(), 1u);
    const ConnectionId id = server->connections()[0];
    // A sender blocked on the client's full ring (it never reads), to be woken by the death.
    for (int i = 0; i < 4; ++i)
        ASSERT_TRUE(server->send_async(id, small_message(OP_DATA)));
    std::promise<u64> returned_at;
    auto done = returned_at.get_future();
    Result<void> blocked = IpcError::NotInitialized;
    std::thread t([&] {
        blocked = server->send_sync(id, small_message(OP_DATA), after_ms(10'000));
        returned_at.set_value(now_ns());
    });
    // Blocked means blocked: the ring is full and the sender has not returned (it cannot
    // return for another reason: the client never reads, the deadline is 10 s away).
    ASSERT_EQ(done.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
    const u64 killed_at = client.kill_now();
    u64 gone_at = 0;
    while (now_ns() - killed_at < 5'000'000'000u) {
        if (server->connections().empty()) {
            gone_at = now_ns();
            break;
        }
        usleep(200);
    }
    const u64 back_at = done.get();
    t.join();
    EXPECT_TRUE(child.alive());  // the socket is still open in the child
    ASSERT_NE(gone_at, 0u) << "the server still lists the dead client";
    std::printf(
        "[ measured ] client killed (its forked child alive): the server dropped it "
        "after %.2f ms; its blocked send_sync returned after %.2f ms\n",
        (gone_at - killed_at) / 1e6, (back_at - killed_at) / 1e6);
    ASSERT_FALSE(blocked);
    EXPECT_EQ(blocked.error(), IpcError::EndpointNotFound);
    EXPECT_LT(gone_at - killed_at, kGenerousBoundNs);
    EXPECT_LT(back_at - killed_at, kGenerousBoundNs);
    auto later = server->send_async(id, small_message(OP_DATA));
    ASSERT_FALSE(later);
    EXPECT_EQ(later.error(), IpcError::EndpointNotFound);
}

TEST(PeerProcess, AClientNoticesTheServerDieWhileItsForkedChildHoldsTheSocket) {
    RuntimeDir dir;
    Peer server("fork-holder-server", dir.path(), "sec/forks", {}, "", VIPC_ABUSE_PEER_PATH);
    std::string line;
    ASSERT_TRUE(server.wait_for_line("READY", 5000, &line));
    ForkedChild child(line);
    auto c = Connection::connect("sec/forks", dir.connect_options());
    ASSERT_TRUE(c) << last_error_detail();
    std::promise<u64> returned_at;
    auto done = returned_at.get_future();
    Result<Message> call = IpcError::NotInitialized;
    std::thread t([&] {
        call = c->call(small_message(OP_CALL), Deadline::never());
        returned_at.set_value(now_ns());
    });
    // Blocked means blocked: the server took the request (it says GOT) and never answers.
    ASSERT_TRUE(server.wait_for_line("GOT"));
    const u64 killed_at = server.kill_now();
    const u64 back_at = done.get();
    t.join();
    EXPECT_TRUE(child.alive());
    std::printf(
        "[ measured ] server killed (its forked child alive): a call with no deadline "
        "returned %s after %.2f ms\n",
        call ? "a reply" : error_name(call.error()), (back_at - killed_at) / 1e6);
    ASSERT_FALSE(call);
    EXPECT_EQ(call.error(), IpcError::EndpointNotFound);
    EXPECT_LT(back_at - killed_at, kGenerousBoundNs);

    // Connecting to the dead server's socket (still open in the child): refused at once, not
    // after connect_timeout_ms.
    const u64 t0 = now_ns();
    auto again = Connection::connect("sec/forks", dir.connect_options());
    const u64 took = now_ns() - t0;
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error(), IpcError::EndpointNotFound);
    std::printf("[ measured ] a new connect said %s after %.2f ms: %s\n", error_name(again.error()),
                took / 1e6, last_error_detail());
    EXPECT_LT(took, kGenerousBoundNs);
    // The name is free again (the child does not inherit the lock), and served anew.
    auto fresh = Server::publish("sec/forks", dir.server_options());
    ASSERT_TRUE(fresh) << last_error_detail();
    auto served = Connection::connect("sec/forks", dir.connect_options());
    ASSERT_TRUE(served) << last_error_detail();
}

// A wake from close() (or from the monitor noticing the server's end) used to be lost now and
// then: set between the waiter's last check and its futex sleep, it woke nobody, and the
// waiter slept out its 20 ms slice. Now the waits also sleep on a local word those wakers
// bump. Many trials, each waiting until the receiver is parked (not a sleep): the wake then
// lands while the waiter spins or goes to sleep, the window the lost wakes fell into; the
// figure to watch is how many wakes took a whole slice.
// Wakes later than 90 % of a sleep slice: what a lost wake costs.
long slice_late(const std::vector<u64>& ns) {
    return static_cast<long>(std::count_if(ns.begin(), ns.end(), [](u64 v) {
        return v >= u64{PEER_CHECK_INTERVAL_MS} * 1'000'000u * 9 / 10;
    }));
}

// The machine's own share of late wakes: `trials` threads parked on a condition variable (a
// futex, as a parked receive_sync), each woken once it is observably waiting. A loaded
// machine (a sanitizer build beside a compiler) delays some of these by a slice by itself.
std::vector<u64> plain_wake_trials(int trials) {
    std::vector<u64> ns;
    for (int i = 0; i < trials; ++i) {
        std::mutex mu;
        std::condition_variable cv;
        bool waiting = false, woken = false;
        std::promise<u64> returned_at;
        auto done = returned_at.get_future();
        std::thread t([&] {
            std::unique_lock<std::mutex> lock(mu);
            waiting = true;
            cv.wait(lock, [&] { return woken; });
            returned_at.set_value(now_ns());
        });
        for (;;) {
            std::lock_guard<std::mutex> lock(mu);
            if (waiting) break;
        }
        std::this_thread::yield();
        const u64 t0 = now_ns();
        {
            std::lock_guard<std::mutex> lock(mu);
            woken = true;
        }
        cv.notify_one();
        ns.push_back(done.get() - t0);
        t.join();
    }
    return ns;
}

void wake_trials(const char* what, bool by_server) {
    RuntimeDir dir;
    auto server = Server::publish("sec/wake", dir.server_options());
    ASSERT_TRUE(server);
    constexpr int kTrials = 1000;
    std::vector<u64> ns;
    for (int i = 0; i < kTrials; ++i) {
        auto c = Connection::connect("sec/wake", dir.connect_options());
        ASSERT_TRUE(c) << last_error_detail();
        const ConnectionId id = c->id();
        std::promise<u64> returned_at;
        auto done = returned_at.get_future();
        std::thread t([&] {
            (void)c->receive_sync(after_ms(5000));
            returned_at.set_value(now_ns());
        });
        while (c->stats()->waiting_receivers == 0)
            std::this_thread::yield();
        const u64 t0 = now_ns();
        if (by_server) {
            ASSERT_TRUE(server->disconnect(id));
        } else {
            ASSERT_TRUE(c->close());
        }
        ns.push_back(done.get() - t0);
        t.join();
    }
    std::sort(ns.begin(), ns.end());
    const long late = slice_late(ns);
    const long machine_late = slice_late(plain_wake_trials(kTrials));
    std::printf(
        "[ measured ] %s wakes a parked receive_sync: p50 %.1f us, p99 %.1f us, max %.2f "
        "ms; %ld of %d took a whole %u ms slice (plain wakes on this machine meanwhile: %ld)\n",
        what, ns[ns.size() / 2] / 1e3, ns[ns.size() * 99 / 100] / 1e3, ns.back() / 1e6, late,
        kTrials, PEER_CHECK_INTERVAL_MS, machine_late);
    // Before the fix about 1 in 200 took a slice (5 in 1000). Up to 3 in 1000 are allowed,
    // beyond as many as the machine delayed by itself in the same number of plain wakes.
    EXPECT_LE(late, 3 + machine_late);
}

TEST(PeerProcess, CloseNeverLosesTheWakeOfAParkedReceiver) {
    wake_trials("close()", false);
}

TEST(PeerProcess, TheServerEndingAConnectionNeverLosesTheWake) {
    wake_trials("Server::disconnect", true);
}

}  // namespace
}  // namespace veridian::ipc::posix::test
