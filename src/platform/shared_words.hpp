// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc platform, internal: waiting on words that live in memory shared between
// processes.
//
// Layer: platform (hosted). Not installed; used by the posix runtime (src/posix) and by the
// simulator's ring scenarios (tests/platform).
//
// SharedWords is Platform-shaped (core/platform.hpp): wait / wake_all / now_ns, plus what a
// protocol over shared pages needs besides:
//   heavy_barrier()  the slow side of an asymmetric fence: after it returns, every store that
//                    another thread of a participating process made before its last
//                    ordinary instruction is visible here, and every load that thread makes
//                    afterwards sees what this thread stored before the call. With it, the
//                    fast side (a producer publishing a record, a consumer publishing its
//                    head) needs no fence and no atomic read-modify-write per message; the
//                    side about to sleep, which is slow anyway, pays (Linux:
//                    membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)).
//   publish_order()  how a fast side must store the word it publishes: release when a heavy
//                    barrier is available, seq_cst otherwise (then the classic Dekker pairing
//                    with the sleeper's seq_cst announce holds by itself).
//   cpu_hint() / yield() / relax()  the spin policy's needs (see posix/parking.hpp).
//
// Two implementations: ProcessSharedWords (shared futexes, not FUTEX_PRIVATE_FLAG; the same
// CLOCK_MONOTONIC as ThreadsPlatform) and, in tests, one over SimPlatform (every call a
// switch point, words keyed by address, so two simulated processes share a page by sharing
// a buffer).
#pragma once

#include <atomic>

#include "veridian/ipc/core/platform.hpp"
#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc::platform {

class SharedWords {
public:
    // Blocks while *word == expected, until woken or the deadline; may return spuriously.
    // Only reads the word: works on a read-only mapping.
    virtual WaitResult wait(const std::atomic<u32>* word, u32 expected, Deadline deadline) = 0;
    virtual void wake_all(const std::atomic<u32>* word) = 0;
    // wait() on `word` and, at once, on a process-local word `local` while it equals
    // `local_expected` (`local` may be nullptr: then just wait()). Whoever ends a wait from
    // this process without being able to write `word` (it is in a page mapped read-only here)
    // bumps `local` and wakes it. The default, for a platform that cannot wait on two words,
    // looks at `local` once before sleeping on `word` alone: the sleep's bound (a slice)
    // then bounds a wake that comes between the look and the sleep.
    virtual WaitResult wait_either(const std::atomic<u32>* word, u32 expected,
                                   const std::atomic<u32>* local, u32 local_expected,
                                   Deadline deadline) {
        if (local != nullptr && local->load(std::memory_order_seq_cst) != local_expected) {
            return WaitResult::ValueChanged;
        }
        return wait(word, expected, deadline);
    }
    virtual u64 now_ns() = 0;
    virtual void heavy_barrier() = 0;
    // How a fast side stores what it publishes: release with a heavy barrier, else seq_cst.
    std::memory_order publish_order() const {
        return heavy_barrier_ ? std::memory_order_release : std::memory_order_seq_cst;
    }
    // The store itself, with a constant order in each branch: an atomic store whose order is
    // known only at run time compiles to the seq_cst form (a locked exchange, which waits for
    // the line the peer polls), so store(v, publish_order()) would cost a full fence per
    // message even where the heavy barrier makes it needless.
    void publish(std::atomic<u32>& word, u32 value) const {
        if (VIPC_LIKELY(heavy_barrier_)) {
            word.store(value, std::memory_order_release);
        } else {
            word.store(value, std::memory_order_seq_cst);
        }
    }
    // A publisher's load of the other side's announce flag (posix/parking.hpp, step (b)):
    // relaxed is enough after a publish when a heavy barrier exists, seq_cst otherwise.
    bool announced(const std::atomic<u32>& flag) const {
        if (VIPC_LIKELY(heavy_barrier_)) return flag.load(std::memory_order_relaxed) != 0;
        return flag.load(std::memory_order_seq_cst) != 0;
    }
    // The calling thread's CPU + 1 (0 = unknown), and whether this is a one-CPU machine.
    virtual u32 cpu_hint() = 0;
    virtual bool single_cpu() = 0;
    virtual void yield() = 0;
    virtual void relax() = 0;

protected:
    explicit SharedWords(bool heavy_barrier) : heavy_barrier_(heavy_barrier) {}
    ~SharedWords() = default;
    bool heavy_barrier_;  // fixed at construction
};

// The real one: Linux futexes on MAP_SHARED pages, membarrier, CLOCK_MONOTONIC.
class ProcessSharedWords final : public SharedWords {
public:
    // The process-wide instance (it registers the process for expedited membarriers once).
    static ProcessSharedWords& instance();

    WaitResult wait(const std::atomic<u32>* word, u32 expected, Deadline deadline) override;
    // Both words at once with futex_waitv (Linux 5.16); without it, as the default.
    WaitResult wait_either(const std::atomic<u32>* word, u32 expected,
                           const std::atomic<u32>* local, u32 local_expected,
                           Deadline deadline) override;
    void wake_all(const std::atomic<u32>* word) override;
    u64 now_ns() override;
    void heavy_barrier() override;
    u32 cpu_hint() override;
    bool single_cpu() override;
    void yield() override;
    void relax() override;

    bool has_heavy_barrier() const { return heavy_barrier_; }

private:
    ProcessSharedWords();
    bool single_cpu_ = false;
    std::atomic<bool> have_waitv_{true};
};

// CLOCK_MONOTONIC in nanoseconds: the one clock of both runtimes (ThreadsPlatform::now_ns
// and posix::now_ns read it through this).
u64 monotonic_now_ns();

// The one futex wrapper (shared: not FUTEX_PRIVATE_FLAG; `private_word` adds it). The
// deadline is absolute on CLOCK_MONOTONIC.
WaitResult futex_wait(const std::atomic<u32>* word, u32 expected, Deadline deadline,
                      bool private_word);
void futex_wake(const std::atomic<u32>* word, int count, bool private_word);

// futex_waitv (Linux >= 5.16) on up to FUTEX_WAIT_ANY_MAX words while each equals its value
// (FUTEX_32; all shared, except `private_index`: that one word is process-private, -1:
// none), until the absolute CLOCK_MONOTONIC time until_ns. Returns the index of the word
// woken, -1 when a value differed at once, on timeout or a signal, -2 when the kernel has no
// futex_waitv (then wait on one word at a time).
inline constexpr u32 FUTEX_WAIT_ANY_MAX = 128;
long futex_wait_any(const std::atomic<u32>* const* words, const u32* values, u32 count,
                    long private_index, u64 until_ns);

}  // namespace veridian::ipc::platform
