// SPDX-License-Identifier: MIT OR Apache-2.0
// Deadlines and the core's futex-shaped Mutex, as the threads platform runs them.
#include <atomic>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace veridian::ipc {
namespace {

TEST(Deadline, NeverNeverExpires) {
    EXPECT_TRUE(Deadline::never().is_never());
    EXPECT_FALSE(Deadline::never().expired(0));
    EXPECT_FALSE(Deadline::never().expired(~u64{0}));
}

TEST(Deadline, PastHasAlreadyExpired) {
    EXPECT_FALSE(Deadline::past().is_never());
    EXPECT_TRUE(Deadline::past().expired(0));
}

TEST(Deadline, AtExpiresFromItsInstantOn) {
    const Deadline d = Deadline::at(1000);
    EXPECT_EQ(d.ns(), 1000u);
    EXPECT_FALSE(d.expired(999));
    EXPECT_TRUE(d.expired(1000));
    EXPECT_TRUE(d.expired(1001));
}

TEST(Deadline, AfterNsCountsFromNowAndSaturatesToNever) {
    ThreadsPlatform platform;
    const u64 before = platform.now_ns();
    const Deadline d = platform.after_ns(5'000'000'000ull);
    EXPECT_FALSE(d.is_never());
    EXPECT_GE(d.ns(), before + 5'000'000'000ull);
    EXPECT_FALSE(d.expired(before));
    EXPECT_TRUE(platform.after_ns(~u64{0}).is_never());
    EXPECT_TRUE(platform.after_ns(~u64{0} - 1).is_never());
}

TEST(Deadline, ClockIsMonotonic) {
    ThreadsPlatform platform;
    u64 previous = platform.now_ns();
    for (int i = 0; i < 1000; ++i) {
        const u64 now = platform.now_ns();
        EXPECT_GE(now, previous);
        previous = now;
    }
}

TEST(CoreMutex, ProvidesMutualExclusionBetweenThreads) {
    constexpr int kThreads = 4;
    constexpr int kIncrements = 20'000;
    ThreadsPlatform platform;
    Mutex mutex(platform);
    u64 counter = 0;  // plain: only the mutex protects it
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&] {
                for (int i = 0; i < kIncrements; ++i) {
                    MutexLock lock(mutex);
                    counter = counter + 1;
                }
            });
        }
    }
    EXPECT_EQ(counter, u64{kThreads} * kIncrements);
}

TEST(CoreMutex, UniqueLockCanReleaseAndRetakeWithinItsScope) {
    ThreadsPlatform platform;
    Mutex mutex(platform);
    u64 shared = 0;
    std::atomic<bool> other_ran{false};
    {
        UniqueLock lock(mutex);
        shared = 1;
        lock.unlock();
        std::jthread other([&] {
            MutexLock inner(mutex);  // would never get it if unlock() did not release
            shared = 2;
            other_ran = true;
        });
        other.join();
        lock.lock();
        EXPECT_EQ(shared, 2u);
    }
    EXPECT_TRUE(other_ran.load());
    MutexLock again(mutex);  // released by ~UniqueLock
}

}  // namespace
}  // namespace veridian::ipc
