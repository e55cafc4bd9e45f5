// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime, internal: the one way a party waits on a shared word.
//
// Layer: posix (hosted). Not installed. Built on platform::SharedWords (one clock, one futex
// wrapper, one heavy barrier), so the simulator runs the same code (tests/platform).
//
// park() holds the announce / re-check / sleep protocol, written once. Every waiting role
// of the runtime is a Parking: a consumer waiting for a record, a producer waiting for ring
// space or for a loan chunk to come back, the server's receive waiting on its doorbell.
//
//   (1) look: ready() → done (an error from ready() is returned as is)
//   (2) check the connection (closed, dead, broken) → its error; after a sleep also the
//       costlier checks (the socket)
//   (3) deadline passed → Timeout
//   (4) spin (bounded, adaptive; hand the CPU over with yield() instead when the peer was
//       last seen on our CPU) polling ready() → back to (1)
//   (5) announce: store the role's flag = 1 (seq_cst)
//   (6) heavy_barrier(), then read the futex word w and the role's local word e (if any),
//       then ready() and check() again: ready or failing → unannounce, back to (1). (A closer
//       stores its `closed` word before it changes the futex word: if w already holds the
//       change, check() sees the close. One that cannot write the futex word, because it
//       is in a page the peer writes and we map read-only — our monitor noticing the peer's
//       death, our own close() — sets what check() reads, then bumps the local word and
//       wakes it: if e already holds the bump, check() sees it.)
//   (7) sleep on the word while it equals w and on the local word while it equals e
//       (SharedWords::wait_either: futex_waitv), one slice at most (PEER_CHECK_INTERVAL_MS)
//       or until the deadline
//   (8) unannounce: the flag = 0; back to (1) with "slept"
//
// The other side of each role (a publisher: a producer after a record, a consumer after
// moving its head, a client after a record for a sleeping server) does, paired with (5)/(6):
//   (a) store what it publishes with words.publish_order()
//   (b) load the flag (relaxed is enough when a heavy barrier exists, seq_cst otherwise)
//   (c) if set: store a new value into the futex word, then wake_all(word)
// SYNC POINT: (5)+(6) against (a)+(b). With a heavy barrier: either the barrier in (6) ran
// after (a) on the publisher's CPU (then (6) sees what was published), or before it (then
// (b), which comes after, sees the flag of (5)). Without one, (5)/(6) and (a)/(b) are both
// seq_cst: one of the two loads sees the other side's store. Either way nobody sleeps past
// a publish; and the word changes before the wake, so a wake between (6) and (7) is not
// lost either (the futex compares w).
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "platform/shared_words.hpp"
#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/mutex.hpp"
#include "veridian/ipc/core/platform.hpp"
#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc::posix::detail {

using platform::SharedWords;

// Longest single sleep of park() (also how late a dead peer is noticed if a wake is lost).
inline constexpr u64 PARK_SLICE_NS = 20'000'000;

// The longest single sleep: one slice, or less when the deadline is nearer. 0 = expired.
u64 sleep_slice_ns(SharedWords& words, Deadline deadline);
// The same on the process's clock (for waits on sockets).
inline u64 sleep_slice_ns(Deadline deadline) {
    return sleep_slice_ns(platform::ProcessSharedWords::instance(), deadline);
}

// Bounded adaptive spin before a sleep. One per waiting role (it carries the adaptive
// budget); not thread-safe.
class SpinBudget {
public:
    explicit SpinBudget(u32 bound_ns = 0) : bound_ns_(bound_ns), budget_ns_(bound_ns) {}
    // Polls ready() until it returns true (→ true) or the budget is used (→ false).
    // peer_cpu_hint is the peer's published CPU (+1, 0 = unknown): when it equals ours the
    // peer cannot run while we spin, so we hand the CPU over with yield() instead.
    template <typename Ready>
    bool spin(SharedWords& words, Ready&& ready, u32 peer_cpu_hint, u32 my_cpu_hint);

private:
    void succeeded();
    void failed();

    u32 bound_ns_;
    u32 budget_ns_;
};

template <typename Ready>
bool SpinBudget::spin(SharedWords& words, Ready&& ready, u32 peer_cpu_hint, u32 my_cpu_hint) {
    if (bound_ns_ == 0) return false;
    if (words.single_cpu() || (peer_cpu_hint != 0 && peer_cpu_hint == my_cpu_hint)) {
        // Same CPU: hand the CPU over; at least a few hand-offs, so that other runnable
        // processes on this CPU, which also get turns, do not end it before the peer had one.
        u64 start = 0;
        for (u32 i = 1;; ++i) {
            words.yield();
            if (ready()) {
                succeeded();
                return true;
            }
            if (i == 4) start = words.now_ns();
            if (i > 4 && words.now_ns() - start >= budget_ns_) break;
        }
        failed();
        return false;
    }
    if (budget_ns_ == 0) return false;
    u64 start = 0;  // read after the first 16 polls: a short wait needs no clock
    for (u32 i = 1;; ++i) {
        if (ready()) {
            succeeded();
            return true;
        }
        words.relax();
        if ((i & 15) == 0) {
            const u64 now = words.now_ns();
            if (i == 16) {
                start = now;
            } else if (now - start >= budget_ns_) {
                break;
            }
        }
    }
    failed();
    return false;
}

// One waiting role (see the protocol above).
class Parking {
public:
    // (1): true when the wait is over; an error ends it with that error.
    virtual Result<bool> ready() = 0;
    // (2): ok, or the error the waiting operation returns. `slept`: after a sleep.
    virtual Result<void> check(bool slept) = 0;
    // (5)/(8): the flag the publisher reads.
    virtual std::atomic<u32>& flag() = 0;
    // (6)/(7): the futex word the publisher changes before it wakes.
    virtual const std::atomic<u32>& word() = 0;
    // (4): the peer's CPU hint (0 = unknown), and where we publish ours (nullptr = nowhere).
    virtual u32 peer_cpu() { return 0; }
    virtual std::atomic<u32>* my_cpu() { return nullptr; }
    // (6)/(7): the process-local word whoever ends the wait from this process bumps
    // (bump_local_word); nullptr = none.
    virtual const std::atomic<u32>* local_word() { return nullptr; }

protected:
    ~Parking() = default;
};

Result<void> park(SharedWords& words, Parking& role, SpinBudget& spin, Deadline deadline);

// The ender's side of the local word: after storing what the waiters' check() reads (seq_cst),
// bump the word and wake every thread parked on it.
inline void bump_local_word(std::atomic<u32>& word) {
    word.fetch_add(1, std::memory_order_seq_cst);
    platform::ProcessSharedWords::instance().wake_all(&word);
}

// The publisher's side, (a) done by the caller: (b) and (c).
inline bool announced(SharedWords& words, const std::atomic<u32>& flag) {
    return words.announced(flag);
}

// How long a non-blocking operation may wait for another thread of this process that holds
// the same ring side. A holder either finishes within nanoseconds, or is blocked because the
// ring is full (or empty): then the non-blocking caller, after this bound, truthfully
// reports ChannelFull (or ChannelEmpty). It never waits for the peer.
inline constexpr u64 NONBLOCKING_LOCK_WAIT_NS = 100'000;

// Whether an operation may wait for its peer.
enum class Blocking : u8 { No, Yes };

// A process-local mutex whose lock can give up at a deadline (a sender blocked on a full ring
// holds its ring's producer lock; the next sender must still honour its own deadline).
//
// The uncontended case is one compare-and-swap to lock and one exchange to unlock, with no
// system call: the usual user of a ring side is one thread. Only when a second thread finds
// it held does the slow path run, built on std::mutex and std::condition_variable (so that
// every sanitizer understands the sleep), waiting in bounded slices.
//
// state_: 0 free; 1 held, nobody waits; 2 held and a waiter may sleep.
//   lock:   (1) CAS 0 → 1: done. (2) slow: under m_, exchange 2 in; what was there was 0 →
//           we hold it (marked 2: our unlock then wakes the others, harmless if none is
//           left). (3) else sleep on cv_ one slice (the deadline's share), back to (2).
//   unlock: (a) exchange 0 in; (b) it was 2 → take m_ and wake every sleeper.
//   A waiter's (2) and its sleep are both under m_, and (b) takes m_ before notifying, so a
//   release between them cannot be missed.
class VIPC_CAPABILITY("mutex") DeadlineMutex {
public:
    // False when the deadline passed first.
    bool lock_until(Deadline deadline) VIPC_THREAD_ANNOTATION(try_acquire_capability(true)) {
        u32 expected = 0;
        if (VIPC_LIKELY(state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                                       std::memory_order_relaxed))) {
            return true;  // (1)
        }
        return lock_slow(deadline);
    }
    // Waits for the lock until `deadline` when blocking, else at most
    // NONBLOCKING_LOCK_WAIT_NS. The clock is read only when the lock is contended.
    bool lock_for(Blocking blocking, Deadline deadline)
        VIPC_THREAD_ANNOTATION(try_acquire_capability(true)) {
        u32 expected = 0;
        if (VIPC_LIKELY(state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                                       std::memory_order_relaxed))) {
            return true;  // (1)
        }
        return lock_slow(blocking == Blocking::Yes ? deadline : nonblocking_deadline());
    }
    void lock() VIPC_ACQUIRE() { (void)lock_until(Deadline::never()); }
    void unlock() VIPC_RELEASE() {
        if (VIPC_UNLIKELY(state_.exchange(0, std::memory_order_release) == 2)) wake_waiters();
    }

private:
    bool lock_slow(Deadline deadline);
    static Deadline nonblocking_deadline();
    void wake_waiters();

    std::atomic<u32> state_{0};
    std::mutex m_;
    std::condition_variable cv_;
};

class VIPC_SCOPED_CAPABILITY DeadlineLock {
public:
    // Adopts a DeadlineMutex locked with lock_until() or lock_for().
    DeadlineLock(DeadlineMutex& m, std::adopt_lock_t) VIPC_THREAD_ANNOTATION(requires_capability(m))
        : m_(m) {}
    explicit DeadlineLock(DeadlineMutex& m) VIPC_ACQUIRE(m) : m_(m) { m_.lock(); }
    ~DeadlineLock() VIPC_RELEASE() { m_.unlock(); }
    DeadlineLock(const DeadlineLock&) = delete;
    DeadlineLock& operator=(const DeadlineLock&) = delete;

private:
    DeadlineMutex& m_;
};

}  // namespace veridian::ipc::posix::detail
