// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: the producer side of a ring (see outbox.hpp).
#include "posix/outbox.hpp"

#include "posix/parked_count.hpp"

#include <chrono>
#include <thread>

namespace veridian::ipc::posix::detail {

Result<void> check_sendable(const Message& msg) {
    if (msg.is_large()) {
        const LargeMessage& m = msg.large_message();
        if (m.region.size != 0) return IpcError::InvalidMemoryRegion;
        if (m.header.total_size > LARGE_MESSAGE_INLINE_BYTES) return IpcError::MessageTooLarge;
    }
    return ok();
}

u32 OutgoingRecord::lines() const {
    if (kind == Kind::Payload) return lines_for_payload(static_cast<u32>(payload.size()));
    if (kind == Kind::Loan) return 1;
    return message->is_small() ? 1 : LARGE_LINES;
}

u64 OutgoingRecord::charged_bytes() const {
    if (kind == Kind::Payload) return payload.size();
    if (kind == Kind::Loan) return loan_length;
    return message->is_small() ? sizeof(SmallMessage) : message->large_message().header.total_size;
}

void Outbox::attach(SharedWords& words, const RingGeometry& geometry, RingDataHeader* data,
                    const RingCtl* ctl, u32 spin_ns) {
    words_ = &words;
    ring_ = RecordProducer(words, geometry, data, ctl);
    spin_ = SpinBudget(spin_ns);
    valid_ = true;
}

void Outbox::set_limits(const RateLimit& server_limit, const RateLimit& own, u64 now) {
    limits_[0] = TokenBucket(server_limit.messages_per_second, server_limit.burst_messages, now);
    limits_[1] = TokenBucket(server_limit.bytes_per_second, server_limit.burst_bytes, now);
    limits_[2] = TokenBucket(own.messages_per_second, own.burst_messages, now);
    limits_[3] = TokenBucket(own.bytes_per_second, own.burst_bytes, now);
    rate_limited_ = false;
    for (const TokenBucket& b : limits_)
        rate_limited_ = rate_limited_ || b.enabled();
}

namespace {

// The "space" role of park(): until the record fits.
class SpaceParking final : public Parking {
public:
    SpaceParking(RecordProducer& ring, OutboxOwner& owner, u32 lines)
        : ring_(ring), owner_(owner), lines_(lines) {}
    Result<bool> ready() override { return ring_.fits(lines_); }
    Result<void> check(bool slept) override { return owner_.check(slept); }
    const std::atomic<u32>* local_word() override { return owner_.local_wake(); }
    std::atomic<u32>& flag() override { return ring_.data()->waiting_for_space; }
    const std::atomic<u32>& word() override { return ring_.ctl()->space_wake; }
    u32 peer_cpu() override { return owner_.peer_cpu(); }
    std::atomic<u32>* my_cpu() override { return &ring_.data()->cpu; }

private:
    RecordProducer& ring_;
    OutboxOwner& owner_;
    u32 lines_;
};

}  // namespace

Result<void> Outbox::push(OutboxOwner& owner, const OutgoingRecord& record, Blocking blocking,
                          Deadline deadline) {
    // The caller's remaining time, as of now (the record is written below, under mu).
    const u64 remaining = record.call_deadline.is_never()
                              ? 0
                              : remaining_ns_for(record.call_deadline, words_->now_ns());
    if (record.attachment != nullptr) {
        // The sending steps of region_wire.hpp: (1) room for the record, (2) the socket
        // record, (3) the record, which cannot be full now (we are the only producer).
        if (!VIPC_TRY(ring_.fits(record.lines()))) return IpcError::ChannelFull;
        const u64 sequence = regions_.next_sequence;
        // A non-blocking send does not wait for room in the socket either (it holds one small
        // record per record in flight: it is full only when the peer stopped reading it).
        auto sent = send_record(owner.attachment_socket(), sequence, *record.attachment,
                                blocking == Blocking::Yes ? deadline : Deadline::past());
        if (!sent) {
            if (sent.error() != IpcError::Timeout || blocking == Blocking::Yes) {
                return sent.error();
            }
            return fail(IpcError::ChannelFull,
                        "the peer is not reading its socket; the message was not sent");
        }
        ++regions_.next_sequence;
        Message out = *record.message;
        record.attachment->stamp(out, sequence);
        return out.is_small()
                   ? ring_.push_small(out.small_message(), record.txid, Attachment::OnSocket)
                   : ring_.push_large(out.large_message(), record.txid, Attachment::OnSocket,
                                      remaining);
    }
    if (record.kind == OutgoingRecord::Kind::Loan) {
        LoanDescriptor d = VIPC_TRY(pool_.describe(record.loan, record.loan_length));
        d.capability = record.capability;
        d.opcode = record.opcode;
        d.flags = record.flags;
        VIPC_TRY(ring_.push_loan(d, record.txid));
        pool_.mark_sent(record.loan);  // now the receiver's until it returns it
        mirror_pool();
        return ok();
    }
    if (record.kind == OutgoingRecord::Kind::Payload) {
        return ring_.push_payload(record.capability, record.opcode, record.flags, record.payload,
                                  record.txid, remaining);
    }
    const Message& m = *record.message;
    return m.is_small()
               ? ring_.push_small(m.small_message(), record.txid)
               : ring_.push_large(m.large_message(), record.txid, Attachment::None, remaining);
}

Result<void> Outbox::send(OutboxOwner& owner, const OutgoingRecord& record, Blocking blocking,
                          Deadline deadline, u64 lock_wait_ns) {
    // (1)
    const bool locked = blocking == Blocking::No && lock_wait_ns != 0
                            ? mu.lock_until(Deadline::at(words_->now_ns() + lock_wait_ns))
                            : lock_counting_parked(mu, blocking, deadline, owner.parked_senders());
    if (!locked) return blocking == Blocking::Yes ? IpcError::Timeout : IpcError::ChannelFull;
    DeadlineLock guard(mu, std::adopt_lock);
    // (2)
    if (rate_limited_) VIPC_TRY(admit(owner, record, blocking, deadline));
    for (;;) {
        // (3)
        VIPC_TRY(owner.check(false));
        // (4)
        auto r = push(owner, record, blocking, deadline);
        if (r) {
            if (rate_limited_) charge(record);
            owner.published();
            return ok();
        }
        if (r.error() != IpcError::ChannelFull) return r.error();
        // (5)
        if (blocking == Blocking::No) return IpcError::ChannelFull;
        if (!deadline.is_never() && deadline.expired(words_->now_ns())) return IpcError::Timeout;
        ParkedScope parked(owner.parked_senders());
        SpaceParking space(ring_, owner, record.lines());
        VIPC_TRY(park(*words_, space, spin_, deadline));
    }
}

void Outbox::attach_pool(u8* base, u64 bytes, u32 slots, const RingCtl* ctl) {
    pool_.attach(*words_, base, bytes, slots, ctl);
    pool_bytes_ = bytes;
}

namespace {
// The "loan" role of park(): until a chunk of `size` is free (the consumer returned some).
class LoanParking final : public Parking {
public:
    LoanParking(LoanPool& pool, RingDataHeader* data, const RingCtl* ctl, OutboxOwner& owner,
                usize size)
        : pool_(pool), data_(data), ctl_(ctl), owner_(owner), size_(size) {}
    Result<bool> ready() override { return pool_.can_take(size_); }
    Result<void> check(bool slept) override { return owner_.check(slept); }
    const std::atomic<u32>* local_word() override { return owner_.local_wake(); }
    std::atomic<u32>& flag() override { return data_->waiting_for_space; }
    const std::atomic<u32>& word() override { return ctl_->space_wake; }
    u32 peer_cpu() override { return owner_.peer_cpu(); }

private:
    LoanPool& pool_;
    RingDataHeader* data_;
    const RingCtl* ctl_;
    OutboxOwner& owner_;
    usize size_;
};
}  // namespace

Result<Loan> Outbox::loan(OutboxOwner& owner, usize size, Deadline deadline) {
    const Blocking blocking =
        !deadline.is_never() && deadline.expired(words_->now_ns()) ? Blocking::No : Blocking::Yes;
    if (!lock_counting_parked(mu, blocking, deadline, owner.parked_senders())) {
        return blocking == Blocking::Yes ? IpcError::Timeout : IpcError::ResourceBusy;
    }
    DeadlineLock guard(mu, std::adopt_lock);
    VIPC_TRY(owner.check(false));
    if (!pool_.valid()) {
        return fail(IpcError::ResourceBusy,
                    "this connection has no loan pool (pool_bytes 0 in ConnectOptions or "
                    "ServerOptions, or no right to send this way)");
    }
    for (;;) {
        auto got = pool_.take(size);
        if (got) {
            mirror_pool();
            return got;
        }
        if (got.error() != IpcError::ResourceBusy || blocking == Blocking::No) return got.error();
        if (!deadline.is_never() && deadline.expired(words_->now_ns())) return IpcError::Timeout;
        ParkedScope parked(owner.parked_senders());
        LoanParking role(pool_, ring_.data(), ring_.ctl(), owner, size);
        VIPC_TRY(park(*words_, role, spin_, deadline));
        VIPC_TRY(owner.check(false));
    }
}

Result<void> Outbox::cancel_loan(LoanId id) {
    DeadlineLock guard(mu);
    VIPC_TRY(pool_.cancel(id));
    mirror_pool();
    return ok();
}

bool Outbox::try_send_small(OutboxOwner& owner, const SmallMessage& msg) {
    if (!mu.lock_for(Blocking::No, Deadline::past())) return false;
    DeadlineLock guard(mu, std::adopt_lock);
    if (!ring_.push_small(msg, 0)) return false;
    owner.published();
    return true;
}

Result<void> Outbox::admit(OutboxOwner& owner, const OutgoingRecord& record, Blocking blocking,
                           Deadline deadline) {
    const u64 bytes = record.charged_bytes();
    for (;;) {
        const u64 now = now_ns();
        u64 wait = 0;
        for (int i = 0; i < LIMIT_BUCKETS; ++i) {
            if (!limits_[i].enabled()) continue;
            const u64 w = limits_[i].wait_ns(i % 2 == 0 ? 1 : bytes, now);
            wait = w > wait ? w : wait;
        }
        if (wait == 0) break;
        if (blocking == Blocking::No) {
            return fail(IpcError::RateLimitExceeded,
                        "the rate limit of this connection is reached; retry in %llu us",
                        static_cast<unsigned long long>(wait / 1000));
        }
        if (!deadline.is_never() && now + wait > deadline.ns()) {
            // The limit will not let it through in time: wait out the deadline, as any
            // blocking send does, then say so.
            if (deadline.ns() > now)
                std::this_thread::sleep_for(std::chrono::nanoseconds(deadline.ns() - now));
            return IpcError::Timeout;
        }
        // Sleep in slices so that a close or the peer's death is noticed meanwhile.
        std::this_thread::sleep_for(
            std::chrono::nanoseconds(wait < PARK_SLICE_NS ? wait : PARK_SLICE_NS));
        VIPC_TRY(owner.check(false));
    }
    return ok();
}

void Outbox::charge(const OutgoingRecord& record) {
    const u64 bytes = record.charged_bytes();
    for (int i = 0; i < LIMIT_BUCKETS; ++i) {
        if (limits_[i].enabled()) limits_[i].take(i % 2 == 0 ? 1 : bytes);
    }
}

}  // namespace veridian::ipc::posix::detail
