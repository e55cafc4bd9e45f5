// SPDX-License-Identifier: MIT OR Apache-2.0
// Abusive clients across real processes: one that never reads its replies, one that hammers
// the server's wake-up words (the shared doorbell, or its own), one that floods. Each test measures
// an honest client's call rate without and with the abuser running (and the server's CPU where that
// is the point), prints the figures, and asserts only generous bounds: the machine may be loaded,
// and the abuser itself takes a CPU.
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "test_support.hpp"

namespace veridian::ipc::posix::test {
namespace {

// Calls per second an honest client gets from the echo server `name` over `ms`.
double honest_call_rate(const RuntimeDir& dir, const char* name, u64 ms) {
    auto c = Connection::connect(name, dir.connect_options());
    if (!c) return -1;
    const Message request = small_message(OP_CALL, 1);
    u64 calls = 0;
    const u64 start = now_ns();
    const u64 end = start + ms * 1'000'000u;
    u64 now = start;
    while (now < end) {
        auto r = c->call(request, after_ms(2000));
        now = now_ns();
        if (!r) {
            std::printf("[ measured ] honest call %llu failed: %s (%s)\n",
                        static_cast<unsigned long long>(calls), error_name(r.error()),
                        last_error_detail());
            return -1;
        }
        ++calls;
    }
    return static_cast<double>(calls) * 1e9 / static_cast<double>(now - start);
}

// The share of one CPU `pid` used over the next `ms`.
double cpu_share(pid_t pid, u64 ms) {
    const double before = cpu_seconds(pid);
    const u64 t0 = now_ns();
    usleep(static_cast<useconds_t>(ms * 1000));
    const double after = cpu_seconds(pid);
    return (after - before) / (static_cast<double>(now_ns() - t0) / 1e9);
}

constexpr u64 kMeasureMs = 700;
// The target is an honest rate within 2x of the rate alone. On a loaded two-CPU machine the
// abuser's mere presence can cost more than that (it takes a CPU), so the assertion is only
// that no abuser stalls the others (before the fixes: a few calls in 5 s against ~10^5/s).
constexpr double kGenerousRateFactor = 100;

// Under a sanitizer every call costs ~100x more and the figures measure the sanitizer; the
// rates are printed, not asserted.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool kRatesMean = false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
constexpr bool kRatesMean = false;
#else
constexpr bool kRatesMean = true;
#endif
#else
constexpr bool kRatesMean = true;
#endif

void expect_rate_kept(double alone, double beside) {
    if (!kRatesMean) {
        std::printf("[ note     ] sanitizer build: the rate bound is not asserted\n");
        return;
    }
    EXPECT_GT(beside, alone / kGenerousRateFactor);
}

TEST(AbusiveClient, ReplyToAClientWhoseRingIsFullFailsAtOnce) {
    RuntimeDir dir;
    auto server = Server::publish("sec/stuck", dir.server_options(4));
    ASSERT_TRUE(server);
    Peer stuck("stuck-caller", dir.path(), "sec/stuck", {}, "", VIPC_ABUSE_PEER_PATH);
    u64 worst_reply_ns = 0;
    u32 replies_ok = 0;
    bool refused = false;
    const u64 give_up = now_ns() + 10'000'000'000u;
    while (!refused && now_ns() < give_up) {
        auto r = server->receive_sync(after_ms(5000));
        ASSERT_TRUE(r) << error_name(r.error());
        const u64 t0 = now_ns();
        auto s = server->reply(*r, r->message, Deadline::never());
        const u64 took = now_ns() - t0;
        worst_reply_ns = took > worst_reply_ns ? took : worst_reply_ns;
        if (s) {
            ++replies_ok;
            continue;
        }
        ASSERT_EQ(s.error(), IpcError::ChannelFull) << last_error_detail();
        EXPECT_NE(std::strstr(last_error_detail(), "unread messages"), nullptr)
            << last_error_detail();
        std::printf("[ measured ] refusal: %s\n", last_error_detail());
        refused = true;
    }
    std::printf("[ measured ] %u replies queued, then ChannelFull; slowest reply %.1f us\n",
                replies_ok, worst_reply_ns / 1e3);
    EXPECT_TRUE(refused);
    EXPECT_EQ(replies_ok, 4u);               // the ring's depth
    EXPECT_LT(worst_reply_ns, 50'000'000u);  // never a wait (generous: a loaded machine)
}

TEST(AbusiveClient, AStuckCallerDoesNotSlowTheOthers) {
    RuntimeDir dir;
    Peer server("echo", dir.path(), "sec/echo", {"16"});
    ASSERT_TRUE(server.ready());
    const double alone = honest_call_rate(dir, "sec/echo", kMeasureMs);
    Peer stuck("stuck-caller", dir.path(), "sec/echo", {}, "", VIPC_ABUSE_PEER_PATH);
    ASSERT_TRUE(stuck.ready());
    const double beside = honest_call_rate(dir, "sec/echo", kMeasureMs);
    std::printf("[ measured ] honest calls/s: %.0f alone, %.0f beside a stuck caller (%.2fx)\n",
                alone, beside, beside / alone);
    ASSERT_GT(alone, 0);
    expect_rate_kept(alone, beside);
}

TEST(AbusiveClient, AFloodingClientDoesNotSlowTheOthers) {
    RuntimeDir dir;
    Peer server("echo", dir.path(), "sec/flood");
    ASSERT_TRUE(server.ready());
    const double alone = honest_call_rate(dir, "sec/flood", kMeasureMs);
    Peer flood("flooder", dir.path(), "sec/flood", {}, "", VIPC_ABUSE_PEER_PATH);
    ASSERT_TRUE(flood.ready());
    const double beside = honest_call_rate(dir, "sec/flood", kMeasureMs);
    std::printf("[ measured ] honest calls/s: %.0f alone, %.0f beside a flooder (%.2fx)\n", alone,
                beside, beside / alone);
    ASSERT_GT(alone, 0);
    expect_rate_kept(alone, beside);
}

// `bound`: the server's CPU share while hammered, well under what it was without the budget
// (each budgeted wake costs some microseconds more on a loaded machine or under a sanitizer,
// but at most READY_WAKE_BUDGET of them come per millisecond).
void hammer_the_doorbell(const char* how, double bound) {
    RuntimeDir dir;
    Peer server("echo", dir.path(), "sec/bell");
    ASSERT_TRUE(server.ready());
    const double idle_cpu = cpu_share(server.pid(), kMeasureMs);
    const double alone = honest_call_rate(dir, "sec/bell", kMeasureMs);
    Peer hammer("doorbell-hammer", dir.path(), "sec/bell", {how}, "", VIPC_ABUSE_PEER_PATH);
    ASSERT_TRUE(hammer.ready());
    const double hammered_cpu = cpu_share(server.pid(), kMeasureMs);
    const double before_calls = cpu_seconds(server.pid());
    const double beside = honest_call_rate(dir, "sec/bell", kMeasureMs);
    std::printf("[ measured ] server CPU while answering the honest client: %.1f%%\n",
                (cpu_seconds(server.pid()) - before_calls) * 1000.0 / kMeasureMs * 100);
    std::printf(
        "[ measured ] doorbell %s: server CPU %.1f%% idle, %.1f%% hammered; honest calls/s %.0f "
        "alone, %.0f hammered (%.2fx)\n",
        how, idle_cpu * 100, hammered_cpu * 100, alone, beside, beside / alone);
    EXPECT_LT(hammered_cpu, bound);
    ASSERT_GT(alone, 0);
    expect_rate_kept(alone, beside);
}

// The shared bell: 81-96 % of a CPU before the budget; with it 0-3 % on a quiet machine, up to
// 19 % measured beside a CI run, 13-17 % under ThreadSanitizer.
TEST(AbusiveClient, BumpingTheDoorbellDoesNotKeepTheServerBusy) {
    hammer_the_doorbell("bump", 0.5);
}

TEST(AbusiveClient, WakingTheDoorbellDoesNotKeepTheServerBusy) {
    hammer_the_doorbell("wake", 0.5);
}

// The client's own tail word: 33 % without its budget on a quiet machine; the bound tells the
// two apart in the trees without a sanitizer, whose own cost per wake blurs them.
TEST(AbusiveClient, WakingItsOwnWordDoesNotKeepTheServerBusy) {
    hammer_the_doorbell("tail", kSanitizerAllocator ? 0.45 : 0.3);
}

}  // namespace
}  // namespace veridian::ipc::posix::test
