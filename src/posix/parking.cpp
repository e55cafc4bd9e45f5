// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: park() and the deadline mutex (see parking.hpp).
#include "posix/parking.hpp"

#include <chrono>

namespace veridian::ipc::posix::detail {

u64 sleep_slice_ns(SharedWords& words, Deadline deadline) {
    if (deadline.is_never()) return PARK_SLICE_NS;
    const u64 now = words.now_ns();
    if (now >= deadline.ns()) return 0;
    const u64 left = deadline.ns() - now;
    return left < PARK_SLICE_NS ? left : PARK_SLICE_NS;
}

void SpinBudget::succeeded() {
    const u32 grown = budget_ns_ < bound_ns_ / 2 ? budget_ns_ * 2 + 500 : bound_ns_;
    budget_ns_ = grown > bound_ns_ ? bound_ns_ : grown;
}

void SpinBudget::failed() {
    // A spin that ended in a sleep anyway was wasted: halve the next one (keep a small floor
    // so the budget can grow back when the peer becomes quick again).
    const u32 floor = bound_ns_ / 16;
    budget_ns_ = budget_ns_ / 2 > floor ? budget_ns_ / 2 : floor;
}

Result<void> park(SharedWords& words, Parking& role, SpinBudget& spin, Deadline deadline) {
    bool slept = false;
    for (;;) {
        // (1) look
        if (VIPC_TRY(role.ready())) return ok();
        // (2) check the connection
        VIPC_TRY(role.check(slept));
        // (3) deadline
        if (!deadline.is_never() && deadline.expired(words.now_ns())) return IpcError::Timeout;
        // (4) spin
        const u32 me = words.cpu_hint();
        if (std::atomic<u32>* mine = role.my_cpu();
            mine != nullptr && mine->load(std::memory_order_relaxed) != me) {
            mine->store(me, std::memory_order_relaxed);  // only when it changed: the peer reads it
        }
        bool failed = false;
        const bool spun = spin.spin(
            words,
            [&] {
                const auto r = role.ready();
                failed = !r;
                return !r || *r;
            },
            role.peer_cpu(), me);
        if (spun) {
            slept = false;
            continue;  // (1) gives the answer, or the error
        }
        (void)failed;
        // (5) announce
        role.flag().store(1, std::memory_order_seq_cst);
        // (6) heavy barrier, read the word, re-check: the data, and the connection (a closer
        // stores `closed` before it changes the word: a w read after that change comes with
        // a check that sees the close)
        words.heavy_barrier();
        const u32 w = role.word().load(std::memory_order_seq_cst);
        const std::atomic<u32>* local = role.local_word();
        const u32 e = local != nullptr ? local->load(std::memory_order_seq_cst) : 0;
        const auto again = role.ready();
        if (!again || *again || !role.check(false)) {
            role.flag().store(0, std::memory_order_relaxed);
            slept = false;
            continue;
        }
        // (7) sleep one slice at most, on the word and the local word
        const u64 slice = sleep_slice_ns(words, deadline);
        if (slice > 0) {
            const u64 now = words.now_ns();
            (void)words.wait_either(&role.word(), w, local, e, Deadline::at(now + slice));
        }
        // (8) unannounce
        role.flag().store(0, std::memory_order_relaxed);
        slept = true;
    }
}

bool DeadlineMutex::lock_slow(Deadline deadline) {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
        // (2) take it if free, and mark that a waiter may sleep
        if (state_.exchange(2, std::memory_order_acquire) == 0) return true;
        // (3) sleep one slice at most
        const u64 slice = sleep_slice_ns(platform::ProcessSharedWords::instance(), deadline);
        if (slice == 0) return false;
        cv_.wait_for(lock, std::chrono::nanoseconds(slice));
    }
}

Deadline DeadlineMutex::nonblocking_deadline() {
    return Deadline::at(platform::monotonic_now_ns() + NONBLOCKING_LOCK_WAIT_NS);
}

void DeadlineMutex::wake_waiters() {
    // (b) under m_: a waiter between its (2) and its sleep holds m_, so it is asleep by now
    std::lock_guard<std::mutex> lock(m_);
    cv_.notify_all();
}

}  // namespace veridian::ipc::posix::detail
