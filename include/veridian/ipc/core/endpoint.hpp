// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc core: Endpoint, a handle object for one entry of a capability space.
//
// An endpoint is a bounded message queue owned by a process, living in a Registry. An
// Endpoint value names it the way its holder does: a CapabilitySpace (the holder's) plus a
// handle (Capability) that names an entry of that space; the entry, kept by the registry,
// holds the endpoint slot, the generation at mint, the rights and the badge (see
// capability.hpp for the capability contract). Endpoint values are cheap to copy; they do
// not own the endpoint (a ChannelGuard or a Channel does, see registry.hpp). Every
// operation resolves the handle in O(1) and checks the right it needs, in one place.
//
//   Registry registry(platform, allocator);
//   Endpoint server = VIPC_TRY(registry.create_endpoint(ProcessId{1}));
//   Endpoint client = VIPC_TRY(server.transfer(ProcessId{2}, TransferMode::Copy,
//                                              Rights::SEND));   // client's own entry
//   VIPC_TRY(client.send_sync(Message::small(0, 1)));            // sender() = ProcessId{2}
//   Message m = VIPC_TRY(server.receive_sync(platform.after_ns(1'000'000)));
//
// The contract, operation by operation:
//   send_sync     closed -> EndpointNotFound. A blocked receiver gets the message handed
//                 directly into its parking slot; else it is queued; on a full queue the
//                 sender blocks until space (its message is queued in FIFO order), the
//                 deadline (Timeout), close (EndpointNotFound) or the revocation of the
//                 entry it sends through (InvalidCapability; the message is not sent).
//   receive_sync  a queued message, or block until one arrives (Timeout at the deadline,
//                 EndpointNotFound on close, InvalidCapability on revocation). Never a
//                 spurious WouldBlock.
//   send_async    never blocks: full -> ChannelFull; hands off to one blocked receiver.
//   fast_send     fast_ipc_send through this handle (never blocks, like send_async).
//   try_receive   empty -> ChannelEmpty.
//   close         idempotent; every blocked sender, receiver and caller wakes with
//                 EndpointNotFound; queued messages are discarded and counted.
//   call          send a request tagged with a fresh transaction id, then block until the
//                 reply with that id, the deadline (Timeout), close (EndpointNotFound) or
//                 revocation (InvalidCapability), in either phase. Any number of callers
//                 may be outstanding on one endpoint at once.
//   reply         hand the response straight to the caller waiting for request's
//                 transaction; ProcessNotFound when that caller is gone (timed out).
//   bind          the first bind succeeds, a second gives EndpointBusy; close unbinds.
//   derive        a new entry in the same space, rights intersected, optional badge.
//   transfer      a new entry in another space (needs GRANT), Copy or Move.
//   revoke        this entry and everything derived from it.
//   release       this entry only.
//   revoke_all    bump the generation: every entry for the endpoint in every space becomes
//                 invalid (InvalidCapability); returns a fresh root entry with all rights.
//
// Every message delivered carries sender() (the holder of the space it was sent through)
// and badge() (the entry's badge), stamped by the core.
//
// Rights needed: SEND for send_sync, send_async, fast_send, call; RECEIVE for receive_sync,
// try_receive, reply; GRANT for transfer; REVOKE for close and revoke_all; bind, stats,
// derive, revoke and release need only a valid handle. A handle that is null, forged, stale
// (revoked, released, or the endpoint removed) or of another space gives InvalidCapability;
// one lacking the right gives PermissionDenied.
#pragma once

#include "veridian/ipc/core/capability.hpp"
#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/core/platform.hpp"
#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc {

class Registry;
namespace detail {
struct CapabilityOps;
}

// Per-endpoint counters, read as one consistent snapshot.
struct EndpointStats {
    u64 sent = 0;                // messages accepted (queued or handed off), replies included
    u64 received = 0;            // messages taken by receivers, replies by callers included
    u64 fast_path_hits = 0;      // fast_ipc_send handed straight to a blocked receiver
    u64 slow_path = 0;           // fast_ipc_send that had to queue
    u64 blocked = 0;             // operations that had to block (send, receive, call)
    u64 timed_out = 0;           // blocked operations that ended at their deadline
    u64 full = 0;                // sends that found the queue full (ChannelFull or a block)
    u64 discarded_on_close = 0;  // queued messages discarded by close
    u32 queued = 0;
    u32 capacity = 0;
    u32 waiting_senders = 0;
    u32 waiting_receivers = 0;
    u32 waiting_callers = 0;
    bool active = false;
    bool bound = false;  // bind() succeeded and the endpoint has not closed since
    ProcessId bound_to{};
};

class Endpoint {
public:
    Endpoint() = default;  // a null handle: every operation gives InvalidCapability

    EndpointId id() const { return id_; }
    ProcessId owner() const { return owner_; }
    // The handle value (what the holder writes, e.g. in SmallMessage::capability).
    Capability capability() const { return capability_; }
    CapabilitySpace* space() const { return space_; }
    Registry* registry() const;

    // A new entry in the same space with rights ⊆ this entry's; `badge` 0 keeps this
    // entry's badge, another badge needs this entry unbadged (PermissionDenied otherwise).
    Result<Endpoint> derive(u16 rights_to_keep, Badge badge = 0) const;
    // A new entry in `to` (needs GRANT here): Copy keeps this entry, Move removes it.
    Result<Endpoint> transfer(CapabilitySpace& to, TransferMode mode,
                              u16 rights_to_keep = Rights::ALL, Badge badge = 0) const;
    // The same, into the space of `to` (created with the default size if it has none).
    Result<Endpoint> transfer(ProcessId to, TransferMode mode, u16 rights_to_keep = Rights::ALL,
                              Badge badge = 0) const;
    // Removes this entry and every entry derived from it; blocked operations through any of
    // them wake with InvalidCapability.
    Result<void> revoke() const;
    // Removes this entry only (children are re-parented).
    Result<void> release() const;
    // The owner's revoke (needs REVOKE): every entry of the endpoint, in every space, becomes
    // invalid; returns a fresh entry with all rights in this space.
    Result<Endpoint> revoke_all() const;
    // This entry's rights and badge (InvalidCapability when it no longer resolves).
    Result<CapabilityInfo> info() const;

    // True while the entry resolves and the endpoint is not closed.
    bool is_active() const;

    Result<void> bind(ProcessId target);
    Result<void> send_sync(const Message& msg, Deadline deadline = Deadline::never());
    Result<Message> receive_sync(Deadline deadline = Deadline::never());
    Result<void> send_async(const Message& msg);
    Result<Message> try_receive();
    Result<void> close();
    Result<Message> call(const Message& request, Deadline deadline = Deadline::never());
    Result<void> reply(const Message& request, const Message& response);
    Result<EndpointStats> stats() const;

    // fast_ipc_send through this handle: `msg.capability` is replaced by this handle's value
    // and the send goes through this handle's space.
    Result<void> fast_send(const SmallMessage& msg);

private:
    friend class Registry;
    friend class CapabilitySpace;
    friend struct detail::CapabilityOps;
    Endpoint(CapabilitySpace* space, Capability capability, EndpointId id, ProcessId owner)
        : space_(space), capability_(capability), id_(id), owner_(owner) {}

    CapabilitySpace* space_ = nullptr;
    Capability capability_{};
    EndpointId id_ = 0;
    ProcessId owner_{};
};

}  // namespace veridian::ipc
