// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime, internal: the consumer side of one ring, used by both the
// client (its server→client ring) and the server (each connection's client→server ring).
//
// Layer: posix (hosted). Not installed.
//
// Its owner serializes callers (the client's reader role, the server's receive lock).
// Taking one record (Inbox::next):
//   (1) peek the record at the head (record_ring.hpp (C1)-(C2)); there → done: the record
//       stays in the ring (a view) until finish()
//   (2) none: non-blocking → ChannelEmpty; else park until one is there (parking.hpp, role
//       "data": flag ctl.waiting_for_data, word data.tail), back to (1)
// A Small or Large record is turned into a Message by message(), which also reads its
// attachments from the socket (region_wire.hpp) and finishes the record.
#pragma once

#include <mutex>

#include "posix/loan_pool.hpp"
#include "posix/parking.hpp"
#include "posix/record_ring.hpp"
#include "posix/region_wire.hpp"

namespace veridian::ipc::posix::detail {

class InboxOwner {
public:
    virtual Result<void> check(bool slept) = 0;
    virtual int attachment_socket() = 0;
    virtual u32 peer_cpu() = 0;

    // The process-local word whoever ends this connection here bumps (parking.hpp).
    virtual const std::atomic<u32>* local_wake() { return nullptr; }

protected:
    ~InboxOwner() = default;
};

class Inbox {
public:
    void attach(SharedWords& words, const RingGeometry& geometry, const RingDataHeader* data,
                RingCtl* ctl, u32 spin_ns);
    bool valid() const { return ring_.valid(); }

    // A record is there (InvalidMessage: the producer broke the protocol).
    Result<bool> ready() const { return ring_.ready(); }
    Result<RecordView> next(InboxOwner& owner, Blocking blocking, Deadline deadline);
    void finish(const RecordView& record) { ring_.finish(record); }
    // The record as a Message (Small, Large, or a payload of at most 64 bytes: else
    // MessageTooLarge and the record stays), attachments read; the record is finished.
    Result<Message> message(InboxOwner& owner, const RecordView& record);

    RecordConsumer& ring() { return ring_; }

    // Whose the descriptors received with records are (new_unclaimed_owner()) and how many
    // may wait unclaimed at once (region_wire.hpp); before first use.
    void set_unclaimed(u64 owner, u32 quota) {
        regions_.owner = owner;
        regions_.quota = quota;
    }
    u64 unclaimed_owner() const { return regions_.owner; }

    // The peer's loan pool, read-only here (before first use).
    void attach_pool(const u8* base, u64 bytes, u32 slots);
    // A Loan record: its descriptor checked and the chunk held (the record is finished).
    // InvalidMessage for a bad descriptor.
    Result<std::span<const std::byte>> accept_loan(const RecordView& record,
                                                   LoanDescriptor* descriptor);
    Result<void> release(LoanId id);
    u64 pool_bytes() const { return pool_bytes_; }
    u64 pool_held() const { return held_.load(std::memory_order_relaxed); }

private:
    std::mutex loans_mu_;  // holdings_: taken by the reader, released by any thread
    LoanHoldings holdings_ VIPC_GUARDED_BY(loans_mu_);
    std::atomic<u64> held_{0};  // a mirror of holdings_.held_bytes(), for statistics
    u64 pool_bytes_ = 0;        // fixed before first use
    SharedWords* words_ = nullptr;
    RecordConsumer ring_;
    SpinBudget spin_;
    RegionReceiver regions_;
};

}  // namespace veridian::ipc::posix::detail
