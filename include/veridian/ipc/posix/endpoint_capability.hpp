// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: endpoint capabilities that travel between processes.
//
// Layer: posix (hosted). An EndpointCapability is the right to connect to one server's
// endpoint with some rights, held as a descriptor: one end of a Unix socket whose other end
// the server watches (the capability socket). Whoever holds the descriptor can connect — no
// name, no runtime directory needed — and pass it on in a message; the OS enforces that only
// holders can use it, and the server enforces the rights and revocation.
//
//   // process B, the owner
//   posix::Server b = VIPC_TRY(posix::Server::publish("demo/b"));
//   auto [cap, id] = VIPC_TRY(b.mint_capability(Rights::SEND | Rights::GRANT));
//   VIPC_TRY(b.send_sync(conn_of_a, Message::small(0, 1), cap));     // to process A
//   ...
//   VIPC_TRY(b.revoke(id));        // every connection made with it or a derived one ends
//
//   // process A: receives it, keeps only SEND, passes that to process C
//   posix::EndpointCapability got = VIPC_TRY(posix::EndpointCapability::receive(msg));
//   posix::EndpointCapability send_only = VIPC_TRY(got.derive(Rights::SEND));
//   VIPC_TRY(conn_to_c.send_sync(Message::small(0, 2), send_only));
//
//   // process C: talks to B directly
//   posix::EndpointCapability cap = VIPC_TRY(posix::EndpointCapability::receive(msg));
//   posix::Connection to_b = VIPC_TRY(posix::Connection::connect(cap));
//   VIPC_TRY(to_b.send_sync(Message::small(0, 3)));
//
// Protocol over a capability socket (holder → server; every request carries one new socket
// end by SCM_RIGHTS):
//   Connect  the new socket becomes a connection socket: the Hello and Welcome of a named
//            connect follow on it; the rights asked for must be within the capability's.
//   Derive   the new socket becomes a capability socket of its own, a child of this one, with
//            the rights asked for intersected with this one's: rights only ever drop.
// Revocation (Server::revoke, by the owner): the capability and every one derived from it,
// transitively, are marked revoked; their sockets are told ("R") and shut down; every
// connection made through one of them is marked revoked in the pages its client reads and
// hung up. The client's monitor sees the hang-up at once: every operation on it, blocked or
// not, returns InvalidCapability (the bound to keep is 100 ms). Connecting or deriving with
// a revoked capability → InvalidCapability; with one whose server has closed or died →
// EndpointNotFound.
//
// A message carries 1..MAX_CAPABILITIES_PER_MESSAGE capabilities (flag
// MessageFlags::HAS_CAPABILITY, set by the runtime). Passing one on needs Rights::GRANT in it
// (as the holder knows it). The rights a receiver learns with it are what the sender says;
// the server checks them again on use.
#pragma once

#include "veridian/ipc/core/capability.hpp"
#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc::posix {

// Names a capability minted by a Server (for revoke); never reused within that Server.
using CapabilityId = u64;

inline constexpr u32 MAX_CAPABILITIES_PER_MESSAGE = 4;

class EndpointCapability {
public:
    EndpointCapability() = default;
    EndpointCapability(EndpointCapability&& o) noexcept;
    EndpointCapability& operator=(EndpointCapability&& o) noexcept;
    EndpointCapability(const EndpointCapability&) = delete;
    EndpointCapability& operator=(const EndpointCapability&) = delete;
    ~EndpointCapability();

    bool valid() const { return fd_ >= 0; }
    u16 rights() const { return rights_; }
    int fd() const { return fd_; }

    // A capability with `rights` & rights(): asks the server for a child capability socket.
    // InvalidCapability when this one is revoked; EndpointNotFound when its server is gone.
    Result<EndpointCapability> derive(u16 rights) const;

    // Takes capability `index` of those a received message carries (each once).
    // InvalidCapability when it carries none at that index (or it was taken already).
    static Result<EndpointCapability> receive(const Message& msg, u32 index = 0);
    // How many capabilities a received message carries.
    static u32 count(const Message& msg);

    // Internal: used by the runtime.
    struct Access;

private:
    int fd_ = -1;
    u16 rights_ = 0;
};

}  // namespace veridian::ipc::posix
