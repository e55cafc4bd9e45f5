/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/**
 * @file veridian/ipc.h
 * @brief The C API of veridian-ipc: named endpoints between processes, for C11 and any
 *        language with a C foreign-function interface (C++ may use it too).
 *
 * The stable ABI every other language binds to. It wraps the posix runtime
 * (`veridian::ipc::posix`, see veridian/ipc/posix/runtime.hpp) and has the same contract.
 *
 *     // server process
 *     vipc_server* s;
 *     if (vipc_server_publish("demo/echo", NULL, &s) != VIPC_OK) {
 *         fprintf(stderr, "%s\n", vipc_last_error_detail());
 *         return 1;
 *     }
 *     vipc_message req;
 *     while (vipc_server_receive(s, &req, VIPC_DEADLINE_NEVER) == VIPC_OK)
 *         vipc_server_reply(s, &req, req.opcode, req.bytes, req.size, VIPC_DEADLINE_NEVER);
 *     vipc_server_free(s);
 *
 *     // client process
 *     vipc_connection* c;
 *     vipc_message reply;
 *     int rc = vipc_connect("demo/echo", NULL, &c);
 *     if (rc == VIPC_OK)
 *         rc = vipc_connection_call(c, 7, "hi", 2, &reply, vipc_deadline_after_ms(100));
 *
 * Conventions (they hold for every function unless its comment says otherwise):
 *  - Every function returns an error code: VIPC_OK (0) or a negative `vipc_error` (the codes
 *    of the C++ `IpcError`, -1..-16). Outputs go through pointer arguments, which are written
 *    only on success. A NULL handle or a NULL required pointer → VIPC_ERR_INVALID_MESSAGE.
 *    The four functions that cannot fail (vipc_last_error_detail, vipc_error_name,
 *    vipc_now_ns, vipc_deadline_after_ms) return their value instead.
 *  - On failure, vipc_last_error_detail() gives one line naming the thing and the fix, for
 *    the calling thread (thread-local: each thread sees the errors of its own calls).
 *  - No C++ exception and no C++ type crosses this API. Memory the runtime cannot get is
 *    VIPC_ERR_OUT_OF_MEMORY.
 *  - Deadlines are absolute times in nanoseconds on CLOCK_MONOTONIC (vipc_now_ns());
 *    VIPC_DEADLINE_NEVER waits forever, 0 (or any past time) does not wait.
 *  - Handles (vipc_server, vipc_connection, vipc_region, vipc_capability) are opaque and
 *    owned by the caller from the function that made them until its *_free function.
 *    Unless a function says otherwise, any thread may call it on a handle while other
 *    threads call other functions on the same handle (the runtime serializes what must be);
 *    *_free must be the last call on a handle, made when no other thread is inside a call
 *    on it: first *_close (which makes blocked calls return), then join, then *_free.
 *  - Descriptors returned by *_pollable_fd belong to the handle; never close them.
 */
#ifndef VERIDIAN_IPC_H
#define VERIDIAN_IPC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The lines between VIPC_CDEF_BEGIN and VIPC_CDEF_END are plain declarations (no
 * preprocessor conditionals): the Python package declares exactly this text to cffi, and a
 * test checks that they stay the same. */
/* VIPC_CDEF_BEGIN */

#define VIPC_VERSION_MAJOR 0
#define VIPC_VERSION_MINOR 1
#define VIPC_VERSION_PATCH 0

/** A deadline that never passes. */
#define VIPC_DEADLINE_NEVER 0xFFFFFFFFFFFFFFFF
/** Most payload bytes a vipc_message holds in `bytes`. Sends carry more inline, up to the
 * endpoint's maximum (vipc_connection_max_inline, vipc_server_max_inline: 4096 by default);
 * receive a bigger payload with vipc_*_receive_into, a bigger reply with
 * vipc_connection_call_into. */
#define VIPC_INLINE_MAX 64
/** Bytes the runtime keeps inside a received vipc_message (see vipc_message.opaque). */
#define VIPC_MESSAGE_OPAQUE_BYTES 192

/** The error codes: those of the C++ `veridian::ipc::IpcError`, in its order. */
typedef enum vipc_error {
    VIPC_OK = 0,
    VIPC_ERR_INVALID_CAPABILITY = -1,
    VIPC_ERR_PROCESS_NOT_FOUND = -2,
    VIPC_ERR_ENDPOINT_NOT_FOUND = -3,
    VIPC_ERR_MESSAGE_TOO_LARGE = -4,
    VIPC_ERR_OUT_OF_MEMORY = -5,
    VIPC_ERR_WOULD_BLOCK = -6,
    VIPC_ERR_RATE_LIMIT_EXCEEDED = -7,
    VIPC_ERR_TIMEOUT = -8,
    VIPC_ERR_PERMISSION_DENIED = -9,
    VIPC_ERR_INVALID_MESSAGE = -10,
    VIPC_ERR_CHANNEL_FULL = -11,
    VIPC_ERR_CHANNEL_EMPTY = -12,
    VIPC_ERR_ENDPOINT_BUSY = -13,
    VIPC_ERR_INVALID_MEMORY_REGION = -14,
    VIPC_ERR_RESOURCE_BUSY = -15,
    VIPC_ERR_NOT_INITIALIZED = -16
} vipc_error;

/** Rights of a connection or a capability (the C++ `Rights`). */
enum { VIPC_RIGHT_SEND = 1, VIPC_RIGHT_RECEIVE = 2, VIPC_RIGHT_GRANT = 4, VIPC_RIGHT_REVOKE = 8 };

/** How a region travels (the C++ `posix::Transfer`; see veridian/ipc/posix/region.hpp). */
typedef enum vipc_transfer {
    VIPC_TRANSFER_MOVE = 1,
    VIPC_TRANSFER_SHARE_READ_ONLY = 2,
    VIPC_TRANSFER_SHARE_READ_WRITE = 3,
    VIPC_TRANSFER_COPY = 4
} vipc_transfer;

/** What a received message holds. */
typedef enum vipc_message_kind {
    VIPC_KIND_SMALL = 0, /**< the 48-byte register-sized message: `words` */
    VIPC_KIND_BYTES = 1  /**< a payload of `size` bytes in `bytes` (and maybe a region) */
} vipc_message_kind;

/** Message flags set by the runtime (the low 16 bits are the runtime's, the high 16 free). */
enum { VIPC_FLAG_IS_REPLY = 8, VIPC_FLAG_HAS_CAPABILITY = 16 };

typedef struct vipc_server vipc_server;
typedef struct vipc_connection vipc_connection;
typedef struct vipc_region vipc_region;
typedef struct vipc_capability vipc_capability;

/** The register-sized message of the fast path: exactly the C++ `SmallMessage` (48 bytes). */
typedef struct vipc_small {
    uint64_t capability;
    uint32_t opcode;
    uint32_t flags;
    uint64_t data[4];
} vipc_small;

/** A received message (filled in by the receive and call functions; a plain value the
 * caller owns: copy it, keep it, no free needed). */
typedef struct vipc_message {
    uint32_t kind; /**< vipc_message_kind */
    uint32_t opcode;
    uint32_t flags;      /**< VIPC_FLAG_* and the sender's application bits */
    uint32_t size;       /**< VIPC_KIND_BYTES: payload bytes (`bytes` holds 64 at most) */
    uint64_t capability; /**< the message's capability word */
    uint64_t words[4];   /**< VIPC_KIND_SMALL: the data words */
    uint8_t bytes[VIPC_INLINE_MAX];
    uint64_t sender_pid;       /**< the peer's pid (from the kernel, never from the peer) */
    uint64_t transaction_id;   /**< of a call (0 for a one-way message) */
    uint64_t connection;       /**< on a server: the client connection it came from */
    uint64_t region_size;      /**< bytes of an attached region (take it: vipc_region_receive) */
    uint32_t capability_count; /**< attached capabilities (take: vipc_capability_receive) */
    uint32_t reserved;
    /** On a server, for a call: when its caller stops waiting, on CLOCK_MONOTONIC in ns (the
     * caller's remaining time when it wrote the request, added at receipt; a hint, the
     * client's word). VIPC_DEADLINE_NEVER: no deadline, not a call, or a small message. */
    uint64_t caller_deadline;
    /** The runtime's copy of the message (what vipc_region_receive and
     * vipc_capability_receive read). Do not touch. */
    uint64_t opaque[VIPC_MESSAGE_OPAQUE_BYTES / 8];
} vipc_message;

/** Options of vipc_server_publish (vipc_server_options_init sets the defaults). */
typedef struct vipc_server_options {
    uint32_t capacity;        /**< messages per ring, rounded up to a power of two, 1..1024 */
    uint32_t spin_ns;         /**< spin bound before sleeping; 0 = always sleep */
    uint32_t max_connections; /**< more clients → they get VIPC_ERR_RESOURCE_BUSY */
    uint32_t reserved;
    const char* runtime_dir; /**< NULL or "" = the default runtime directory */
} vipc_server_options;

/** Options of vipc_connect (vipc_connect_options_init sets the defaults). */
typedef struct vipc_connect_options {
    uint32_t rights; /**< VIPC_RIGHT_SEND | VIPC_RIGHT_RECEIVE by default */
    uint32_t spin_ns;
    uint32_t connect_timeout_ms; /**< how long to wait for the server's answer */
    uint32_t reserved;
    const char* runtime_dir; /**< NULL or "" = the default runtime directory */
} vipc_connect_options;

/** An endpoint's statistics (the C++ `posix::EndpointInfo`, without the per-connection list). */
typedef struct vipc_endpoint_stats {
    uint64_t owner_pid;
    uint32_t owner_uid;
    uint32_t capacity;    /**< messages per ring */
    uint32_t connections; /**< live connections */
    uint32_t reserved;
    uint64_t accepted; /**< connections accepted since publish */
    uint64_t received; /**< messages received, all connections */
    uint64_t sent;     /**< messages sent, all connections */
    uint64_t broken;   /**< connections dropped for a protocol violation */
} vipc_endpoint_stats;

/* ---- Errors, time ------------------------------------------------------------------------ */

/** One line about the calling thread's last failed call ("" when none): what happened, and
 * the fix where there is one. Never NULL; valid until this thread's next call into the API.
 * Thread-safe (thread-local). */
const char* vipc_last_error_detail(void);
/** The name of an error code ("Timeout"; "Ok" for 0; "Unknown" for anything else). Never
 * NULL, a static string. Thread-safe. */
const char* vipc_error_name(int code);
/** Now, in nanoseconds on CLOCK_MONOTONIC (the clock of every deadline). Thread-safe. */
uint64_t vipc_now_ns(void);
/** A deadline `ms` milliseconds from now (saturating to VIPC_DEADLINE_NEVER). Thread-safe. */
uint64_t vipc_deadline_after_ms(uint64_t ms);

/* ---- Server ------------------------------------------------------------------------------ */

/** Fills *options with the defaults (capacity 64, spin 20 µs, 64 connections, default
 * directory). Errors: INVALID_MESSAGE for NULL. Thread-safe. */
int vipc_server_options_init(vipc_server_options* options);

/** Publishes `name` ("demo/echo": components of [A-Za-z0-9._-] separated by '/') and sets
 * *out to a new server handle, owned by the caller until vipc_server_free. `options` may be
 * NULL (defaults). Errors: ENDPOINT_BUSY (a live process has the name; the detail names its
 * pid), INVALID_MESSAGE (malformed name), PERMISSION_DENIED (runtime directory unusable).
 * Thread-safe. */
int vipc_server_publish(const char* name, const vipc_server_options* options, vipc_server** out);

/** Waits until the deadline for the next message from any client (round-robin over the
 * clients) and writes it to *out: a small message, or a payload of at most VIPC_INLINE_MAX
 * bytes (in out->bytes; a loan that small is copied and released), with or without a region
 * or capabilities. A bigger payload → MESSAGE_TOO_LARGE (the detail names its size and
 * vipc_server_receive_into) and it stays queued: the next receive on this server, of either
 * kind, takes it first. Errors: TIMEOUT, ENDPOINT_NOT_FOUND once the server is closed.
 * Thread-safe (receivers are serialized: one takes each message). */
int vipc_server_receive(vipc_server* server, vipc_message* out, uint64_t deadline);

/** Like vipc_server_receive, never waits: CHANNEL_EMPTY when nothing is queued (or another
 * thread is receiving on this server). After CHANNEL_EMPTY the pollable descriptor is
 * re-armed (see vipc_server_pollable_fd). A message kept queued after MESSAGE_TOO_LARGE is
 * held by this handle, where the descriptor does not signal it: take it with
 * vipc_server_try_receive_into at once. */
int vipc_server_try_receive(vipc_server* server, vipc_message* out);

/** Waits until the deadline for the next message of any kind and size: its header goes to
 * *header (as vipc_server_receive writes it; header->size is the payload's length and
 * header->bytes holds its first VIPC_INLINE_MAX bytes at most), the payload to `buffer`
 * (`capacity` bytes; NULL when 0), and *needed (may be NULL) is set to the payload's length.
 * A loan is copied and released at once. A small message has no payload (*needed 0; its
 * words are in header->words); a region or capabilities stay takeable from *header. Buffer
 * too short → MESSAGE_TOO_LARGE with *needed set, nothing written to *header, and the
 * message stays queued: call again with a buffer of *needed bytes (a payload record is at
 * most vipc_server_max_inline bytes; a loan at most the client's pool). Errors otherwise as
 * vipc_server_receive. Thread-safe (receivers are serialized). */
int vipc_server_receive_into(vipc_server* server, vipc_message* header, void* buffer,
                             size_t capacity, size_t* needed, uint64_t deadline);

/** Like vipc_server_receive_into, never waits: CHANNEL_EMPTY as vipc_server_try_receive. */
int vipc_server_try_receive_into(vipc_server* server, vipc_message* header, void* buffer,
                                 size_t capacity, size_t* needed);

/** Sets *bytes to the largest payload a send or reply of this server carries inline (its
 * max_inline_payload, the same for its clients). Thread-safe. */
int vipc_server_max_inline(vipc_server* server, uint32_t* bytes);

/** Answers the call `request` (received by this server) with `size` bytes (0 up to
 * vipc_server_max_inline, copied into the ring; `data` may be NULL when size is 0) and
 * `opcode`: the caller's call returns it (a reply over VIPC_INLINE_MAX bytes needs a caller
 * using vipc_connection_call_into). Waits while that client's ring is full, until the
 * deadline (TIMEOUT). Errors: PROCESS_NOT_FOUND (the caller is gone), MESSAGE_TOO_LARGE (size
 * over the maximum: the detail names it; send more with vipc_server_reply_region),
 * PERMISSION_DENIED (the client has no RECEIVE right). Thread-safe. */
int vipc_server_reply(vipc_server* server, const vipc_message* request, uint32_t opcode,
                      const void* data, size_t size, uint64_t deadline);

/** Answers `request` with a 48-byte small message (the fast path). As vipc_server_reply. */
int vipc_server_reply_small(vipc_server* server, const vipc_message* request,
                            const vipc_small* response, uint64_t deadline);

/** Answers `request` with an error: the caller's call returns `error` (a negative
 * vipc_error code; INVALID_MESSAGE for 0 or an unknown code) instead of a message, and its
 * vipc_last_error_detail() ends with `detail` (NULL for none; its first 56 bytes travel).
 * Otherwise as vipc_server_reply. Thread-safe. */
int vipc_server_reply_error(vipc_server* server, const vipc_message* request, int error,
                            const char* detail, uint64_t deadline);

/** Answers `request` with `size` inline bytes (0..VIPC_INLINE_MAX) and a region (see
 * vipc_region_create), moved,
 * shared or copied as `transfer` says; after a successful MOVE the region handle is empty
 * (vipc_region_data gives INVALID_MEMORY_REGION; it must still be freed). Otherwise as
 * vipc_server_reply. Thread-safe; the region must not be used by another thread meanwhile. */
int vipc_server_reply_region(vipc_server* server, const vipc_message* request, uint32_t opcode,
                             const void* data, size_t size, vipc_region* region, int transfer,
                             uint64_t deadline);

/** Sends a one-way message of `size` bytes (0 up to vipc_server_max_inline) to client
 * `connection` (the `connection` field of a message it sent). Waits while its ring is full
 * until the deadline; with deadline 0 it never waits (CHANNEL_FULL). Errors:
 * ENDPOINT_NOT_FOUND (no such live connection), PERMISSION_DENIED (the client has no RECEIVE
 * right), MESSAGE_TOO_LARGE (over the maximum). Thread-safe. */
int vipc_server_send(vipc_server* server, uint64_t connection, uint32_t opcode, const void* data,
                     size_t size, uint64_t deadline);

/** Sends a one-way message carrying `capability` (which needs VIPC_RIGHT_GRANT) to client
 * `connection`; the capability handle stays the caller's. As vipc_server_send. */
int vipc_server_send_capability(vipc_server* server, uint64_t connection, uint32_t opcode,
                                const vipc_capability* capability, uint64_t deadline);

/** Mints a capability to connect to this endpoint with `rights` (VIPC_RIGHT_*) and sets *out
 * to it (owned by the caller until vipc_capability_free) and *id to the id that revokes it
 * (`id` may be NULL). Errors: ENDPOINT_NOT_FOUND (server closed). Thread-safe. */
int vipc_server_mint_capability(vipc_server* server, uint32_t rights, vipc_capability** out,
                                uint64_t* id);

/** Revokes capability `id` and every one derived from it: their connections end. Errors:
 * INVALID_CAPABILITY (unknown id). Idempotent. Thread-safe. */
int vipc_server_revoke(vipc_server* server, uint64_t id);

/** Sets *fd to a descriptor that becomes readable (level-triggered; poll, epoll, select,
 * asio, asyncio) when a message may be waiting. Drain with vipc_server_try_receive until
 * CHANNEL_EMPTY, then wait again. Only this process holds it: no client can read, drain or
 * write it (clients signal through their own connection's socket, which the server reads).
 * The descriptor belongs to the server: do not close it. Thread-safe. */
int vipc_server_pollable_fd(vipc_server* server, int* fd);

/** Writes the server's statistics to *out. Thread-safe. */
int vipc_server_stats(vipc_server* server, vipc_endpoint_stats* out);

/** Unpublishes the name and wakes every blocked party on both sides (their calls return
 * ENDPOINT_NOT_FOUND). Idempotent; the handle stays valid (for vipc_server_free). Thread-safe:
 * the way to make other threads' blocked calls return. */
int vipc_server_close(vipc_server* server);

/** Closes (if not yet) and releases the handle. NULL is accepted (VIPC_OK). Not thread-safe:
 * the last call on the handle, when no other thread is inside a call on it. */
int vipc_server_free(vipc_server* server);

/* ---- Client ------------------------------------------------------------------------------ */

/** Fills *options with the defaults (SEND|RECEIVE, spin 20 µs, 2 s connect timeout, default
 * directory). Errors: INVALID_MESSAGE for NULL. Thread-safe. */
int vipc_connect_options_init(vipc_connect_options* options);

/** Connects to the endpoint published as `name` and sets *out to a new connection handle,
 * owned by the caller until vipc_connection_free. `options` may be NULL (defaults). Errors:
 * ENDPOINT_NOT_FOUND (no live server has the name), PERMISSION_DENIED, RESOURCE_BUSY (the
 * server is at max_connections), TIMEOUT (no answer within connect_timeout_ms),
 * INVALID_MESSAGE (malformed name or answer). Thread-safe. */
int vipc_connect(const char* name, const vipc_connect_options* options, vipc_connection** out);

/** Connects through a capability (its rights limit options->rights). Errors:
 * INVALID_CAPABILITY (revoked), ENDPOINT_NOT_FOUND (its server is gone), as vipc_connect.
 * The capability stays the caller's. Thread-safe. */
int vipc_connect_capability(const vipc_capability* capability, const vipc_connect_options* options,
                            vipc_connection** out);

/** Sends a one-way message of `size` bytes (0 up to vipc_connection_max_inline, copied into
 * the ring), waiting while the ring is full until the deadline (TIMEOUT); with deadline 0 it
 * never waits (CHANNEL_FULL). Errors: ENDPOINT_NOT_FOUND (server gone), PERMISSION_DENIED (no
 * SEND right), MESSAGE_TOO_LARGE (over the maximum: the detail names it; send more with
 * vipc_connection_send_region), RATE_LIMIT_EXCEEDED (deadline 0 and over the rate limit),
 * ENDPOINT_NOT_FOUND (closed here too), INVALID_CAPABILITY (revoked). Thread-safe. */
int vipc_connection_send(vipc_connection* connection, uint32_t opcode, const void* data,
                         size_t size, uint64_t deadline);

/** Sends a 48-byte small message; deadline as vipc_connection_send. */
int vipc_connection_send_small(vipc_connection* connection, const vipc_small* message,
                               uint64_t deadline);

/** The fast path: a small message, never waits (CHANNEL_FULL when the ring is full). */
int vipc_connection_fast_send(vipc_connection* connection, const vipc_small* message);

/** Sends `size` inline bytes (0..VIPC_INLINE_MAX) with a region, as `transfer` says (see
 * vipc_server_reply_region for MOVE). As vipc_connection_send. */
int vipc_connection_send_region(vipc_connection* connection, uint32_t opcode, const void* data,
                                size_t size, vipc_region* region, int transfer, uint64_t deadline);

/** Sends a one-way message carrying `capability` (needs VIPC_RIGHT_GRANT); it stays the
 * caller's. As vipc_connection_send (it may wait for the ring even with deadline 0). */
int vipc_connection_send_capability(vipc_connection* connection, uint32_t opcode,
                                    const vipc_capability* capability, uint64_t deadline);

/** Waits until the deadline for a message from the server that is not a reply to a call,
 * and writes it to *out (what fits a vipc_message, as vipc_server_receive says: a bigger
 * payload → MESSAGE_TOO_LARGE naming its size and vipc_connection_receive_into, and it stays
 * queued). Errors: TIMEOUT, ENDPOINT_NOT_FOUND (server gone), PERMISSION_DENIED (no RECEIVE
 * right), INVALID_CAPABILITY (revoked). Thread-safe. */
int vipc_connection_receive(vipc_connection* connection, vipc_message* out, uint64_t deadline);

/** Like vipc_connection_receive, never waits: CHANNEL_EMPTY when nothing is waiting (or
 * another thread is receiving on this connection); that re-arms the pollable descriptor (see
 * vipc_connection_pollable_fd). A message kept queued after MESSAGE_TOO_LARGE is held by
 * this handle, where the descriptor does not signal it: take it with
 * vipc_connection_try_receive_into at once. */
int vipc_connection_try_receive(vipc_connection* connection, vipc_message* out);

/** A message of any kind and size from the server (not a reply), header to *header, payload
 * to `buffer`: exactly as vipc_server_receive_into (MESSAGE_TOO_LARGE with *needed when the
 * buffer is short, and the message stays queued). Errors as vipc_connection_receive.
 * Thread-safe. */
int vipc_connection_receive_into(vipc_connection* connection, vipc_message* header, void* buffer,
                                 size_t capacity, size_t* needed, uint64_t deadline);

/** Like vipc_connection_receive_into, never waits (CHANNEL_EMPTY). */
int vipc_connection_try_receive_into(vipc_connection* connection, vipc_message* header,
                                     void* buffer, size_t capacity, size_t* needed);

/** Sets *bytes to the largest payload a send or call of this connection carries inline (the
 * server's max_inline_payload, learned at connect). Thread-safe. */
int vipc_connection_max_inline(vipc_connection* connection, uint32_t* bytes);

/** Calls: sends `size` bytes (0 up to vipc_connection_max_inline) with `opcode` and waits
 * until the deadline for the reply, written to *reply. A server that answered with
 * vipc_server_reply_error makes this return that error. A reply of more than
 * VIPC_INLINE_MAX bytes does not fit *reply: MESSAGE_TOO_LARGE and it is dropped (a reply
 * is not queued: use vipc_connection_call_into when replies may be bigger). Errors: TIMEOUT,
 * ENDPOINT_NOT_FOUND, PERMISSION_DENIED (needs SEND and RECEIVE), MESSAGE_TOO_LARGE, the
 * server's error. Thread-safe: several threads may call at once; replies are matched to
 * their calls. */
int vipc_connection_call(vipc_connection* connection, uint32_t opcode, const void* data,
                         size_t size, vipc_message* reply, uint64_t deadline);

/** A call whose reply may have any size: sends `size` bytes (0 up to
 * vipc_connection_max_inline) with `opcode`, waits until the deadline, writes the reply's
 * header to *reply_header (size = its payload's length, bytes = its first VIPC_INLINE_MAX),
 * its payload to `buffer` (`capacity` bytes; NULL when 0) and its length to *reply_size.
 * A reply longer than `capacity` → MESSAGE_TOO_LARGE with *reply_size set and the reply
 * dropped (the call is over; nothing is queued): a buffer of vipc_connection_max_inline bytes
 * holds every inline reply (a loan reply, copied and released, can be as big as the
 * server's pool). A reply that is a small message or carries a region gives only its inline
 * bytes here (no region is delivered: use vipc_connection_call for servers that answer with
 * regions). Errors as vipc_connection_call. Thread-safe. */
int vipc_connection_call_into(vipc_connection* connection, uint32_t opcode, const void* data,
                              size_t size, vipc_message* reply_header, void* buffer,
                              size_t capacity, size_t* reply_size, uint64_t deadline);

/** A call with a 48-byte small request. As vipc_connection_call. */
int vipc_connection_call_small(vipc_connection* connection, const vipc_small* request,
                               vipc_message* reply, uint64_t deadline);

/** A call whose request carries a region. As vipc_connection_call and
 * vipc_connection_send_region. */
int vipc_connection_call_region(vipc_connection* connection, uint32_t opcode, const void* data,
                                size_t size, vipc_region* region, int transfer, vipc_message* reply,
                                uint64_t deadline);

/** Starts a call without waiting for its reply (for event loops): sends the request of
 * 0..VIPC_INLINE_MAX bytes (waiting for ring space until the deadline) and sets
 * *transaction_id. Take the reply with vipc_connection_call_poll when the pollable
 * descriptor is readable; end the call with vipc_connection_call_cancel if it is abandoned.
 * Errors as vipc_connection_send. Thread-safe. */
int vipc_connection_call_begin(vipc_connection* connection, uint32_t opcode, const void* data,
                               size_t size, uint64_t* transaction_id, uint64_t deadline);

/** Never waits: writes the reply to call `transaction_id` to *reply and ends the call, or
 * CHANNEL_EMPTY while it has not arrived (then the pollable descriptor is re-armed). The
 * server's error for vipc_server_reply_error; INVALID_MESSAGE for an unknown (or finished)
 * transaction id; ENDPOINT_NOT_FOUND when the server is gone. Thread-safe. */
int vipc_connection_call_poll(vipc_connection* connection, uint64_t transaction_id,
                              vipc_message* reply);

/** Abandons call `transaction_id` (a reply that comes later is dropped). Idempotent.
 * Thread-safe. */
int vipc_connection_call_cancel(vipc_connection* connection, uint64_t transaction_id);

/** Sets *fd to a descriptor that becomes readable (level-triggered) when a message or a reply
 * may be waiting, or the connection ended. Drain with vipc_connection_try_receive (and
 * vipc_connection_call_poll for calls begun) until CHANNEL_EMPTY, then wait again. Only this
 * process holds it: the server can neither read nor drain it, and the notification frames it
 * sends on the connection socket only ever mean "look again". Belongs to the connection:
 * do not close it. Thread-safe. */
int vipc_connection_pollable_fd(vipc_connection* connection, int* fd);

/** The server's pid (from the kernel at connect). Thread-safe. */
int vipc_connection_server_pid(vipc_connection* connection, uint64_t* pid);

/** Closes: the server sees the client gone; local calls afterwards → ENDPOINT_NOT_FOUND;
 * blocked calls return. Idempotent; the handle stays valid (for vipc_connection_free).
 * Thread-safe. */
int vipc_connection_close(vipc_connection* connection);

/** Closes (if not yet) and releases the handle. NULL is accepted. Not thread-safe: the last
 * call on the handle, when no other thread is inside a call on it. */
int vipc_connection_free(vipc_connection* connection);

/** Asks the server of `name` in `runtime_dir` (NULL = default) for its statistics. Errors:
 * ENDPOINT_NOT_FOUND (no live server has the name). Thread-safe. */
int vipc_stat_endpoint(const char* name, const char* runtime_dir, vipc_endpoint_stats* out);

/* ---- Regions: shared memory that travels with a message ---------------------------------- */

/** Creates a zero-filled region of `size` bytes, mapped read-write, and sets *out (owned by
 * the caller until vipc_region_free). Errors: INVALID_MEMORY_REGION (bad size),
 * OUT_OF_MEMORY. Thread-safe. */
int vipc_region_create(uint64_t size, vipc_region** out);

/** Takes the region a received message carries (once) and sets *out (owned by the caller).
 * Validates the descriptor (sealed memfd, large enough; sealed against writes when moved).
 * Errors: INVALID_MEMORY_REGION (none, taken already, or a bad descriptor). Thread-safe. */
int vipc_region_receive(const vipc_message* message, vipc_region** out);

/** Sets *data to the region's mapping and *size to its size (either may be NULL), and
 * *writable (may be NULL) to 1 when the mapping may be written. INVALID_MEMORY_REGION for an
 * empty region (moved away). Not thread-safe against a send of the same region. */
int vipc_region_data(vipc_region* region, void** data, uint64_t* size, int* writable);

/** Unmaps and releases the region. NULL is accepted. The last call on the handle. */
int vipc_region_free(vipc_region* region);

/* ---- Endpoint capabilities: the right to connect, passed in messages --------------------- */

/** Takes capability `index` of those a received message carries (each once) and sets *out
 * (owned by the caller). Errors: INVALID_CAPABILITY (none at that index, or taken already).
 * Thread-safe. */
int vipc_capability_receive(const vipc_message* message, uint32_t index, vipc_capability** out);

/** Derives a capability with `rights` & the capability's own (rights only drop) and sets
 * *out. Errors: INVALID_CAPABILITY (revoked), ENDPOINT_NOT_FOUND (its server is gone).
 * Thread-safe. */
int vipc_capability_derive(const vipc_capability* capability, uint32_t rights,
                           vipc_capability** out);

/** Sets *rights to the capability's rights (VIPC_RIGHT_*). Thread-safe. */
int vipc_capability_rights(const vipc_capability* capability, uint32_t* rights);

/** Releases the capability (its descriptor). NULL is accepted. The last call on the handle. */
int vipc_capability_free(vipc_capability* capability);

/* VIPC_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* VERIDIAN_IPC_H */
