// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc platform: shared-word waiting on Linux (see shared_words.hpp).
#include "platform/shared_words.hpp"

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "veridian/ipc/core/mutex.hpp"

namespace veridian::ipc::platform {

u64 monotonic_now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<u64>(ts.tv_sec) * 1'000'000'000u + static_cast<u64>(ts.tv_nsec);
}

WaitResult futex_wait(const std::atomic<u32>* word, u32 expected, Deadline deadline,
                      bool private_word) {
    timespec ts{};
    const timespec* timeout = nullptr;
    if (!deadline.is_never()) {
        ts.tv_sec = static_cast<time_t>(deadline.ns() / 1'000'000'000u);
        ts.tv_nsec = static_cast<long>(deadline.ns() % 1'000'000'000u);
        timeout = &ts;
    }
    const int op = FUTEX_WAIT_BITSET | (private_word ? FUTEX_PRIVATE_FLAG : 0);
    // FUTEX_WAIT only reads the word, so a read-only mapping is enough.
    const long rc =
        syscall(SYS_futex, word, op, expected, timeout, nullptr, FUTEX_BITSET_MATCH_ANY);
    if (rc == 0) return WaitResult::Woken;
    if (errno == ETIMEDOUT) return WaitResult::TimedOut;
    if (errno == EAGAIN) return WaitResult::ValueChanged;
    return WaitResult::Woken;  // EINTR: spurious, the caller re-checks
}

void futex_wake(const std::atomic<u32>* word, int count, bool private_word) {
    const int op = FUTEX_WAKE | (private_word ? FUTEX_PRIVATE_FLAG : 0);
    syscall(SYS_futex, word, op, count, nullptr, nullptr, 0);
}

ProcessSharedWords& ProcessSharedWords::instance() {
    static ProcessSharedWords* words = new ProcessSharedWords();  // never destroyed
    return *words;
}

ProcessSharedWords::ProcessSharedWords() : SharedWords(false) {
    // Register for expedited global membarriers: then a peer's heavy_barrier() interrupts
    // our threads (only those running) instead of waiting for a grace period. Both the
    // registration and the command must work, else the fast sides fence for themselves.
    const long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0 &&
        (cmds & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0) {
        heavy_barrier_ =
            syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
    }
    single_cpu_ = sysconf(_SC_NPROCESSORS_ONLN) <= 1;
}

WaitResult ProcessSharedWords::wait(const std::atomic<u32>* word, u32 expected, Deadline deadline) {
    return futex_wait(word, expected, deadline, false);
}

WaitResult ProcessSharedWords::wait_either(const std::atomic<u32>* word, u32 expected,
                                           const std::atomic<u32>* local, u32 local_expected,
                                           Deadline deadline) {
    if (local == nullptr || !have_waitv_.load(std::memory_order_relaxed)) {
        return SharedWords::wait_either(word, expected, local, local_expected, deadline);
    }
    // Both shared futexes (no FUTEX_PRIVATE_FLAG): their wakers use the shared operation.
    futex_waitv waiters[2] = {
        {expected, reinterpret_cast<u64>(word), FUTEX_32, 0},
        {local_expected, reinterpret_cast<u64>(local), FUTEX_32, 0},
    };
    timespec ts{};
    const timespec* timeout = nullptr;
    if (!deadline.is_never()) {
        ts.tv_sec = static_cast<time_t>(deadline.ns() / 1'000'000'000u);
        ts.tv_nsec = static_cast<long>(deadline.ns() % 1'000'000'000u);
        timeout = &ts;
    }
    const long rc = syscall(SYS_futex_waitv, waiters, 2, 0, timeout, CLOCK_MONOTONIC);
    if (rc >= 0) return WaitResult::Woken;
    if (errno == ENOSYS) {
        have_waitv_.store(false, std::memory_order_relaxed);  // an old kernel
        return SharedWords::wait_either(word, expected, local, local_expected, deadline);
    }
    if (errno == ETIMEDOUT) return WaitResult::TimedOut;
    if (errno == EAGAIN) return WaitResult::ValueChanged;
    return WaitResult::Woken;  // EINTR: spurious, the caller re-checks
}

void ProcessSharedWords::wake_all(const std::atomic<u32>* word) {
    futex_wake(word, INT_MAX, false);
}

u64 ProcessSharedWords::now_ns() {
    return monotonic_now_ns();
}

void ProcessSharedWords::heavy_barrier() {
    if (heavy_barrier_) {
        syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
    } else {
        // No membarrier: the fast sides store seq_cst themselves (publish_order()), so a
        // full fence here completes the Dekker pairing (a seq_cst read-modify-write, which
        // ThreadSanitizer understands, where a bare fence it does not).
        static std::atomic<u32> fence_word{0};
        fence_word.fetch_add(0, std::memory_order_seq_cst);
    }
}

u32 ProcessSharedWords::cpu_hint() {
    const int cpu = sched_getcpu();
    return cpu < 0 ? 0 : static_cast<u32>(cpu) + 1;
}

bool ProcessSharedWords::single_cpu() {
    return single_cpu_;
}

void ProcessSharedWords::yield() {
    sched_yield();
}

void ProcessSharedWords::relax() {
    cpu_relax();
}

long futex_wait_any(const std::atomic<u32>* const* words, const u32* values, u32 count,
                    long private_index, u64 until_ns) {
    if (count > FUTEX_WAIT_ANY_MAX) count = FUTEX_WAIT_ANY_MAX;
    futex_waitv waiters[FUTEX_WAIT_ANY_MAX] = {};
    for (u32 i = 0; i < count; ++i) {
        waiters[i].val = values[i];
        waiters[i].uaddr = reinterpret_cast<u64>(words[i]);
        waiters[i].flags =
            FUTEX_32 | (static_cast<long>(i) == private_index ? FUTEX_PRIVATE_FLAG : 0);
    }
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(until_ns / 1'000'000'000u);
    ts.tv_nsec = static_cast<long>(until_ns % 1'000'000'000u);
    const long r = syscall(SYS_futex_waitv, waiters, count, 0, &ts, CLOCK_MONOTONIC);
    if (r < 0 && errno == ENOSYS) return -2;
    return r < 0 ? -1 : r;
}

}  // namespace veridian::ipc::platform
