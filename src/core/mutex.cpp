// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc core: the slow path of Mutex::lock (the protocol is in mutex.hpp).
#include "veridian/ipc/core/mutex.hpp"

namespace veridian::ipc {

namespace {
// Short: the critical sections this lock guards are a few dozen instructions, so a holder
// that is running releases it within this many pauses; a holder that is not running (same
// CPU, preempted) would not, and then sleeping is right.
constexpr int kSpinAttempts = 64;
}  // namespace

void Mutex::lock_slow() {
    // (2) Spin briefly, retrying the uncontended CAS.
    for (int i = 0; i < kSpinAttempts; ++i) {
        cpu_relax();
        u32 expected = 0;
        if (state_.load(std::memory_order_relaxed) == 0 &&
            state_.compare_exchange_weak(expected, 1, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
            return;
        }
    }
    // (3) Announce a waiter and sleep until the holder's unlock wakes us.
    while (state_.exchange(2, std::memory_order_acquire) != 0) {
        platform_->wait(&state_, 2, Deadline::never());
    }
}

}  // namespace veridian::ipc
