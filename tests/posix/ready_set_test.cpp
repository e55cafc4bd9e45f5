// SPDX-License-Identifier: MIT OR Apache-2.0
// The server's ready set (src/posix/ready_set.hpp) on its own: what a pass costs, what a
// hostile client's marks cost, and real threads producing into it with one and two
// receivers sleeping on futex_waitv.
#include "posix/ready_set.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace veridian::ipc::posix::detail {
namespace {

// A member whose "ring" is a count of published messages; counts its checks.
struct TestMember final : ReadyMember {
    std::atomic<u32> published{0};
    std::atomic<u32> tail{0};
    std::atomic<u32> arm_word{0};
    std::atomic<u32> taken{0};  // written by the receiver holding the lock
    std::atomic<u64> checks{0};

    TestMember() {
        arm = &arm_word;
        wake_word = &tail;
    }
    ReadyCheck check_ready(u64, u64*) override {
        checks.fetch_add(1, std::memory_order_relaxed);
        return published.load(std::memory_order_acquire) != taken.load(std::memory_order_relaxed)
                   ? ReadyCheck::Work
                   : ReadyCheck::Empty;
    }
    // The client's side of one message: (P5), then (M1)-(M3).
    void publish(SharedWords& words, const ReadyMap& map, const std::atomic<u32>& waiting) {
        const u32 n = published.load(std::memory_order_relaxed) + 1;
        words.publish(published, n);
        if (notice_after_publish(words, arm_word, map, slot, waiting) == ReadyNotice::OwnWord) {
            tail.store(n, std::memory_order_seq_cst);
            words.wake_all(&tail);
        }
    }
};

struct Server {
    explicit Server(u32 slots) : page(ReadyMap::bytes_for(slots) / 8, 0) {
        map = ReadyMap::over(page.data(), slots);
        set.attach(words, map);
    }
    SharedWords& words = platform::ProcessSharedWords::instance();
    std::vector<u64> page;
    ReadyMap map;
    ReadySet set;
    std::atomic<u32> waiting{0};
    std::vector<std::unique_ptr<TestMember>> members;

    void add(u32 n) {
        for (u32 i = 0; i < n; ++i) {
            members.push_back(std::make_unique<TestMember>());
            ASSERT_TRUE(set.add(*members.back()));
            set.list(*members.back());
        }
    }
    u64 checks() const {
        u64 sum = 0;
        for (const auto& m : members)
            sum += m->checks.load();
        return sum;
    }
};

// The real sleep: futex_waitv, with a process-private word.
class ThreadWaiter final : public ReadyWaiter {
public:
    explicit ThreadWaiter(std::atomic<u32>& waiting) : waiting_(waiting) {}
    Result<void> check() override {
        return closed.load() != 0 ? Result<void>(IpcError::EndpointNotFound) : ok();
    }
    std::atomic<u32>& waiting() override { return waiting_; }
    const std::atomic<u32>* private_word() override { return &wake; }
    long sleep(const std::atomic<u32>* const* words, const u32* values, u32 count,
               u64 until_ns) override {
        sleeps.fetch_add(1);
        return futex_wait_any(words, values, count, 0, until_ns);
    }
    u32 sleep_capacity() override { return FUTEX_WAIT_ANY_MAX; }
    void close() {
        closed.store(1);
        wake.fetch_add(1, std::memory_order_seq_cst);
        platform::futex_wake(&wake, 1 << 30, true);
    }
    std::atomic<u32> wake{0};
    std::atomic<u32> closed{0};
    std::atomic<u64> sleeps{0};

private:
    std::atomic<u32>& waiting_;
};

// A sleep that returns at once (the kernel "woke" nobody): the wait loop runs flat out.
class NoSleepWaiter final : public ReadyWaiter {
public:
    explicit NoSleepWaiter(std::atomic<u32>& waiting) : waiting_(waiting) {}
    Result<void> check() override { return ok(); }
    std::atomic<u32>& waiting() override { return waiting_; }
    const std::atomic<u32>* private_word() override { return nullptr; }
    long sleep(const std::atomic<u32>* const*, const u32*, u32, u64) override { return -1; }
    u32 sleep_capacity() override { return FUTEX_WAIT_ANY_MAX; }

private:
    std::atomic<u32>& waiting_;
};

TEST(ReadyMap, LayoutIsWholeLinesWithOneSummaryBitPerBitsWord) {
    EXPECT_EQ(ReadyMap::bytes_for(1), 64u + 64u + 64u);
    EXPECT_EQ(ReadyMap::bytes_for(10'000), 64u + 64u + 1280u);  // 157 bits words, 3 summary
    std::vector<u64> page(ReadyMap::bytes_for(10'000) / 8);
    const ReadyMap m = ReadyMap::over(page.data(), 10'000);
    EXPECT_EQ(m.bits_words, 157u);
    EXPECT_EQ(m.summary_words, 3u);
    EXPECT_EQ(reinterpret_cast<u8*>(m.summary) - reinterpret_cast<u8*>(page.data()), 64);
    EXPECT_EQ(reinterpret_cast<u8*>(m.bits) - reinterpret_cast<u8*>(page.data()), 128);
    mark_ready(m, 9'999);
    EXPECT_EQ(m.bits[156].load(), u64{1} << (9'999 % 64));
    EXPECT_EQ(m.summary[2].load(), u64{1} << (156 % 64));
}

TEST(ReadySet, APassWithNothingMarkedChecksNoIdleConnection) {
    Server s(10'000);
    s.add(10'000);
    u64 retry = ~u64{0};
    EXPECT_EQ(s.set.next(s.words.now_ns(), &retry), nullptr);
    EXPECT_EQ(s.checks(), 0u);
}

TEST(ReadySet, AMarkAmongTenThousandConnectionsCostsOneCheckAndMakesItPolled) {
    Server s(10'000);
    s.add(10'000);
    TestMember& last = *s.members.back();
    EXPECT_EQ(last.arm_word.load(), 1u);  // armed from the start
    last.publish(s.words, s.map, s.waiting);
    u64 retry = ~u64{0};
    EXPECT_EQ(s.set.next(s.words.now_ns(), &retry), &last);
    EXPECT_EQ(s.checks(), 2u);  // the mark's check, then the polled look
    EXPECT_EQ(last.arm_word.load(), 0u);
    EXPECT_EQ(s.set.polled(), 1u);
    // Polled: its next message needs no mark.
    last.taken.store(1);
    last.publish(s.words, s.map, s.waiting);
    EXPECT_EQ(s.map.summary[2].load(), 0u);
    EXPECT_EQ(s.set.next(s.words.now_ns(), &retry), &last);
}

TEST(ReadySet, AClientThatSetsEveryBitBuysAtMostTheBudgetPerWindow) {
    Server s(10'000);
    s.add(10'000);
    TestMember& honest = *s.members.back();
    honest.publish(s.words, s.map, s.waiting);
    for (u32 w = 0; w < s.map.bits_words; ++w)
        s.map.bits[w].store(~u64{0});
    for (u32 k = 0; k < s.map.summary_words; ++k)
        s.map.summary[k].store(~u64{0});
    u64 now = s.words.now_ns();
    u64 windows = 0;
    ReadyMember* found = nullptr;
    while (found == nullptr && windows < 100) {
        const u64 before = s.checks();
        u64 retry = ~u64{0};
        found = s.set.next(now, &retry);
        // One check per bogus mark, the budget per window (+1: the last one that spent it,
        // +2: the honest member's mark and its polled look).
        EXPECT_LE(s.checks() - before, READY_BOGUS_BUDGET + 3u) << "window " << windows;
        if (found == nullptr) {
            EXPECT_TRUE(s.set.map_muted(now));
        }
        now += READY_WINDOW_NS;
        ++windows;
    }
    EXPECT_EQ(found, &honest);  // the honest mark was left for a later window, not lost
    EXPECT_GE(s.set.bogus_marks(), 9'000u);
}

TEST(ReadySet, AClientMarkingItselfWithoutSendingGetsOneCheckPerMarkWithinTheBudget) {
    Server s(1'000);
    s.add(1'000);
    TestMember& liar = *s.members[500];
    const u64 now = s.words.now_ns();
    for (u32 i = 0; i < 10'000; ++i) {
        mark_ready(s.map, liar.slot);
        u64 retry = ~u64{0};
        EXPECT_EQ(s.set.next(now, &retry), nullptr);
    }
    EXPECT_LE(liar.checks.load(), READY_BOGUS_BUDGET + 1u);
    EXPECT_EQ(s.checks(), liar.checks.load());  // nobody else was looked at
    EXPECT_TRUE(s.set.map_muted(now));
}

TEST(ReadySet, BitsBeyondTheLastSlotAreNeverChecked) {
    Server s(100);
    s.add(100);
    s.map.bits[1].store(~u64{0} << 36);  // slots 100..127 do not exist
    s.map.summary[0].store(2);
    u64 retry = ~u64{0};
    EXPECT_EQ(s.set.next(s.words.now_ns(), &retry), nullptr);
    EXPECT_EQ(s.checks(), 0u);
}

TEST(ReadySet, AnErasedMarkIsFoundByTheSweepBeforeSleeping) {
    Server s(1'000);
    s.add(1'000);
    TestMember& honest = *s.members[777];
    honest.publish(s.words, s.map, s.waiting);
    for (u32 w = 0; w < s.map.bits_words; ++w)
        s.map.bits[w].store(0);  // a liar erases it
    for (u32 k = 0; k < s.map.summary_words; ++k)
        s.map.summary[k].store(0);
    NoSleepWaiter waiter(s.waiting);
    SpinBudget spin(0);
    auto got = s.set.wait_ready(waiter, spin, Blocking::Yes,
                                Deadline::at(s.words.now_ns() + 10'000'000'000));
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, &honest);
    EXPECT_EQ(s.waiting.load(), 0u);
}

TEST(ReadySet, AnIdlePolledConnectionIsArmedAgainWhenTheServerSleeps) {
    Server s(64);
    s.add(2);
    TestMember& m = *s.members[0];
    m.publish(s.words, s.map, s.waiting);
    u64 retry = ~u64{0};
    ASSERT_EQ(s.set.next(s.words.now_ns(), &retry), &m);
    m.taken.store(1);
    EXPECT_EQ(m.arm_word.load(), 0u);
    ThreadWaiter waiter(s.waiting);
    SpinBudget spin(0);
    // Nothing arrives: after READY_IDLE_NS without work the sleep re-arms it.
    auto got = s.set.wait_ready(waiter, spin, Blocking::Yes,
                                Deadline::at(s.words.now_ns() + 2 * READY_IDLE_NS + 20'000'000));
    EXPECT_FALSE(got);
    EXPECT_EQ(got.error(), IpcError::Timeout);
    EXPECT_EQ(m.arm_word.load(), 1u);
    EXPECT_EQ(s.set.polled(), 0u);
    EXPECT_GE(s.set.demotions(), 1u);
}

TEST(ReadySet, ASleepingReceiverWakesOnTheBellAndOnAPolledTail) {
    Server s(64);
    s.add(2);
    TestMember& armed = *s.members[0];
    ThreadWaiter waiter(s.waiting);
    SpinBudget spin(0);
    std::thread client([&] {
        while (s.waiting.load() == 0 || waiter.sleeps.load() == 0)
            std::this_thread::yield();             // until the receiver is observably asleep
        armed.publish(s.words, s.map, s.waiting);  // armed: mark + bell
    });
    auto got = s.set.wait_ready(waiter, spin, Blocking::Yes, Deadline::never());
    client.join();
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, &armed);
    armed.taken.store(1);
    // Now polled: the next publish wakes its own tail word.
    const u64 sleeps = waiter.sleeps.load();
    std::thread again([&] {
        while (s.waiting.load() == 0 || waiter.sleeps.load() == sleeps)
            std::this_thread::yield();
        armed.publish(s.words, s.map, s.waiting);
    });
    got = s.set.wait_ready(waiter, spin, Blocking::Yes, Deadline::never());
    again.join();
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, &armed);
    EXPECT_EQ(s.map.summary[0].load(), 0u);  // no mark this time
}

TEST(ReadySet, TailWakesWithoutMessagesMuteOnlyThatConnection) {
    Server s(64);
    s.add(2);
    TestMember& hammer = *s.members[0];
    TestMember& honest = *s.members[1];
    // Both polled.
    hammer.publish(s.words, s.map, s.waiting);
    honest.publish(s.words, s.map, s.waiting);
    u64 retry = ~u64{0};
    ASSERT_NE(s.set.next(s.words.now_ns(), &retry), nullptr);
    hammer.taken.store(1);
    honest.taken.store(1);
    ASSERT_EQ(s.set.polled(), 2u);
    ThreadWaiter waiter(s.waiting);
    SpinBudget spin(0);
    std::atomic<bool> stop{false};
    std::thread hammering([&] {
        while (!stop.load()) {
            hammer.tail.fetch_add(1);  // a liar: its tail moves, its ring does not
            platform::futex_wake(&hammer.tail, 1 << 30, false);
        }
    });
    std::thread sender([&] {
        while (s.set.mutes() == 0 && !stop.load())
            std::this_thread::yield();  // until the hammer was muted
        honest.publish(s.words, s.map, s.waiting);
    });
    auto got = s.set.wait_ready(waiter, spin, Blocking::Yes,
                                Deadline::at(s.words.now_ns() + 5'000'000'000));
    stop.store(true);
    hammering.join();
    sender.join();
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, &honest);
    EXPECT_GE(s.set.mutes(), 1u);
    EXPECT_GE(s.set.spurious_wakes(), READY_WAKE_BUDGET);
}

// N producer threads, among many idle connections; receivers take under one lock and check
// that each producer's messages arrive exactly once, in order.
void run_threads(u32 receivers) {
    constexpr u32 PRODUCERS = 6;
    constexpr u32 MESSAGES = 3'000;
    Server s(2'048);
    s.add(1'500);  // idle
    std::vector<TestMember*> producers;
    for (u32 p = 0; p < PRODUCERS; ++p) {
        s.members.push_back(std::make_unique<TestMember>());
        ASSERT_TRUE(s.set.add(*s.members.back()));
        s.set.list(*s.members.back());
        producers.push_back(s.members.back().get());
    }
    ThreadWaiter waiter(s.waiting);
    std::mutex receive_mu;
    std::vector<u32> next_expected(PRODUCERS, 0);
    std::atomic<u32> problems{0};
    u32 consumed = 0;
    std::vector<std::thread> threads;
    for (u32 p = 0; p < PRODUCERS; ++p) {
        threads.emplace_back([&, p] {
            std::mt19937 rng(p);
            for (u32 i = 0; i < MESSAGES; ++i) {
                if (i == MESSAGES / 2) {
                    // Halfway, every producer stops until a receiver, finding nothing more, has
                    // gone to sleep: the rest then arrives through the wake path (however fast
                    // or slow the build: the pauses below alone do not guarantee a sleep).
                    const u64 give_up = s.words.now_ns() + 10'000'000'000;
                    while (waiter.sleeps.load() == 0 && s.words.now_ns() < give_up)
                        std::this_thread::sleep_for(std::chrono::microseconds(100));
                }
                producers[p]->publish(s.words, s.map, s.waiting);
                if (rng() % 64 == 0) std::this_thread::yield();
                if (rng() % 512 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
        });
    }
    for (u32 r = 0; r < receivers; ++r) {
        threads.emplace_back([&, r] {
            SpinBudget spin(r == 0 ? 2'000 : 0);
            for (;;) {
                std::lock_guard<std::mutex> lock(receive_mu);
                if (consumed == PRODUCERS * MESSAGES) return;
                auto got = s.set.wait_ready(waiter, spin, Blocking::Yes,
                                            Deadline::at(s.words.now_ns() + 10'000'000'000));
                if (!got) {
                    problems.fetch_add(1);
                    return;
                }
                auto* m = static_cast<TestMember*>(*got);
                u32 p = 0;
                while (p < PRODUCERS && producers[p] != m)
                    ++p;
                if (p == PRODUCERS) {
                    problems.fetch_add(1);
                    return;
                }
                const u32 index = m->taken.load();
                if (index != next_expected[p] || index >= m->published.load())
                    problems.fetch_add(1);
                next_expected[p] = index + 1;
                m->taken.store(index + 1);
                ++consumed;
            }
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(problems.load(), 0u);
    EXPECT_EQ(consumed, PRODUCERS * MESSAGES);
    for (u32 p = 0; p < PRODUCERS; ++p)
        EXPECT_EQ(next_expected[p], MESSAGES);
    EXPECT_EQ(s.waiting.load(), 0u);
    // The producers' halfway stop put the receivers to sleep: the wake path ran, not only the
    // spin.
    EXPECT_GT(waiter.sleeps.load(), 0u);
    std::printf("[  ready   ] %u receiver(s): %llu sleeps, %llu promotions, %llu demotions\n",
                receivers, static_cast<unsigned long long>(waiter.sleeps.load()),
                static_cast<unsigned long long>(s.set.promotions()),
                static_cast<unsigned long long>(s.set.demotions()));
}

TEST(ReadySet, ThreadsOneReceiverTakesEveryMessageOnceInOrder) {
    run_threads(1);
}

TEST(ReadySet, ThreadsTwoReceiversTakeEveryMessageOnceInOrder) {
    run_threads(2);
}

}  // namespace
}  // namespace veridian::ipc::posix::detail
