// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc core: a mutex built on the platform's futex-shaped wait/wake.
//
// One lock per endpoint, taken with a scoped MutexLock. It works wherever the Platform
// works: Linux threads (futex), the kernel (task wait queue), the sim (a switch point).
// Nothing ever blocks on anything else while holding it.
//
// Protocol (the classic three-state futex mutex):
//   state 0 = unlocked, 1 = locked, 2 = locked and someone may be waiting.
//   lock:   (1) CAS 0->1 succeeds: done.
//           (2) otherwise spin briefly retrying (1).
//           (3) exchange(2); if the old value was 0 we own it (with state 2, which at worst
//               causes one unneeded wake). Else wait(state, 2) and go back to (3).
//   unlock: exchange(0); if the old value was 2, wake one waiter.
#pragma once

#include <atomic>

#include "veridian/ipc/core/platform.hpp"
#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc {

class VIPC_CAPABILITY("mutex") Mutex {
public:
    explicit Mutex(Platform& platform) : platform_(&platform) {}
    Mutex(const Mutex&) = delete;
    Mutex& operator=(const Mutex&) = delete;

    void lock() VIPC_ACQUIRE() {
        u32 expected = 0;
        if (VIPC_UNLIKELY(!state_.compare_exchange_strong(
                expected, 1, std::memory_order_acquire, std::memory_order_relaxed))) {
            lock_slow();
        }
        platform_->preemption_point();
    }

    void unlock() VIPC_RELEASE() {
        if (VIPC_UNLIKELY(state_.exchange(0, std::memory_order_release) == 2)) {
            platform_->wake_one(&state_);
        }
    }

    Platform& platform() const { return *platform_; }

private:
    void lock_slow();

    Platform* platform_;
    std::atomic<u32> state_{0};
};

class VIPC_SCOPED_CAPABILITY MutexLock {
public:
    explicit MutexLock(Mutex& m) VIPC_ACQUIRE(m) : m_(m) { m_.lock(); }
    ~MutexLock() VIPC_RELEASE() { m_.unlock(); }
    MutexLock(const MutexLock&) = delete;
    MutexLock& operator=(const MutexLock&) = delete;

private:
    Mutex& m_;
};

// A lock that can be released and taken again before its scope ends (blocking operations
// drop the endpoint lock while they wait).
class VIPC_SCOPED_CAPABILITY UniqueLock {
public:
    explicit UniqueLock(Mutex& m) VIPC_ACQUIRE(m) : m_(m) { m_.lock(); }
    ~UniqueLock() VIPC_RELEASE() {
        if (owns_) m_.unlock();
    }
    UniqueLock(const UniqueLock&) = delete;
    UniqueLock& operator=(const UniqueLock&) = delete;

    void lock() VIPC_ACQUIRE() {
        m_.lock();
        owns_ = true;
    }
    void unlock() VIPC_RELEASE() {
        owns_ = false;
        m_.unlock();
    }

private:
    Mutex& m_;
    bool owns_ = true;
};

// A hint to the processor that the caller is spinning.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

}  // namespace veridian::ipc
