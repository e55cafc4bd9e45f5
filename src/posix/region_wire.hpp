// veridian-ipc posix runtime, internal: how a region travels with a message.
//
// Layer: posix (hosted). Not installed.
//
// A message with a region is a LargeMessage in one ring slot plus one record on the
// connection's Unix socket carrying the region's descriptor (SCM_RIGHTS). Per connection and
// direction, the sender numbers its regions 1, 2, 3, ... (the sequence number); the slot
// names the number in region.base and the transfer mode in region.permissions, the socket
// record repeats both. Sending, under the ring's producer lock:
//   (1) make sure the ring has a free slot (else ChannelFull / wait for space: nothing is
//       written to the socket for a message that is not pushed)
//   (2) write the record and its descriptor to the socket
//   (3) push the slot (it cannot fail now: we are the only producer and saw a free slot)
// Receiving, under the ring's consumer lock, after popping a slot with region.size != 0:
//   (1) read exactly one record from the socket (it was written before the slot, so it is
//       there already; absent → the peer broke the protocol)
//   (2) check it: magic, the expected sequence number, the same transfer mode, one
//       descriptor
//   (3) park the descriptor in the process-local table of unclaimed regions and replace
//       region.base by the table's handle; Region::receive validates and maps it later.
// Any failure of (1)-(2) is InvalidMessage: the connection is broken (the socket stream
// can no longer be matched with the ring).
#pragma once

#include "posix/shm.hpp"
#include "veridian/ipc/posix/region.hpp"

namespace veridian::ipc::posix {

// Gives the runtime and the tests access to a Region's descriptors.
struct Region::Access {
    // A Region over any descriptor, without checks (tests use it to send bad descriptors;
    // the runtime checks what it receives, never what it sends).
    static Region adopt_unchecked(int fd, u64 size, void* addr, bool writable);
    // The descriptor to send for a share: the memfd itself, or its read-only reopen.
    static Result<int> descriptor_for(Region& r, Transfer t);
    // Move: drop the writable mapping, seal F_SEAL_WRITE, map read-only again.
    static Result<void> seal_for_move(Region& r);
};

namespace detail {

inline constexpr u32 REGION_RECORD_MAGIC = 0x52504956;  // "VIPR"

struct RegionRecord {
    u32 magic;
    u32 transfer;  // Transfer
    u64 sequence;
};
static_assert(sizeof(RegionRecord) == 16);

// Builds the message that goes into the slot for `msg` with `region` sent as `transfer`
// (region.base is filled in by send_region_record's caller). Copy fills the inline bytes.
// Errors: InvalidMemoryRegion (no region, empty), MessageTooLarge (Copy over 64 bytes).
Result<Message> prepare_region_message(const Message& msg, const Region& region, Transfer transfer);

// What a sender keeps per connection and direction.
struct RegionSender {
    u64 next_sequence = 1;
};

// Step (2) of sending: the record and its descriptor on the socket (waits for socket space
// until the deadline). EndpointNotFound when the socket is gone.
Result<void> send_region_record(int sock, u64 sequence, Transfer transfer, int fd,
                                Deadline deadline);

// Steps (1)-(3) of receiving, for a popped message with region.size != 0.
struct RegionReceiver {
    u64 next_sequence = 1;
};
Result<void> receive_region_record(int sock, RegionReceiver& receiver, Message& msg);

// Whether a slot's region fields are well-formed (checked by the ring on every pop):
// no region and at most 64 inline bytes, or a region of 1..MAX_REGION_BYTES sent as Move or
// a share, with total_size = its size + at most 64 inline bytes.
inline bool region_fields_valid(const LargeMessage& m) {
    const MemoryRegion& r = m.region;
    if (r.size == 0) return m.header.total_size <= LARGE_MESSAGE_INLINE_BYTES;
    const u32 t = r.permissions;
    return r.size <= MAX_REGION_BYTES && m.header.total_size >= r.size &&
           m.header.total_size - r.size <= LARGE_MESSAGE_INLINE_BYTES &&
           (t == static_cast<u32>(Transfer::Move) ||
            t == static_cast<u32>(Transfer::ShareReadOnly) ||
            t == static_cast<u32>(Transfer::ShareReadWrite));
}

}  // namespace detail
}  // namespace veridian::ipc::posix
