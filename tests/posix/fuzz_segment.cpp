// SPDX-License-Identifier: MIT OR Apache-2.0
// Fuzz target: corrupted shared segments and handshake messages fed to the receiving side.
//
// The first input byte picks what is fuzzed; the rest is what a hostile or crashed peer could
// have written. Every path must return an error or a well-formed message, never crash, hang
// or read out of bounds (ASan/UBSan watch):
//   0  a consumer walking a record ring whose lines hold the input (with valid sequence
//      words where the input says), with the endpoint's inline limit from the input
//   1  a producer whose consumer head comes from the input, pushing small and payload records
//   2  the consumer's park() (deadline already passed) over a corrupt ring, then the walk
//   3  the client parsing a Welcome (with a fuzzed descriptor count and rights)
//   4  the server parsing a Hello, the client parsing a stat answer
//   5  loan descriptors checked by the consumer, loan returns read by the producer
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "posix/loan_pool.hpp"
#include "posix/parking.hpp"
#include "posix/record_ring.hpp"
#include "posix/region_wire.hpp"
#include "posix/wire.hpp"

using namespace veridian::ipc;
using namespace veridian::ipc::posix;
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

platform::SharedWords& words() {
    return platform::ProcessSharedWords::instance();
}

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
    void fill_lines(const uint8_t* bytes, size_t n) {
        const size_t room = geometry.data_bytes - RING_HEADER_BYTES;
        for (size_t off = 0; n > 0 && off < room; off += n) {
            std::memcpy(data + RING_HEADER_BYTES + off, bytes, n < room - off ? n : room - off);
        }
    }
    // Makes the sequence words the input names valid, so the walk goes deep.
    void stamp(u32 line, u32 index) {
        auto* h = reinterpret_cast<RecordHeader*>(data + RING_HEADER_BYTES +
                                                  usize{line & geometry.line_mask} * LINE_BYTES);
        h->seq.store(seq_for(index));
    }
    RingGeometry geometry;
    u8* data;
    u8* ctl;
    RingDataHeader* header;
    RingCtl* control;
};

// The consumer's "data" wait over the fuzzed ring (deadline already passed).
class Data final : public Parking {
public:
    explicit Data(RecordConsumer& ring) : ring_(ring) {}
    Result<bool> ready() override { return ring_.ready(); }
    Result<void> check(bool) override { return ok(); }
    std::atomic<u32>& flag() override { return ring_.ctl()->waiting_for_data; }
    const std::atomic<u32>& word() override { return ring_.data()->tail; }

private:
    RecordConsumer& ring_;
};

void check_record(const RecordView& r, const RingGeometry& g, const Segments& seg) {
    // Whatever the consumer accepts lies inside the ring and matches its kind.
    const u8* begin = seg.data + RING_HEADER_BYTES;
    const u8* end = begin + usize{g.ring_lines} * LINE_BYTES;
    const u8* first = r.body - sizeof(RecordHeader);
    if (first < begin || first + usize{r.lines} * LINE_BYTES > end) __builtin_trap();
    if (r.kind == RecordKind::Payload) {
        if (r.payload_head.length > g.max_inline_payload) __builtin_trap();
        const auto* p = reinterpret_cast<const u8*>(r.payload);
        if (p + r.payload_head.length > end) __builtin_trap();
    }
    auto m = RecordConsumer::to_message(r);
    if (m && m->is_large() && !region_fields_valid(m->large_message())) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Cursor in(data, size);
    const uint8_t mode = in.byte() % 6;
    const u32 depth = 1u << (in.byte() % 11);  // 1..1024
    const u32 max_inline = (u32{in.byte()} << 8 | in.byte()) % (MAX_INLINE_PAYLOAD_LIMIT + 1);
    const RingGeometry geometry = *RingGeometry::make(depth, max_inline, 0);

    if (mode == 0 || mode == 2) {
        Segments seg(geometry);
        u32 stamps[8];
        for (u32& t : stamps)
            t = in.u32();
        size_t n;
        const uint8_t* body = in.rest(&n);
        seg.fill_lines(body, n);
        // Valid sequence words at lines the input names (each the index a walk would reach
        // if the records before it have the lines they claim).
        for (u32 t : stamps)
            seg.stamp(t % geometry.ring_lines, t % geometry.ring_lines);
        RecordConsumer consumer(words(), geometry, seg.header, seg.control);
        if (mode == 2) {
            SpinBudget spin(0);
            Data role(consumer);
            (void)park(words(), role, spin, Deadline::past());
        }
        for (u32 i = 0; i < depth + 4; ++i) {
            auto r = consumer.peek();
            if (!r) {
                if (r.error() != IpcError::ChannelEmpty && r.error() != IpcError::InvalidMessage) {
                    __builtin_trap();
                }
                break;
            }
            check_record(*r, geometry, seg);
            consumer.finish(*r);
        }
        (void)count_records(geometry, seg.header, seg.control);
        return 0;
    }

    if (mode == 1) {
        Segments seg(geometry);
        RecordProducer producer(words(), geometry, seg.header, seg.control);
        std::byte payload[MAX_INLINE_PAYLOAD_LIMIT];
        std::memset(payload, 0x5A, sizeof payload);
        for (int round = 0; round < 16; ++round) {
            const uint8_t op = in.byte();
            if (op & 1) seg.control->head.store(in.u32());
            Result<void> r = ok();
            if (op & 2) {
                const u32 length = in.u32() % (max_inline + 1);
                r = producer.push_payload(0, in.u32(), 0,
                                          std::span<const std::byte>(payload, length), in.u32());
            } else {
                r = producer.push_small(Message::small(in.u32(), in.u32()).small_message(),
                                        in.u32());
            }
            if (!r && r.error() != IpcError::ChannelFull && r.error() != IpcError::InvalidMessage) {
                __builtin_trap();
            }
            if (producer.queued() > depth) __builtin_trap();
        }
        return 0;
    }

    if (mode == 5) {
        // Loan descriptors from a hostile producer and loan returns from a hostile consumer.
        constexpr u64 POOL = 1 << 16;
        static u8 pool_memory[POOL];
        alignas(64) static u8 ctl_page[4096];
        alignas(64) static u8 data_page[128];
        std::memset(ctl_page, 0, sizeof ctl_page);
        std::memset(data_page, 0, sizeof data_page);
        auto* ctl = new (ctl_page) RingCtl{};
        auto* data_header = new (data_page) RingDataHeader{};
        LoanHoldings holdings;
        holdings.attach(words(), pool_memory, POOL, LOAN_SLOTS, ctl, data_header);
        LoanPool pool;
        pool.attach(words(), pool_memory, POOL, LOAN_SLOTS, ctl);
        for (int round = 0; round < 32; ++round) {
            LoanDescriptor d{};
            d.offset = u64{in.u32()} << (in.byte() % 16);
            d.length = u64{in.u32()} << (in.byte() % 16);
            d.slot = in.u32() % (2 * LOAN_SLOTS);
            d.generation = in.u32();
            auto view = holdings.accept(d);
            if (view) {
                const auto* p = reinterpret_cast<const u8*>(view->data());
                if (p < pool_memory || p + view->size() > pool_memory + POOL) __builtin_trap();
                volatile u8 sink = view->empty() ? 0 : p[view->size() - 1];
                (void)sink;
                if (in.byte() & 1) (void)holdings.release(loan_id(d.slot, d.generation));
            }
            // The producer: take and send chunks, read fuzzed returns.
            const u8 op = in.byte();
            if (op & 1) {
                auto l = pool.take(in.u32() % (POOL + 1));
                if (l) {
                    auto desc = pool.describe(l->id, l->bytes.size());
                    if (desc && (op & 2)) pool.mark_sent(l->id);
                }
            }
            if (op & 4) {
                auto* returns = reinterpret_cast<u64*>(ctl_page + RING_HEADER_BYTES);
                returns[in.byte() % LOAN_SLOTS] = u64{in.u32()} << 32 | in.u32();
                ctl->released.store(ctl->released.load() + in.byte() % 4);
            }
            (void)pool.can_take(in.u32() % (POOL + 1));
            if (pool.lent_bytes() + pool.sent_bytes() > POOL) __builtin_trap();
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
            if (!RingGeometry::make(w->depth, w->max_inline_payload, 0)) __builtin_trap();
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
