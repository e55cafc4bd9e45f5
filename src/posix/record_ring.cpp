// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: the record ring (see record_ring.hpp for the protocol).
#include "posix/record_ring.hpp"

#include "posix/region_wire.hpp"

namespace veridian::ipc::posix::detail {

namespace {
constexpr usize round_up_to_page(usize bytes) {
    return (bytes + PAGE_BYTES - 1) / PAGE_BYTES * PAGE_BYTES;
}
constexpr u32 next_power_of_two(u32 v) {
    u32 p = 1;
    while (p < v)
        p <<= 1;
    return p;
}
bool power_of_two(u32 v) {
    return v != 0 && (v & (v - 1)) == 0;
}
// The shape words (kind, lines) are also read by the statistics walk (count_records), which
// may race with a rewrite: relaxed atomics, plain moves in the machine code.
void set_shape(RecordHeader* h, RecordKind kind, u32 lines,
               Attachment attachment = Attachment::None) {
    __atomic_store_n(&h->kind, static_cast<u8>(kind), __ATOMIC_RELAXED);
    h->attachment = static_cast<u8>(attachment);
    __atomic_store_n(&h->lines, static_cast<u16>(lines), __ATOMIC_RELAXED);
}
}  // namespace

Result<RingGeometry> RingGeometry::make(u32 depth, u32 max_inline_payload, u32 return_slots) {
    if (!power_of_two(depth) || depth > MAX_CHANNEL_QUEUE_SIZE ||
        max_inline_payload > MAX_INLINE_PAYLOAD_LIMIT ||
        (return_slots != 0 && (!power_of_two(return_slots) || return_slots > MAX_LOAN_SLOTS))) {
        return IpcError::InvalidMessage;
    }
    RingGeometry g;
    g.depth = depth;
    g.max_inline_payload = max_inline_payload;
    const u32 payload_lines = lines_for_payload(max_inline_payload);
    g.max_record_lines = payload_lines > LARGE_LINES ? payload_lines : LARGE_LINES;
    // depth one-line records plus the cleared line after them; and the largest record after
    // the worst padding (less than one record) plus the cleared line.
    const u32 for_depth = depth + 1;
    const u32 for_largest = 2 * g.max_record_lines + 1;
    g.ring_lines = next_power_of_two(for_depth > for_largest ? for_depth : for_largest);
    g.line_mask = g.ring_lines - 1;
    g.return_slots = return_slots;
    g.data_bytes = round_up_to_page(RING_HEADER_BYTES + usize{g.ring_lines} * LINE_BYTES);
    g.ctl_bytes = round_up_to_page(RING_HEADER_BYTES + usize{return_slots} * sizeof(u64));
    return g;
}

u32 normalize_depth(u32 requested) {
    if (requested <= 1) return 1;
    if (requested >= MAX_CHANNEL_QUEUE_SIZE) return MAX_CHANNEL_QUEUE_SIZE;
    return next_power_of_two(requested);
}

// ---- producer ----------------------------------------------------------------------------------

RecordProducer::RecordProducer(SharedWords& words, const RingGeometry& geometry,
                               RingDataHeader* data, const RingCtl* ctl)
    : words_(&words), geometry_(geometry), data_(data), ctl_(ctl), ends_(geometry.depth, 0) {
    stats_due_ = geometry.ring_lines / 4;
}

Result<void> RecordProducer::refresh_head() {
    // The head is the consumer's word: read it once, then check it moved forward by no more
    // than what we published (which also bounds tail - head by the ring).
    const u32 head = ctl_->head.load(std::memory_order_acquire);
    if (VIPC_UNLIKELY(head - head_seen_ > tail_ - head_seen_)) return IpcError::InvalidMessage;
    head_seen_ = head;
    // Records whose end the head passed are no longer in flight.
    const u32 mask = geometry_.depth - 1;
    while (acked_ != sent_ && static_cast<int32_t>(head - ends_[acked_ & mask]) >= 0)
        ++acked_;
    return ok();
}

Result<bool> RecordProducer::fits(u32 n) {
    const u32 index = tail_ & geometry_.line_mask;
    const u32 to_end = geometry_.ring_lines - index;
    const u32 pad = n > to_end ? to_end : 0;
    const u32 need = pad + n + 1;
    if (VIPC_LIKELY(sent_ - acked_ < geometry_.depth &&
                    tail_ - head_seen_ + need <= geometry_.ring_lines)) {
        return true;
    }
    VIPC_TRY(refresh_head());
    return sent_ - acked_ < geometry_.depth && tail_ - head_seen_ + need <= geometry_.ring_lines;
}

Result<u8*> RecordProducer::begin(u32 n) {
    // (P1)
    if (!VIPC_TRY(fits(n))) return IpcError::ChannelFull;
    const u32 index = tail_ & geometry_.line_mask;
    const u32 to_end = geometry_.ring_lines - index;
    pad_ = n > to_end ? to_end : 0;
    return reinterpret_cast<u8*>(line(tail_ + pad_));
}

void RecordProducer::publish(u32 n) {
    RecordHeader* first = line(tail_);
    // (P3) the line where the next record starts
    line(tail_ + pad_ + n)->seq.store(0, std::memory_order_relaxed);
    if (pad_ != 0) {
        // (P4) the record after the padding, then the padding itself is the publishing store
        RecordHeader* rec = line(tail_ + pad_);
        rec->seq.store(seq_for(tail_ + pad_), std::memory_order_relaxed);
        set_shape(first, RecordKind::Padding, pad_);
        first->txid = 0;
    }
    // (P5) SYNC POINT: pairs with the consumer's acquire in (C1)
    words_->publish(first->seq, seq_for(tail_));
    tail_ += pad_ + n;
    ends_[sent_ & (geometry_.depth - 1)] = tail_;
    ++sent_;
    pad_ = 0;
    // (P6) the tail: for a sleeping consumer, and lazily for statistics
    if (announced(*words_, ctl_->waiting_for_data)) {
        data_->tail.store(tail_, std::memory_order_seq_cst);
        words_->wake_all(&data_->tail);
        stats_due_ = geometry_.ring_lines / 4;
    } else if (stats_due_ <= n) {
        data_->tail.store(tail_, std::memory_order_relaxed);
        stats_due_ = geometry_.ring_lines / 4;
    } else {
        stats_due_ -= n;
    }
}

Result<void> RecordProducer::push_small(const SmallMessage& msg, u64 txid, Attachment attachment) {
    u8* at = VIPC_TRY(begin(1));
    auto* h = reinterpret_cast<RecordHeader*>(at);
    set_shape(h, RecordKind::Small, 1, attachment);
    h->txid = txid;
    std::memcpy(at + sizeof(RecordHeader), &msg, sizeof msg);  // (P2)
    publish(1);
    return ok();
}

Result<void> RecordProducer::push_large(const LargeMessage& msg, u64 txid, Attachment attachment,
                                        u64 remaining_ns) {
    u8* at = VIPC_TRY(begin(LARGE_LINES));
    auto* h = reinterpret_cast<RecordHeader*>(at);
    set_shape(h, RecordKind::Large, LARGE_LINES, attachment);
    h->txid = txid;
    std::memcpy(at + sizeof(RecordHeader), &msg, sizeof msg);
    std::memcpy(at + LARGE_REMAINING_OFFSET, &remaining_ns, sizeof remaining_ns);
    publish(LARGE_LINES);
    return ok();
}

Result<void> RecordProducer::push_payload(u64 capability, u32 opcode, u32 flags,
                                          std::span<const std::byte> payload, u64 txid,
                                          u64 remaining_ns) {
    const u32 length = static_cast<u32>(payload.size());
    const u32 n = lines_for_payload(length);
    u8* at = VIPC_TRY(begin(n));
    auto* h = reinterpret_cast<RecordHeader*>(at);
    set_shape(h, RecordKind::Payload, n);
    h->txid = txid;
    const PayloadHead head{capability, opcode, flags, length, 0, remaining_ns};
    std::memcpy(at + sizeof(RecordHeader), &head, sizeof head);
    if (length != 0) std::memcpy(at + PAYLOAD_OFFSET, payload.data(), length);  // the one copy in
    publish(n);
    return ok();
}

Result<void> RecordProducer::push_loan(const LoanDescriptor& loan, u64 txid) {
    u8* at = VIPC_TRY(begin(1));
    auto* h = reinterpret_cast<RecordHeader*>(at);
    set_shape(h, RecordKind::Loan, 1);
    h->txid = txid;
    std::memcpy(at + sizeof(RecordHeader), &loan, sizeof loan);
    publish(1);
    return ok();
}

// ---- consumer ----------------------------------------------------------------------------------

Result<bool> RecordConsumer::ready() const {
    const u32 s = line(head_)->seq.load(std::memory_order_acquire);
    if (s == 0) return false;
    if (VIPC_UNLIKELY(s != seq_for(head_))) return IpcError::InvalidMessage;
    return true;
}

Result<RecordView> RecordConsumer::peek() {
    for (;;) {
        // (C1) SYNC POINT: pairs with the producer's publishing store (P5)
        const RecordHeader* h = line(head_);
        const u32 s = h->seq.load(std::memory_order_acquire);
        if (s == 0) return IpcError::ChannelEmpty;
        if (VIPC_UNLIKELY(s != seq_for(head_))) return IpcError::InvalidMessage;
        // (C2) copy the header once, check the copy against the private geometry
        RecordView r;
        const u8 kind = __atomic_load_n(&h->kind, __ATOMIC_RELAXED);
        const u32 lines = __atomic_load_n(&h->lines, __ATOMIC_RELAXED);
        r.txid = h->txid;
        r.attachment = __atomic_load_n(&h->attachment, __ATOMIC_RELAXED) ==
                               static_cast<u8>(Attachment::OnSocket)
                           ? Attachment::OnSocket
                           : Attachment::None;
        const u32 index = head_ & geometry_.line_mask;
        const u32 to_end = geometry_.ring_lines - index;
        if (lines == 0 || lines > to_end) return IpcError::InvalidMessage;
        if (kind == static_cast<u8>(RecordKind::Padding)) {
            // Padding always runs to the ring's end and is shorter than the largest record.
            if (lines != to_end || lines >= geometry_.max_record_lines) {
                return IpcError::InvalidMessage;
            }
            head_ += lines;  // not published: the record after it finishes both
            continue;
        }
        r.lines = lines;
        r.body = reinterpret_cast<const u8*>(h) + sizeof(RecordHeader);
        switch (static_cast<RecordKind>(kind)) {
            case RecordKind::Small:
                if (lines != 1) return IpcError::InvalidMessage;
                r.kind = RecordKind::Small;
                return r;
            case RecordKind::Large:
                if (lines != LARGE_LINES) return IpcError::InvalidMessage;
                r.kind = RecordKind::Large;
                std::memcpy(&r.remaining_ns,
                            reinterpret_cast<const u8*>(h) + LARGE_REMAINING_OFFSET,
                            sizeof r.remaining_ns);
                return r;
            case RecordKind::Loan:
                if (lines != 1) return IpcError::InvalidMessage;
                r.kind = RecordKind::Loan;
                return r;
            case RecordKind::Payload: {
                std::memcpy(&r.payload_head, r.body, sizeof(PayloadHead));
                const u32 length = r.payload_head.length;
                if (length > geometry_.max_inline_payload || lines != lines_for_payload(length)) {
                    return IpcError::InvalidMessage;
                }
                r.kind = RecordKind::Payload;
                r.payload = reinterpret_cast<const std::byte*>(h) + PAYLOAD_OFFSET;
                r.remaining_ns = r.payload_head.remaining_ns;
                return r;
            }
            default:
                return IpcError::InvalidMessage;
        }
    }
}

void RecordConsumer::finish(const RecordView& record) {
    head_ += record.lines;
    // (C4) the head: the producer reads it only when it thinks the ring is full, or sleeps
    words_->publish(ctl_->head, head_);
    if (announced(*words_, data_->waiting_for_space)) {
        ctl_->space_wake.fetch_add(1, std::memory_order_seq_cst);  // only for a sleeper
        words_->wake_all(&ctl_->space_wake);
    }
}

void close_producer_side(SharedWords& words, RingDataHeader* data, u32 value) {
    data->closed.store(value, std::memory_order_seq_cst);
    data->tail.fetch_add(1, std::memory_order_seq_cst);
    words.wake_all(&data->tail);
}

void close_consumer_side(SharedWords& words, RingCtl* ctl, u32 value) {
    ctl->closed.store(value, std::memory_order_seq_cst);
    ctl->space_wake.fetch_add(1, std::memory_order_seq_cst);
    words.wake_all(&ctl->space_wake);
}

u32 count_records(const RingGeometry& g, const RingDataHeader* data, const RingCtl* ctl) {
    const u8* base = reinterpret_cast<const u8*>(data) + RING_HEADER_BYTES;
    u32 pos = ctl->head.load(std::memory_order_acquire);
    u32 count = 0;
    for (u32 steps = 0; count < g.depth && steps < 2 * g.depth + 2; ++steps) {
        const u32 index = pos & g.line_mask;
        const auto* h = reinterpret_cast<const RecordHeader*>(base + usize{index} * LINE_BYTES);
        if (h->seq.load(std::memory_order_acquire) != seq_for(pos)) break;
        const u32 lines = __atomic_load_n(&h->lines, __ATOMIC_RELAXED);
        if (lines == 0 || lines > g.ring_lines - index) break;
        if (__atomic_load_n(&h->kind, __ATOMIC_RELAXED) != static_cast<u8>(RecordKind::Padding)) {
            ++count;
        }
        pos += lines;
    }
    return count;
}

Result<Message> RecordConsumer::to_message(const RecordView& record) {
    Message msg;
    if (record.kind == RecordKind::Small) {
        SmallMessage m;
        std::memcpy(&m, record.body, sizeof m);
        msg = Message(m);
    } else if (record.kind == RecordKind::Large) {
        LargeMessage m;
        std::memcpy(&m, record.body, sizeof m);
        // A region (size != 0) is resolved by the caller from the connection's socket.
        if (!region_fields_valid(m)) return IpcError::InvalidMessage;
        msg = Message(m);
    } else if (record.kind == RecordKind::Payload &&
               record.payload_head.length <= LARGE_MESSAGE_INLINE_BYTES) {
        // A short payload record reads as a LargeMessage with inline bytes.
        LargeMessage m{};
        m.header.capability = record.payload_head.capability;
        m.header.opcode = record.payload_head.opcode;
        m.header.flags = record.payload_head.flags;
        m.header.total_size = record.payload_head.length;
        std::memcpy(m.inline_data, record.payload, record.payload_head.length);
        msg = Message(m);
    } else {
        return IpcError::MessageTooLarge;
    }
    msg.set_transaction_id(record.txid);
    return msg;
}

}  // namespace veridian::ipc::posix::detail
