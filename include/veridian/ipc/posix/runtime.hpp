// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: named endpoints between separate Linux processes.
//
// Layer: posix (hosted). Built on the core's types (Message, IpcError, Result, Deadline,
// Rights); it does not put core endpoints in shared memory (they hold pointers) but gives the
// same contract — same operations, same error kinds — over its own shared-memory rings.
//
// A server publishes an endpoint under a name; clients in other processes open it by name.
// There is no daemon:
//
//   // server process
//   using namespace veridian::ipc;
//   posix::Server server = VIPC_TRY(posix::Server::publish("demo/echo"));
//   for (;;) {
//       posix::Received req = VIPC_TRY(server.receive_sync());        // from any client
//       (void)server.reply(req, req.message);                    // echo it back
//   }
//   (reply never waits: a caller that is gone or does not read its replies only loses its own
//   reply, with ProcessNotFound or ChannelFull, and the loop goes on serving the others.)
//
//   // client process
//   posix::Connection conn = VIPC_TRY(posix::Connection::connect("demo/echo"));
//   Message answer = VIPC_TRY(conn.call(Message::small(0, 7), posix::after_ms(100)));
//
// On error, posix::last_error_detail() gives a one-line explanation naming the thing (for
// example "no endpoint named 'demo/echo' in /run/user/1000/vipc: is its server running?").
//
// Contract, operation by operation (the same as the core's Endpoint, core/endpoint.hpp; what
// differs on purpose is in docs/CONTRACT.md; the narrative — names, connections, the data
// path, waiting, peer death, trust, shared memory per connection — is docs/RUNTIME.md):
//
//   operation        blocks?                     errors besides PermissionDenied (a right missing)
//   send_sync        while the ring is full      Timeout; EndpointNotFound (closed here or there,
//                                                peer dead); MessageTooLarge (payload over the
//                                                endpoint's max_inline_payload()); InvalidMessage
//                                                (the peer corrupted the ring: connection broken)
//   send_async       never (*)                   ChannelFull; RateLimitExceeded; as send_sync
//   fast_send        never (*)                   as send_async: a SmallMessage, one ring line
//   receive_sync     until a message             Timeout; EndpointNotFound once the peer is gone
//                                                and what it wrote was taken; MessageTooLarge
//                                                (a payload over 64 bytes or a loan: it stays
//                                                queued; take it with receive_view/receive_into)
//   try_receive      never (*)                   ChannelEmpty; as receive_sync
//   receive_view     as receive_sync             a view of any message, valid until the next
//                                                receive on this side (a Server: by the same
//                                                thread); a loan: until release()
//   receive_into     as receive_sync             MessageTooLarge with *needed: it stays queued
//   call             until the reply             Timeout; EndpointNotFound; the error of a
//                                                reply_error(); threads may call concurrently;
//                                                the server sees the deadline (*2)
//   reply            never                       ChannelFull (the caller's ring is full: the reply
//                                                is dropped); ProcessNotFound (caller gone);
//                                                InvalidMessage (not a call)
//   loan             until the deadline (past    ResourceBusy (pool full now, or no pool);
//                    by default)                 Timeout; MessageTooLarge (larger than the pool)
//   send_loan        as send_sync                InvalidCapability (not a loan lent out here)
//   release          never                       InvalidCapability (not held: released twice)
//   close            never                       idempotent; the peer's blocked parties wake with
//                                                EndpointNotFound; here later operations too
//   (*) a non-blocking operation may wait up to 100 µs for another thread of this process
//   that holds the same ring side.
//   (*2) Deadlines of calls: a call's request carries what remains of the caller's deadline
//   when its record is written, as a duration (never a clock value), and every received call
//   shows it on the server's clock: Received::caller_deadline, PayloadInfo::caller_deadline
//   (Incoming::info, receive_into) = receipt time + that duration (so later than the caller's
//   own deadline by the time the request took to arrive); Deadline::never() when the
//   call has none, for one-way messages, and for a call whose request is a SmallMessage (its
//   record is one cache line, entirely the message: it carries no deadline) or a loan.
//   Payload calls and LargeMessage calls (with or without a region or a capability) carry
//   it. The server may use it to give up early, or to pass it on (the NATS bridge forwards
//   it); the runtime itself does nothing with it. It is the client's word, so it is only a
//   hint: a client that lies can make its own call be abandoned early, or ask for a long
//   deadline it will not wait for, never make the server wait, spend or hold anything more
//   than its request already could (a reply is never awaited; the server's own deadlines
//   stay its own).
//
// Threads: every Connection and Server operation may be called from several threads at once
// (one process-local lock per ring side; the hot path has no atomic read-modify-write in
// shared memory). Objects are movable, not copyable; destroy one only when no other thread
// is inside one of its operations (close() makes blocked threads return). A child made by
// fork() must not use its parent's Servers or Connections: it publishes or connects anew.
// Nothing from the other process is trusted: every index, length, offset and generation it
// writes is checked against geometry kept in private memory; a bad one breaks only that
// connection (InvalidMessage), the server keeps serving everyone else.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "veridian/ipc/core/capability.hpp"
#include "veridian/ipc/core/endpoint.hpp"
#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/core/platform.hpp"
#include "veridian/ipc/core/types.hpp"
#include "veridian/ipc/message_port.hpp"
#include "veridian/ipc/posix/endpoint_capability.hpp"
#include "veridian/ipc/posix/region.hpp"

namespace veridian::ipc::posix {

// Longest endpoint name, in bytes (keeps the socket path within sockaddr_un).
inline constexpr usize MAX_NAME_LENGTH = 64;
// Default ring depth per direction and connection.
inline constexpr u32 DEFAULT_CAPACITY = 64;
// Default spin bound before a futex sleep, in nanoseconds (see "Waiting").
inline constexpr u32 DEFAULT_SPIN_NS = 20'000;
// Longest single futex sleep; also how late, at worst, a dead peer is noticed by a waiter
// whose wake was lost.
inline constexpr u32 PEER_CHECK_INTERVAL_MS = 20;
// Most connections a server accepts at once (more → the client gets ResourceBusy, with the
// detail naming ServerOptions::max_connections). What one connection costs at the default
// options (docs/PERFORMANCE.md, "Scale"): in the server one descriptor (its socket, which
// also carries the notifications of pollable descriptors) plus one per client process (its
// pidfd, shared by all of that process's connections) and about 33 KiB resident (the rings;
// the loan pools are reserved address space, committed only when written), in the client 10
// descriptors and about 27 KiB; a receive costs the same whatever the number of idle
// connections. So 4096 connections take at most about 8,200 descriptors and 135 MiB in the
// server: at publish the server raises its RLIMIT_NOFILE soft limit towards the hard one as
// far as max_connections needs.
inline constexpr u32 DEFAULT_MAX_CONNECTIONS = 4096;
// Descriptors the server holds per connection and per client process (for the RLIMIT_NOFILE
// it asks for: at worst every connection is from a process of its own).
inline constexpr u32 SERVER_DESCRIPTORS_PER_CONNECTION = 1;
inline constexpr u32 SERVER_DESCRIPTORS_PER_CLIENT_PROCESS = 1;
// Defaults of the per-client budgets in ServerOptions.
inline constexpr u64 DEFAULT_MAX_REGION_BYTES = u64{1} << 30;
inline constexpr u32 DEFAULT_MAX_UNCLAIMED_PER_CONNECTION = 64;
inline constexpr u32 DEFAULT_HANDSHAKE_TIMEOUT_MS = 1000;
inline constexpr u32 DEFAULT_MAX_PENDING_HANDSHAKES = 64;
// The largest payload a send/call/reply carries inline (copied into the ring), per endpoint:
// ServerOptions::max_inline_payload, learned by clients in the handshake.
inline constexpr u32 DEFAULT_MAX_INLINE_PAYLOAD = 4096;
// Its hard cap. A record must fit each direction's ring at least twice, so the rings of one
// connection take >= 4 x (max + 64) bytes; at 64 KiB that is 256 KiB per connection already
// (1000 connections: 256 MiB), and beyond it a copy costs more than sending a Region.
inline constexpr u32 MAX_INLINE_PAYLOAD_LIMIT = 65536;
// The loan pool of each direction of a connection (ServerOptions / ConnectOptions::pool_bytes;
// rounded up to whole pages): memfd pages, committed only when written.
inline constexpr u64 DEFAULT_POOL_BYTES = u64{1} << 20;
inline constexpr u64 MAX_POOL_BYTES = u64{1} << 30;

// ---- Deadlines on CLOCK_MONOTONIC --------------------------------------------------------------

// CLOCK_MONOTONIC in nanoseconds (the clock every Deadline here is measured on; the same
// clock as ThreadsPlatform::now_ns()).
u64 now_ns();
// A deadline `ns` (or `ms`) from now; one past the end of the clock is never (it saturates,
// never wraps).
Deadline after_ns(u64 ns);
inline Deadline after_ms(u64 ms) {
    return ms > ~u64{0} / 1'000'000 ? Deadline::never() : after_ns(ms * 1'000'000);
}

// ---- Errors ------------------------------------------------------------------------------------

// A one-line explanation of the last error returned by a posix-runtime function on the
// calling thread (thread-local; "" when there is none). It names the thing and, where there
// is one, the fix.
const char* last_error_detail();

// ---- Names and the runtime directory -----------------------------------------------------------

// The runtime directory this process uses (see above), without creating it.
std::string runtime_directory();
// Ok, or InvalidMessage (with last_error_detail() saying why) for a malformed name.
Result<void> validate_name(std::string_view name);

// ---- Options -----------------------------------------------------------------------------------

// A limit on what one connection sends: messages per second and bytes per second (0 = no
// limit), with bursts of up to burst_* at once (0 = one second's worth). A message counts
// its header.total_size in bytes (a region's whole size: the data it makes available), a
// SmallMessage 48. Over the limit, send_async and fast_send give RateLimitExceeded and
// send_sync and call wait for the limit (or their deadline: Timeout).
//   Where it comes from: ServerOptions::client_rate_limit is published by the server in its
// state page, ConnectOptions::rate_limit is the client's own; a client applies each of the
// two that is set. The client library enforces it exactly; the server enforces the server's
// limit too, with twice the burst (a client that keeps the limit is held back only when more
// than that has piled up unread while the server was busy): while a client is over it, the
// server does not read that client's ring (its messages wait there, and once the ring is
// full its sends block or give ChannelFull), which bounds what a client that bypasses the
// library gets through.
struct RateLimit {
    u32 messages_per_second = 0;
    u64 bytes_per_second = 0;
    u32 burst_messages = 0;
    u64 burst_bytes = 0;
};

// Who may connect to a server (or read its statistics), decided on the peer's credentials as
// the kernel reports them (SO_PEERCRED, SO_PEERGROUPS), never on anything the peer says.
// A peer gets the union of the rights of every grant that matches it; a connection asking for
// more than that is refused (PermissionDenied), and so is a peer that matches nothing.
// Statistics need any grant. The default admits the server's own user (and root) only.
// Others also need to reach the socket: the runtime directory must be searchable by them
// (e.g. mode 0711; it must never be writable by them), and the socket file is made 0666 when
// the policy names anyone else.
struct AccessGrant {
    u32 id = 0;                                   // a uid (users) or a gid (groups)
    u16 rights = Rights::SEND | Rights::RECEIVE;  // what its connections may have
};
struct AccessPolicy {
    u16 same_user_rights = Rights::SEND | Rights::RECEIVE;  // the server's euid and root
    std::vector<AccessGrant> users;
    std::vector<AccessGrant> groups;  // the peer's gid or one of its supplementary groups
    bool admits_others() const { return !users.empty() || !groups.empty(); }
};

// Where a server tells of the peers it refused (one line each: who, and why).
enum class RefusalLog : u8 {
    Stderr,  // to stderr, at most 10 lines a second (the rest are counted, then summarized)
    Silent,
};

struct ServerOptions {
    u32 capacity = DEFAULT_CAPACITY;  // per ring; rounded up to a power of two, 1..1024
    u32 spin_ns = DEFAULT_SPIN_NS;    // spin bound before sleeping; 0 = always sleep
    u32 max_connections = DEFAULT_MAX_CONNECTIONS;
    std::string runtime_dir;      // "" = runtime_directory()
    RateLimit client_rate_limit;  // what each client may send (see RateLimit)
    AccessPolicy access;          // who may connect, with which rights
    RefusalLog refusal_log = RefusalLog::Stderr;
    // Work and resources per client, bounded by the server (never by a number a peer wrote):
    // the largest region a client may send (published to clients, which refuse bigger ones
    // with MessageTooLarge; one that sends one anyway is dropped as broken), ...
    u64 max_region_bytes = DEFAULT_MAX_REGION_BYTES;
    // ... how many received regions and capabilities of one connection may wait unclaimed
    // (past it, that connection's oldest is closed, never another's; all of them are closed
    // when the connection ends), ...
    u32 max_unclaimed_per_connection = DEFAULT_MAX_UNCLAIMED_PER_CONNECTION;
    // ... and the handshake: a connected socket must send its hello within this time, and at
    // most this many may be waiting to (past it, the oldest is dropped).
    u32 handshake_timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS;
    u32 max_pending_handshakes = DEFAULT_MAX_PENDING_HANDSHAKES;
    // Largest inline payload, both directions: 0..MAX_INLINE_PAYLOAD_LIMIT (more is clamped).
    u32 max_inline_payload = DEFAULT_MAX_INLINE_PAYLOAD;
    // Loan pool of each connection's server→client direction (0: the server cannot loan).
    u64 pool_bytes = DEFAULT_POOL_BYTES;
    // The most a client may ask for its own (client→server) pool; more is cut to this.
    u64 max_client_pool_bytes = MAX_POOL_BYTES;
};

// What a client does with the memfds of its connection once they are mapped.
enum class MemfdDescriptors : u8 {
    Closed,  // closed at once: a connection holds only its socket and the server's pidfd
    Kept,    // kept open, for tools and tests that look at them (Connection::descriptors())
};

struct ConnectOptions {
    u16 rights = Rights::SEND | Rights::RECEIVE;  // only SEND and RECEIVE mean anything here
    u32 spin_ns = DEFAULT_SPIN_NS;
    std::string runtime_dir;  // "" = runtime_directory()
    // The uids this client accepts as the owner of the runtime directory and as the server
    // (checked with SO_PEERCRED before anything is sent). Empty: our own euid. Root is always
    // accepted; so are the uids in $VIPC_TRUSTED_UIDS (comma-separated).
    std::vector<u32> trusted_server_uids;
    // How long connect() may wait for the server's answer.
    u32 connect_timeout_ms = 2000;
    RateLimit rate_limit;  // this connection's own limit on its sends (see RateLimit)
    // This connection's loan pool (client→server; 0: no loans). The server may grant less
    // (ServerOptions::max_client_pool_bytes).
    u64 pool_bytes = DEFAULT_POOL_BYTES;
    MemfdDescriptors memfds = MemfdDescriptors::Closed;
};

// ---- Statistics (for `vipc ls` / `vipc stat`) --------------------------------------------------

// Identifies one client connection of a Server; never reused within a Server.
using ConnectionId = u64;

struct ConnectionStats {
    ConnectionId id = 0;
    ProcessId peer{};  // the client's pid (from SO_PEERCRED, never from the client)
    u32 peer_uid = 0;
    u16 rights = 0;            // what the client's descriptors allow (SEND, RECEIVE)
    u32 capacity = 0;          // per ring
    u32 queued = 0;            // messages waiting in the client→server ring
    u32 to_client_queued = 0;  // messages waiting in the server→client ring
    u64 received = 0;          // messages the server took from this client
    u64 sent = 0;              // messages (replies included) the server sent to this client
    bool alive = true;         // false once the peer closed, died or broke the protocol
    // Loans (see Loan): bytes of the server's pool for this client in use (lent or sent and
    // not yet released), and of the client's pool the server holds.
    u64 server_pool_used = 0;
    u64 client_pool_held = 0;
    u64 client_pool_bytes = 0;  // the client's pool (what it asked for, within the cap)
};

// One published endpoint, as answered by its server.
struct EndpointInfo {
    std::string name;
    ProcessId owner{};  // the server's pid
    u32 owner_uid = 0;
    u32 capacity = 0;
    u32 connections = 0;  // live connections
    u64 accepted = 0;     // connections accepted since publish
    u64 received = 0;     // messages received, all connections
    u64 sent = 0;         // messages sent, all connections
    u64 broken = 0;       // connections dropped for a protocol violation
    u32 max_inline_payload = 0;
    // Shared memory of one connection at this endpoint's options: both rings (data and
    // control pages) and the server's loan pool for it (the client's own pool comes on top:
    // ConnectOptions::pool_bytes). Pool pages are committed only when written.
    u64 ring_bytes_per_connection = 0;
    u64 server_pool_bytes = 0;
    std::vector<ConnectionStats> per_connection;
};

// Asks the server of `name` for its statistics (over its discovery socket; the server's
// background thread answers, so this works while the server is busy).
// EndpointNotFound when no live server has the name.
Result<EndpointInfo> stat_endpoint(std::string_view name, std::string_view runtime_dir = {});

// Every endpoint published in the runtime directory (live servers only; stale leftovers of
// dead servers are skipped — publishing the name reclaims them).
Result<std::vector<EndpointInfo>> list_endpoints(std::string_view runtime_dir = {});

// ---- Payload messages
// ----------------------------------------------------------------------------

// What a payload message says about itself.
struct PayloadInfo {
    u32 opcode = 0;
    u32 flags = 0;
    usize length = 0;                  // payload bytes
    TransactionId transaction_id = 0;  // of a call (0 for a plain send)
    ProcessId sender{};
    ConnectionId connection = 0;  // on a server: which client sent it
    // On a server, for a call: when its caller stops waiting, on this process's clock (see
    // "Deadlines of calls" at the top). never: no deadline, not a call, a SmallMessage, or a
    // loan.
    Deadline caller_deadline = Deadline::never();
};

// A loan: a chunk of this side's pool, writable in place. Send it (send_loan, reply_loan: it
// is then the receiver's until it releases it) or give it back (cancel_loan).
using LoanId = u64;
struct Loan {
    std::span<std::byte> bytes;
    LoanId id = 0;  // 0: no loan
};

// A received message as a view. Valid until the next receive (of any kind) on the same side:
// the same Server, or the same Connection; a loan's view until release().
//   kind Payload: `payload` are its bytes. On a server they are read in place from the
//     client's ring (zero copy): a client that scribbles on a record after sending it can
//     change only these bytes of its own message; copy them (receive_into) if they must
//     stay put. On a client they were copied once out of the ring.
//   kind Loan: `payload` is the sender's chunk, mapped read-only here, zero copy, valid until
//     release(); the sender cannot reuse it before. A sender that writes a chunk after
//     sending it can change only its own message (the bytes may tear under the reader):
//     copy it if that matters, or send a Region with Transfer::Move (sealed) for a
//     tamper-proof transfer.
//   kind Small / Large: `message` is the Message (as receive_sync gives it), payload empty.
struct Incoming {
    enum class Kind : u8 { Small, Large, Payload, Loan };
    Kind kind = Kind::Small;
    PayloadInfo info;
    std::span<const std::byte> payload;
    Message message;
    LoanId loan = 0;  // kind Loan: what release() takes
};

// How much of a connection's pools is in use (statistics, racy snapshots).
struct PoolUse {
    u64 send_pool_bytes = 0;     // this side's pool (what it loans from)
    u64 send_pool_used = 0;      // lent out here or sent and not released yet
    u64 receive_pool_bytes = 0;  // the peer's pool, read-only here
    u64 receive_pool_held = 0;   // received loans not released yet
};

// ---- Server ------------------------------------------------------------------------------------

// A message taken by the server, with where it came from. message.sender() is the client's
// pid (from SO_PEERCRED), message.transaction_id() the id of a call (0 for a plain send).
struct Received {
    Message message;
    ConnectionId connection = 0;
    // For a call: when its caller stops waiting, on this process's clock (as
    // PayloadInfo::caller_deadline; see "Deadlines of calls" at the top).
    Deadline caller_deadline = Deadline::never();
};

// A capability minted by a Server: the descriptor to hand out and the id to revoke it by.
struct MintedCapability {
    EndpointCapability capability;
    CapabilityId id = 0;
};

class Server {
public:
    // Publishes `name`. EndpointBusy when a live process already has it (the detail names
    // its pid); InvalidMessage for a malformed name; PermissionDenied when the runtime
    // directory is not usable. A name left by a dead process is reclaimed.
    static Result<Server> publish(std::string_view name, const ServerOptions& options = {});

    Server(Server&&) noexcept;
    Server& operator=(Server&&) noexcept;
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server();  // close()

    const std::string& name() const;

    // The next message from any client. A receive costs the same whatever the number of
    // idle connections (a ready set: busy connections are polled, idle ones mark themselves
    // in the server's doorbell page); the busy ones are served round-robin, starting after
    // the one served last, so none can starve another. Any number of threads may receive at
    // once: each takes one message at a time, and one connection's messages are handed out
    // in its order; a connection whose record a thread holds as a view (receive_view) is not
    // read by another thread until that view ends (the holder's next receive on this server,
    // or its exit), so views of one connection are handled one at a time. Replies and sends
    // may come from any thread. Timeout at the deadline; EndpointNotFound once this server is
    // closed; a corrupted connection is dropped (counted in EndpointInfo::broken) and never
    // surfaces here.
    Result<Received> receive_sync(Deadline deadline = Deadline::never());
    // Never blocks: ChannelEmpty when no client has anything queued.
    Result<Received> try_receive();
    // A payload record of more than 64 bytes cannot be a Message: receive/try_receive give
    // MessageTooLarge for it and leave it queued; these take every kind:
    Result<Incoming> receive_view(Deadline deadline = Deadline::never());
    Result<Incoming> try_receive_view();
    // Copies the payload into `buffer`: too short → MessageTooLarge with *needed set to the
    // payload's length, and the message stays queued. Small/Large messages: their 48/120
    // bytes, as laid out in message.hpp.
    Result<PayloadInfo> receive_into(std::span<std::byte> buffer, usize* needed,
                                     Deadline deadline = Deadline::never());
    // Payload messages: `payload` up to max_inline_payload() bytes (more: MessageTooLarge).
    Result<void> send_sync(ConnectionId to, u32 opcode, u32 flags,
                           std::span<const std::byte> payload,
                           Deadline deadline = Deadline::never());
    Result<void> send_async(ConnectionId to, u32 opcode, u32 flags,
                            std::span<const std::byte> payload);
    Result<void> reply(const Received& request, u32 opcode, u32 flags,
                       std::span<const std::byte> payload, Deadline deadline = Deadline::never());
    Result<void> reply(const Incoming& request, u32 opcode, u32 flags,
                       std::span<const std::byte> payload, Deadline deadline = Deadline::never());
    u32 max_inline_payload() const;

    // Loans (zero copy) from the pool of the server→client direction of `to`. Pool full:
    // ResourceBusy at once (the default deadline), else a wait until the client releases
    // chunks, or the deadline (Timeout). Larger than the pool: MessageTooLarge; no pool
    // (ServerOptions::pool_bytes 0, or the client has no RECEIVE): ResourceBusy.
    Result<Loan> loan(ConnectionId to, usize size, Deadline deadline = Deadline::past());
    // Sends `length` bytes of the loan (it is empty afterwards); the ring may be full as for
    // send_sync. reply_loan answers a request with it.
    Result<void> send_loan(ConnectionId to, Loan& loan, usize length, u32 opcode, u32 flags,
                           Deadline deadline = Deadline::never());
    Result<void> reply_loan(const Incoming& request, Loan& loan, usize length, u32 opcode,
                            u32 flags, Deadline deadline = Deadline::never());
    Result<void> cancel_loan(ConnectionId to, Loan& loan);
    // Gives a received loan back to its sender (InvalidCapability: not held, released twice).
    // A payload view this thread holds (receive_view) ends at once instead of at this
    // thread's next receive, so that its connection's next message can go to any receiving
    // thread now (InvalidCapability when this thread holds no such view).
    Result<void> release(const Incoming& received);
    Result<PoolUse> pool_use(ConnectionId connection) const;

    // Answers a request taken by receive_sync(): the response goes to the caller's call() with the
    // request's transaction id (IS_REPLY is set). Never waits for the client: ChannelFull
    // (the reply is dropped) when its ring is full or, with a region or capability, its
    // socket is: the client is not reading, and waiting would let it stall every other
    // client of this thread. ProcessNotFound when the client is gone; PermissionDenied when
    // it has no RECEIVE; InvalidMessage when `request` is not a call (its transaction id is
    // 0). The deadline is not used (reply never blocks; kept so that callers written for a
    // blocking reply still compile).
    Result<void> reply(const Received& request, const Message& response,
                       Deadline deadline = Deadline::never());

    // Answers a request with an error instead of a message: the caller's call() returns
    // `error` (e.g. PermissionDenied for a request it may not make). Otherwise as reply().
    Result<void> reply_error(const Received& request, IpcError error,
                             Deadline deadline = Deadline::never());
    // The same with a line for the caller (its first 56 bytes): its call() fails with `error`
    // and last_error_detail() "the server of 'NAME' answered the call with KIND: DETAIL".
    Result<void> reply_error(const Received& request, IpcError error, std::string_view detail,
                             Deadline deadline = Deadline::never());

    // A message to one client (it reads it with receive_sync/try_receive).
    // EndpointNotFound when the connection is gone or unknown; PermissionDenied when the
    // client has no RECEIVE; send_async: ChannelFull when its ring (or, with a region, its
    // socket) is full, never a wait. send_sync waits for that one client's ring until the
    // deadline: a thread that serves several clients should use send_async or a short
    // deadline, or a client that stops reading holds it up.
    Result<void> send_sync(ConnectionId to, const Message& msg,
                           Deadline deadline = Deadline::never());
    Result<void> send_async(ConnectionId to, const Message& msg);
    // The same with a region attached (see region.hpp): `msg` must be a LargeMessage; with
    // Transfer::Move, `region` is empty once the send succeeded.
    Result<void> send_sync(ConnectionId to, const Message& msg, Region& region, Transfer transfer,
                           Deadline deadline = Deadline::never());
    Result<void> send_async(ConnectionId to, const Message& msg, Region& region, Transfer transfer);
    Result<void> reply(const Received& request, const Message& response, Region& region,
                       Transfer transfer, Deadline deadline = Deadline::never());

    // A message carrying a capability (see endpoint_capability.hpp); it needs Rights::GRANT.
    Result<void> send_sync(ConnectionId to, const Message& msg,
                           const EndpointCapability& capability,
                           Deadline deadline = Deadline::never());
    Result<void> reply(const Received& request, const Message& response,
                       const EndpointCapability& capability, Deadline deadline = Deadline::never());
    // Up to MAX_CAPABILITIES_PER_MESSAGE at once.
    Result<void> send_sync(ConnectionId to, const Message& msg,
                           std::span<const EndpointCapability> capabilities,
                           Deadline deadline = Deadline::never());

    // A new capability to connect to this endpoint with `rights` (SEND, RECEIVE: what a
    // connection made with it may do; GRANT: it may be passed on in messages).
    Result<MintedCapability> mint_capability(u16 rights);
    // Revokes a minted or derived capability and every one derived from it: their
    // connections end and their holders get InvalidCapability. InvalidCapability for an
    // unknown id. Revoking twice is harmless.
    Result<void> revoke(CapabilityId id);

    // Drops one client's connection (it sees EndpointNotFound).
    Result<void> disconnect(ConnectionId connection);

    // Unpublishes the name, wakes every blocked party on both sides (EndpointNotFound) and
    // releases everything. Idempotent.
    Result<void> close();

    // A descriptor that becomes readable when a message may be waiting, for epoll/poll/asio
    // (level-triggered). Drain with try_receive() until ChannelEmpty, then poll again
    // (ChannelEmpty empties the descriptor and looks once more, so nothing is missed).
    // It is an epoll descriptor only this process holds, over the server's ends of the
    // connection sockets: a client sends a 16-byte notification frame on its own socket
    // after it published a message, and can neither read nor drain the server's end (a
    // socket cannot be reopened through /proc/self/fd), so no client can make the server miss
    // another's notification; what it writes means only "look again". Cost: once this has
    // been called, every client send also makes one send() (a syscall, ~1-4 µs), and no
    // descriptor more. The fd belongs to the Server; -1 for a moved-from Server.
    int pollable_fd();

    // Live connections, in the order they were accepted.
    std::vector<ConnectionId> connections() const;
    EndpointInfo info() const;
    // The core's statistics record for this endpoint: sent/received (all connections),
    // queued (messages waiting in the client→server rings), capacity (per ring),
    // waiting_receivers (threads parked in receive_sync), waiting_senders (threads parked
    // sending to a client), active (not closed). The other fields stay 0.
    Result<EndpointStats> stats() const;

    struct Impl;

private:
    explicit Server(std::shared_ptr<Impl> impl);
    std::shared_ptr<Impl> impl_;
};

// ---- Client ------------------------------------------------------------------------------------

// The descriptors that embody a connection's rights (for tools and tests). -1 = not held:
// the memfds are held only with ConnectOptions::memfds = MemfdDescriptors::Kept.
// c2s = client→server ring, s2c = server→client ring; *_data written by the producer,
// *_ctl by the consumer. Descriptors the holder must not write are read-only.
struct ConnectionDescriptors {
    int socket = -1;
    int c2s_data = -1;         // read-write, only with SEND
    int c2s_ctl = -1;          // read-only, only with SEND
    int s2c_data = -1;         // read-only, only with RECEIVE
    int s2c_ctl = -1;          // read-write, only with RECEIVE
    int server_state = -1;     // read-only
    int server_doorbell = -1;  // read-write
};

class Connection {
public:
    // Opens the endpoint published as `name` with the rights asked for in options.
    // EndpointNotFound when no live server has that name (the detail names it);
    // PermissionDenied when the socket or the server refuses us; ResourceBusy when the
    // server has max_connections; Timeout when it does not answer within
    // connect_timeout_ms; InvalidMessage when its answer is malformed.
    static Result<Connection> connect(std::string_view name, const ConnectOptions& options = {});
    // Connects through a capability (see endpoint_capability.hpp) with options.rights limited
    // to the capability's. InvalidCapability when it was revoked; EndpointNotFound when its
    // server is gone. The connection's name() is "capability".
    static Result<Connection> connect(const EndpointCapability& capability,
                                      const ConnectOptions& options = {});

    Connection(Connection&&) noexcept;
    Connection& operator=(Connection&&) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection();  // close()

    const std::string& name() const;
    u16 rights() const;
    ProcessId server_pid() const;
    ConnectionId id() const;  // as the server numbers it
    u32 capacity() const;

    Result<void> send_sync(const Message& msg, Deadline deadline = Deadline::never());
    Result<void> send_async(const Message& msg);
    // With a region attached (see region.hpp): `msg` must be a LargeMessage; with
    // Transfer::Move, `region` is empty once the send succeeded.
    Result<void> send_sync(const Message& msg, Region& region, Transfer transfer,
                           Deadline deadline = Deadline::never());
    Result<void> send_async(const Message& msg, Region& region, Transfer transfer);
    // A message carrying a capability (see endpoint_capability.hpp); it needs Rights::GRANT.
    Result<void> send_sync(const Message& msg, const EndpointCapability& capability,
                           Deadline deadline = Deadline::never());
    // Up to MAX_CAPABILITIES_PER_MESSAGE at once.
    Result<void> send_sync(const Message& msg, std::span<const EndpointCapability> capabilities,
                           Deadline deadline = Deadline::never());
    Result<void> fast_send(const SmallMessage& msg);
    Result<Message> receive_sync(Deadline deadline = Deadline::never());
    Result<Message> try_receive();
    Result<Message> call(const Message& request, Deadline deadline = Deadline::never());
    // A call whose request carries a region (see region.hpp).
    Result<Message> call(const Message& request, Region& region, Transfer transfer,
                         Deadline deadline = Deadline::never());

    // Loans (zero copy) from this connection's pool (ConnectOptions::pool_bytes); as on
    // Server, without the connection argument.
    Result<Loan> loan(usize size, Deadline deadline = Deadline::past());
    Result<void> send_loan(Loan& loan, usize length, u32 opcode, u32 flags,
                           Deadline deadline = Deadline::never());
    Result<void> cancel_loan(Loan& loan);
    Result<void> release(const Incoming& received);
    Result<PoolUse> pool_use() const;

    // Payload messages: `payload` up to max_inline_payload() bytes (more: MessageTooLarge).
    u32 max_inline_payload() const;
    Result<void> send_sync(u32 opcode, u32 flags, std::span<const std::byte> payload,
                           Deadline deadline = Deadline::never());
    Result<void> send_async(u32 opcode, u32 flags, std::span<const std::byte> payload);
    // The reply's payload lands in `reply_payload` (resized; its capacity is reused, so a
    // steady stream of calls allocates nothing), the rest in the returned PayloadInfo.
    Result<PayloadInfo> call(u32 opcode, u32 flags, std::span<const std::byte> request,
                             std::vector<std::byte>& reply_payload,
                             Deadline deadline = Deadline::never());
    // Every kind of message, as a view valid until the next receive on this Connection.
    Result<Incoming> receive_view(Deadline deadline = Deadline::never());
    Result<Incoming> try_receive_view();
    // Copies into `buffer`: too short → MessageTooLarge, *needed = the payload's length, and
    // the message stays queued.
    Result<PayloadInfo> receive_into(std::span<std::byte> buffer, usize* needed,
                                     Deadline deadline = Deadline::never());
    Result<void> close();

    // For event loops (epoll, asio, asyncio): a descriptor that becomes readable
    // (level-triggered) when a message or a reply may be waiting, or the connection ended.
    // Drain with try_receive() (and take_reply() for calls begun) until ChannelEmpty, then
    // poll again. It is an epoll descriptor only this process holds, over the client's end
    // of the connection socket (the server sends a notification frame on it after it
    // published to this client; it cannot read or drain ours) and an eventfd for this
    // process's own wake-ups. Cost: once this has been called, every server send to this
    // connection makes one send() syscall more. -1 (with last_error_detail()) when it cannot
    // be made. The fd belongs to the Connection.
    int pollable_fd();
    // A call that does not wait (for event loops): sends `request` (waiting for ring space
    // until the deadline) and returns its transaction id. take_reply(id) gives the reply, or
    // ChannelEmpty while it has not come; cancel_call(id) abandons it (a later reply is
    // dropped). A reply_error() answer is returned by take_reply as its error. take_reply
    // for an unknown or finished id → InvalidMessage.
    Result<TransactionId> begin_call(const Message& request, Deadline deadline = Deadline::never());
    Result<Message> take_reply(TransactionId txid);
    void cancel_call(TransactionId txid);
    // The core's statistics record for this side of the connection: sent (messages it sent),
    // received (messages and replies it took), queued (waiting for receive_sync/try_receive:
    // the local inbox and the server→client ring), capacity (per ring), waiting_senders,
    // waiting_receivers and waiting_callers (threads parked in send_sync, receive_sync and
    // call: inside a wait only the server, a close, its death or the deadline can end),
    // active (neither closed nor gone). The other fields stay 0.
    Result<EndpointStats> stats() const;

    ConnectionDescriptors descriptors() const;

    struct Impl;

private:
    Result<Message> call_with(const Message& request, Region* region, Transfer transfer,
                              Deadline deadline);
    explicit Connection(std::shared_ptr<Impl> impl);
    std::shared_ptr<Impl> impl_;  // shared with the process's peer-death monitor (weakly)
};

static_assert(MessagePort<Connection>);

}  // namespace veridian::ipc::posix
