// veridian-ipc core: Endpoint, a capability-bearing handle to an endpoint.
//
// An endpoint is a bounded message queue owned by a process, living in a Registry. An
// Endpoint value is a handle to it: the registry it lives in plus a Capability (an index,
// a generation and rights). Handles are cheap to copy; they do not own the endpoint (a
// ChannelGuard or a Channel does, see registry.hpp). Every operation validates the handle's
// capability in O(1) and checks the right it needs, in one place (the registry).
//
//   Registry registry(platform, allocator);
//   Endpoint server = VIPC_TRY(registry.create_endpoint(ProcessId{1}));
//   Endpoint client = server.derive(Rights::SEND);          // give this one away
//   VIPC_TRY(client.send_sync(Message::small(0, 1), ProcessId{2}));
//   Message m = VIPC_TRY(server.receive_sync(ProcessId{1}, platform.after_ns(1'000'000)));
//
// The contract, operation by operation:
//   send_sync     closed -> EndpointNotFound. A blocked receiver gets the message handed
//                 directly into its parking slot; else it is queued; on a full queue the
//                 sender blocks until space (its message is queued in FIFO order), the
//                 deadline (Timeout) or close (EndpointNotFound).
//   receive_sync  a queued message, or block until one arrives (Timeout at the deadline,
//                 EndpointNotFound on close). Never a spurious WouldBlock.
//   send_async    never blocks: full -> ChannelFull; hands off to one blocked receiver.
//   fast_send     fast_ipc_send through this handle (never blocks, like send_async).
//   try_receive   empty -> ChannelEmpty.
//   close         idempotent; every blocked sender, receiver and caller wakes with
//                 EndpointNotFound; queued messages are discarded and counted.
//   call          send a request tagged with a fresh transaction id, then block until the
//                 reply with that id, the deadline (Timeout) or close (EndpointNotFound).
//                 Any number of callers may be outstanding on one endpoint at once.
//   reply         hand the response straight to the caller waiting for request's
//                 transaction; ProcessNotFound when that caller is gone (timed out).
//   bind          the first bind succeeds, a second gives EndpointBusy; close unbinds.
//   revoke        bump the generation: every outstanding token for the endpoint becomes
//                 invalid (InvalidCapability); returns a fresh handle with all rights.
//
// Rights needed: SEND for send_sync, send_async, fast_send, call; RECEIVE for receive_sync,
// try_receive, reply; REVOKE for close and revoke; bind and stats need only a valid
// capability. A handle whose capability is null,
// forged, stale (revoked, or the endpoint removed) gives InvalidCapability; one lacking the
// right gives PermissionDenied.
#pragma once

#include "veridian/ipc/core/capability.hpp"
#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/core/platform.hpp"
#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc {

class Registry;

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
    Capability capability() const { return capability_; }
    Registry* registry() const { return registry_; }

    // A handle to the same endpoint with fewer rights (rights can only drop).
    Endpoint derive(u16 rights_to_keep) const {
        Endpoint e = *this;
        e.capability_ = capability_.derive(rights_to_keep);
        return e;
    }

    // True while the endpoint exists and is not closed.
    bool is_active() const;

    Result<void> bind(ProcessId target);
    Result<void> send_sync(const Message& msg, ProcessId sender,
                           Deadline deadline = Deadline::never());
    Result<Message> receive_sync(ProcessId receiver, Deadline deadline = Deadline::never());
    Result<void> send_async(const Message& msg);
    Result<Message> try_receive();
    Result<void> close();
    Result<Message> call(const Message& request, ProcessId caller,
                         Deadline deadline = Deadline::never());
    Result<void> reply(const Message& request, const Message& response);
    Result<Endpoint> revoke();
    Result<EndpointStats> stats() const;

    // The same operations with the platform's current_process() as sender, receiver or
    // caller: the shape posix::Connection has too (the MessagePort concept, message_port.hpp).
    Result<void> send_sync(const Message& msg, Deadline deadline = Deadline::never());
    Result<Message> receive_sync(Deadline deadline = Deadline::never());
    Result<Message> call(const Message& request, Deadline deadline = Deadline::never());
    // fast_ipc_send to this endpoint: `msg.capability` is replaced by this handle's token.
    Result<void> fast_send(const SmallMessage& msg);

private:
    friend class Registry;
    Endpoint(Registry* registry, Capability capability, EndpointId id, ProcessId owner)
        : registry_(registry), capability_(capability), id_(id), owner_(owner) {}

    Registry* registry_ = nullptr;
    Capability capability_{};
    EndpointId id_ = 0;
    ProcessId owner_{};
};

}  // namespace veridian::ipc
