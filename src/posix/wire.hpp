// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime, internal: the discovery socket's messages and the paths.
//
// Layer: posix (hosted). Not installed.
//
// Over the endpoint's Unix stream socket a client sends one Hello; the server answers a
// connect with one Welcome carrying the connection's memfds (SCM_RIGHTS), or a stat with a
// StatReply followed by its ConnectionStatsWire records. Everything a side receives is
// parsed by the functions below, which check every field before anything uses it.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <string>
#include <string_view>
#include <vector>

#include "posix/os.hpp"
#include "posix/record_ring.hpp"
#include "posix/server_pages.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::posix::detail {

inline constexpr u32 HELLO_MAGIC = 0x48504956;    // "VIPH"
inline constexpr u32 WELCOME_MAGIC = 0x57504956;  // "VIPW"
inline constexpr u32 STAT_MAGIC = 0x53504956;     // "VIPS"

enum class HelloOp : u16 { Connect = 1, Stat = 2 };

struct Hello {
    u32 magic;
    u16 version;
    u16 op;      // HelloOp
    u16 rights;  // Connect: the rights asked for (SEND, RECEIVE)
    u16 reserved0;
    u32 pool_kib;  // Connect: the loan pool asked for (client→server), in KiB (0: none)
};
static_assert(sizeof(Hello) == 16);

// The descriptors of a Welcome, in this order, each present when its bit is set.
namespace FdBits {
inline constexpr u16 C2S_DATA = 1u << 0;
inline constexpr u16 C2S_CTL = 1u << 1;
inline constexpr u16 S2C_DATA = 1u << 2;
inline constexpr u16 S2C_CTL = 1u << 3;
inline constexpr u16 STATE = 1u << 4;
inline constexpr u16 DOORBELL = 1u << 5;
// 1u << 6 was a notification socket (wire version 4); notifications now travel on the
// connection socket (pollable.hpp).
inline constexpr u16 C2S_POOL = 1u << 7;  // the client's loan pool (read-write), with SEND
inline constexpr u16 S2C_POOL = 1u << 8;  // the server's loan pool (read-only), with RECEIVE
inline constexpr u16 ALL = 0x1BF;
}  // namespace FdBits
inline constexpr int MAX_WELCOME_FDS = 8;

// The descriptors a client with `rights` gets (and the pools, where they exist).
u16 fd_bits_for_rights(u16 rights);
u16 fd_bits_for(u16 rights, u64 c2s_pool_bytes, u64 s2c_pool_bytes);

struct Welcome {
    u32 magic;
    u16 version;
    u16 fd_bits;             // which descriptors follow (FdBits)
    int32_t status;          // 0, or an IpcError code (-1..-16) when the server refuses
    u32 depth;               // ring depth (records in flight), both directions
    u32 max_inline_payload;  // the endpoint's largest inline payload (<= MAX_INLINE_PAYLOAD_LIMIT)
    u16 rights;              // granted (equal to the rights asked for)
    u16 reason;              // with a refusal: why (Refusal)
    u64 server_pid;
    u64 connection_id;
    u32 server_uid;
    u32 limit;           // with a refusal: the rights the policy grants us, or the connection limit
    u64 c2s_pool_bytes;  // the client's loan pool (0: none), a multiple of the page size
    u64 s2c_pool_bytes;  // the server's loan pool for this client (0: none)
};
static_assert(sizeof(Welcome) == 64);
// Why a server refused a connection (Welcome::reason).
enum class Refusal : u16 {
    None = 0,
    NotAdmitted = 1,     // the access policy names neither our uid nor a group of ours
    RightsBeyond = 2,    // we asked for more rights than the policy grants (limit = granted)
    TooMany = 3,         // max_connections reached (limit = max_connections)
    Closed = 4,          // the server is closing
    Revoked = 5,         // the capability was revoked
    CapRights = 6,       // more rights than the capability carries
    OutOfResources = 7,  // the server could not make the connection (descriptors, memory)
};

struct StatReply {
    u32 magic;
    u16 version;
    u16 reserved0;
    u64 owner_pid;
    u32 owner_uid;
    u32 queue_depth;
    u32 connections;  // ConnectionStatsWire records that follow
    int32_t status;   // 0, or an IpcError code when the server refuses (no records follow)
    u64 accepted;
    u64 received;
    u64 sent;
    u64 broken;
    u32 max_inline_payload;
    u32 reserved2;
    u64 ring_bytes_per_connection;
    u64 server_pool_bytes;
};
static_assert(sizeof(StatReply) == 88);

struct ConnectionStatsWire {
    u64 id;
    u64 peer_pid;
    u32 peer_uid;
    u16 rights;
    u16 alive;
    u32 queue_depth;
    u32 to_server_queued;
    u32 to_client_queued;
    u32 reserved;
    u64 received;
    u64 sent;
    u64 server_pool_used;
    u64 client_pool_held;
    u64 client_pool_bytes;
};
static_assert(sizeof(ConnectionStatsWire) == 80);

// Most connection records a StatReply may announce (bounds what a client reads).
inline constexpr u32 MAX_STAT_CONNECTIONS = 4096;

// ---- parsing (everything from the other side goes through these) -------------------------------

// A Hello read by the server: exactly sizeof(Hello) bytes, right magic and version, a known
// op, rights within SEND|RECEIVE (at least one for Connect).
Result<Hello> parse_hello(const void* bytes, usize size);

// A Welcome read by the client, with the number of descriptors that arrived with it and the
// rights it asked for. Checks the magic, version, status, geometry, granted rights and that
// fd_bits names exactly the descriptors those rights give and that many arrived.
// A refusal (status != 0) gives that status as the error.
Result<Welcome> parse_welcome(const void* bytes, usize size, int fds_received, u16 asked_rights);

// A StatReply header: magic, version, connections <= MAX_STAT_CONNECTIONS.
Result<StatReply> parse_stat_reply(const void* bytes, usize size);
ConnectionStats from_wire(const ConnectionStatsWire& w);
ConnectionStatsWire to_wire(const ConnectionStats& s);

// ---- paths -------------------------------------------------------------------------------------

struct EndpointPaths {
    std::string socket;  // <dir>/<escaped>.sock
    std::string lock;    // <dir>/<escaped>.lock
};
// '/' in the name is written ':' (names never contain ':').
EndpointPaths endpoint_paths(const std::string& dir, std::string_view name);
// The name a socket file in the runtime directory stands for, or "" if it is not one of ours.
std::string name_from_socket_file(std::string_view file_name);
// The runtime directory to use: `explicit_dir`, or runtime_directory().
std::string resolve_runtime_dir(std::string_view explicit_dir);

// The runtime directory, opened once and checked on the open descriptor (so nothing can be
// swapped between the check and the use); every file in it is then reached through the
// descriptor (openat, unlinkat, and /proc/self/fd/N/<file> for socket addresses), never by
// resolving the path again.
struct OpenedDir {
    Fd fd;
    std::string path;  // as given, for messages
    u32 owner = 0;
};
enum class DirUse : u8 {
    Publish,  // create it (0700) if missing; it must be ours
    Connect,  // it must exist (else EndpointNotFound) and belong to a trusted uid
};
// The checks: the last component is not a symlink (O_NOFOLLOW), it is a directory, owned by
// one of `trusted_owners` (Publish: our euid), not writable by group or others.
// PermissionDenied with a one-line detail naming the path and the fix.
Result<OpenedDir> open_runtime_dir(const std::string& dir, DirUse use,
                                   const std::vector<u32>& trusted_owners);
// The uids a client trusts as the owner of the runtime directory and as the server: the
// ones it was given, else its own euid; root always (it can do anything to us anyway).
std::vector<u32> trusted_uids(const std::vector<u32>& given);
// "<escaped name><suffix>": '/' in the name is written ':'.
std::string endpoint_file(std::string_view name, const char* suffix);
// An AF_UNIX address for `file` in `dir`: "/proc/self/fd/N/<file>" (the directory's own
// path length does not matter), or the plain path when /proc is not mounted and it fits.
Result<sockaddr_un> socket_address(const OpenedDir& dir, const std::string& file);
// `name` with control characters and other non-printable bytes written as \xHH, so that a
// detail that quotes a name never writes raw control sequences to a terminal.
std::string printable(std::string_view name);

// ---- socket I/O --------------------------------------------------------------------------------

// Sends `bytes` with up to MAX_WELCOME_FDS descriptors (SCM_RIGHTS). MSG_NOSIGNAL.
bool send_with_fds(int sock, const void* bytes, usize size, const int* fds, int nfds);
// Receives up to `size` bytes and the descriptors that came with them (closed-on-exec).
// Returns bytes read (0 = the peer hung up, -1 = error); *nfds descriptors are stored in fds.
// Descriptors beyond `max_fds` or of a truncated control message are closed, and *truncated
// is set.
long receive_with_fds(int sock, void* bytes, usize size, int* fds, int max_fds, int* nfds,
                      bool* truncated);
// Connects to the endpoint's discovery socket in the runtime directory, after checking the
// directory (DirUse::Connect) and, before anything is sent, that the process listening is one
// of `trusted` (SO_PEERCRED). EndpointNotFound (naming it) when no live server listens there,
// PermissionDenied when the directory or the server is not trusted or the socket refuses us.
// *server_cred receives the server's credentials.
Result<Fd> open_endpoint_socket(const std::string& dir, std::string_view name,
                                const std::vector<u32>& trusted, ucred* server_cred);
// A pidfd for the process at the other end of `sock` (whose credentials are `cred`):
// SO_PEERPIDFD where the kernel has it (the very process that connected or listened: no pid
// can be reused under it), else pidfd_open(cred.pid) followed by a check that the socket is
// not hung up (a peer that died between SO_PEERCRED and pidfd_open, its pid reused, is
// caught by its hang-up; only a peer that died, left a fork()ed child holding the socket and
// had its pid reused within that window escapes, and it is then noticed by its socket once
// the child lets go). ProcessNotFound when the peer is already gone.
Result<Fd> peer_pidfd(int sock, const ucred& cred);
// Whether the process behind a pidfd has exited (the pidfd is readable).
bool process_exited(int pidfd);
// PermissionDenied unless the peer of `sock` runs as one of `trusted`.
Result<void> check_server_credentials(int sock, std::string_view name,
                                      const std::vector<u32>& trusted, ucred* cred);
// Waits until the socket is readable or the deadline passes (false on timeout).
bool wait_readable(int sock, u64 deadline_ns);

}  // namespace veridian::ipc::posix::detail
