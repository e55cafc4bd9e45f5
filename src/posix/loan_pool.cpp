// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: loan pools (see loan_pool.hpp for the protocol).
#include "posix/loan_pool.hpp"

namespace veridian::ipc::posix::detail {

namespace {
u64* return_queue(const RingCtl* ctl) {
    return reinterpret_cast<u64*>(reinterpret_cast<u8*>(const_cast<RingCtl*>(ctl)) +
                                  RING_HEADER_BYTES);
}
u64 round_up(u64 v) {
    return (v + LOAN_ALIGN - 1) / LOAN_ALIGN * LOAN_ALIGN;
}
}  // namespace

// ---- producer ----------------------------------------------------------------------------------

void LoanPool::attach(SharedWords& words, u8* base, u64 bytes, u32 slots, const RingCtl* ctl) {
    words_ = &words;
    base_ = base;
    bytes_ = bytes;
    mask_ = slots - 1;
    ctl_ = ctl;
    returns_ = return_queue(ctl);
    slots_.assign(slots, Slot{});
    free_slots_.clear();
    for (u32 i = slots; i > 0; --i)
        free_slots_.push_back(i - 1);
    free_.clear();
    free_.reserve(slots + 1);
    free_.push_back(Range{0, bytes});
}

Result<void> LoanPool::drain_returns() {
    // (D1)
    const u32 r = ctl_->released.load(std::memory_order_acquire);
    if (VIPC_UNLIKELY(r - read_ > mask_ + 1)) {
        return fail(IpcError::InvalidMessage, "the peer returned more loans than it can hold");
    }
    // (D2)
    for (; read_ != r; ++read_) {
        const u64 id = __atomic_load_n(&returns_[read_ & mask_], __ATOMIC_RELAXED);
        const u32 slot = static_cast<u32>(id);
        const u32 generation = static_cast<u32>(id >> 32);
        if (slot > mask_ || slots_[slot].state != Slot::State::Sent ||
            slots_[slot].generation != generation) {
            return fail(IpcError::InvalidMessage,
                        "the peer returned a loan it does not hold (slot %u, generation %u)", slot,
                        generation);
        }
        Slot& s = slots_[slot];
        sent_bytes_ -= s.bytes;
        --chunks_out_;
        free_range(s.offset, s.bytes);
        s.state = Slot::State::Free;
        free_slots_.push_back(slot);
    }
    return ok();
}

void LoanPool::free_range(u64 offset, u64 bytes) {
    // Insert, keeping free_ sorted and coalesced (at most slots + 1 ranges: no allocation).
    usize i = 0;
    while (i < free_.size() && free_[i].offset < offset)
        ++i;
    const bool joins_before = i > 0 && free_[i - 1].offset + free_[i - 1].bytes == offset;
    const bool joins_after = i < free_.size() && offset + bytes == free_[i].offset;
    if (joins_before && joins_after) {
        free_[i - 1].bytes += bytes + free_[i].bytes;
        free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
    } else if (joins_before) {
        free_[i - 1].bytes += bytes;
    } else if (joins_after) {
        free_[i].offset = offset;
        free_[i].bytes += bytes;
    } else {
        free_.insert(free_.begin() + static_cast<std::ptrdiff_t>(i), Range{offset, bytes});
    }
}

Result<bool> LoanPool::can_take(usize size) {
    VIPC_TRY(drain_returns());
    if (free_slots_.empty()) return false;
    const u64 want = round_up(size == 0 ? 1 : size);
    for (const Range& r : free_) {
        if (r.bytes >= want) return true;
    }
    return false;
}

Result<Loan> LoanPool::take(usize size) {
    const u64 want = round_up(size == 0 ? 1 : size);
    if (want > bytes_) {
        return fail(IpcError::MessageTooLarge,
                    "a %zu-byte loan is larger than the %llu-byte pool (ConnectOptions / "
                    "ServerOptions::pool_bytes)",
                    size, static_cast<unsigned long long>(bytes_));
    }
    VIPC_TRY(drain_returns());
    if (!free_slots_.empty()) {
        for (usize i = 0; i < free_.size(); ++i) {  // first fit
            if (free_[i].bytes < want) continue;
            const u64 offset = free_[i].offset;
            free_[i].offset += want;
            free_[i].bytes -= want;
            if (free_[i].bytes == 0) free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
            const u32 slot = free_slots_.back();
            free_slots_.pop_back();
            Slot& s = slots_[slot];
            s.offset = offset;
            s.bytes = want;
            ++s.generation;
            s.state = Slot::State::Lent;
            lent_bytes_ += want;
            ++chunks_out_;
            Loan loan;
            loan.bytes = std::span<std::byte>(reinterpret_cast<std::byte*>(base_ + offset), size);
            loan.id = loan_id(slot, s.generation);
            return loan;
        }
    }
    return fail(IpcError::ResourceBusy,
                "the loan pool is full (%u chunks out, %llu of %llu bytes): release received "
                "loans on the other side, or wait with a deadline",
                chunks_out_, static_cast<unsigned long long>(lent_bytes_ + sent_bytes_),
                static_cast<unsigned long long>(bytes_));
}

const LoanPool::Slot* LoanPool::lent(LoanId id) const {
    const u32 slot = static_cast<u32>(id);
    if (slot > mask_ || !valid()) return nullptr;
    const Slot& s = slots_[slot];
    if (s.state != Slot::State::Lent || s.generation != static_cast<u32>(id >> 32)) return nullptr;
    return &s;
}

Result<LoanDescriptor> LoanPool::describe(LoanId id, usize length) const {
    const Slot* s = lent(id);
    if (s == nullptr) {
        return fail(IpcError::InvalidCapability,
                    "not a loan of this connection that is lent out (sent or cancelled already?)");
    }
    if (length > s->bytes) {
        return fail(IpcError::MessageTooLarge, "%zu bytes do not fit the %llu-byte loan", length,
                    static_cast<unsigned long long>(s->bytes));
    }
    LoanDescriptor d{};
    d.offset = s->offset;
    d.length = length;
    d.slot = static_cast<u32>(id);
    d.generation = s->generation;
    return d;
}

void LoanPool::mark_sent(LoanId id) {
    Slot& s = slots_[static_cast<u32>(id)];
    s.state = Slot::State::Sent;
    lent_bytes_ -= s.bytes;
    sent_bytes_ += s.bytes;
}

Result<void> LoanPool::cancel(LoanId id) {
    const Slot* found = lent(id);
    if (found == nullptr) {
        return fail(IpcError::InvalidCapability, "not a loan of this connection that is lent out");
    }
    const u32 slot = static_cast<u32>(id);
    Slot& s = slots_[slot];
    lent_bytes_ -= s.bytes;
    --chunks_out_;
    free_range(s.offset, s.bytes);
    s.state = Slot::State::Free;
    free_slots_.push_back(slot);
    return ok();
}

// ---- consumer ----------------------------------------------------------------------------------

void LoanHoldings::attach(SharedWords& words, const u8* base, u64 bytes, u32 slots, RingCtl* ctl,
                          const RingDataHeader* data) {
    words_ = &words;
    base_ = base;
    bytes_ = bytes;
    slots_ = slots;
    ctl_ = ctl;
    data_ = data;
    returns_ = return_queue(ctl);
    held_.assign(slots, Held{});
}

Result<std::span<const std::byte>> LoanHoldings::accept(const LoanDescriptor& d) {
    // Checked against the private geometry only: the descriptor is the peer's.
    if (!valid() || d.slot >= slots_ || d.offset % LOAN_ALIGN != 0 || d.length > bytes_ ||
        d.offset > bytes_ - d.length || held_[d.slot].generation_plus_one != 0) {
        return fail(IpcError::InvalidMessage,
                    "the peer sent a bad loan (slot %u, offset %llu, %llu bytes)", d.slot,
                    static_cast<unsigned long long>(d.offset),
                    static_cast<unsigned long long>(d.length));
    }
    held_[d.slot] = Held{d.generation + 1, d.length};
    held_bytes_ += d.length;
    return std::span<const std::byte>(reinterpret_cast<const std::byte*>(base_ + d.offset),
                                      d.length);
}

Result<void> LoanHoldings::release(LoanId id) {
    const u32 slot = static_cast<u32>(id);
    const u32 generation = static_cast<u32>(id >> 32);
    if (!valid() || slot >= slots_ || held_[slot].generation_plus_one != generation + 1) {
        return fail(IpcError::InvalidCapability,
                    "this loan is not held here (released twice, or never received)");
    }
    held_bytes_ -= held_[slot].bytes;
    held_[slot] = Held{};
    // (R1)-(R3)
    __atomic_store_n(&returns_[written_ & (slots_ - 1)], id, __ATOMIC_RELAXED);
    ++written_;
    words_->publish(ctl_->released, written_);
    if (announced(*words_, data_->waiting_for_space)) {
        ctl_->space_wake.fetch_add(1, std::memory_order_seq_cst);
        words_->wake_all(&ctl_->space_wake);
    }
    return ok();
}

}  // namespace veridian::ipc::posix::detail
