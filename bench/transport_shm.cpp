// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Shared-memory transports: the bench's floors, and eventfd.
//
// The floors are the least that two processes exchanging messages through shared memory can
// cost on this machine; every other row is read against them. Two constructions, each with
// three ways for a side to wait:
//
//   spin        busy-wait with the pause instruction: the floor across cores
//   yield       busy-wait calling sched_yield(): the floor when both share one cpu
//   futex       announce, re-check, FUTEX_WAIT on every wait; FUTEX_WAKE only when the peer
//               announced that it may sleep
//
// One line per direction (rows spin_line, yield_line, futex_line): a mailbox per direction
// whose 4-byte sequence word, the receiver's 4-byte `waiting` word and the first 56 payload
// bytes share one 64-byte line (a longer payload continues on the lines that follow). A
// 48-byte round trip therefore moves exactly two lines, one per direction: the physical floor
// of a round trip. A mailbox holds one message, so these rows do round trips only.
//
//   mailbox (page-aligned, one per direction):
//     +0  u32 seq       written by the sender: messages sent into this mailbox so far
//     +4  u32 waiting   written by the receiver (futex only): 1 while it may sleep on seq
//     +8  payload       written by the sender before seq, read by the receiver after it
//   send:    (1) copy the payload in  (2) publish seq+1 (release)  (3) futex: wake the receiver
//            if it announced that it may sleep
//   receive: (1) wait until seq == the next expected number (acquire)  (2) copy the payload out
//   In a ping-pong a side sends again only after the peer answered, i.e. after the peer copied
//   the previous message out, so the sender never overwrites an unread message. The receiver
//   checks that: a mailbox that skipped a number fails the case ("lost message").
//
// Lamport ring (rows spin_ring, yield_ring, futex_ring): a single-producer/single-consumer ring
// of `depth` slots of exactly the message size (Folly's ProducerConsumerQueue with each side
// caching the other's index). `tail` (producer) and `head` (consumer) are each alone on a
// 128-byte block (the adjacent-line prefetcher moves lines in pairs); the slots start on the
// next page. Both indices count messages and wrap at 2^32; the depth is a power of two, so
// `tail - head` is the fill level.
//   Each side keeps its own index in private memory (its shared copy is only ever stored) and
//   a private copy of the other side's index, which it re-reads (acquire) only when the copy
//   says full (producer) or empty (consumer). A stream thus reads the other index about once
//   per ring's worth of messages instead of once per message.
//   send:    (1) full per the cached head? re-read head (acquire), wait while still full
//            (2) copy into slot[tail % depth]  (3) publish tail+1 (release)
//            (4) futex/eventfd: wake the consumer if it announced that it may sleep
//   receive: (1) empty per the cached tail? re-read tail (acquire), wait while still empty
//            (2) copy out of slot[head % depth]  (3) release head+1 (release)
//            (4) futex/eventfd: wake the producer if it announced that it may sleep
//
// spin_ring_uncached is the same ring re-reading the opposite index on every message (the
// bench's spin floor before the cached rings existed): what not caching costs.
//
// Slot-sequence ring (row spin_slots): the same ring, but the consumer finds a message by
// polling the sequence word of the slot itself (FastForward / Vyukov), so the producer never
// publishes a shared index. Slots are 8 + message size bytes rounded up to 64 (a 48-byte
// message and its sequence word fill exactly one line); the consumer's `head` is still
// published (release, its own block) for the producer's space check, which re-reads it
// (acquire) only when its cached copy says full.
//   send:    (1) as the Lamport ring  (2) copy into slot[tail % depth].payload
//            (3) slot.seq = tail+1 (release)
//   receive: (1) wait until slot[head % depth].seq == head+1 (acquire)  (2) copy out
//            (3) release head+1 (release)
// Spin only: the construction the runtime's 48-byte path uses, as a floor of its own.
//
// eventfd (a peer, not a floor) is the Lamport ring with an eventfd as the doorbell.
//
// Sleeping waiters (futex, eventfd): the waiter stores 1 into its `waiting` word, re-reads the
// index/sequence word and sleeps only if it did not change; the waker publishes the word before
// it reads `waiting`. All four accesses are sequentially consistent, so one side always sees
// the other: no lost wakeup. The futex sleep has a 1 s timeout and the waiter re-checks after
// it, so even a missed wake would only cost time. A stale eventfd count causes one extra
// re-check.
#include <linux/futex.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <new>

#include "transport.hpp"

namespace vipc::bench {
namespace {

enum class WaitKind { spin, yield, futex, eventfd };
enum class OppositeIndex { cached, reread };

// A waiter that sees no progress for this long gives up instead of waiting forever.
constexpr auto kStallLimit = std::chrono::seconds(20);
// At most this many bytes of slots per ring (at least two slots).
constexpr std::size_t kRingBytesLimit = 64u << 20;
constexpr std::size_t kPage = 4096;
constexpr std::size_t kLineMaxSize = 64u << 20;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

std::size_t round_up(std::size_t n, std::size_t to) {
    return (n + to - 1) / to * to;
}

int futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value, const timespec* timeout) {
    return static_cast<int>(
        syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, timeout, nullptr, 0));
}

bool sleeps(WaitKind kind) {
    return kind == WaitKind::futex || kind == WaitKind::eventfd;
}

// A sleeping waiter pairs its `waiting` store and re-check with the waker's publish and
// `waiting` load: all four sequentially consistent. A spinning waiter needs release/acquire.
std::memory_order publish_order(WaitKind kind) {
    return sleeps(kind) ? std::memory_order_seq_cst : std::memory_order_release;
}

// Returns once `word` no longer holds `observed` (or may not: callers re-check), or fails when
// nothing changed for kStallLimit. `fd` is the eventfd for WaitKind::eventfd.
Status wait_while(WaitKind kind, std::atomic<std::uint32_t>& word, std::uint32_t observed,
                  std::atomic<std::uint32_t>& waiting, int fd) {
    const auto start = std::chrono::steady_clock::now();
    if (!sleeps(kind)) {
        for (std::uint64_t i = 1;; ++i) {
            if (word.load(std::memory_order_acquire) != observed) return {};
            if (kind == WaitKind::spin)
                cpu_relax();
            else
                sched_yield();
            if ((i & 0xffff) == 0 && std::chrono::steady_clock::now() - start > kStallLimit)
                return Status::fail("peer made no progress for 20 s");
        }
    }
    for (;;) {
        // Announce, re-check, then sleep (see the protocol at the top).
        waiting.store(1, std::memory_order_seq_cst);
        if (word.load(std::memory_order_seq_cst) != observed) {
            waiting.store(0, std::memory_order_relaxed);
            return {};
        }
        if (kind == WaitKind::futex) {
            const timespec one_second{1, 0};
            if (futex(&word, FUTEX_WAIT, observed, &one_second) != 0 && errno != EAGAIN &&
                errno != EINTR && errno != ETIMEDOUT)
                return Status::from_errno("futex wait", errno);
        } else {
            std::uint64_t count = 0;
            if (read(fd, &count, sizeof count) < 0 && errno != EINTR)
                return Status::from_errno("eventfd read", errno);
        }
        waiting.store(0, std::memory_order_relaxed);
        if (word.load(std::memory_order_acquire) != observed) return {};
        if (std::chrono::steady_clock::now() - start > kStallLimit)
            return Status::fail("peer made no progress for 20 s");
    }
}

// The waker's half: after publishing `word`, wake a peer that announced it may sleep.
void wake(WaitKind kind, std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& waiting,
          int fd) {
    if (!sleeps(kind)) return;
    if (waiting.load(std::memory_order_seq_cst) == 0) return;
    if (kind == WaitKind::futex) {
        futex(&word, FUTEX_WAKE, 1, nullptr);
    } else {
        const std::uint64_t one = 1;
        // Cannot fail: the counter stays far below its limit (at most one write per message).
        if (write(fd, &one, sizeof one) < 0) return;
    }
}

// Anonymous shared memory mapped before the fork, unmapped in the parent's cleanup().
class SharedMapping {
public:
    ~SharedMapping() { release(); }
    Status map(std::size_t bytes) {
        void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return Status::from_errno("mmap " + std::to_string(bytes) + " B shared", errno);
        base_ = static_cast<std::byte*>(p);
        bytes_ = bytes;
        return {};
    }
    std::byte* base() const { return base_; }
    void release() {
        if (base_ != nullptr) munmap(base_, bytes_);
        base_ = nullptr;
    }

private:
    std::byte* base_ = nullptr;
    std::size_t bytes_ = 0;
};

// ---- One line per direction ------------------------------------------------------------------

struct MailboxHeader {
    std::atomic<std::uint32_t> seq{0};      // written by the sender
    std::atomic<std::uint32_t> waiting{0};  // written by the receiver (futex only)
};
static_assert(sizeof(MailboxHeader) == 8, "the payload starts at +8, in the same line");
constexpr std::size_t kMailboxPayloadOffset = sizeof(MailboxHeader);

class LineTransport final : public Transport {
public:
    explicit LineTransport(WaitKind kind) : kind_(kind) {}

    Status prepare(const CaseParams& params) override {
        params_ = params;
        box_bytes_ = round_up(kMailboxPayloadOffset + params.message_size, kPage);
        if (Status s = mapping_.map(2 * box_bytes_); !s) return s;
        for (int i = 0; i < 2; ++i)
            new (mapping_.base() + i * box_bytes_) MailboxHeader{};
        return {};
    }

    Status open(Role role) override {
        // Mailbox 0 carries client→server, mailbox 1 server→client.
        out_ = mapping_.base() + (role == Role::client ? 0 : box_bytes_);
        in_ = mapping_.base() + (role == Role::client ? box_bytes_ : 0);
        return {};
    }

    Status send(std::span<const std::byte> message) override {
        MailboxHeader& h = header(out_);
        // (1) copy in
        std::memcpy(out_ + kMailboxPayloadOffset, message.data(), message.size());
        ++sent_;
        // (2) SYNC POINT: release (seq_cst when the receiver may sleep); pairs with the acquire
        // load of seq in receive(): the payload is visible before the new number.
        h.seq.store(sent_, publish_order(kind_));
        // (3)
        wake(kind_, h.seq, h.waiting, -1);
        return {};
    }

    Status receive(std::span<std::byte> message) override {
        MailboxHeader& h = header(in_);
        const std::uint32_t want = received_ + 1;
        // (1) wait for the next number
        for (;;) {
            // SYNC POINT: acquire; pairs with the sender's store of seq in send().
            const std::uint32_t seq = h.seq.load(std::memory_order_acquire);
            if (seq == want) break;
            if (seq != received_)
                return Status::fail("lost message: the mailbox holds message " +
                                    std::to_string(seq) + ", expected " + std::to_string(want));
            if (Status s = wait_while(kind_, h.seq, seq, h.waiting, -1); !s) return s;
        }
        // (2) copy out
        std::memcpy(message.data(), in_ + kMailboxPayloadOffset, message.size());
        received_ = want;
        return {};
    }

    void cleanup() override { mapping_.release(); }

private:
    static MailboxHeader& header(std::byte* box) {
        return *std::launder(reinterpret_cast<MailboxHeader*>(box));
    }

    WaitKind kind_;
    SharedMapping mapping_;
    std::size_t box_bytes_ = 0;
    std::byte* out_ = nullptr;
    std::byte* in_ = nullptr;
    std::uint32_t sent_ = 0;      // private: messages this side sent
    std::uint32_t received_ = 0;  // private: messages this side received
};

// ---- Lamport ring ----------------------------------------------------------------------------

struct alignas(128) PaddedWord {
    std::atomic<std::uint32_t> value{0};
};

struct RingControl {
    PaddedWord tail;              // written by the producer only
    PaddedWord head;              // written by the consumer only
    PaddedWord consumer_waiting;  // written by the consumer: 1 while it may sleep on tail
    PaddedWord producer_waiting;  // written by the producer: 1 while it may sleep on head
};
static_assert(sizeof(RingControl) <= kPage, "the slots start on the next page");

// One direction, as one process sees it: pointers into the shared memory, the doorbells, and
// this side's private indices.
struct RingSide {
    RingControl* control = nullptr;
    std::byte* slots = nullptr;
    int data_fd = -1;         // eventfd: "the ring became non-empty"
    int space_fd = -1;        // eventfd: "the ring became non-full"
    std::uint32_t own = 0;    // this side's index (tail when producing, head when consuming)
    std::uint32_t other = 0;  // the cached copy of the other side's index
};

class RingTransport final : public Transport {
public:
    RingTransport(WaitKind kind, OppositeIndex policy) : kind_(kind), policy_(policy) {}
    ~RingTransport() override { close_fds(); }

    Status prepare(const CaseParams& params) override {
        params_ = params;
        std::size_t depth = std::bit_floor(std::clamp<std::size_t>(params.queue_depth, 2, 1024));
        while (depth > 2 && depth * params.message_size > kRingBytesLimit)
            depth /= 2;
        depth_ = static_cast<std::uint32_t>(depth);
        ring_bytes_ = kPage + round_up(depth * params.message_size, kPage);
        if (Status s = mapping_.map(2 * ring_bytes_); !s) return s;
        for (int i = 0; i < 2; ++i) {
            RingSide& r = rings_[i];
            r.control = new (mapping_.base() + i * ring_bytes_) RingControl{};
            r.slots = mapping_.base() + i * ring_bytes_ + kPage;
            if (kind_ == WaitKind::eventfd) {
                r.data_fd = eventfd(0, EFD_CLOEXEC);
                r.space_fd = eventfd(0, EFD_CLOEXEC);
                if (r.data_fd < 0 || r.space_fd < 0) return Status::from_errno("eventfd", errno);
            }
        }
        return {};
    }

    std::string note() const override {
        if (depth_ < params_.queue_depth)
            return "ring depth " + std::to_string(depth_) + " (64 MiB of slots per ring)";
        return {};
    }

    Status open(Role role) override {
        // Ring 0 carries client→server, ring 1 server→client.
        out_ = &rings_[role == Role::client ? 0 : 1];
        in_ = &rings_[role == Role::client ? 1 : 0];
        return {};
    }

    Status send(std::span<const std::byte> message) override {
        RingSide& r = *out_;
        RingControl& c = *r.control;
        // (1) full as far as the cached head says? Re-read it; wait while still full.
        if (policy_ == OppositeIndex::reread || r.own - r.other >= depth_) {
            for (;;) {
                // SYNC POINT: acquire; pairs with the consumer's release of head in receive():
                // the consumer copied the slot out before it published head.
                r.other = c.head.value.load(std::memory_order_acquire);
                if (r.own - r.other < depth_) break;
                if (Status s = wait_while(kind_, c.head.value, r.other, c.producer_waiting.value,
                                          r.space_fd);
                    !s)
                    return s;
            }
        }
        // (2) copy in
        std::memcpy(r.slots + (r.own & (depth_ - 1)) * params_.message_size, message.data(),
                    message.size());
        ++r.own;
        // (3) SYNC POINT: release; pairs with the consumer's acquire of tail in receive().
        c.tail.value.store(r.own, publish_order(kind_));
        // (4)
        wake(kind_, c.tail.value, c.consumer_waiting.value, r.data_fd);
        return {};
    }

    Status receive(std::span<std::byte> message) override {
        RingSide& r = *in_;
        RingControl& c = *r.control;
        // (1) empty as far as the cached tail says? Re-read it; wait while still empty.
        if (policy_ == OppositeIndex::reread || r.own == r.other) {
            for (;;) {
                // SYNC POINT: acquire; pairs with the producer's release of tail in send().
                r.other = c.tail.value.load(std::memory_order_acquire);
                if (r.other - r.own > depth_)
                    return Status::fail("ring corrupt: tail " + std::to_string(r.other) +
                                        " is more than the depth ahead of head " +
                                        std::to_string(r.own));
                if (r.other != r.own) break;
                if (Status s = wait_while(kind_, c.tail.value, r.other, c.consumer_waiting.value,
                                          r.data_fd);
                    !s)
                    return s;
            }
        }
        // (2) copy out
        std::memcpy(message.data(), r.slots + (r.own & (depth_ - 1)) * params_.message_size,
                    message.size());
        ++r.own;
        // (3) SYNC POINT: release; pairs with the producer's acquire of head in send().
        c.head.value.store(r.own, publish_order(kind_));
        // (4)
        wake(kind_, c.head.value, c.producer_waiting.value, r.space_fd);
        return {};
    }

    void cleanup() override {
        close_fds();
        mapping_.release();
    }

private:
    void close_fds() {
        for (RingSide& r : rings_) {
            if (r.data_fd >= 0) ::close(r.data_fd);
            if (r.space_fd >= 0) ::close(r.space_fd);
            r.data_fd = r.space_fd = -1;
        }
    }

    WaitKind kind_;
    OppositeIndex policy_;
    std::uint32_t depth_ = 2;
    std::size_t ring_bytes_ = 0;
    SharedMapping mapping_;
    RingSide rings_[2];
    RingSide* out_ = nullptr;
    RingSide* in_ = nullptr;
};

// ---- Slot-sequence ring ----------------------------------------------------------------------

struct SlotHeader {
    std::atomic<std::uint32_t> seq{0};  // written by the producer: tail+1 of the message here
    std::uint32_t unused = 0;
};
static_assert(sizeof(SlotHeader) == 8, "the payload starts at +8, in the slot's first line");

class SlotRingTransport final : public Transport {
public:
    Status prepare(const CaseParams& params) override {
        params_ = params;
        stride_ = round_up(sizeof(SlotHeader) + params.message_size, 64);
        std::size_t depth = std::bit_floor(std::clamp<std::size_t>(params.queue_depth, 2, 1024));
        while (depth > 2 && depth * stride_ > kRingBytesLimit)
            depth /= 2;
        depth_ = static_cast<std::uint32_t>(depth);
        ring_bytes_ = kPage + round_up(depth * stride_, kPage);
        if (Status s = mapping_.map(2 * ring_bytes_); !s) return s;
        for (int i = 0; i < 2; ++i) {
            std::byte* base = mapping_.base() + i * ring_bytes_;
            rings_[i].control = new (base) RingControl{};
            rings_[i].slots = base + kPage;
            for (std::size_t k = 0; k < depth; ++k)
                new (rings_[i].slots + k * stride_) SlotHeader{};
        }
        return {};
    }

    std::string note() const override {
        if (depth_ < params_.queue_depth)
            return "ring depth " + std::to_string(depth_) + " (64 MiB of slots per ring)";
        return {};
    }

    Status open(Role role) override {
        out_ = &rings_[role == Role::client ? 0 : 1];
        in_ = &rings_[role == Role::client ? 1 : 0];
        return {};
    }

    Status send(std::span<const std::byte> message) override {
        RingSide& r = *out_;
        RingControl& c = *r.control;
        // (1) full as far as the cached head says? Re-read it; wait while still full.
        while (r.own - r.other >= depth_) {
            // SYNC POINT: acquire; pairs with the consumer's release of head in receive().
            r.other = c.head.value.load(std::memory_order_acquire);
            if (r.own - r.other < depth_) break;
            if (Status s =
                    wait_while(WaitKind::spin, c.head.value, r.other, c.producer_waiting.value, -1);
                !s)
                return s;
        }
        std::byte* slot = r.slots + (r.own & (depth_ - 1)) * stride_;
        // (2) copy in
        std::memcpy(slot + sizeof(SlotHeader), message.data(), message.size());
        ++r.own;
        // (3) SYNC POINT: release; pairs with the consumer's acquire of the slot's seq.
        header(slot).seq.store(r.own, std::memory_order_release);
        return {};
    }

    Status receive(std::span<std::byte> message) override {
        RingSide& r = *in_;
        std::byte* slot = r.slots + (r.own & (depth_ - 1)) * stride_;
        SlotHeader& h = header(slot);
        const std::uint32_t want = r.own + 1;
        // (1) wait for the slot's number
        for (;;) {
            // SYNC POINT: acquire; pairs with the producer's release of seq in send().
            const std::uint32_t seq = h.seq.load(std::memory_order_acquire);
            if (seq == want) break;
            if (seq != want - depth_ && seq != 0)
                return Status::fail("lost message: slot holds message " + std::to_string(seq) +
                                    ", expected " + std::to_string(want));
            if (Status s =
                    wait_while(WaitKind::spin, h.seq, seq, r.control->consumer_waiting.value, -1);
                !s)
                return s;
        }
        // (2) copy out
        std::memcpy(message.data(), slot + sizeof(SlotHeader), message.size());
        r.own = want;
        // (3) SYNC POINT: release; pairs with the producer's acquire of head in send().
        r.control->head.value.store(r.own, std::memory_order_release);
        return {};
    }

    void cleanup() override { mapping_.release(); }

private:
    static SlotHeader& header(std::byte* slot) {
        return *std::launder(reinterpret_cast<SlotHeader*>(slot));
    }

    std::uint32_t depth_ = 2;
    std::size_t stride_ = 64;
    std::size_t ring_bytes_ = 0;
    SharedMapping mapping_;
    RingSide rings_[2];
    RingSide* out_ = nullptr;
    RingSide* in_ = nullptr;
};

constexpr const char* kSameCoreSpinNote =
    "pure spin on one cpu: each wait lasts until the scheduler preempts the spinner (ms), so few "
    "round trips fit the time bound";

TransportInfo line_row(std::string name, std::string description, WaitKind kind,
                       std::size_t max_size) {
    TransportInfo info;
    info.name = std::move(name);
    info.description = std::move(description);
    info.group = "floor";
    info.max_message_size = max_size;
    info.streams = false;  // a mailbox holds one message: round trips only
    info.make = [kind] { return std::make_unique<LineTransport>(kind); };
    if (kind == WaitKind::spin) info.same_core_note = kSameCoreSpinNote;
    return info;
}

TransportInfo ring_row(std::string name, std::string description, std::string group, WaitKind kind,
                       OppositeIndex policy, std::size_t max_size) {
    TransportInfo info;
    info.name = std::move(name);
    info.description = std::move(description);
    info.group = std::move(group);
    info.max_message_size = max_size;
    info.make = [kind, policy] { return std::make_unique<RingTransport>(kind, policy); };
    if (kind == WaitKind::spin) info.same_core_note = kSameCoreSpinNote;
    return info;
}

}  // namespace

std::vector<TransportInfo> floor_transports() {
    constexpr std::size_t kMiB = std::size_t{1} << 20;
    return {
        line_row("spin_line",
                 "one 64-byte line per direction (sequence word + payload), busy-wait (pause)",
                 WaitKind::spin, kLineMaxSize),
        line_row("yield_line", "one 64-byte line per direction, busy-wait calling sched_yield",
                 WaitKind::yield, kMiB),
        line_row("futex_line", "one 64-byte line per direction, futex wait/wake on every wait",
                 WaitKind::futex, kMiB),
        ring_row("spin_ring", "Lamport ring caching the opposite index, busy-wait (pause)", "floor",
                 WaitKind::spin, OppositeIndex::cached, kLineMaxSize),
        ring_row("yield_ring",
                 "Lamport ring caching the opposite index, busy-wait calling "
                 "sched_yield",
                 "floor", WaitKind::yield, OppositeIndex::cached, kMiB),
        ring_row("futex_ring",
                 "Lamport ring caching the opposite index, futex wait/wake on every "
                 "wait",
                 "floor", WaitKind::futex, OppositeIndex::cached, kMiB),
        [] {
            TransportInfo info;
            info.name = "spin_slots";
            info.description =
                "ring whose 64-byte slots carry their own sequence word (FastForward), "
                "busy-wait (pause)";
            info.group = "floor";
            info.max_message_size = std::size_t{1} << 20;
            info.make = [] { return std::make_unique<SlotRingTransport>(); };
            info.same_core_note = kSameCoreSpinNote;
            return info;
        }(),
        ring_row("spin_ring_uncached",
                 "the same ring re-reading the opposite index on every "
                 "message, busy-wait (the previous spin floor)",
                 "floor", WaitKind::spin, OppositeIndex::reread, 48),
    };
}

std::vector<TransportInfo> eventfd_transports() {
    return {ring_row("eventfd", "shared-memory Lamport ring, eventfd read/write as the doorbell",
                     "peer", WaitKind::eventfd, OppositeIndex::cached, std::size_t{1} << 20)};
}

}  // namespace vipc::bench
