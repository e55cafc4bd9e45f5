// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime, internal: zero-copy loans from a per-direction payload pool.
//
// Layer: posix (hosted). Not installed.
//
// Each direction of a connection may have a pool: a memfd of pool_bytes, sealed against
// resizing, mapped once at connect, read-write by the producer and read-only by the consumer.
// The producer lends itself a chunk (LoanPool::take), writes in place and sends a Loan record
// (record_ring.hpp) naming only {slot, generation, offset, length}. The consumer checks the
// descriptor against the pool geometry it keeps privately (LoanHoldings::accept), hands out a
// read-only view, and when the user releases it writes {slot, generation} into the ring's
// return queue (in the ctl memfd, which only the consumer writes).
//
// Return queue: ctl.released counts the entries written; entry i is at i & (slots - 1). The
// consumer holds at most `slots` chunks, each released once, so it never writes more than
// `slots` entries ahead of the producer's reading (the producer reuses a slot only after its
// return was read). Protocol:
//   consumer: (R1) entry = id; (R2) store released + 1 (publish_order); (R3) if the producer
//             announced it waits (waiting_for_space), bump space_wake and wake it
//   producer: (D1) r = load released (acquire; SYNC POINT with (R2)); r - read <= slots, else
//             InvalidMessage; (D2) each entry: a slot that is out (Sent) with that
//             generation → free again; anything else (never lent, released twice, stale
//             generation) → InvalidMessage
// Trust: the producer trusts nothing in the return queue; the consumer nothing in a Loan
// record. A producer that keeps writing a chunk after sending it changes only what its own
// message says (the consumer may read torn bytes of it; copy it, or send a sealed Region
// move for tamper-proof transfer). A chunk whose consumer died never comes back: the pool
// goes with the connection.
#pragma once

#include <vector>

#include "posix/parking.hpp"
#include "posix/record_ring.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::posix::detail {

inline constexpr u32 LOAN_SLOTS = 256;  // chunks out at once, per direction
inline constexpr u64 LOAN_ALIGN = 64;   // chunk offsets and sizes, in bytes

inline constexpr LoanId loan_id(u32 slot, u32 generation) {
    return u64{generation} << 32 | slot;
}

// The producer's side. Its owner (the Outbox) serializes callers.
class LoanPool {
public:
    void attach(SharedWords& words, u8* base, u64 bytes, u32 slots, const RingCtl* ctl);
    bool valid() const { return base_ != nullptr; }
    u64 bytes() const { return bytes_; }

    // A chunk of at least `size` bytes: ResourceBusy when none is free now (after reading
    // the returns), MessageTooLarge when the pool could never hold it. InvalidMessage from
    // a corrupt return queue.
    Result<Loan> take(usize size);
    // Whether take(size) would succeed now (reads the returns).
    Result<bool> can_take(usize size);
    // The descriptor for sending a lent chunk with `length` bytes (InvalidCapability: not a
    // loan of ours that is lent out; MessageTooLarge: longer than the chunk).
    Result<LoanDescriptor> describe(LoanId id, usize length) const;
    void mark_sent(LoanId id);
    Result<void> cancel(LoanId id);

    u64 lent_bytes() const { return lent_bytes_; }
    u64 sent_bytes() const { return sent_bytes_; }
    u32 chunks_out() const { return chunks_out_; }

private:
    struct Slot {
        u64 offset = 0;
        u64 bytes = 0;
        u32 generation = 0;
        enum class State : u8 { Free, Lent, Sent } state = State::Free;
    };
    struct Range {
        u64 offset;
        u64 bytes;
    };
    Result<void> drain_returns();
    void free_range(u64 offset, u64 bytes);
    const Slot* lent(LoanId id) const;

    SharedWords* words_ = nullptr;
    u8* base_ = nullptr;
    u64 bytes_ = 0;
    u32 mask_ = 0;
    const RingCtl* ctl_ = nullptr;
    const u64* returns_ = nullptr;
    u32 read_ = 0;  // return entries read
    std::vector<Slot> slots_;
    std::vector<u32> free_slots_;
    std::vector<Range> free_;  // sorted by offset, coalesced
    u64 lent_bytes_ = 0;
    u64 sent_bytes_ = 0;
    u32 chunks_out_ = 0;
};

// The consumer's side. Its owner serializes callers.
class LoanHoldings {
public:
    void attach(SharedWords& words, const u8* base, u64 bytes, u32 slots, RingCtl* ctl,
                const RingDataHeader* data);
    bool valid() const { return base_ != nullptr; }
    u64 bytes() const { return bytes_; }
    // A Loan record's descriptor: checked, then held. InvalidMessage for anything outside
    // the pool, a slot already held, or no pool at all.
    Result<std::span<const std::byte>> accept(const LoanDescriptor& d);
    // Gives a held chunk back (InvalidCapability: not held, e.g. released twice).
    Result<void> release(LoanId id);
    u64 held_bytes() const { return held_bytes_; }

private:
    SharedWords* words_ = nullptr;
    const u8* base_ = nullptr;
    u64 bytes_ = 0;
    u32 slots_ = 0;
    RingCtl* ctl_ = nullptr;
    const RingDataHeader* data_ = nullptr;
    u64* returns_ = nullptr;
    u32 written_ = 0;
    struct Held {
        u32 generation_plus_one = 0;  // 0: not held
        u64 bytes = 0;
    };
    std::vector<Held> held_;
    u64 held_bytes_ = 0;
};

}  // namespace veridian::ipc::posix::detail
