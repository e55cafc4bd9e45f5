// SPDX-License-Identifier: MIT OR Apache-2.0
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

#include <span>

#include "posix/os.hpp"
#include "posix/parking.hpp"
#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/posix/endpoint_capability.hpp"
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

struct EndpointCapability::Access {
    static EndpointCapability adopt(int fd, u16 rights);
};

namespace detail {

inline constexpr u32 REGION_RECORD_MAGIC = 0x52504956;  // "VIPR"
// A record's `transfer` for capabilities: this in the low 16 bits, their count in the high.
// A capability record is a RegionRecord followed by the rights of each (CapabilityRecord).
inline constexpr u32 CAPABILITY_RECORD = 5;
// A notification frame (pollable.hpp): a RegionRecord with this `transfer` and sequence 0,
// and no descriptors. Readers of records skip them.
inline constexpr u32 NOTIFY_RECORD = 6;

struct RegionRecord {
    u32 magic;
    u32 transfer;  // Transfer
    u64 sequence;
};
static_assert(sizeof(RegionRecord) == 16);

struct CapabilityRecord {
    RegionRecord head;  // transfer = CAPABILITY_RECORD | count << 16
    u16 rights[MAX_CAPABILITIES_PER_MESSAGE];
};
static_assert(sizeof(CapabilityRecord) == 24);

// A received message's capability field: the first handle of its capabilities in the table
// of unclaimed descriptors (consecutive handles), and their count in the top byte.
inline constexpr u64 capability_field(u64 first_handle, u32 count) {
    return u64{count} << 56 | first_handle;
}

// Builds the message that goes into the slot for `msg` with `region` sent as `transfer`
// (region.base is filled in by send_region_record's caller). Copy fills the inline bytes.
// Errors: InvalidMemoryRegion (no region, empty), MessageTooLarge (Copy over 64 bytes).
Result<Message> prepare_region_message(const Message& msg, const Region& region, Transfer transfer);

// What a sender keeps per connection and direction.
struct RegionSender {
    u64 next_sequence = 1;
};

// What travels with an outgoing message: a region (sent as a Transfer) or 1..4 capabilities.
struct OutgoingAttachment {
    u32 kind = 0;  // Transfer, or CAPABILITY_RECORD
    u32 count = 0;
    int fds[MAX_CAPABILITIES_PER_MESSAGE] = {-1, -1, -1, -1};
    u16 rights[MAX_CAPABILITIES_PER_MESSAGE] = {};

    static OutgoingAttachment region(int fd, Transfer transfer) {
        OutgoingAttachment a;
        a.kind = static_cast<u32>(transfer);
        a.count = 1;
        a.fds[0] = fd;
        return a;
    }
    // InvalidCapability (empty one), PermissionDenied (no GRANT), InvalidMessage (count).
    static Result<OutgoingAttachment> capabilities(std::span<const EndpointCapability> caps);
    bool is_capability() const { return kind == CAPABILITY_RECORD; }
    // Names the record's sequence number in the message: region.base, or the capability
    // field (and sets HAS_CAPABILITY).
    void stamp(Message& msg, u64 sequence) const;
};

// Step (2) of sending: the record and its descriptors on the socket (waits for socket space
// until the deadline). EndpointNotFound when the socket is gone.
Result<void> send_record(int sock, u64 sequence, const OutgoingAttachment& a, Deadline deadline);

// Steps (1)-(3) of receiving, for a popped message with region.size != 0.
struct RegionReceiver {
    u64 next_sequence = 1;
    // Whose the received descriptors are (new_unclaimed_owner(), one per connection) and how
    // many of them may wait unclaimed at once (0: no limit of its own).
    u64 owner = 0;
    u32 quota = 0;
};
Result<void> receive_region_record(int sock, RegionReceiver& receiver, Message& msg);
// Everything a popped message needs from the socket: its region record (a missing or wrong
// one is InvalidMessage), then, with HAS_CAPABILITY, its capability record. A capability
// flag without a matching record is not a protocol error (a peer may set the flag on a plain
// message): the message is delivered with HAS_CAPABILITY cleared and nothing is consumed.
Result<void> receive_attachments(int sock, RegionReceiver& receiver, Message& msg);

// The process-local table of received descriptors not taken yet (regions and capabilities;
// at most MAX_UNCLAIMED_REGIONS, the oldest closed first). `value` is a region's claimed
// size or a capability's rights.
// Each is accounted to `owner` (a connection): past its `quota`, its own oldest is closed,
// never another connection's.
u64 park_descriptor(Fd fd, u64 value, u32 kind, u64 owner, u32 quota);
// Several at once, under consecutive handles; returns the first.
u64 park_descriptors(Fd* fds, const u64* values, u32 count, u32 kind, u64 owner, u32 quota);
// Closes what `owner` left unclaimed (its connection ended); how many it holds (0: everyone).
void release_unclaimed(u64 owner);
usize unclaimed_count(u64 owner);
// A fresh owner key (never 0, never reused in this process).
u64 new_unclaimed_owner();
// Takes the entry `handle` if it is of `kind` (the low 16 bits compared).
bool take_descriptor(u64 handle, u32 kind, Fd* fd, u64* value, u32* full_kind);

// Capability sockets: a holder's request, with one new socket end (SCM_RIGHTS).
inline constexpr u32 CAP_REQUEST_MAGIC = 0x51504956;  // "VIPQ"
enum class CapOp : u16 { Connect = 1, Derive = 2 };
struct CapRequest {
    u32 magic;
    u16 op;  // CapOp
    u16 rights;
    u64 reserved;
};
static_assert(sizeof(CapRequest) == 16);
// Sends a request with `new_end` over the capability socket `cap_fd`. InvalidCapability when
// the server revoked it, EndpointNotFound when the server is gone.
Result<void> send_cap_request(int cap_fd, CapOp op, u16 rights, int new_end);
// Why a capability socket failed: InvalidCapability (revoked) or EndpointNotFound.
IpcError capability_gone(int cap_fd);
// The byte a server writes to a capability socket it revokes.
inline constexpr char CAP_REVOKED_BYTE = 'R';
// The value of a ring's `closed` word when the connection's capability was revoked.
inline constexpr u32 CLOSED_REVOKED = 2;

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
