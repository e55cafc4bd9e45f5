// SPDX-License-Identifier: MIT OR Apache-2.0
// Fuzz target: corrupted shared segments and handshake messages fed to the receiving side.
//
// The first input byte picks what is fuzzed; the rest is what a hostile or crashed peer could
// have written. Every path must return an error or a well-formed message, never crash, hang
// or read out of bounds (ASan/UBSan watch):
//   0  a consumer over a data segment holding the input (tail, slots), popping while the
//      "producer" keeps changing the tail
//   1  a producer whose consumer head comes from the input
//   2  the consumer's wait (deadline already passed) over a corrupt segment
//   3  the client parsing a Welcome (with a fuzzed descriptor count and rights)
//   4  the server parsing a Hello, the client parsing a stat answer
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "posix/region_wire.hpp"
#include "posix/shm.hpp"
#include "posix/wire.hpp"

using namespace veridian::ipc;
using namespace veridian::ipc::posix::detail;

namespace {

class Cursor {
public:
    Cursor(const uint8_t* data, size_t size) : data_(data), size_(size) {}
    uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
    uint32_t u32() {
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i)
            v = (v << 8) | byte();
        return v;
    }
    const uint8_t* rest(size_t* n) const {
        *n = size_ - pos_;
        return data_ + pos_;
    }

private:
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
};

struct Segments {
    explicit Segments(RingGeometry g) : geometry(g) {
        data = static_cast<u8*>(std::aligned_alloc(PAGE_BYTES, g.data_bytes));
        ctl = static_cast<u8*>(std::aligned_alloc(PAGE_BYTES, g.ctl_bytes));
        std::memset(data, 0, g.data_bytes);
        std::memset(ctl, 0, g.ctl_bytes);
        header = new (data) RingDataHeader{};
        control = new (ctl) RingCtl{};
    }
    ~Segments() {
        std::free(data);
        std::free(ctl);
    }
    void fill_slots(const uint8_t* bytes, size_t n) {
        const size_t room = geometry.data_bytes - RING_HEADER_BYTES;
        for (size_t off = 0; n > 0 && off < room; off += n) {
            std::memcpy(data + RING_HEADER_BYTES + off, bytes, n < room - off ? n : room - off);
        }
    }
    RingGeometry geometry;
    u8* data;
    u8* ctl;
    RingDataHeader* header;
    RingCtl* control;
};

class NeverGone final : public WaitCheck {
public:
    Result<void> check(bool) override { return ok(); }
};

void check_message(const Message& m) {
    // A delivered message must be one of the two well-formed kinds.
    if (m.is_large()) {
        // A region is only named (its descriptor comes from the socket), and well-formed.
        if (!region_fields_valid(m.large_message())) __builtin_trap();
    } else if (!m.is_small()) {
        __builtin_trap();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Cursor in(data, size);
    const uint8_t mode = in.byte() % 5;
    const u32 depth = 1u << (in.byte() % 11);  // 1..1024
    const RingGeometry geometry = *RingGeometry::for_depth(depth);

    if (mode == 0 || mode == 2) {
        Segments seg(geometry);
        const u32 first_tail = in.u32();
        const u32 changes = in.byte();
        u32 tails[8];
        for (u32& t : tails)
            t = in.u32();
        size_t n;
        const uint8_t* body = in.rest(&n);
        seg.fill_slots(body, n);
        seg.header->tail.store(first_tail);
        RingConsumer consumer(geometry, seg.header, seg.control);
        if (mode == 2) {
            SpinBudget spin(0);
            NeverGone never;
            std::atomic<u32> cpu{0};
            (void)wait_for_data(consumer, spin, Deadline::past(), &cpu, never);
        }
        u32 taken = 0;
        for (u32 i = 0; i < depth + 4 && taken <= depth; ++i) {
            if (i < changes) seg.header->tail.store(tails[i % 8]);
            auto m = consumer.try_pop();
            if (m) {
                check_message(*m);
                ++taken;
            } else if (m.error() != IpcError::ChannelEmpty &&
                       m.error() != IpcError::InvalidMessage) {
                __builtin_trap();
            }
        }
        // Never more messages than the producer could have published within the depth
        // checks: each pop consumed a slot that a checked tail covered.
        (void)consumer.available();
        return 0;
    }

    if (mode == 1) {
        Segments seg(geometry);
        RingProducer producer(geometry, seg.header, seg.control);
        for (int round = 0; round < 16; ++round) {
            const uint8_t op = in.byte();
            if (op & 1) seg.control->head.store(in.u32());
            if (op & 2) {
                (void)producer.free_slots();
            } else {
                Message m = Message::small(in.u32(), in.u32());
                auto r = producer.try_push(m, in.u32());
                if (!r && r.error() != IpcError::ChannelFull &&
                    r.error() != IpcError::InvalidMessage) {
                    __builtin_trap();
                }
            }
            if (producer.queued() > depth) __builtin_trap();
        }
        return 0;
    }

    if (mode == 3) {
        const int fds = in.byte() % 9;
        const u16 rights = in.byte() & 3;
        size_t n;
        const uint8_t* bytes = in.rest(&n);
        auto w = parse_welcome(bytes, n, fds, rights);
        if (w) {
            if (!RingGeometry::for_depth(w->depth)) __builtin_trap();
            if (w->fd_bits != fd_bits_for_rights(rights)) __builtin_trap();
        }
        return 0;
    }

    size_t n;
    const uint8_t* bytes = in.rest(&n);
    (void)parse_hello(bytes, n);
    auto s = parse_stat_reply(bytes, n);
    if (s && s->connections > MAX_STAT_CONNECTIONS) __builtin_trap();
    if (n >= sizeof(ConnectionStatsWire)) {
        ConnectionStatsWire w;
        std::memcpy(&w, bytes, sizeof w);
        (void)from_wire(w);
    }
    return 0;
}
