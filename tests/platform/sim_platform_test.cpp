// SPDX-License-Identifier: MIT OR Apache-2.0
// The deterministic simulation platform: its scheduler, clock, waits and wakes.
#include "veridian/ipc/platform/sim.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <stdexcept>
#include <vector>

#include "veridian/ipc/core/registry.hpp"
#include "veridian/ipc/platform/threads.hpp"

namespace veridian::ipc {
namespace {

SimPlatform::Options without_spurious_wakes() {
    SimPlatform::Options options;
    options.spurious_wake_permille = 0;
    return options;
}

// Three tasks that each yield a few times and log who ran: the log is the interleaving.
std::vector<int> interleaving_of(u64 seed, SimPlatform::RunResult* out = nullptr) {
    SimPlatform sim(seed);
    std::vector<int> log;
    for (int t = 0; t < 3; ++t) {
        sim.spawn(ProcessId{static_cast<u64>(t + 1)}, [&sim, &log, t] {
            for (int i = 0; i < 8; ++i) {
                log.push_back(t);
                sim.yield();
            }
        });
    }
    SimPlatform::RunResult r = sim.run();
    EXPECT_TRUE(r.ok) << r.failure;
    if (out != nullptr) *out = r;
    return log;
}

TEST(SimPlatform, SameSeedReplaysTheSameInterleaving) {
    SimPlatform::RunResult first;
    SimPlatform::RunResult second;
    const std::vector<int> a = interleaving_of(42, &first);
    const std::vector<int> b = interleaving_of(42, &second);
    EXPECT_EQ(a, b);
    EXPECT_EQ(first.schedule_hash, second.schedule_hash);
    EXPECT_EQ(first.switches, second.switches);
}

TEST(SimPlatform, DifferentSeedsGiveDifferentInterleavings) {
    std::set<std::vector<int>> distinct;
    for (u64 seed = 1; seed <= 20; ++seed)
        distinct.insert(interleaving_of(seed));
    // 24 steps of 3 tasks have millions of orders: 20 seeds should nearly all differ.
    EXPECT_GE(distinct.size(), 18u);
}

TEST(SimPlatform, RecordedScheduleHasOneChoicePerSwitchPointAndReplays) {
    SimPlatform::Options options;
    options.record_schedule = true;
    auto record = [&options] {
        SimPlatform sim(7, options);
        for (int t = 0; t < 3; ++t) {
            sim.spawn(ProcessId{1}, [&sim] {
                for (int i = 0; i < 4; ++i)
                    sim.yield();
            });
        }
        return sim.run();
    };
    const SimPlatform::RunResult first = record();
    const SimPlatform::RunResult second = record();
    ASSERT_TRUE(first.ok) << first.failure;
    // The first task run() starts, then one choice per switch point.
    EXPECT_EQ(first.schedule.size(), first.switches + 1);
    EXPECT_EQ(first.schedule, second.schedule);
}

TEST(SimPlatform, TasksRunOneAtATime) {
    SimPlatform sim(3);
    int inside = 0;  // deliberately not atomic: only one task may ever be between yields
    int overlaps = 0;
    for (int t = 0; t < 4; ++t) {
        sim.spawn(ProcessId{1}, [&] {
            for (int i = 0; i < 50; ++i) {
                ++inside;
                if (inside != 1) ++overlaps;
                --inside;
                sim.yield();
            }
        });
    }
    ASSERT_TRUE(sim.run().ok);
    EXPECT_EQ(overlaps, 0);
}

TEST(SimPlatform, CurrentProcessNamesTheRunningTask) {
    SimPlatform sim(5);
    std::vector<u64> seen(3);
    for (u64 t = 0; t < 3; ++t) {
        sim.spawn(ProcessId{100 + t}, [&sim, &seen, t] {
            sim.yield();
            seen[t] = sim.current_process().value;
        });
    }
    ASSERT_TRUE(sim.run().ok);
    EXPECT_EQ(seen, (std::vector<u64>{100, 101, 102}));
    EXPECT_EQ(sim.current_process().value, 0u);
    EXPECT_EQ(sim.current_task(), -1);
}

TEST(SimPlatform, WaitReturnsValueChangedWhenTheWordDiffers) {
    SimPlatform sim(1);
    std::atomic<u32> word{5};
    WaitResult result = WaitResult::Woken;
    sim.spawn(ProcessId{1}, [&] { result = sim.wait(&word, 4, Deadline::never()); });
    ASSERT_TRUE(sim.run().ok);
    EXPECT_EQ(result, WaitResult::ValueChanged);
}

TEST(SimPlatform, WaitBlocksUntilWokenOnItsWord) {
    SimPlatform sim(11, without_spurious_wakes());
    std::atomic<u32> word{0};
    WaitResult result = WaitResult::TimedOut;
    bool waiter_saw_one = false;
    sim.spawn(ProcessId{1}, [&] {
        result = sim.wait(&word, 0, Deadline::never());
        waiter_saw_one = word.load() == 1;
    });
    sim.spawn(ProcessId{2}, [&] {
        for (int i = 0; i < 10; ++i)
            sim.yield();
        word.store(1);
        sim.wake_one(&word);
    });
    ASSERT_TRUE(sim.run().ok);
    // The waiter either blocked and was woken, or ran after the store.
    EXPECT_TRUE(result == WaitResult::Woken || result == WaitResult::ValueChanged);
    EXPECT_TRUE(waiter_saw_one);
}

TEST(SimPlatform, WaitTimesOutAtItsDeadlineAndTheClockJumpsThere) {
    SimPlatform sim(2, without_spurious_wakes());
    std::atomic<u32> word{0};
    WaitResult result = WaitResult::Woken;
    u64 after = 0;
    sim.spawn(ProcessId{1}, [&] {
        result = sim.wait(&word, 0, Deadline::at(5000));
        after = sim.now_ns();
    });
    SimPlatform::RunResult r = sim.run();
    ASSERT_TRUE(r.ok) << r.failure;
    EXPECT_EQ(result, WaitResult::TimedOut);
    EXPECT_EQ(after, 5000u);
    EXPECT_EQ(r.end_time_ns, 5000u);
    EXPECT_EQ(r.timeouts, 1u);
}

TEST(SimPlatform, WaitWithAPassedDeadlineReturnsTimedOutWithoutBlocking) {
    SimPlatform sim(2, without_spurious_wakes());
    std::atomic<u32> word{0};
    WaitResult result = WaitResult::Woken;
    sim.spawn(ProcessId{1}, [&] { result = sim.wait(&word, 0, Deadline::past()); });
    SimPlatform::RunResult r = sim.run();
    ASSERT_TRUE(r.ok) << r.failure;
    EXPECT_EQ(result, WaitResult::TimedOut);
    EXPECT_EQ(r.end_time_ns, 0u);
}

TEST(SimPlatform, TheClockJumpsToTheEarliestDeadlineFirst) {
    SimPlatform sim(9, without_spurious_wakes());
    std::atomic<u32> word{0};
    std::vector<std::pair<int, u64>> timed_out;  // (task, clock when it timed out)
    const u64 deadlines[3] = {300, 100, 200};
    for (int t = 0; t < 3; ++t) {
        sim.spawn(ProcessId{1}, [&, t] {
            if (sim.wait(&word, 0, Deadline::at(deadlines[t])) == WaitResult::TimedOut) {
                timed_out.emplace_back(t, sim.now_ns());
            }
        });
    }
    ASSERT_TRUE(sim.run().ok);
    EXPECT_EQ(timed_out, (std::vector<std::pair<int, u64>>{{1, 100}, {2, 200}, {0, 300}}));
}

TEST(SimPlatform, TheClockStandsStillWhileSomeTaskCanRun) {
    SimPlatform sim(4, without_spurious_wakes());
    std::atomic<u32> word{0};
    std::set<u64> clock_seen_by_runner;
    WaitResult result = WaitResult::Woken;
    sim.spawn(ProcessId{1}, [&] { result = sim.wait(&word, 0, Deadline::at(1000)); });
    sim.spawn(ProcessId{2}, [&] {
        for (int i = 0; i < 100; ++i)
            clock_seen_by_runner.insert(sim.now_ns());
    });
    SimPlatform::RunResult r = sim.run();
    ASSERT_TRUE(r.ok) << r.failure;
    EXPECT_EQ(clock_seen_by_runner, std::set<u64>{0});
    EXPECT_EQ(result, WaitResult::TimedOut);
    EXPECT_EQ(r.end_time_ns, 1000u);
}

TEST(SimPlatform, WithATickADeadlineCanPassWhileOthersRun) {
    SimPlatform::Options options = without_spurious_wakes();
    options.max_tick_ns = 100;
    SimPlatform sim(8, options);
    std::atomic<u32> word{0};
    WaitResult result = WaitResult::Woken;
    bool runner_done_first = false;
    bool runner_done = false;
    sim.spawn(ProcessId{1}, [&] {
        result = sim.wait(&word, 0, Deadline::at(500));
        runner_done_first = runner_done;
    });
    sim.spawn(ProcessId{2}, [&] {
        for (int i = 0; i < 1000; ++i)
            sim.yield();  // about 50 us of virtual time
        runner_done = true;
    });
    SimPlatform::RunResult r = sim.run();
    ASSERT_TRUE(r.ok) << r.failure;
    EXPECT_EQ(result, WaitResult::TimedOut);
    EXPECT_FALSE(runner_done_first);
    EXPECT_GT(r.end_time_ns, 500u);
}

TEST(SimPlatform, WakeOneWakesExactlyOneWaiter) {
    SimPlatform sim(21, without_spurious_wakes());
    std::atomic<u32> word{0};
    int arrived = 0;
    int woken = 0;
    int woken_after_wake_one = -1;
    for (int t = 0; t < 3; ++t) {
        sim.spawn(ProcessId{1}, [&] {
            ++arrived;  // no switch point between this and the wait below, which blocks
            EXPECT_EQ(sim.wait(&word, 0, Deadline::never()), WaitResult::Woken);
            ++woken;
        });
    }
    sim.spawn(ProcessId{2}, [&] {
        while (arrived < 3)
            sim.yield();
        sim.wake_one(&word);
        for (int i = 0; i < 100; ++i)
            sim.yield();
        woken_after_wake_one = woken;
        sim.wake_all(&word);
    });
    ASSERT_TRUE(sim.run().ok);
    EXPECT_EQ(woken_after_wake_one, 1);
    EXPECT_EQ(woken, 3);
}

TEST(SimPlatform, WakeAllWakesEveryWaiterOfThatWordOnly) {
    SimPlatform sim(22, without_spurious_wakes());
    std::atomic<u32> word{0};
    std::atomic<u32> other{0};
    int arrived = 0;
    int woken = 0;
    bool other_waiter_woken = false;
    for (int t = 0; t < 3; ++t) {
        sim.spawn(ProcessId{1}, [&] {
            ++arrived;
            (void)sim.wait(&word, 0, Deadline::never());
            ++woken;
        });
    }
    sim.spawn(ProcessId{3}, [&] {
        ++arrived;
        (void)sim.wait(&other, 0, Deadline::at(1'000'000));
        other_waiter_woken = woken < 3;  // woken before its deadline, i.e. by mistake
    });
    sim.spawn(ProcessId{2}, [&] {
        while (arrived < 4)
            sim.yield();
        sim.wake_all(&word);
    });
    SimPlatform::RunResult r = sim.run();
    ASSERT_TRUE(r.ok) << r.failure;
    EXPECT_EQ(woken, 3);
    EXPECT_FALSE(other_waiter_woken);
    EXPECT_EQ(r.end_time_ns, 1'000'000u);
}

TEST(SimPlatform, WakingAWordNobodyWaitsOnIsHarmless) {
    SimPlatform sim(23, without_spurious_wakes());
    sim.spawn(ProcessId{1}, [&] {
        // Only the address is used as a key, never read: even an unmapped one is fine.
        auto* unmapped = reinterpret_cast<std::atomic<u32>*>(std::uintptr_t{0x40});
        sim.wake_one(unmapped);
        sim.wake_all(unmapped);
    });
    EXPECT_TRUE(sim.run().ok);
}

struct SetOnDestruction {
    bool* flag;
    ~SetOnDestruction() { *flag = true; }
};

TEST(SimPlatform, ADeadlockIsReportedAndTheBlockedTasksAreUnwound) {
    SimPlatform sim(31, without_spurious_wakes());
    std::atomic<u32> word{0};
    bool passed_the_wait = false;
    bool unwound = false;
    sim.spawn(ProcessId{7}, [&] {
        SetOnDestruction guard{&unwound};
        (void)sim.wait(&word, 0, Deadline::never());
        passed_the_wait = true;
    });
    sim.spawn(ProcessId{8}, [&] { sim.yield(); });
    SimPlatform::RunResult r = sim.run();
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(r.deadlock);
    EXPECT_NE(r.failure.find("deadlock"), std::string::npos) << r.failure;
    EXPECT_NE(r.failure.find("task 0 (pid 7)"), std::string::npos) << r.failure;
    EXPECT_EQ(r.failure.find("task 1"), std::string::npos) << r.failure;
    EXPECT_FALSE(passed_the_wait);
    EXPECT_TRUE(unwound);
}

TEST(SimPlatform, ADeadlockNamesEveryBlockedTask) {
    SimPlatform sim(32);
    std::atomic<u32> a{0};
    std::atomic<u32> b{0};
    sim.spawn(ProcessId{1}, [&] {
        while (a.load() == 0)
            (void)sim.wait(&a, 0, Deadline::never());
    });
    sim.spawn(ProcessId{2}, [&] {
        while (b.load() == 0)
            (void)sim.wait(&b, 0, Deadline::never());
    });
    SimPlatform::RunResult r = sim.run();
    EXPECT_TRUE(r.deadlock);
    EXPECT_NE(r.failure.find("task 0 (pid 1)"), std::string::npos) << r.failure;
    EXPECT_NE(r.failure.find("task 1 (pid 2)"), std::string::npos) << r.failure;
}

// A registry, its allocator and its sim, kept on the heap so that a test can set them
// aside after a deadlock (sim.hpp: the registry must not be touched again, not even
// destroyed).
struct CoreWorld {
    explicit CoreWorld(u64 seed) : sim(seed), registry(sim, allocator, 4) {}
    SimPlatform sim;
    HeapAllocator allocator;
    Registry registry;
};

void set_aside(std::unique_ptr<CoreWorld> world) {
    static auto* kept = new std::vector<std::unique_ptr<CoreWorld>>();
    kept->push_back(std::move(world));
}

TEST(SimPlatform, ADeadlockInsideTheCoreIsReportedAndItsTaskUnwound) {
    auto world = std::make_unique<CoreWorld>(34);
    Endpoint endpoint = *world->registry.create_endpoint(ProcessId{1}, 1);
    bool receive_returned = false;
    world->sim.spawn(ProcessId{5}, [&] {
        (void)endpoint.receive_sync();  // nobody sends, nobody closes
        receive_returned = true;
    });
    SimPlatform::RunResult r = world->sim.run();
    EXPECT_TRUE(r.deadlock);
    EXPECT_NE(r.failure.find("task 0 (pid 5)"), std::string::npos) << r.failure;
    EXPECT_FALSE(receive_returned);
    // The endpoint's receiver list still names the unwound receiver's parking slot.
    set_aside(std::move(world));
}

TEST(SimPlatform, ABlockedTaskWithADeadlineIsNotADeadlock) {
    SimPlatform sim(33);
    std::atomic<u32> word{0};
    sim.spawn(ProcessId{1}, [&] {
        while (sim.wait(&word, 0, Deadline::at(10'000)) != WaitResult::TimedOut) {
        }
    });
    SimPlatform::RunResult r = sim.run();
    EXPECT_TRUE(r.ok) << r.failure;
    EXPECT_FALSE(r.deadlock);
}

TEST(SimPlatform, NoSpuriousWakesAtRateZero) {
    SimPlatform sim(41, without_spurious_wakes());
    std::atomic<u32> word{0};
    int returns = 0;
    sim.spawn(ProcessId{1}, [&] {
        while (word.load() == 0) {
            (void)sim.wait(&word, 0, Deadline::never());
            ++returns;
        }
    });
    sim.spawn(ProcessId{2}, [&] {
        for (int i = 0; i < 5000; ++i)
            sim.yield();
        word.store(1);
        sim.wake_one(&word);
    });
    SimPlatform::RunResult r = sim.run();
    ASSERT_TRUE(r.ok) << r.failure;
    EXPECT_EQ(r.spurious_wakes, 0u);
    EXPECT_EQ(returns, 1);
}

TEST(SimPlatform, SpuriousWakesHappenAtTheConfiguredRate) {
    SimPlatform::Options options;
    options.spurious_wake_permille = 100;
    SimPlatform sim(42, options);
    std::atomic<u32> word{0};
    u64 returns = 0;
    u64 switches_while_blocked = 0;
    sim.spawn(ProcessId{1}, [&] {
        while (word.load() == 0) {
            (void)sim.wait(&word, 0, Deadline::never());
            ++returns;
        }
    });
    sim.spawn(ProcessId{2}, [&] {
        for (int i = 0; i < 20000; ++i) {
            sim.yield();
            ++switches_while_blocked;
        }
        word.store(1);
        sim.wake_one(&word);
    });
    SimPlatform::RunResult r = sim.run();
    ASSERT_TRUE(r.ok) << r.failure;
    // Every spurious wake made the waiter return once more (the last return is the real
    // wake, or the word already changed).
    EXPECT_EQ(r.spurious_wakes + 1, returns);
    // About 10% of the switch points at which the waiter was blocked; the waiter blocks
    // again right after each spurious wake, so the rate is a little under 10% of all.
    EXPECT_GT(r.spurious_wakes, r.switches * 6 / 100);
    EXPECT_LT(r.spurious_wakes, r.switches * 12 / 100);
}

TEST(SimPlatform, AThrowingTaskFailsTheRunWhileTheOthersFinish) {
    SimPlatform sim(51);
    bool other_finished = false;
    sim.spawn(ProcessId{1}, [&] {
        sim.yield();
        throw std::runtime_error("boom");
    });
    sim.spawn(ProcessId{2}, [&] {
        for (int i = 0; i < 10; ++i)
            sim.yield();
        other_finished = true;
    });
    SimPlatform::RunResult r = sim.run();
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.deadlock);
    EXPECT_NE(r.failure.find("task 0 (pid 1) threw: boom"), std::string::npos) << r.failure;
    EXPECT_TRUE(other_finished);
}

TEST(SimPlatform, OutsideATaskWaitNeverBlocks) {
    SimPlatform sim(61);
    std::atomic<u32> word{0};
    EXPECT_EQ(sim.wait(&word, 1, Deadline::never()), WaitResult::ValueChanged);
    EXPECT_EQ(sim.wait(&word, 0, Deadline::at(700)), WaitResult::TimedOut);
    EXPECT_EQ(sim.now_ns(), 700u);
    sim.wake_all(&word);
    sim.yield();
}

TEST(SimPlatform, RunWithoutTasksSucceeds) {
    SimPlatform sim(71);
    SimPlatform::RunResult r = sim.run();
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.switches, 0u);
}

TEST(SimPlatform, RunTwiceIsAnError) {
    SimPlatform sim(72);
    (void)sim.run();
    EXPECT_THROW((void)sim.run(), std::logic_error);
    EXPECT_THROW(sim.spawn(ProcessId{1}, [] {}), std::logic_error);
}

TEST(SimPlatform, SpawnFromInsideATaskIsAnError) {
    SimPlatform sim(73);
    bool threw = false;
    sim.spawn(ProcessId{1}, [&] {
        try {
            sim.spawn(ProcessId{2}, [] {});
        } catch (const std::logic_error&) {
            threw = true;
        }
    });
    ASSERT_TRUE(sim.run().ok);
    EXPECT_TRUE(threw);
}

}  // namespace
}  // namespace veridian::ipc
