// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc core: the platform interface, deadlines and the allocator interface.
//
// The core talks to "the scheduler" only through Platform, which is futex-shaped:
//
//   wait(word, expected, deadline)  block while *word == expected, until woken or the
//                                   deadline; may return spuriously (callers loop)
//   wake_one(word) / wake_all(word) wake waiters blocked on that word
//   now_ns()                        a monotonic clock, in nanoseconds
//   current_process()               the ProcessId of the caller
//
// Compare-and-block cannot lose a wakeup: a waker changes the word *before* it wakes, so a
// waiter either sees the new value in wait() and returns at once, or is already asleep and
// is woken. Linux futexes give this across threads and processes; a kernel gives it with a
// wait queue keyed by address (see kernel/); the sim platform gives it deterministically.
//
// wake_one/wake_all may be called on a word whose owner has already returned and reused the
// memory: implementations must only use the address as a key and never dereference it.
//
// Allocator: the core allocates only through an Allocator it is given (queue storage and
// the registry's table), never from a global heap.
#pragma once

#include <atomic>

#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc {

// An absolute point on the platform's monotonic clock, in nanoseconds. Every blocking
// operation takes one; Deadline::never() (the default) waits forever.
class Deadline {
public:
    static constexpr Deadline never() { return Deadline(~u64{0}); }
    static constexpr Deadline at(u64 ns) { return Deadline(ns); }
    // A deadline that has already passed: a blocking call made with it does not block.
    static constexpr Deadline past() { return Deadline(0); }

    constexpr u64 ns() const { return ns_; }
    constexpr bool is_never() const { return ns_ == ~u64{0}; }
    constexpr bool expired(u64 now_ns) const { return !is_never() && now_ns >= ns_; }

    friend constexpr bool operator==(Deadline, Deadline) = default;

private:
    constexpr explicit Deadline(u64 ns) : ns_(ns) {}
    u64 ns_;
};

enum class WaitResult : u8 {
    Woken,         // woken by wake_one/wake_all, or spuriously: re-check the word
    ValueChanged,  // *word != expected on entry
    TimedOut,      // the deadline passed
};

class Platform {
public:
    virtual WaitResult wait(std::atomic<u32>* word, u32 expected, Deadline deadline) = 0;
    virtual void wake_one(std::atomic<u32>* word) = 0;
    virtual void wake_all(std::atomic<u32>* word) = 0;
    virtual u64 now_ns() = 0;
    virtual ProcessId current_process() = 0;

    // Called by the core right after it takes one of its locks: a point where a deterministic
    // test scheduler (the sim) may switch to another task, so that tasks also interleave
    // inside critical sections and contend for the lock. Real platforms leave it empty.
    virtual void preemption_point() {}

    // A deadline `ns` nanoseconds from now (saturating).
    Deadline after_ns(u64 ns) {
        const u64 now = now_ns();
        return ns >= ~u64{0} - now ? Deadline::never() : Deadline::at(now + ns);
    }

protected:
    ~Platform() = default;
};

class Allocator {
public:
    // Returns nullptr when out of memory. `align` is a power of two.
    virtual void* allocate(usize bytes, usize align) = 0;
    virtual void deallocate(void* p, usize bytes, usize align) = 0;

protected:
    ~Allocator() = default;
};

}  // namespace veridian::ipc
