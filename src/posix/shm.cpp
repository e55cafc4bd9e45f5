// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: rings over shared memory, futex waits, memfds.
#include "posix/shm.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdarg>
#include <cstdio>

#include "posix/region_wire.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::posix {

namespace {
thread_local char t_error_detail[512];
}

const char* last_error_detail() {
    return t_error_detail;
}

u64 now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<u64>(ts.tv_sec) * 1'000'000'000u + static_cast<u64>(ts.tv_nsec);
}

Deadline after_ns(u64 ns) {
    const u64 now = now_ns();
    return ns >= ~u64{0} - now ? Deadline::never() : Deadline::at(now + ns);
}

namespace detail {

IpcError fail(IpcError error, const char* format, ...) {
    va_list args;
    va_start(args, format);
    std::vsnprintf(t_error_detail, sizeof t_error_detail, format, args);
    va_end(args);
    return error;
}

// ---- geometry ----------------------------------------------------------------------------------

namespace {
constexpr usize round_up_to_page(usize bytes) {
    return (bytes + PAGE_BYTES - 1) / PAGE_BYTES * PAGE_BYTES;
}
}  // namespace

Result<RingGeometry> RingGeometry::for_depth(u32 depth) {
    if (depth == 0 || depth > MAX_CHANNEL_QUEUE_SIZE || (depth & (depth - 1)) != 0) {
        return IpcError::InvalidMessage;
    }
    RingGeometry g;
    g.depth = depth;
    g.mask = depth - 1;
    g.data_bytes = round_up_to_page(RING_HEADER_BYTES + usize{depth} * SLOT_SIZE);
    g.ctl_bytes = PAGE_BYTES;
    return g;
}

u32 normalize_depth(u32 requested) {
    if (requested <= 1) return 1;
    if (requested >= MAX_CHANNEL_QUEUE_SIZE) return MAX_CHANNEL_QUEUE_SIZE;
    u32 d = 1;
    while (d < requested)
        d <<= 1;
    return d;
}

Result<void> check_sendable(const Message& msg) {
    if (msg.is_large()) {
        const LargeMessage& m = msg.large_message();
        if (m.region.size != 0) return IpcError::InvalidMemoryRegion;
        if (m.header.total_size > LARGE_MESSAGE_INLINE_BYTES) return IpcError::MessageTooLarge;
    }
    return ok();
}

// ---- producer ----------------------------------------------------------------------------------

Result<void> RingProducer::refresh_head() {
    // The head is the consumer's word: read it once, then check it moved forward by no more
    // than what we published (which also bounds tail - head by the depth).
    const u32 head = ctl_->head.load(std::memory_order_seq_cst);  // pairs with the flag stores
    if (VIPC_UNLIKELY(head - head_seen_ > tail_ - head_seen_)) return IpcError::InvalidMessage;
    head_seen_ = head;
    return ok();
}

Result<u32> RingProducer::free_slots() {
    VIPC_TRY(refresh_head());
    return geometry_.depth - (tail_ - head_seen_);
}

Result<void> RingProducer::try_push(const Message& msg, u64 txid) {
    if (msg.is_small()) return try_push_small(msg.small_message(), txid);
    if (tail_ - head_seen_ >= geometry_.depth) {
        VIPC_TRY(refresh_head());
        if (tail_ - head_seen_ >= geometry_.depth) return IpcError::ChannelFull;
    }
    u8* s = slot(tail_);
    const SlotHeader h{static_cast<u32>(MessageKind::Large), sizeof(LargeMessage), txid};
    std::memcpy(s, &h, sizeof h);
    std::memcpy(s + sizeof h, &msg.large_message(), sizeof(LargeMessage));
    ++tail_;
    data_->tail.store(tail_, std::memory_order_seq_cst);  // (a), see notify_consumer
    return ok();
}

Result<void> RingProducer::try_push_small(const SmallMessage& msg, u64 txid) {
    // The fast path: one check of the private indexes, a refresh of the peer's head only when
    // the ring looks full, one slot write, one release store.
    if (VIPC_UNLIKELY(tail_ - head_seen_ >= geometry_.depth)) {
        VIPC_TRY(refresh_head());
        if (tail_ - head_seen_ >= geometry_.depth) return IpcError::ChannelFull;
    }
    u8* s = slot(tail_);
    const SlotHeader h{static_cast<u32>(MessageKind::Small), sizeof(SmallMessage), txid};
    std::memcpy(s, &h, sizeof h);
    std::memcpy(s + sizeof h, &msg, sizeof msg);
    ++tail_;
    data_->tail.store(tail_, std::memory_order_seq_cst);  // (a), see notify_consumer
    return ok();
}

// ---- consumer ----------------------------------------------------------------------------------

Result<u32> RingConsumer::available() {
    // The tail is the producer's word: read once; it may not run more than depth ahead of our
    // head, nor move backwards.
    const u32 tail = data_->tail.load(std::memory_order_seq_cst);  // pairs with the flag stores
    const u32 count = tail - head_;
    if (VIPC_UNLIKELY(count > geometry_.depth || count < tail_seen_ - head_)) {
        return IpcError::InvalidMessage;
    }
    tail_seen_ = tail;
    return count;
}

Result<Message> RingConsumer::try_pop() {
    if (tail_seen_ == head_) {
        const u32 count = VIPC_TRY(available());
        if (count == 0) return IpcError::ChannelEmpty;
    }
    // Copy the header out once and check the copy; then copy out exactly the body it names
    // (the producer may still scribble on the slot: only our copies are ever used).
    const u8* s = slot(head_);
    SlotHeader h;
    std::memcpy(&h, s, sizeof h);
    Message msg;
    if (h.kind == static_cast<u32>(MessageKind::Small) && h.length == sizeof(SmallMessage)) {
        SmallMessage m;
        std::memcpy(&m, s + sizeof h, sizeof m);
        msg = Message(m);
    } else if (h.kind == static_cast<u32>(MessageKind::Large) && h.length == sizeof(LargeMessage)) {
        LargeMessage m;
        std::memcpy(&m, s + sizeof h, sizeof m);
        // A region (size != 0) is resolved by the caller from the connection's socket.
        if (!region_fields_valid(m)) return IpcError::InvalidMessage;
        msg = Message(m);
    } else {
        return IpcError::InvalidMessage;
    }
    msg.set_transaction_id(h.txid);
    ++head_;
    ctl_->head.store(head_, std::memory_order_seq_cst);  // see notify_producer
    return msg;
}

// ---- futex -------------------------------------------------------------------------------------

void futex_wait(const std::atomic<u32>* word, u32 expected, u64 max_ns) {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(max_ns / 1'000'000'000u);
    ts.tv_nsec = static_cast<long>(max_ns % 1'000'000'000u);
    // FUTEX_WAIT only reads the word, so it works on a read-only mapping too.
    syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futex_wait_either(const std::atomic<u32>* word, u32 expected, const std::atomic<u32>* local,
                       u32 local_expected, u64 max_ns) {
    if (local == nullptr) {
        futex_wait(word, expected, max_ns);
        return;
    }
    // Both shared futexes (no FUTEX_PRIVATE_FLAG): their wakers use the shared operation.
    futex_waitv waiters[2] = {
        {expected, reinterpret_cast<u64>(word), FUTEX_32, 0},
        {local_expected, reinterpret_cast<u64>(local), FUTEX_32, 0},
    };
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const u64 until =
        static_cast<u64>(ts.tv_sec) * 1'000'000'000u + static_cast<u64>(ts.tv_nsec) + max_ns;
    ts.tv_sec = static_cast<time_t>(until / 1'000'000'000u);
    ts.tv_nsec = static_cast<long>(until % 1'000'000'000u);
    if (syscall(SYS_futex_waitv, waiters, 2, 0, &ts, CLOCK_MONOTONIC) < 0 && errno == ENOSYS) {
        futex_wait(word, expected, max_ns);  // an old kernel: the slice bounds a lost wake
    }
}

void futex_wake_all(const std::atomic<u32>* word) {
    syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

u32 current_cpu_hint() {
    const int cpu = sched_getcpu();
    return cpu < 0 ? 0 : static_cast<u32>(cpu) + 1;
}

bool single_cpu_machine() {
    // The machine's CPUs, not our affinity: a process pinned to one CPU still has a peer that
    // may run on another (the CPU hints tell when both share one).
    static const bool single = sysconf(_SC_NPROCESSORS_ONLN) <= 1;
    return single;
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

bool SpinBudget::yield_mode(u32 peer_cpu_hint, u32 my_cpu_hint) const {
    if (single_cpu_machine()) return true;
    return peer_cpu_hint != 0 && peer_cpu_hint == my_cpu_hint;
}

void SpinBudget::yield_once() const {
    sched_yield();
}

u64 SpinBudget::clock_ns() const {
    return now_ns();
}

// ---- fds, memfds, mappings ---------------------------------------------------------------------

Mapping& Mapping::operator=(Mapping&& o) noexcept {
    if (this != &o) {
        if (addr_ != nullptr) munmap(addr_, bytes_);
        addr_ = o.addr_;
        bytes_ = o.bytes_;
        o.addr_ = nullptr;
        o.bytes_ = 0;
    }
    return *this;
}

Mapping::~Mapping() {
    if (addr_ != nullptr) munmap(addr_, bytes_);
}

Fd& Fd::operator=(Fd&& o) noexcept {
    if (this != &o) {
        reset();
        fd_ = o.release();
    }
    return *this;
}

Fd::~Fd() {
    reset();
}

void Fd::reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

Result<CreatedMemfd> create_memfd(const char* debug_name, usize bytes) {
    Fd fd(memfd_create(debug_name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd.valid()) {
        return fail(IpcError::OutOfMemory, "memfd_create failed: %s", strerror(errno));
    }
    if (ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) {
        return fail(IpcError::OutOfMemory, "cannot size a %zu-byte memfd: %s", bytes,
                    strerror(errno));
    }
    if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
        return fail(IpcError::OutOfMemory, "cannot seal a memfd: %s", strerror(errno));
    }
    void* addr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (addr == MAP_FAILED) {
        return fail(IpcError::OutOfMemory, "cannot map a memfd: %s", strerror(errno));
    }
    CreatedMemfd out{static_cast<Fd&&>(fd), Mapping(addr, bytes)};
    return out;
}

Result<void> finish_seals(int fd, bool future_write_sealed) {
    const int seals = (future_write_sealed ? F_SEAL_FUTURE_WRITE : 0) | F_SEAL_SEAL;
    if (fcntl(fd, F_ADD_SEALS, seals) != 0) {
        return fail(IpcError::OutOfMemory, "cannot seal a memfd: %s", strerror(errno));
    }
    return ok();
}

Result<Fd> reopen_read_only(int fd) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    Fd ro(open(path, O_RDONLY | O_CLOEXEC));
    if (!ro.valid()) {
        return fail(IpcError::OutOfMemory, "cannot reopen a memfd read-only (%s): %s", path,
                    strerror(errno));
    }
    return ro;
}

Result<Mapping> map_peer_memfd(int fd, usize bytes, bool writable) {
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<u64>(st.st_size) != bytes) {
        return fail(IpcError::InvalidMessage,
                    "a shared segment from the peer has the wrong size (%lld bytes, expected %zu)",
                    static_cast<long long>(st.st_size), bytes);
    }
    const int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
        return fail(IpcError::InvalidMessage,
                    "a shared segment from the peer is not sealed against resizing");
    }
    const int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
    void* addr = mmap(nullptr, bytes, prot, MAP_SHARED, fd, 0);
    if (addr == MAP_FAILED) {
        return fail(
            errno == EACCES || errno == EPERM ? IpcError::PermissionDenied : IpcError::OutOfMemory,
            "cannot map a shared segment from the peer: %s", strerror(errno));
    }
    return Mapping(addr, bytes);
}

}  // namespace detail
}  // namespace veridian::ipc::posix

namespace veridian::ipc::posix::detail {

void clear_error_detail() {
    t_error_detail[0] = '\0';
}

bool DeadlineMutex::lock_slow(Deadline deadline) {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
        // (2) take it if free, and mark that a waiter may sleep
        if (state_.exchange(2, std::memory_order_acquire) == 0) return true;
        // (3) sleep one slice at most
        const u64 slice = sleep_slice_ns(deadline);
        if (slice == 0) return false;
        cv_.wait_for(lock, std::chrono::nanoseconds(slice));
    }
}

Deadline DeadlineMutex::nonblocking_deadline() {
    return after_ns(NONBLOCKING_LOCK_WAIT_NS);
}

void DeadlineMutex::wake_waiters() {
    // (b) under m_: a waiter between its (2) and its sleep holds m_, so it is asleep by now
    std::lock_guard<std::mutex> lock(m_);
    cv_.notify_all();
}

u64 sleep_slice_ns(Deadline deadline) {
    constexpr u64 slice = u64{PEER_CHECK_INTERVAL_MS} * 1'000'000u;
    if (deadline.is_never()) return slice;
    const u64 now = now_ns();
    if (now >= deadline.ns()) return 0;
    const u64 left = deadline.ns() - now;
    return left < slice ? left : slice;
}

Result<void> wait_for_data(RingConsumer& ring, SpinBudget& spin, Deadline deadline,
                           const std::atomic<u32>* peer_cpu, WaitCheck& check) {
    bool slept = false;
    for (;;) {
        // (1) look
        if (VIPC_TRY(ring.available()) > 0) return ok();
        // (2) check the connection (after a sleep, also the socket)
        VIPC_TRY(check.check(slept));
        // (3) deadline
        if (deadline_passed(deadline)) return IpcError::Timeout;
        // (4) spin
        const u32 me = current_cpu_hint();
        // Publish our CPU only when it changed: the line is read by the peer.
        if (ring.ctl()->cpu.load(std::memory_order_relaxed) != me) {
            ring.ctl()->cpu.store(me, std::memory_order_relaxed);
        }
        const bool ready = spin.spin(
            [&] {
                const auto a = ring.available();
                return !a || *a > 0;
            },
            peer_cpu->load(std::memory_order_relaxed), me);
        if (ready) {
            slept = false;
            continue;
        }
        // (5) announce
        ring.ctl()->waiting_for_data.store(1, std::memory_order_seq_cst);
        // (6) read the words, re-check the ring and the connection (a close or a peer's
        // death noticed locally bumps the local word after setting what check() reads: either
        // check() sees it now, or the sleep sees the word move)
        const u32 t = ring.data()->tail.load(std::memory_order_seq_cst);
        const std::atomic<u32>* local = check.local_wake();
        const u32 e = local != nullptr ? local->load(std::memory_order_seq_cst) : 0;
        const auto a = ring.available();
        // A close or a death noticed during the spin wakes this word without changing it:
        // look at the connection again here, or that wake is lost for a whole slice.
        auto c = check.check(false);
        if (!a || *a > 0 || !c) {
            ring.ctl()->waiting_for_data.store(0, std::memory_order_relaxed);
            if (!c) return c.error();
            slept = false;
            continue;
        }
        // (7) sleep one slice at most, on the ring's word and the local one
        const u64 slice = sleep_slice_ns(deadline);
        if (slice > 0) futex_wait_either(&ring.data()->tail, t, local, e, slice);
        // (8) unannounce
        ring.ctl()->waiting_for_data.store(0, std::memory_order_relaxed);
        slept = true;
    }
}

Result<void> wait_for_space(RingProducer& ring, SpinBudget& spin, Deadline deadline,
                            const std::atomic<u32>* peer_cpu, WaitCheck& check) {
    bool slept = false;
    for (;;) {
        // (1) look
        if (VIPC_TRY(ring.free_slots()) > 0) return ok();
        // (2) check the connection
        VIPC_TRY(check.check(slept));
        // (3) deadline
        if (deadline_passed(deadline)) return IpcError::Timeout;
        // (4) spin
        const u32 me = current_cpu_hint();
        if (ring.data()->cpu.load(std::memory_order_relaxed) != me) {
            ring.data()->cpu.store(me, std::memory_order_relaxed);
        }
        const bool ready = spin.spin(
            [&] {
                const auto f = ring.free_slots();
                return !f || *f > 0;
            },
            peer_cpu->load(std::memory_order_relaxed), me);
        if (ready) {
            slept = false;
            continue;
        }
        // (5) announce
        ring.data()->waiting_for_space.store(1, std::memory_order_seq_cst);
        // (6) read the words, re-check the ring and the connection (as in wait_for_data)
        const u32 h = ring.ctl()->head.load(std::memory_order_seq_cst);
        const std::atomic<u32>* local = check.local_wake();
        const u32 e = local != nullptr ? local->load(std::memory_order_seq_cst) : 0;
        const auto f = ring.free_slots();
        // As in wait_for_data: a close or death noticed during the spin is seen here.
        auto c = check.check(false);
        if (!f || *f > 0 || !c) {
            ring.data()->waiting_for_space.store(0, std::memory_order_relaxed);
            if (!c) return c.error();
            slept = false;
            continue;
        }
        // (7) sleep one slice at most, on the ring's word and the local one
        const u64 slice = sleep_slice_ns(deadline);
        if (slice > 0) futex_wait_either(&ring.ctl()->head, h, local, e, slice);
        // (8) unannounce
        ring.data()->waiting_for_space.store(0, std::memory_order_relaxed);
        slept = true;
    }
}

void notify_consumer(RingProducer& ring) {
    // (b) the tail was stored seq_cst and the flag is loaded seq_cst: with the consumer's
    // seq_cst flag store and tail load, one of the two sees the other's write.
    // (c) wake only a consumer that announced it sleeps (the flag is a hint: a wrong value
    // costs a syscall or a slice, never correctness)
    if (ring.ctl()->waiting_for_data.load(std::memory_order_seq_cst) != 0) {
        futex_wake_all(&ring.data()->tail);
    }
}

void notify_producer(RingConsumer& ring) {
    // The head was stored seq_cst (try_pop); same pairing as notify_consumer.
    if (ring.data()->waiting_for_space.load(std::memory_order_seq_cst) != 0) {
        futex_wake_all(&ring.ctl()->head);
    }
}

}  // namespace veridian::ipc::posix::detail
