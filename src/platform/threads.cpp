// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc platform: threads of one Linux process (private futexes).
#include "veridian/ipc/platform/threads.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "veridian/ipc/core/mutex.hpp"

namespace veridian::ipc {

namespace {
thread_local ProcessId t_current_process{};

long futex(std::atomic<u32>* word, int op, u32 value, const timespec* timeout, u32 bitset) {
    return syscall(SYS_futex, reinterpret_cast<u32*>(word), op, value, timeout, nullptr, bitset);
}
}  // namespace

ThreadsPlatform::ThreadsPlatform(u32 spin_iterations) : spin_iterations_(spin_iterations) {}

u32 ThreadsPlatform::default_spin_iterations() {
    // A wake of a sleeping thread on another CPU costs tens of microseconds on virtual
    // machines, a short spin far less; on one CPU the peer cannot run while we spin.
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) <= 1) return 0;
    return 4000;
}

// Wait protocol:
//   (1) spin up to spin_iterations_ re-reads of the word (only useful when the waker runs
//       on another CPU);
//   (2) FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC deadline: the kernel compares
//       *word with `expected` and sleeps atomically, so a wake that changed the word
//       before we slept cannot be lost.
WaitResult ThreadsPlatform::wait(std::atomic<u32>* word, u32 expected, Deadline deadline) {
    for (u32 i = 0; i < spin_iterations_; ++i) {
        if (word->load(std::memory_order_acquire) != expected) return WaitResult::ValueChanged;
        cpu_relax();
    }
    timespec ts{};
    const timespec* timeout = nullptr;
    if (!deadline.is_never()) {
        ts.tv_sec = static_cast<time_t>(deadline.ns() / 1'000'000'000u);
        ts.tv_nsec = static_cast<long>(deadline.ns() % 1'000'000'000u);
        timeout = &ts;
    }
    const long rc = futex(word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, timeout,
                          FUTEX_BITSET_MATCH_ANY);
    if (rc == 0) return WaitResult::Woken;
    if (errno == ETIMEDOUT) return WaitResult::TimedOut;
    if (errno == EAGAIN) return WaitResult::ValueChanged;
    return WaitResult::Woken;  // EINTR: spurious; the caller re-checks
}

void ThreadsPlatform::wake_one(std::atomic<u32>* word) {
    futex(word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, nullptr, 0);
}

void ThreadsPlatform::wake_all(std::atomic<u32>* word) {
    futex(word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, nullptr, 0);
}

u64 ThreadsPlatform::now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<u64>(ts.tv_sec) * 1'000'000'000u + static_cast<u64>(ts.tv_nsec);
}

ProcessId ThreadsPlatform::current_process() {
    if (t_current_process.value != 0) return t_current_process;
    return ProcessId{static_cast<u64>(getpid())};
}

void ThreadsPlatform::set_current_process(ProcessId pid) {
    t_current_process = pid;
}

void* HeapAllocator::allocate(usize bytes, usize align) {
    if (align < alignof(void*)) align = alignof(void*);
    void* p = nullptr;
    if (posix_memalign(&p, align, bytes == 0 ? 1 : bytes) != 0) return nullptr;
    return p;
}

void HeapAllocator::deallocate(void* p, usize, usize) {
    std::free(p);
}

}  // namespace veridian::ipc
