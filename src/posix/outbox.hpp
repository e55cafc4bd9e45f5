// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime, internal: the producer side of one ring, used by both the
// client (its client→server ring) and the server (each connection's server→client ring).
//
// Layer: posix (hosted). Not installed.
//
// One Outbox per ring side, one lock (mu) for everything in it: the record ring's producer,
// its spin budget, the sequence of attachments on the socket, the rate limits. What differs
// between a client and a server is behind OutboxOwner: how the connection is checked between
// waits, what else to notify after a record (a client rings the server's doorbell), which
// socket carries attachments.
//
// Sending one record (Outbox::send), under mu:
//   (1) lock mu (a non-blocking send waits at most NONBLOCKING_LOCK_WAIT_NS for another
//       thread of this process: → ChannelFull; a blocking one until its deadline: Timeout)
//   (2) rate limits: wait for tokens (blocking) or RateLimitExceeded
//   (3) check the connection (OutboxOwner::check)
//   (4) push (with an attachment: make sure the record fits, write the socket record, then
//       push, which cannot fail now); ok → charge the limits, OutboxOwner::published(), done
//   (5) full: non-blocking → ChannelFull; else park until the record fits (parking.hpp,
//       role "space": flag data.waiting_for_space, word ctl.head), back to (3)
//   A corrupt head (InvalidMessage) is returned as is; the owner marks the connection broken.
#pragma once

#include <span>

#include "posix/loan_pool.hpp"
#include "posix/parking.hpp"
#include "posix/rate_limit.hpp"
#include "posix/record_ring.hpp"
#include "posix/region_wire.hpp"

namespace veridian::ipc::posix::detail {

class OutboxOwner {
public:
    // Between waits: ok, or the error the send returns (closed, gone, broken).
    virtual Result<void> check(bool slept) = 0;
    // After each record: what else the consumer's side needs to notice it.
    virtual void published() = 0;
    virtual int attachment_socket() = 0;
    virtual u32 peer_cpu() = 0;
    // Counts a sender while it is parked (waiting for the lock or for space; parked_count.hpp).
    virtual std::atomic<u32>& parked_senders() = 0;

    // The process-local word whoever ends this connection here bumps (parking.hpp).
    virtual const std::atomic<u32>* local_wake() { return nullptr; }

protected:
    ~OutboxOwner() = default;
};

// One outgoing record: a Message, a payload, or a loan, with its transaction id and an
// optional attachment on the socket (a region or capabilities).
struct OutgoingRecord {
    enum class Kind : u8 { Message, Payload, Loan };
    Kind kind = Kind::Message;
    const Message* message = nullptr;  // Kind::Message
    u64 capability = 0;                // Kind::Payload
    u32 opcode = 0;
    u32 flags = 0;
    std::span<const std::byte> payload;
    LoanId loan = 0;  // Kind::Loan: the chunk and how many of its bytes
    usize loan_length = 0;
    TransactionId txid = 0;
    // A call's deadline (the caller's): push() writes what remains of it into a Large or
    // Payload record (record_ring.hpp, remaining_ns). never: no deadline, or not a call.
    Deadline call_deadline = Deadline::never();
    const OutgoingAttachment* attachment = nullptr;

    u32 lines() const;
    u64 charged_bytes() const;  // what the rate limits count
};

class Outbox {
public:
    void attach(SharedWords& words, const RingGeometry& geometry, RingDataHeader* data,
                const RingCtl* ctl, u32 spin_ns) VIPC_REQUIRES(mu);
    // Rate limits, each a bucket of messages and one of bytes (0 = off). Before first use.
    void set_limits(const RateLimit& server_limit, const RateLimit& own, u64 now) VIPC_REQUIRES(mu);

    // lock_wait_ns (non-blocking sends only, 0: NONBLOCKING_LOCK_WAIT_NS): how long (1) may
    // wait for another thread of this process that holds mu. The server's replies use a
    // longer bound: with several receiving threads, the holder may be a receiver preempted in
    // the middle of its own send on a busy machine (it never waits for the peer itself while
    // holding mu in a non-blocking send).
    Result<void> send(OutboxOwner& owner, const OutgoingRecord& record, Blocking blocking,
                      Deadline deadline, u64 lock_wait_ns = 0);
    // The fast path of fast_send: a SmallMessage, no limits, nothing to wait for. False when
    // it could not be done straight away (the caller then takes send()).
    bool try_send_small(OutboxOwner& owner, const SmallMessage& msg);

    // The loan pool of this direction (before first use).
    void attach_pool(u8* base, u64 bytes, u32 slots, const RingCtl* ctl) VIPC_REQUIRES(mu);
    // A chunk (loan_pool.hpp): ResourceBusy at once with a past deadline, else waits for
    // returns until the deadline (Timeout).
    Result<Loan> loan(OutboxOwner& owner, usize size, Deadline deadline);
    Result<void> cancel_loan(LoanId id);
    bool has_pool() const { return pool_bytes_ != 0; }
    u64 pool_bytes() const { return pool_bytes_; }
    u64 pool_used() const { return pool_used_.load(std::memory_order_relaxed); }

    // Stores the tail and wakes whoever sleeps on it: for a consumer that waits on this
    // ring's tail without announcing it in this ring (the server, see server.cpp). Called
    // from OutboxOwner::published(), under mu.
    void publish_tail() VIPC_REQUIRES(mu) { ring_.publish_tail(); }

    bool rate_limited() const { return rate_limited_; }
    bool valid() const { return valid_; }
    u32 queued() VIPC_REQUIRES(mu) { return ring_.queued(); }

    DeadlineMutex mu;

private:
    Result<void> admit(OutboxOwner& owner, const OutgoingRecord& record, Blocking blocking,
                       Deadline deadline) VIPC_REQUIRES(mu);
    void charge(const OutgoingRecord& record) VIPC_REQUIRES(mu);
    Result<void> push(OutboxOwner& owner, const OutgoingRecord& record, Blocking blocking,
                      Deadline deadline) VIPC_REQUIRES(mu);

    SharedWords* words_ = nullptr;
    RecordProducer ring_ VIPC_GUARDED_BY(mu);
    SpinBudget spin_ VIPC_GUARDED_BY(mu);
    RegionSender regions_ VIPC_GUARDED_BY(mu);
    LoanPool pool_ VIPC_GUARDED_BY(mu);
    u64 pool_bytes_ = 0;             // fixed before first use
    std::atomic<u64> pool_used_{0};  // a mirror of the pool's use, for statistics
    void mirror_pool() VIPC_REQUIRES(mu) {
        pool_used_.store(pool_.lent_bytes() + pool_.sent_bytes(), std::memory_order_relaxed);
    }
    static constexpr int LIMIT_BUCKETS = 4;
    TokenBucket limits_[LIMIT_BUCKETS] VIPC_GUARDED_BY(mu);
    bool rate_limited_ = false;  // fixed before first use
    bool valid_ = false;
};

// Checks what the Message-based operations may carry across processes: a region (size != 0)
// → InvalidMemoryRegion, inline payload > 64 → MessageTooLarge.
Result<void> check_sendable(const Message& msg);

}  // namespace veridian::ipc::posix::detail
