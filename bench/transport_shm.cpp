// Shared-memory ring transports: the floors (spin, spin+yield, futex) and eventfd.
//
// All four move messages through the same pair of single-producer/single-consumer rings in
// anonymous shared memory (one ring per direction, mapped before the fork); they differ only
// in how a side waits for the other:
//   spin        busy-wait with the pause instruction: the latency floor across cores
//   spin_yield  busy-wait calling sched_yield(): the floor when both share one cpu
//   futex       sleep in FUTEX_WAIT every time, FUTEX_WAKE when the peer may sleep
//   eventfd     sleep in read() on an eventfd, write() it when the peer may sleep
//
// Ring protocol (per direction): `tail` counts published messages and is written only by the
// producer, `head` counts consumed messages and is written only by the consumer; both wrap at
// 2^32 and the depth is a power of two, so `tail - head` is the fill level.
//   send:    (1) wait while full  (2) copy into slot[tail % depth]  (3) publish tail+1
//            (4) wake the consumer if it announced that it sleeps
//   receive: (1) wait while empty (2) copy out of slot[head % depth]  (3) release head+1
//            (4) wake the producer if it announced that it sleeps
// A sleeping waiter (futex, eventfd) announces itself in a `waiting` word, re-checks the index
// and only then sleeps; the waker publishes the index before it reads `waiting`. Both sides use
// sequentially consistent operations there, so one of them always sees the other: no lost
// wakeup. A stale eventfd count only causes one extra re-check.
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

enum class WaitKind { spin, spin_yield, futex, eventfd };

// A waiter that sees no progress for this long gives up instead of waiting forever.
constexpr auto kStallLimit = std::chrono::seconds(20);
constexpr std::size_t kRingBytesLimit = 64u << 20;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

struct alignas(64) Word {
    std::atomic<std::uint32_t> value{0};
};

struct RingHeader {
    Word tail;              // written by the producer
    Word head;              // written by the consumer
    Word consumer_waiting;  // 1 while the consumer may sleep on `tail`
    Word producer_waiting;  // 1 while the producer may sleep on `head`
};

// One direction. The memory is shared; this struct only holds pointers into it and the fds.
struct Ring {
    RingHeader* header = nullptr;
    std::byte* slots = nullptr;
    int data_fd = -1;   // eventfd: "the ring became non-empty"
    int space_fd = -1;  // eventfd: "the ring became non-full"
};

int futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value, const timespec* timeout) {
    return static_cast<int>(
        syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, timeout, nullptr, 0));
}

class ShmRingTransport final : public Transport {
public:
    explicit ShmRingTransport(WaitKind kind) : kind_(kind) {}
    ~ShmRingTransport() override { release(); }

    Status prepare(const CaseParams& params) override {
        params_ = params;
        std::size_t depth = std::bit_floor(std::clamp<std::size_t>(params.queue_depth, 2, 1024));
        while (depth > 2 && depth * params.message_size > kRingBytesLimit)
            depth /= 2;
        depth_ = static_cast<std::uint32_t>(depth);
        ring_bytes_ = sizeof(RingHeader) + depth * params.message_size;
        map_bytes_ = 2 * ring_bytes_;
        void* p =
            mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return Status::from_errno("mmap shared ring", errno);
        map_ = static_cast<std::byte*>(p);
        for (int i = 0; i < 2; ++i) {
            Ring& r = rings_[i];
            r.header = new (map_ + i * ring_bytes_) RingHeader{};
            r.slots = map_ + i * ring_bytes_ + sizeof(RingHeader);
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
            return "ring depth " + std::to_string(depth_) + " (64 MiB per ring)";
        return {};
    }

    Status open(Role role) override {
        // Ring 0 carries client→server, ring 1 server→client.
        out_ = &rings_[role == Role::client ? 0 : 1];
        in_ = &rings_[role == Role::client ? 1 : 0];
        return {};
    }

    Status send(std::span<const std::byte> message) override {
        RingHeader& h = *out_->header;
        const std::uint32_t tail = h.tail.value.load(std::memory_order_relaxed);
        // (1) wait while full
        for (;;) {
            const std::uint32_t head = h.head.value.load(std::memory_order_acquire);
            if (tail - head < depth_) break;
            if (Status s = wait_while(h.head.value, head, h.producer_waiting.value, out_->space_fd);
                !s)
                return s;
        }
        // (2) copy, (3) publish, (4) wake
        std::memcpy(out_->slots + (tail & (depth_ - 1)) * params_.message_size, message.data(),
                    message.size());
        h.tail.value.store(tail + 1, publish_order());
        wake(h.tail.value, h.consumer_waiting.value, out_->data_fd);
        return {};
    }

    Status receive(std::span<std::byte> message) override {
        RingHeader& h = *in_->header;
        const std::uint32_t head = h.head.value.load(std::memory_order_relaxed);
        // (1) wait while empty
        for (;;) {
            const std::uint32_t tail = h.tail.value.load(std::memory_order_acquire);
            if (tail != head) break;
            if (Status s = wait_while(h.tail.value, tail, h.consumer_waiting.value, in_->data_fd);
                !s)
                return s;
        }
        // (2) copy, (3) release the slot, (4) wake
        std::memcpy(message.data(), in_->slots + (head & (depth_ - 1)) * params_.message_size,
                    message.size());
        h.head.value.store(head + 1, publish_order());
        wake(h.head.value, h.producer_waiting.value, in_->space_fd);
        return {};
    }

    void cleanup() override { release(); }

private:
    // Returns once `word` no longer holds `observed` (or may not: callers re-check).
    Status wait_while(std::atomic<std::uint32_t>& word, std::uint32_t observed,
                      std::atomic<std::uint32_t>& waiting, int fd) {
        const auto start = std::chrono::steady_clock::now();
        switch (kind_) {
            case WaitKind::spin:
            case WaitKind::spin_yield:
                for (std::uint64_t i = 1;; ++i) {
                    if (word.load(std::memory_order_acquire) != observed) return {};
                    if (kind_ == WaitKind::spin)
                        cpu_relax();
                    else
                        sched_yield();
                    if ((i & 0xffff) == 0 && std::chrono::steady_clock::now() - start > kStallLimit)
                        return Status::fail("peer made no progress for 20 s");
                }
            case WaitKind::futex:
            case WaitKind::eventfd:
                for (;;) {
                    // Announce, re-check, then sleep (see the protocol at the top).
                    waiting.store(1, std::memory_order_seq_cst);
                    if (word.load(std::memory_order_seq_cst) != observed) {
                        waiting.store(0, std::memory_order_relaxed);
                        return {};
                    }
                    if (kind_ == WaitKind::futex) {
                        const timespec one_second{1, 0};
                        if (futex(&word, FUTEX_WAIT, observed, &one_second) != 0 &&
                            errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT)
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
        return {};
    }

    // A sleeping waiter pairs its `waiting` store and index load with the waker's index store
    // and `waiting` load (see the protocol at the top): all four must be sequentially
    // consistent. A spinning waiter needs only release/acquire.
    std::memory_order publish_order() const {
        return kind_ == WaitKind::spin || kind_ == WaitKind::spin_yield ? std::memory_order_release
                                                                        : std::memory_order_seq_cst;
    }

    void wake(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& waiting, int fd) {
        if (kind_ == WaitKind::spin || kind_ == WaitKind::spin_yield) return;
        if (waiting.load(std::memory_order_seq_cst) == 0) return;
        if (kind_ == WaitKind::futex) {
            futex(&word, FUTEX_WAKE, 1, nullptr);
        } else {
            const std::uint64_t one = 1;
            // Cannot fail: the counter stays far below its limit (one write per message).
            if (write(fd, &one, sizeof one) < 0) return;
        }
    }

    void release() {
        for (Ring& r : rings_) {
            if (r.data_fd >= 0) ::close(r.data_fd);
            if (r.space_fd >= 0) ::close(r.space_fd);
            r = Ring{};
        }
        if (map_ != nullptr) munmap(map_, map_bytes_);
        map_ = nullptr;
    }

    WaitKind kind_;
    std::uint32_t depth_ = 2;
    std::size_t ring_bytes_ = 0;
    std::size_t map_bytes_ = 0;
    std::byte* map_ = nullptr;
    Ring rings_[2];
    Ring* out_ = nullptr;
    Ring* in_ = nullptr;
};

TransportInfo ring_row(std::string name, std::string description, std::string group,
                       WaitKind kind) {
    TransportInfo info;
    info.name = std::move(name);
    info.description = std::move(description);
    info.group = std::move(group);
    info.max_message_size = std::size_t{1} << 20;
    info.make = [kind] { return std::make_unique<ShmRingTransport>(kind); };
    return info;
}

}  // namespace

std::vector<TransportInfo> floor_transports() {
    std::vector<TransportInfo> rows;
    rows.push_back(
        ring_row("spin", "shared-memory ring, busy-wait (pause)", "floor", WaitKind::spin));
    rows.back().same_core_note =
        "pure spin on one cpu: each wait lasts until the scheduler preempts the spinner "
        "(ms), so few round trips fit the time bound";
    rows.push_back(ring_row("spin_yield", "shared-memory ring, busy-wait calling sched_yield",
                            "floor", WaitKind::spin_yield));
    rows.push_back(ring_row("futex", "shared-memory ring, futex wait/wake on every wait", "floor",
                            WaitKind::futex));
    return rows;
}

std::vector<TransportInfo> eventfd_transports() {
    return {ring_row("eventfd", "shared-memory ring, eventfd read/write as the doorbell", "peer",
                     WaitKind::eventfd)};
}

}  // namespace vipc::bench
