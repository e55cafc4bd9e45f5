// SPDX-License-Identifier: MIT OR Apache-2.0
// Shared helpers of the core's tests: a registry on the threads platform, readable checks of
// Result outcomes, bounded polling of endpoint stats and allocators that fail on purpose.
//
// Blocking tests follow two rules: every blocking call has a deadline (kBound), so a bug
// fails a test instead of hanging it; and a test that needs a thread to be blocked before it
// acts polls EndpointStats (waiting_receivers, waiting_senders, waiting_callers) until it
// is, never sleeps and hopes.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <ostream>
#include <string>
#include <thread>

#include "veridian/ipc.hpp"

namespace veridian::ipc {

// Readable gtest output for the core's value types.
inline void PrintTo(IpcError e, std::ostream* os) {
    *os << error_name(e);
}
inline void PrintTo(ProcessId p, std::ostream* os) {
    *os << "ProcessId{" << p.value << "}";
}

}  // namespace veridian::ipc

namespace veridian::ipc::test {

inline constexpr u64 kMillisecond = 1'000'000;
// The bound on every wait of a test: long enough never to be reached by a correct core on a
// loaded machine, short enough that a lost wakeup fails the test instead of hanging it.
inline constexpr u64 kBound = 20'000 * kMillisecond;

inline constexpr ProcessId kOwner{1};
inline constexpr ProcessId kOther{2};

// "ok" or the error's name, so that a mismatch prints both sides readably.
template <typename T>
std::string outcome(const Result<T>& r) {
    return r.has_value() ? std::string("ok") : std::string(error_name(r.error()));
}
inline std::string name_of(IpcError e) {
    return error_name(e);
}

#define EXPECT_IPC_OK(expr) EXPECT_EQ(::veridian::ipc::test::outcome(expr), "ok")
#define ASSERT_IPC_OK(expr) ASSERT_EQ(::veridian::ipc::test::outcome(expr), "ok")
#define EXPECT_IPC_ERROR(expr, err) \
    EXPECT_EQ(::veridian::ipc::test::outcome(expr), ::veridian::ipc::test::name_of(err))
#define ASSERT_IPC_ERROR(expr, err) \
    ASSERT_EQ(::veridian::ipc::test::outcome(expr), ::veridian::ipc::test::name_of(err))

// A small message whose first data word is `value`.
inline Message tagged(u64 value, u32 opcode = 1) {
    Message m = Message::small(0, opcode);
    m.small_message().data[0] = value;
    return m;
}
inline u64 tag_of(const Message& m) {
    return m.small_message().data[0];
}

// An allocator that counts what is outstanding and can be told to fail: `fail_after` is the
// number of allocations that succeed before every further one returns nullptr (-1: never
// fail).
class TestAllocator final : public Allocator {
public:
    explicit TestAllocator(long fail_after = -1) : fail_after_(fail_after) {}

    void* allocate(usize bytes, usize align) override {
        if (fail_after_ >= 0 && allocations_ >= fail_after_) {
            ++refused_;
            return nullptr;
        }
        void* p = heap_.allocate(bytes, align);
        if (p != nullptr) {
            ++allocations_;
            ++outstanding_;
        }
        return p;
    }
    void deallocate(void* p, usize bytes, usize align) override {
        if (p == nullptr) return;
        --outstanding_;
        heap_.deallocate(p, bytes, align);
    }

    // From now on, `n` more allocations succeed and every further one fails.
    void fail_after(long n) { fail_after_ = n + allocations_; }
    void never_fail() { fail_after_ = -1; }
    long allocations() const { return allocations_; }
    long outstanding() const { return outstanding_; }
    long refused() const { return refused_; }

private:
    HeapAllocator heap_;
    long fail_after_;
    long allocations_ = 0;
    long outstanding_ = 0;
    long refused_ = 0;
};

// A registry on the threads platform, with helpers for endpoints and their stats.
class CoreTest : public ::testing::Test {
protected:
    Deadline bound() { return platform.after_ns(kBound); }

    Endpoint make_endpoint(u32 capacity = MAX_CHANNEL_QUEUE_SIZE, ProcessId owner = kOwner) {
        Result<Endpoint> e = registry.create_endpoint(owner, capacity);
        EXPECT_IPC_OK(e);
        return e ? *e : Endpoint();
    }

    // The capability space of `holder` (created on first use).
    CapabilitySpace& space_of(ProcessId holder) {
        Result<CapabilitySpace*> s = registry.space(holder);
        EXPECT_IPC_OK(s);
        return **s;
    }
    CapabilitySpace& owner_space() { return space_of(kOwner); }

    // A new entry for `e`'s endpoint in `to`'s space, with `rights` (a Copy transfer).
    Endpoint give(const Endpoint& e, ProcessId to, u16 rights, Badge badge = 0) {
        Result<Endpoint> got = e.transfer(to, TransferMode::Copy, rights, badge);
        EXPECT_IPC_OK(got);
        return got ? *got : Endpoint();
    }

    static EndpointStats stats_of(const Endpoint& e) {
        Result<EndpointStats> s = e.stats();
        EXPECT_IPC_OK(s);
        return s ? *s : EndpointStats{};
    }

    // Polls the endpoint's stats until `pred` holds; false if it still does not at kBound.
    bool wait_for(const Endpoint& e, const std::function<bool(const EndpointStats&)>& pred) {
        const Deadline until = bound();
        while (!until.expired(platform.now_ns())) {
            Result<EndpointStats> s = e.stats();
            if (s && pred(*s)) return true;
            std::this_thread::yield();
        }
        return false;
    }
    bool wait_for_receivers(const Endpoint& e, u32 n) {
        return wait_for(e, [n](const EndpointStats& s) { return s.waiting_receivers == n; });
    }
    bool wait_for_senders(const Endpoint& e, u32 n) {
        return wait_for(e, [n](const EndpointStats& s) { return s.waiting_senders == n; });
    }
    bool wait_for_callers(const Endpoint& e, u32 n) {
        return wait_for(e, [n](const EndpointStats& s) { return s.waiting_callers == n; });
    }

    ThreadsPlatform platform;
    HeapAllocator allocator;
    Registry registry{platform, allocator};
};

}  // namespace veridian::ipc::test
