// veridian-ipc posix runtime, internal: the shared-memory layout, the rings and the waits.
//
// Layer: posix (hosted). Not installed; included by src/posix/*.cpp and the fuzz target.
//
// Layout of one ring (one direction of one connection), in two memfds so that the rights to
// write each half can be given separately (see runtime.hpp, "Connections and capabilities"):
//
//   data memfd (written by the producer only)      ctl memfd (written by the consumer only)
//   +0    RingDataHeader (128 bytes)                +0  RingCtl (128 bytes)
//           tail              futex word              head              futex word
//   +64     waiting_for_space producer sleeps   +64   waiting_for_data  consumer sleeps
//           closed            producer closed         closed            consumer closed
//           cpu               CPU hint                cpu               CPU hint
//   +128  depth slots of SLOT_SIZE bytes
//
// Shared memory holds indexes and flags only, never pointers. The geometry (depth, sizes,
// offsets) is computed from the depth agreed at connect time and kept privately by each
// side (RingGeometry); nothing about the geometry is ever read back from shared memory.
// Indexes are free-running u32 (depth is a power of two that divides 2^32), slot i lives at
// index & (depth - 1).
//
// Trust: a side only trusts the words it writes itself. Each word the peer writes is read
// once into a local, checked, and only then used:
//   the consumer checks   tail - head <= depth, and that the tail never moves backwards;
//   the producer checks   the head moved forward by at most what was published;
//   a slot is copied out once and its copy checked (kind, length, region) before use.
// A failed check gives InvalidMessage and the caller marks the connection broken.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/core/mutex.hpp"
#include "veridian/ipc/core/platform.hpp"
#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc::posix {
u64 now_ns();  // runtime.hpp
}  // namespace veridian::ipc::posix

namespace veridian::ipc::posix::detail {

// Whether a deadline passed; a deadline of never reads no clock.
inline bool deadline_passed(Deadline deadline) {
    return !deadline.is_never() && deadline.expired(now_ns());
}

inline constexpr u32 PAGE_BYTES = 4096;
inline constexpr u32 RING_HEADER_BYTES = 128;

// A slot: a 16-byte header and a body big enough for a LargeMessage (120 bytes), padded to
// three cache lines. Slots are 64-byte aligned, so the header and body of a SmallMessage fill
// exactly one cache line: the fast path moves one line per message between the CPUs.
struct SlotHeader {
    u32 kind;    // MessageKind: 0 small, 1 large
    u32 length;  // body bytes: 48 for small, 120 for large
    u64 txid;    // transaction id of a call or a reply, 0 otherwise
};
static_assert(sizeof(SlotHeader) == 16);
static_assert(sizeof(SlotHeader) + sizeof(SmallMessage) == 64);
inline constexpr u32 SLOT_BODY_BYTES = sizeof(LargeMessage);
inline constexpr u32 SLOT_SIZE = 192;
static_assert(sizeof(SlotHeader) + SLOT_BODY_BYTES <= SLOT_SIZE && SLOT_SIZE % 64 == 0);
// A LargeMessage with a region (size != 0) names it in the slot (see region_wire.hpp); the
// region's memfd travels over the connection's socket.

// Each header is two cache lines: the index, written for every message, alone on the first;
// the flags, written only around sleeps and closes, on the second. A peer reads the flags on
// every message (to decide whether to wake); kept apart from the busy index they stay cached
// on its CPU instead of moving with every message.
struct alignas(64) RingDataHeader {
    std::atomic<u32> tail;  // next index the producer writes; futex word
    u32 reserved0[15];
    std::atomic<u32> waiting_for_space;  // 1 while the producer sleeps on ctl.head
    std::atomic<u32> closed;             // 1 once the producer side closed
    std::atomic<u32> cpu;                // CPU the producer last ran on, + 1 (0 = unknown)
    u32 reserved1[13];
};
static_assert(sizeof(RingDataHeader) == RING_HEADER_BYTES);

struct alignas(64) RingCtl {
    std::atomic<u32> head;  // next index the consumer reads; futex word
    u32 reserved0[15];
    std::atomic<u32> waiting_for_data;  // 1 while the consumer sleeps on data.tail
    std::atomic<u32> closed;            // 1 once the consumer side closed
    std::atomic<u32> cpu;               // CPU the consumer last ran on, + 1 (0 = unknown)
    std::atomic<u32> poll_armed;        // 1 once the consumer polls (see pollable.hpp): s2c only
    u32 reserved1[12];
};
static_assert(sizeof(RingCtl) == RING_HEADER_BYTES);

// Per server, shared by all its connections, written by the server only.
struct alignas(64) ServerState {
    u32 magic;                    // STATE_MAGIC
    u32 version;                  // WIRE_VERSION
    std::atomic<u32> waiting;     // 1 while a server thread sleeps on the doorbell
    std::atomic<u32> poll_armed;  // 1 once pollable_fd() was asked for: producers signal it
    std::atomic<u32> closed;      // 1 once the server closed
    std::atomic<u32> cpu;         // CPU the server's receiver last ran on, + 1
    // ServerOptions::client_rate_limit, for every client to apply to its sends (0 = none).
    // Written once before the first client connects.
    u32 limit_messages_per_second;
    u32 limit_burst_messages;
    u64 limit_bytes_per_second;
    u64 limit_burst_bytes;
    // 1 when a producer that sees `waiting` must also ring the shared doorbell (the server
    // cannot wait on every connection's own tail word: see Server::Impl::receive).
    std::atomic<u32> wake_doorbell;
    u32 reserved0;
    // ServerOptions::max_region_bytes: clients refuse to send bigger regions (0 = no cap).
    u64 max_region_bytes;
};
static_assert(sizeof(ServerState) == 64);

// Per server, written by every client: the word the server's receive sleeps on.
struct alignas(64) ServerDoorbell {
    std::atomic<u32> ring;  // bumped by a producer that saw ServerState::waiting
    u32 reserved[15];
};

inline constexpr u32 STATE_MAGIC = 0x56495053;  // "VIPS"
inline constexpr u32 WIRE_VERSION = 1;

static_assert(std::atomic<u32>::is_always_lock_free);

// The geometry of a ring, fixed at connect time and kept privately.
struct RingGeometry {
    u32 depth = 0;
    u32 mask = 0;
    usize data_bytes = 0;  // size of the data memfd
    usize ctl_bytes = 0;   // size of the ctl memfd

    // depth must be a power of two in 1..MAX_CHANNEL_QUEUE_SIZE; InvalidMessage otherwise.
    static Result<RingGeometry> for_depth(u32 depth);
};

// Rounds a requested depth up to a power of two, clamped to 1..MAX_CHANNEL_QUEUE_SIZE.
u32 normalize_depth(u32 requested);

// Copies a message into a slot body and header; checks what can travel across processes:
// a region (size != 0) → InvalidMemoryRegion, inline payload > 64 → MessageTooLarge.
Result<void> check_sendable(const Message& msg);

// The producer half of a ring. Not thread-safe: its owner serializes callers.
class RingProducer {
public:
    RingProducer() = default;
    RingProducer(RingGeometry geometry, RingDataHeader* data, const RingCtl* ctl)
        : geometry_(geometry), data_(data), ctl_(ctl) {}

    bool valid() const { return data_ != nullptr; }
    const RingGeometry& geometry() const { return geometry_; }
    RingDataHeader* data() const { return data_; }
    const RingCtl* ctl() const { return ctl_; }
    u32 tail() const { return tail_; }

    // Free slots now, after checking the consumer's head: InvalidMessage if it is corrupt.
    Result<u32> free_slots();
    // Writes one slot and publishes it. ChannelFull when there is no space.
    // Precondition: check_sendable(msg) succeeded.
    Result<void> try_push(const Message& msg, u64 txid);
    // The fast path: one SmallMessage.
    Result<void> try_push_small(const SmallMessage& msg, u64 txid);
    // Messages the consumer has not taken yet (as of the last checked head).
    u32 queued() const { return tail_ - head_seen_; }

private:
    Result<void> refresh_head();
    u8* slot(u32 index) const {
        return reinterpret_cast<u8*>(data_) + RING_HEADER_BYTES +
               usize{index & geometry_.mask} * SLOT_SIZE;
    }

    RingGeometry geometry_{};
    RingDataHeader* data_ = nullptr;
    const RingCtl* ctl_ = nullptr;
    u32 tail_ = 0;       // private copy: the only truth about our tail
    u32 head_seen_ = 0;  // the last head we checked
};

// The consumer half of a ring. Not thread-safe: its owner serializes callers.
class RingConsumer {
public:
    RingConsumer() = default;
    RingConsumer(RingGeometry geometry, const RingDataHeader* data, RingCtl* ctl)
        : geometry_(geometry), data_(data), ctl_(ctl) {}

    bool valid() const { return data_ != nullptr; }
    const RingGeometry& geometry() const { return geometry_; }
    const RingDataHeader* data() const { return data_; }
    RingCtl* ctl() const { return ctl_; }
    u32 head() const { return head_; }

    // Messages available: InvalidMessage if the producer's tail is corrupt.
    Result<u32> available();
    // Takes one message. ChannelEmpty when there is none; InvalidMessage when the tail or the
    // slot is corrupt (the head is not advanced past a bad slot). The message's
    // transaction_id() is the slot's txid.
    Result<Message> try_pop();

private:
    const u8* slot(u32 index) const {
        return reinterpret_cast<const u8*>(data_) + RING_HEADER_BYTES +
               usize{index & geometry_.mask} * SLOT_SIZE;
    }

    RingGeometry geometry_{};
    const RingDataHeader* data_ = nullptr;
    RingCtl* ctl_ = nullptr;
    u32 head_ = 0;       // private copy
    u32 tail_seen_ = 0;  // the last tail we checked
};

// ---- futex and waiting -------------------------------------------------------------------------

// Shared (not FUTEX_PRIVATE_FLAG) futex on a word in a MAP_SHARED mapping. Sleeps while
// *word == expected, at most `max_ns` (or until the deadline). Spurious returns are allowed.
void futex_wait(const std::atomic<u32>* word, u32 expected, u64 max_ns);
void futex_wake_all(const std::atomic<u32>* word);
// futex_wait on `word` and, at once, on `local` while it equals `local_expected` (futex_waitv;
// `local` may be nullptr). Spurious returns are allowed.
void futex_wait_either(const std::atomic<u32>* word, u32 expected, const std::atomic<u32>* local,
                       u32 local_expected, u64 max_ns);

// The calling thread's CPU, + 1 (0 if unknown): the hint each side publishes.
u32 current_cpu_hint();
bool single_cpu_machine();

// Bounded adaptive spin before a sleep. One per waiting role (it carries the adaptive
// budget); not thread-safe.
class SpinBudget {
public:
    explicit SpinBudget(u32 bound_ns = 0) : bound_ns_(bound_ns), budget_ns_(bound_ns) {}
    // Polls ready() until it returns true (→ true) or the budget is used (→ false).
    // peer_cpu_hint is the peer's published CPU (+1, 0 = unknown): when it equals ours the
    // peer cannot run while we spin, so we hand the CPU over with sched_yield instead.
    template <typename Ready>
    bool spin(Ready&& ready, u32 peer_cpu_hint, u32 my_cpu_hint);

private:
    void succeeded();
    void failed();
    bool yield_mode(u32 peer_cpu_hint, u32 my_cpu_hint) const;
    void yield_once() const;
    u64 clock_ns() const;

    u32 bound_ns_;
    u32 budget_ns_;
};

template <typename Ready>
bool SpinBudget::spin(Ready&& ready, u32 peer_cpu_hint, u32 my_cpu_hint) {
    if (bound_ns_ == 0) return false;
    if (yield_mode(peer_cpu_hint, my_cpu_hint)) {
        // Same CPU: hand the CPU over with sched_yield; the peer runs and answers without a
        // futex round trip. Bounded by the adaptive budget, but at least a few hand-offs, so
        // that other runnable processes on this CPU, which also get turns, do not end it
        // before the peer had one.
        u64 start = 0;  // read at the 4th hand-off: the first ones need no clock
        for (u32 i = 1;; ++i) {
            yield_once();
            if (ready()) {
                succeeded();
                return true;
            }
            if (i == 4) start = clock_ns();
            if (i > 4 && clock_ns() - start >= budget_ns_) break;
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
        cpu_relax();
        if ((i & 15) == 0) {
            const u64 now = clock_ns();
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

// How long a non-blocking operation may wait for another thread of this process that holds
// the same ring side. A holder either finishes a push or pop within nanoseconds, or is
// blocked because the ring is full (or empty): then the non-blocking caller, after this
// bound, truthfully reports ChannelFull (or ChannelEmpty). It never waits for the peer.
inline constexpr u64 NONBLOCKING_LOCK_WAIT_NS = 100'000;

// A process-local mutex whose lock can give up at a deadline (a sender blocked on a full ring
// holds its ring's producer lock; the next sender must still honour its own deadline).
//
// The uncontended case is one compare-and-swap to lock and one exchange to unlock, with no
// system call and no other lock: the usual user of a ring side is one thread. Only when a
// second thread finds it held does the slow path run, built on std::mutex and
// std::condition_variable (so that every sanitizer understands the sleep), waiting in
// bounded slices.
//
// state_: 0 free; 1 held, nobody waits; 2 held and a waiter may sleep.
//   lock:   (1) CAS 0 → 1: done. (2) slow: under m_, exchange 2 in; what was there was 0 →
//           we hold it (marked 2: our unlock then wakes the others, harmless if none is
//           left). (3) else sleep on cv_ one slice (the deadline's share), back to (2).
//   unlock: (a) exchange 0 in; (b) it was 2 → take m_ and wake every sleeper.
//   A waiter's (2) and its sleep are both under m_, and (b) takes m_ before notifying, so a
//   release between them cannot be missed: the waiter either sees 0 at (2) or is already
//   asleep when (b) notifies.
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
    // For an operation that may wait for the lock until `deadline` when `blocking`, else at
    // most NONBLOCKING_LOCK_WAIT_NS. The clock is read only when the lock is contended.
    bool lock_for(bool blocking, Deadline deadline)
        VIPC_THREAD_ANNOTATION(try_acquire_capability(true)) {
        u32 expected = 0;
        if (VIPC_LIKELY(state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                                       std::memory_order_relaxed))) {
            return true;  // (1)
        }
        return lock_slow(blocking ? deadline : nonblocking_deadline());
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

// ---- memfds and mappings -----------------------------------------------------------------------

// An owned mapping (munmap on destruction).
class Mapping {
public:
    Mapping() = default;
    Mapping(void* addr, usize bytes) : addr_(addr), bytes_(bytes) {}
    Mapping(Mapping&& o) noexcept : addr_(o.addr_), bytes_(o.bytes_) {
        o.addr_ = nullptr;
        o.bytes_ = 0;
    }
    Mapping& operator=(Mapping&& o) noexcept;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping();

    void* get() const { return addr_; }
    usize size() const { return bytes_; }
    template <typename T>
    T* as() const {
        return static_cast<T*>(addr_);
    }

private:
    void* addr_ = nullptr;
    usize bytes_ = 0;
};

// An owned file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(o.release()) {}
    Fd& operator=(Fd&& o) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd();

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    int release() {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }
    void reset();

private:
    int fd_ = -1;
};

// A sealed memfd of `bytes` (F_SEAL_SHRINK | F_SEAL_GROW, then F_SEAL_SEAL after `finish`).
// Created zero-filled, mapped read-write for its creator.
struct CreatedMemfd {
    Fd fd;
    Mapping map;
};
Result<CreatedMemfd> create_memfd(const char* debug_name, usize bytes);
// Seals a created memfd for good. With future_write_sealed, no new writable mapping of it
// can ever be made (the creator's existing one keeps working): for memfds only the creator
// writes. Then adds F_SEAL_SEAL.
Result<void> finish_seals(int fd, bool future_write_sealed);
// A new read-only open file description of the same memfd (via /proc/self/fd).
Result<Fd> reopen_read_only(int fd);
// Maps a memfd received from the peer after checking its size is exactly `bytes` and that
// it is sealed against shrinking and growing (else a peer could truncate it: SIGBUS).
// writable=false maps it PROT_READ.
Result<Mapping> map_peer_memfd(int fd, usize bytes, bool writable);

// ---- errors ------------------------------------------------------------------------------------

// Records the thread's last_error_detail() and returns the error, for `return fail(...)`.
IpcError fail(IpcError error, const char* format, ...) __attribute__((format(printf, 2, 3)));
void clear_error_detail();

// ---- the wait/wake protocols (shared by both sides) --------------------------------------------
//
// Consumer waiting for data (sleeps on data.tail):
//   (1) look: available() > 0 → done
//   (2) check the connection (closed, dead, broken) → its error
//   (3) deadline passed → Timeout
//   (4) spin (bounded, adaptive; yield instead when the peer shares our CPU) → back to (1)
//   (5) announce: ctl.waiting_for_data = 1 (seq_cst)
//   (6) read the futex word t = data.tail (seq_cst); if it already moved, or the connection
//       check now fails (a close or death noticed during the spin wakes without changing
//       the word) → unannounce, (1)
//   (7) sleep on data.tail while it equals t, at most one slice (PEER_CHECK_INTERVAL_MS) or
//       until the deadline; a missed wake costs at most one slice
//   (8) unannounce: ctl.waiting_for_data = 0; check the peer (socket hang-up), back to (1)
// Producer publishing (notify_consumer), paired with (5)/(6):
//   (a) write the slot, store tail (seq_cst)   (b) load ctl.waiting_for_data (seq_cst)
//   (c) if it is set → futex wake data.tail
//   Either the producer sees the flag (and wakes), or the consumer's (6) sees the new tail.
//
// Producer waiting for space (sleeps on ctl.head) is the mirror image, with
// data.waiting_for_space, and the consumer's notify_producer after it advanced the head.
// The server's receive does not sleep on one ring but on the doorbell for all of them; see
// server.cpp.

// Checks the connection between waits: ok, or the error the waiting operation returns.
// `slice_ended` is true after a sleep, when a costlier check (the socket) is worth it.
class WaitCheck {
public:
    virtual Result<void> check(bool slice_ended) = 0;
    // A process-local word that whoever ends this connection locally (close(), the monitor
    // noticing the peer's death, a revoke) bumps and wakes after setting what check() reads.
    // The waits sleep on it as well as on the ring's word, so such a wake cannot be lost
    // between the waiter's last check and its sleep. nullptr: none (the slice bounds it).
    virtual const std::atomic<u32>* local_wake() const { return nullptr; }

protected:
    ~WaitCheck() = default;
};

Result<void> wait_for_data(RingConsumer& ring, SpinBudget& spin, Deadline deadline,
                           const std::atomic<u32>* peer_cpu, WaitCheck& check);
Result<void> wait_for_space(RingProducer& ring, SpinBudget& spin, Deadline deadline,
                            const std::atomic<u32>* peer_cpu, WaitCheck& check);
// After a push: wake the consumer if it announced it sleeps on this ring.
void notify_consumer(RingProducer& ring);
// After a pop: wake the producer if it announced it sleeps waiting for space.
void notify_producer(RingConsumer& ring);
// The longest single sleep: one slice, or less when the deadline is nearer. 0 = expired.
u64 sleep_slice_ns(Deadline deadline);

}  // namespace veridian::ipc::posix::detail
