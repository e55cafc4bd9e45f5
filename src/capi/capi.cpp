// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc C API (include/veridian/ipc.h) over the posix runtime.
//
// Layer: bindings (hosted). Every entry point is a `noexcept` function that calls the C++
// runtime inside `guard()`: a C++ exception (only std::bad_alloc can come out of the
// runtime) becomes VIPC_ERR_OUT_OF_MEMORY and never crosses into C. Errors are recorded in a
// thread-local line (vipc_last_error_detail) copied from the runtime's own detail, or
// written here for errors found here (NULL arguments, bad sizes).
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "posix/os.hpp"  // detail::clear_error_detail
#include "veridian/ipc.h"
#include "veridian/ipc/core/capability.hpp"
#include "veridian/ipc/posix/runtime.hpp"

#include <type_traits>

using namespace veridian::ipc;

// A message taken from the runtime that the caller has not taken yet (its buffer was too
// short): it stays here, in front of the queue, for the handle's next receive. `bytes` holds
// its payload (a Large message's inline bytes; nothing for a Small one).
struct PendingMessage {
    bool held = false;
    vipc_message header{};
    std::vector<std::byte> bytes;  // capacity reused from message to message
};

// One receiver at a time per handle (the runtime serializes receivers too): the one inside
// owns `pending`, so "take from the runtime, hold what did not fit" is one step. A receiver
// waits for its turn until its own deadline.
//   (1) enter: under mu, wait on cv until !busy (or the deadline: give up), set busy.
//   (2) receive and touch `pending` outside mu (only the thread that set busy does).
//   (3) leave: under mu, clear busy; then notify one waiter, which re-checks (1).
// SYNC POINT: mu's unlock in (3) releases what (2) wrote to `pending`; the next receiver's
// lock of mu in (1) acquires it.
struct ReceiveGate {
    std::mutex mu;
    std::condition_variable cv;
    bool busy = false;  // guarded by mu
};
struct vipc_server {
    explicit vipc_server(posix::Server&& s) : server(static_cast<posix::Server&&>(s)) {}
    posix::Server server;
    ReceiveGate gate;
    PendingMessage pending;  // owned by the receiver inside the gate
};
struct vipc_connection {
    explicit vipc_connection(posix::Connection&& c)
        : connection(static_cast<posix::Connection&&>(c)) {}
    posix::Connection connection;
    ReceiveGate gate;
    PendingMessage pending;  // owned by the receiver inside the gate
};
struct vipc_region {
    posix::Region region;
};
struct vipc_capability {
    posix::EndpointCapability capability;
};

namespace {

static_assert(sizeof(vipc_small) == sizeof(SmallMessage));
static_assert(offsetof(vipc_small, capability) == offsetof(SmallMessage, capability));
static_assert(offsetof(vipc_small, opcode) == offsetof(SmallMessage, opcode));
static_assert(offsetof(vipc_small, flags) == offsetof(SmallMessage, flags));
static_assert(offsetof(vipc_small, data) == offsetof(SmallMessage, data));
static_assert(sizeof(Message) <= VIPC_MESSAGE_OPAQUE_BYTES);
static_assert(alignof(Message) <= alignof(std::uint64_t));
static_assert(VIPC_INLINE_MAX == LARGE_MESSAGE_INLINE_BYTES);
static_assert(VIPC_RIGHT_SEND == Rights::SEND && VIPC_RIGHT_RECEIVE == Rights::RECEIVE &&
              VIPC_RIGHT_GRANT == Rights::GRANT && VIPC_RIGHT_REVOKE == Rights::REVOKE);
static_assert(VIPC_FLAG_IS_REPLY == MessageFlags::IS_REPLY &&
              VIPC_FLAG_HAS_CAPABILITY == MessageFlags::HAS_CAPABILITY);
static_assert(VIPC_TRANSFER_MOVE == static_cast<int>(posix::Transfer::Move) &&
              VIPC_TRANSFER_SHARE_READ_ONLY == static_cast<int>(posix::Transfer::ShareReadOnly) &&
              VIPC_TRANSFER_SHARE_READ_WRITE == static_cast<int>(posix::Transfer::ShareReadWrite) &&
              VIPC_TRANSFER_COPY == static_cast<int>(posix::Transfer::Copy));
static_assert(VIPC_ERR_INVALID_CAPABILITY == error_code(IpcError::InvalidCapability) &&
              VIPC_ERR_NOT_INITIALIZED == error_code(IpcError::NotInitialized) &&
              VIPC_ERR_TIMEOUT == error_code(IpcError::Timeout) &&
              VIPC_ERR_CHANNEL_EMPTY == error_code(IpcError::ChannelEmpty));

thread_local char t_detail[512];

int set_detail(int code, const char* format, ...) __attribute__((format(printf, 2, 3)));
int set_detail(int code, const char* format, ...) {
    va_list args;
    va_start(args, format);
    std::vsnprintf(t_detail, sizeof t_detail, format, args);
    va_end(args);
    return code;
}

// The code of a runtime error, with the runtime's detail (or the kind's text) recorded.
int runtime_error(IpcError e) {
    const char* d = posix::last_error_detail();
    if (d == nullptr || *d == '\0') d = error_text(e);
    std::snprintf(t_detail, sizeof t_detail, "%s", d);
    return error_code(e);
}

int invalid(const char* what) {
    return set_detail(VIPC_ERR_INVALID_MESSAGE, "%s is NULL: pass a valid pointer", what);
}

// Runs `body` (which returns an int code), turning any C++ exception into a C error code.
// The runtime's detail is cleared first, so an error it reports without one (a Timeout, say)
// is described by its kind, not by an older error's line.
template <typename F>
int guard(F&& body) noexcept {
    posix::detail::clear_error_detail();
    try {
        return body();
    } catch (const std::bad_alloc&) {
        return set_detail(VIPC_ERR_OUT_OF_MEMORY, "out of memory");
    } catch (...) {
        return set_detail(VIPC_ERR_OUT_OF_MEMORY, "the runtime failed unexpectedly");
    }
}

int code_of(const Result<void>& r) {
    return r ? VIPC_OK : runtime_error(r.error());
}

Deadline to_deadline(std::uint64_t ns) {
    return ns == VIPC_DEADLINE_NEVER ? Deadline::never() : Deadline::at(ns);
}

// The message to send: `size` inline bytes in a LargeMessage (the receiver learns the size
// from header.total_size).
Result<Message> bytes_message(std::uint32_t opcode, const void* data, size_t size) {
    if (size > LARGE_MESSAGE_INLINE_BYTES) {
        set_detail(VIPC_ERR_MESSAGE_TOO_LARGE,
                   "a payload of %zu bytes is over the %zu bytes a message carries inline: "
                   "send it in a region (vipc_region_create)",
                   size, LARGE_MESSAGE_INLINE_BYTES);
        return IpcError::MessageTooLarge;
    }
    if (size > 0 && data == nullptr) {
        set_detail(VIPC_ERR_INVALID_MESSAGE, "data is NULL with size %zu", size);
        return IpcError::InvalidMessage;
    }
    LargeMessage m{};
    m.header.opcode = opcode;
    m.header.total_size = size;
    if (size > 0) std::memcpy(m.inline_data, data, size);
    return Message(m);
}

// The bytes of a payload send: NULL only with size 0.
Result<std::span<const std::byte>> payload_span(const void* data, size_t size) {
    if (size > 0 && data == nullptr) {
        set_detail(VIPC_ERR_INVALID_MESSAGE, "data is NULL with size %zu", size);
        return IpcError::InvalidMessage;
    }
    return std::span<const std::byte>(static_cast<const std::byte*>(data), size);
}

// A payload over the endpoint's inline maximum: the code, with a detail naming the limit.
int over_inline(size_t size, u32 max, const char* region_function) {
    return set_detail(VIPC_ERR_MESSAGE_TOO_LARGE,
                      "a payload of %zu bytes is over the %u bytes this endpoint carries inline "
                      "(its max_inline_payload): send it in a region (vipc_region_create, %s)",
                      size, max, region_function);
}

// Sends of a bytes message return codes whose detail bytes_message() already set.
int local_error(IpcError e) {
    return error_code(e);
}

void to_c(const Message& m, posix::ConnectionId connection, vipc_message* out,
          Deadline caller_deadline = Deadline::never()) {
    std::memset(out, 0, sizeof *out);
    out->caller_deadline = caller_deadline.ns();  // never() is VIPC_DEADLINE_NEVER
    out->opcode = m.opcode();
    out->flags = m.flags();
    out->capability = m.capability();
    out->sender_pid = m.sender().value;
    out->transaction_id = m.transaction_id();
    out->connection = connection;
    if (m.is_small()) {
        out->kind = VIPC_KIND_SMALL;
        std::memcpy(out->words, m.small_message().data, sizeof out->words);
    } else {
        const LargeMessage& l = m.large_message();
        out->kind = VIPC_KIND_BYTES;
        out->region_size = l.region.size;
        const u64 inline_bytes =
            l.header.total_size -
            (l.region.size <= l.header.total_size ? l.region.size : l.header.total_size);
        out->size = static_cast<std::uint32_t>(
            inline_bytes < LARGE_MESSAGE_INLINE_BYTES ? inline_bytes : LARGE_MESSAGE_INLINE_BYTES);
        std::memcpy(out->bytes, l.inline_data, out->size);
    }
    out->capability_count = posix::EndpointCapability::count(m);
    std::memcpy(out->opaque, &m, sizeof m);
}

// A payload message (a record or a loan) as a vipc_message: its first VIPC_INLINE_MAX bytes
// in `bytes`; `opaque` holds a Message with its sender and transaction id (what a reply
// needs), and a LargeMessage of the bytes when they fit one.
void payload_to_c(const posix::PayloadInfo& info, std::span<const std::byte> payload,
                  const Message& message, vipc_message* out) {
    std::memset(out, 0, sizeof *out);
    out->kind = VIPC_KIND_BYTES;
    out->opcode = info.opcode;
    out->flags = info.flags;
    out->size = static_cast<std::uint32_t>(payload.size());
    out->sender_pid = info.sender.value;
    out->transaction_id = info.transaction_id;
    out->connection = info.connection;
    out->caller_deadline = info.caller_deadline.ns();  // never() is VIPC_DEADLINE_NEVER
    const usize head =
        payload.size() < LARGE_MESSAGE_INLINE_BYTES ? payload.size() : LARGE_MESSAGE_INLINE_BYTES;
    if (head > 0) std::memcpy(out->bytes, payload.data(), head);
    Message m = message;
    if (payload.size() <= LARGE_MESSAGE_INLINE_BYTES) {
        LargeMessage l{};
        l.header.opcode = info.opcode;
        l.header.flags = info.flags;
        l.header.total_size = payload.size();
        if (head > 0) std::memcpy(l.inline_data, payload.data(), head);
        m = Message(l);
    }
    m.set_sender(info.sender);
    m.set_transaction_id(info.transaction_id);
    std::memcpy(out->opaque, &m, sizeof m);
}

// Holds a message the runtime handed out as a Message.
void hold_message(PendingMessage& p, const Message& m, posix::ConnectionId connection,
                  Deadline caller_deadline) {
    to_c(m, connection, &p.header, caller_deadline);
    const auto* b = reinterpret_cast<const std::byte*>(p.header.bytes);
    p.bytes.assign(b, b + (p.header.kind == VIPC_KIND_BYTES ? p.header.size : 0));
    p.held = true;
}

// Holds a message the runtime handed out as a view (copied now: the view ends at the next
// receive). Small and Large kinds keep their Message (with its attachments).
void hold_incoming(PendingMessage& p, const posix::Incoming& in) {
    if (in.kind == posix::Incoming::Kind::Small || in.kind == posix::Incoming::Kind::Large) {
        hold_message(p, in.message, in.info.connection, in.info.caller_deadline);
        return;
    }
    payload_to_c(in.info, in.payload, in.message, &p.header);
    p.bytes.assign(in.payload.begin(), in.payload.end());
    p.held = true;
}

// Takes the next message into `p` (unless one is held already), inside the handle's gate:
// first as a Message (the runtime's fast path, which leaves a payload over 64 bytes or a
// loan queued with MessageTooLarge), then, for those, as a view, copied and (a loan)
// released. `Side` is posix::Server or posix::Connection.
template <typename Side>
int fetch(Side& side, PendingMessage& p, bool blocking, Deadline deadline) {
    if (p.held) return VIPC_OK;
    if constexpr (std::is_same_v<Side, posix::Server>) {
        Result<posix::Received> r = blocking ? side.receive_sync(deadline) : side.try_receive();
        if (r) {
            hold_message(p, r->message, r->connection, r->caller_deadline);
            return VIPC_OK;
        }
        if (r.error() != IpcError::MessageTooLarge) return runtime_error(r.error());
    } else {
        Result<Message> r = blocking ? side.receive_sync(deadline) : side.try_receive();
        if (r) {
            hold_message(p, *r, 0, Deadline::never());
            return VIPC_OK;
        }
        if (r.error() != IpcError::MessageTooLarge) return runtime_error(r.error());
    }
    posix::detail::clear_error_detail();
    Result<posix::Incoming> v = blocking ? side.receive_view(deadline) : side.try_receive_view();
    if (!v) return runtime_error(v.error());
    hold_incoming(p, *v);
    if constexpr (std::is_same_v<Side, posix::Server>) {
        // Copied: the view ends now, so that the connection's next message can go to another
        // thread receiving on this handle (a server's view lasts until this thread's next
        // receive otherwise).
        if (v->kind == posix::Incoming::Kind::Payload) (void)side.release(*v);
    }
    if (v->kind == posix::Incoming::Kind::Loan) {
        // Copied: the chunk goes back to the sender at once.
        if (Result<void> released = side.release(*v); !released) {
            p.held = false;
            return runtime_error(released.error());
        }
    }
    return VIPC_OK;
}

// Step (1) of ReceiveGate: false when another receiver is inside and the deadline passed
// (at once when not blocking).
bool enter(ReceiveGate& g, bool blocking, std::uint64_t deadline) {
    std::unique_lock<std::mutex> lock(g.mu);
    if (blocking && deadline == VIPC_DEADLINE_NEVER) {
        g.cv.wait(lock, [&] { return !g.busy; });
    } else if (blocking && deadline != 0) {
        // CLOCK_MONOTONIC is steady_clock's clock on Linux (see posix::now_ns()).
        const auto at = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline));
        if (!g.cv.wait_until(lock, at, [&] { return !g.busy; })) return false;
    } else if (g.busy) {
        return false;
    }
    g.busy = true;
    return true;
}

// Step (3) of ReceiveGate.
struct LeaveGate {
    explicit LeaveGate(ReceiveGate& gate) : g(gate) {}
    ReceiveGate& g;
    LeaveGate(const LeaveGate&) = delete;
    LeaveGate& operator=(const LeaveGate&) = delete;
    ~LeaveGate() {
        {
            std::lock_guard<std::mutex> lock(g.mu);
            g.busy = false;
        }
        g.cv.notify_one();
    }
};

int busy(bool blocking) {
    if (!blocking) {
        return set_detail(VIPC_ERR_CHANNEL_EMPTY,
                          "nothing to take: another thread of this process is receiving on "
                          "this handle");
    }
    return set_detail(VIPC_ERR_TIMEOUT,
                      "the deadline passed while another thread of this process was receiving "
                      "on this handle");
}

// The receive functions: `out` is a vipc_message (buffer NULL, as_message) or a header with
// a caller's buffer (receive_into).
template <typename Handle, typename Side>
int receive_c(Handle* h, Side& side, vipc_message* out, void* buffer, size_t capacity,
              size_t* needed, bool as_message, bool blocking, std::uint64_t deadline,
              const char* into_function) {
    if (!enter(h->gate, blocking, deadline)) return busy(blocking);
    const LeaveGate leave(h->gate);
    PendingMessage& p = h->pending;
    if (const int rc = fetch(side, p, blocking, to_deadline(deadline)); rc != VIPC_OK) return rc;
    const size_t length = p.bytes.size();
    if (as_message) {
        if (length > LARGE_MESSAGE_INLINE_BYTES) {
            return set_detail(VIPC_ERR_MESSAGE_TOO_LARGE,
                              "a %zu-byte payload is waiting, more than a vipc_message holds "
                              "(%d): take it with %s (it stays queued)",
                              length, VIPC_INLINE_MAX, into_function);
        }
    } else {
        if (needed != nullptr) *needed = length;
        if (length > capacity) {
            return set_detail(VIPC_ERR_MESSAGE_TOO_LARGE,
                              "the buffer has %zu bytes, the message %zu; it stays queued: "
                              "call again with a buffer of *needed bytes",
                              capacity, length);
        }
        if (length > 0 && buffer == nullptr) return invalid("buffer");
        if (length > 0) std::memcpy(buffer, p.bytes.data(), length);
    }
    *out = p.header;
    p.held = false;
    return VIPC_OK;
}

Message from_c(const vipc_message* m) {
    Message out;
    std::memcpy(&out, m->opaque, sizeof out);
    return out;
}

posix::Received received_from_c(const vipc_message* request) {
    posix::Received r;
    r.message = from_c(request);
    r.connection = request->connection;
    return r;
}

bool valid_transfer(int t) {
    return t >= VIPC_TRANSFER_MOVE && t <= VIPC_TRANSFER_COPY;
}

int bad_transfer(int t) {
    return set_detail(VIPC_ERR_INVALID_MESSAGE,
                      "transfer %d is not a vipc_transfer (VIPC_TRANSFER_MOVE..COPY)", t);
}

void stats_to_c(const posix::EndpointInfo& in, vipc_endpoint_stats* out) {
    std::memset(out, 0, sizeof *out);
    out->owner_pid = in.owner.value;
    out->owner_uid = in.owner_uid;
    out->capacity = in.capacity;
    out->connections = in.connections;
    out->accepted = in.accepted;
    out->received = in.received;
    out->sent = in.sent;
    out->broken = in.broken;
}

posix::ConnectOptions connect_options(const vipc_connect_options* options) {
    posix::ConnectOptions o;
    if (options != nullptr) {
        o.rights = static_cast<u16>(options->rights);
        o.spin_ns = options->spin_ns;
        o.connect_timeout_ms = options->connect_timeout_ms;
        if (options->runtime_dir != nullptr) o.runtime_dir = options->runtime_dir;
    }
    return o;
}

}  // namespace

extern "C" {

// ---- errors, time --------------------------------------------------------------------------

const char* vipc_last_error_detail(void) {
    return t_detail;
}

const char* vipc_error_name(int code) {
    if (code == 0) return "Ok";
    IpcError e;
    if (!error_from_code(code, &e)) return "Unknown";
    return error_name(e);
}

std::uint64_t vipc_now_ns(void) {
    return posix::now_ns();
}

std::uint64_t vipc_deadline_after_ms(std::uint64_t ms) {
    if (ms >= ~std::uint64_t{0} / 1'000'000u) return VIPC_DEADLINE_NEVER;
    const Deadline d = posix::after_ns(ms * 1'000'000u);
    return d.is_never() ? VIPC_DEADLINE_NEVER : d.ns();
}

// ---- server ----------------------------------------------------------------------------------

int vipc_server_options_init(vipc_server_options* options) {
    if (options == nullptr) return invalid("options");
    const posix::ServerOptions d;
    std::memset(options, 0, sizeof *options);
    options->capacity = d.capacity;
    options->spin_ns = d.spin_ns;
    options->max_connections = d.max_connections;
    options->runtime_dir = nullptr;
    return VIPC_OK;
}

int vipc_server_publish(const char* name, const vipc_server_options* options, vipc_server** out) {
    if (name == nullptr) return invalid("name");
    if (out == nullptr) return invalid("out");
    return guard([&]() -> int {
        posix::ServerOptions o;
        if (options != nullptr) {
            o.capacity = options->capacity;
            o.spin_ns = options->spin_ns;
            o.max_connections = options->max_connections;
            if (options->runtime_dir != nullptr) o.runtime_dir = options->runtime_dir;
        }
        Result<posix::Server> s = posix::Server::publish(name, o);
        if (!s) return runtime_error(s.error());
        *out = new vipc_server(static_cast<posix::Server&&>(*s));
        return VIPC_OK;
    });
}

int vipc_server_receive(vipc_server* server, vipc_message* out, std::uint64_t deadline) {
    if (server == nullptr) return invalid("server");
    if (out == nullptr) return invalid("out");
    return guard([&]() -> int {
        return receive_c(server, server->server, out, nullptr, 0, nullptr, true, true, deadline,
                         "vipc_server_receive_into");
    });
}

int vipc_server_try_receive(vipc_server* server, vipc_message* out) {
    if (server == nullptr) return invalid("server");
    if (out == nullptr) return invalid("out");
    return guard([&]() -> int {
        return receive_c(server, server->server, out, nullptr, 0, nullptr, true, false, 0,
                         "vipc_server_try_receive_into");
    });
}

int vipc_server_receive_into(vipc_server* server, vipc_message* header, void* buffer,
                             size_t capacity, size_t* needed, std::uint64_t deadline) {
    if (server == nullptr) return invalid("server");
    if (header == nullptr) return invalid("header");
    return guard([&]() -> int {
        return receive_c(server, server->server, header, buffer, capacity, needed, false, true,
                         deadline, nullptr);
    });
}

int vipc_server_try_receive_into(vipc_server* server, vipc_message* header, void* buffer,
                                 size_t capacity, size_t* needed) {
    if (server == nullptr) return invalid("server");
    if (header == nullptr) return invalid("header");
    return guard([&]() -> int {
        return receive_c(server, server->server, header, buffer, capacity, needed, false, false, 0,
                         nullptr);
    });
}

int vipc_server_max_inline(vipc_server* server, std::uint32_t* bytes) {
    if (server == nullptr) return invalid("server");
    if (bytes == nullptr) return invalid("bytes");
    *bytes = server->server.max_inline_payload();
    return VIPC_OK;
}

int vipc_server_reply(vipc_server* server, const vipc_message* request, std::uint32_t opcode,
                      const void* data, size_t size, std::uint64_t deadline) {
    if (server == nullptr) return invalid("server");
    if (request == nullptr) return invalid("request");
    return guard([&]() -> int {
        if (size > LARGE_MESSAGE_INLINE_BYTES) {
            const u32 max = server->server.max_inline_payload();
            if (size > max) return over_inline(size, max, "vipc_server_reply_region");
            Result<std::span<const std::byte>> bytes = payload_span(data, size);
            if (!bytes) return local_error(bytes.error());
            return code_of(server->server.reply(received_from_c(request), opcode, 0, *bytes,
                                                to_deadline(deadline)));
        }
        Result<Message> m = bytes_message(opcode, data, size);
        if (!m) return local_error(m.error());
        return code_of(server->server.reply(received_from_c(request), *m, to_deadline(deadline)));
    });
}

int vipc_server_reply_small(vipc_server* server, const vipc_message* request,
                            const vipc_small* response, std::uint64_t deadline) {
    if (server == nullptr) return invalid("server");
    if (request == nullptr) return invalid("request");
    if (response == nullptr) return invalid("response");
    return guard([&]() -> int {
        SmallMessage s;
        std::memcpy(&s, response, sizeof s);
        return code_of(
            server->server.reply(received_from_c(request), Message(s), to_deadline(deadline)));
    });
}

int vipc_server_reply_error(vipc_server* server, const vipc_message* request, int error,
                            const char* detail, std::uint64_t deadline) {
    if (server == nullptr) return invalid("server");
    if (request == nullptr) return invalid("request");
    IpcError e;
    if (!error_from_code(error, &e)) {
        return set_detail(VIPC_ERR_INVALID_MESSAGE,
                          "%d is not an error code: pass one of VIPC_ERR_* (-1..-16)", error);
    }
    return guard([&]() -> int {
        return code_of(server->server.reply_error(
            received_from_c(request), e,
            detail != nullptr ? std::string_view(detail) : std::string_view(),
            to_deadline(deadline)));
    });
}

int vipc_server_reply_region(vipc_server* server, const vipc_message* request, std::uint32_t opcode,
                             const void* data, size_t size, vipc_region* region, int transfer,
                             std::uint64_t deadline) {
    if (server == nullptr) return invalid("server");
    if (request == nullptr) return invalid("request");
    if (region == nullptr) return invalid("region");
    if (!valid_transfer(transfer)) return bad_transfer(transfer);
    return guard([&]() -> int {
        Result<Message> m = bytes_message(opcode, data, size);
        if (!m) return local_error(m.error());
        return code_of(server->server.reply(received_from_c(request), *m, region->region,
                                            static_cast<posix::Transfer>(transfer),
                                            to_deadline(deadline)));
    });
}

int vipc_server_send(vipc_server* server, std::uint64_t connection, std::uint32_t opcode,
                     const void* data, size_t size, std::uint64_t deadline) {
    if (server == nullptr) return invalid("server");
    return guard([&]() -> int {
        if (size > LARGE_MESSAGE_INLINE_BYTES) {
            const u32 max = server->server.max_inline_payload();
            if (size > max) return over_inline(size, max, "vipc_server_reply_region");
            Result<std::span<const std::byte>> bytes = payload_span(data, size);
            if (!bytes) return local_error(bytes.error());
            if (deadline == 0) {
                return code_of(server->server.send_async(connection, opcode, 0, *bytes));
            }
            return code_of(
                server->server.send_sync(connection, opcode, 0, *bytes, to_deadline(deadline)));
        }
        Result<Message> m = bytes_message(opcode, data, size);
        if (!m) return local_error(m.error());
        if (deadline == 0) return code_of(server->server.send_async(connection, *m));
        return code_of(server->server.send_sync(connection, *m, to_deadline(deadline)));
    });
}

int vipc_server_send_capability(vipc_server* server, std::uint64_t connection, std::uint32_t opcode,
                                const vipc_capability* capability, std::uint64_t deadline) {
    if (server == nullptr) return invalid("server");
    if (capability == nullptr) return invalid("capability");
    return guard([&]() -> int {
        return code_of(server->server.send_sync(connection, Message::small(0, opcode),
                                                capability->capability, to_deadline(deadline)));
    });
}

int vipc_server_mint_capability(vipc_server* server, std::uint32_t rights, vipc_capability** out,
                                std::uint64_t* id) {
    if (server == nullptr) return invalid("server");
    if (out == nullptr) return invalid("out");
    return guard([&]() -> int {
        Result<posix::MintedCapability> m =
            server->server.mint_capability(static_cast<u16>(rights & Rights::ALL));
        if (!m) return runtime_error(m.error());
        if (id != nullptr) *id = m->id;
        *out = new vipc_capability{static_cast<posix::EndpointCapability&&>(m->capability)};
        return VIPC_OK;
    });
}

int vipc_server_revoke(vipc_server* server, std::uint64_t id) {
    if (server == nullptr) return invalid("server");
    return guard([&]() -> int { return code_of(server->server.revoke(id)); });
}

int vipc_server_pollable_fd(vipc_server* server, int* fd) {
    if (server == nullptr) return invalid("server");
    if (fd == nullptr) return invalid("fd");
    return guard([&]() -> int {
        const int got = server->server.pollable_fd();
        if (got < 0) {
            return set_detail(VIPC_ERR_INVALID_CAPABILITY,
                              "the server has no pollable descriptor (it was moved from)");
        }
        *fd = got;
        return VIPC_OK;
    });
}

int vipc_server_stats(vipc_server* server, vipc_endpoint_stats* out) {
    if (server == nullptr) return invalid("server");
    if (out == nullptr) return invalid("out");
    return guard([&]() -> int {
        stats_to_c(server->server.info(), out);
        return VIPC_OK;
    });
}

int vipc_server_close(vipc_server* server) {
    if (server == nullptr) return invalid("server");
    return guard([&]() -> int { return code_of(server->server.close()); });
}

int vipc_server_free(vipc_server* server) {
    if (server == nullptr) return VIPC_OK;
    return guard([&]() -> int {
        delete server;
        return VIPC_OK;
    });
}

// ---- client ----------------------------------------------------------------------------------

int vipc_connect_options_init(vipc_connect_options* options) {
    if (options == nullptr) return invalid("options");
    const posix::ConnectOptions d;
    std::memset(options, 0, sizeof *options);
    options->rights = d.rights;
    options->spin_ns = d.spin_ns;
    options->connect_timeout_ms = d.connect_timeout_ms;
    options->runtime_dir = nullptr;
    return VIPC_OK;
}

int vipc_connect(const char* name, const vipc_connect_options* options, vipc_connection** out) {
    if (name == nullptr) return invalid("name");
    if (out == nullptr) return invalid("out");
    return guard([&]() -> int {
        Result<posix::Connection> c = posix::Connection::connect(name, connect_options(options));
        if (!c) return runtime_error(c.error());
        *out = new vipc_connection(static_cast<posix::Connection&&>(*c));
        return VIPC_OK;
    });
}

int vipc_connect_capability(const vipc_capability* capability, const vipc_connect_options* options,
                            vipc_connection** out) {
    if (capability == nullptr) return invalid("capability");
    if (out == nullptr) return invalid("out");
    return guard([&]() -> int {
        Result<posix::Connection> c =
            posix::Connection::connect(capability->capability, connect_options(options));
        if (!c) return runtime_error(c.error());
        *out = new vipc_connection(static_cast<posix::Connection&&>(*c));
        return VIPC_OK;
    });
}

int vipc_connection_send(vipc_connection* connection, std::uint32_t opcode, const void* data,
                         size_t size, std::uint64_t deadline) {
    if (connection == nullptr) return invalid("connection");
    return guard([&]() -> int {
        if (size > LARGE_MESSAGE_INLINE_BYTES) {
            const u32 max = connection->connection.max_inline_payload();
            if (size > max) return over_inline(size, max, "vipc_connection_send_region");
            Result<std::span<const std::byte>> bytes = payload_span(data, size);
            if (!bytes) return local_error(bytes.error());
            if (deadline == 0) return code_of(connection->connection.send_async(opcode, 0, *bytes));
            return code_of(
                connection->connection.send_sync(opcode, 0, *bytes, to_deadline(deadline)));
        }
        Result<Message> m = bytes_message(opcode, data, size);
        if (!m) return local_error(m.error());
        if (deadline == 0) return code_of(connection->connection.send_async(*m));
        return code_of(connection->connection.send_sync(*m, to_deadline(deadline)));
    });
}

int vipc_connection_send_small(vipc_connection* connection, const vipc_small* message,
                               std::uint64_t deadline) {
    if (connection == nullptr) return invalid("connection");
    if (message == nullptr) return invalid("message");
    return guard([&]() -> int {
        SmallMessage s;
        std::memcpy(&s, message, sizeof s);
        if (deadline == 0) return code_of(connection->connection.send_async(Message(s)));
        return code_of(connection->connection.send_sync(Message(s), to_deadline(deadline)));
    });
}

int vipc_connection_fast_send(vipc_connection* connection, const vipc_small* message) {
    if (connection == nullptr) return invalid("connection");
    if (message == nullptr) return invalid("message");
    return guard([&]() -> int {
        SmallMessage s;
        std::memcpy(&s, message, sizeof s);
        return code_of(connection->connection.fast_send(s));
    });
}

int vipc_connection_send_region(vipc_connection* connection, std::uint32_t opcode, const void* data,
                                size_t size, vipc_region* region, int transfer,
                                std::uint64_t deadline) {
    if (connection == nullptr) return invalid("connection");
    if (region == nullptr) return invalid("region");
    if (!valid_transfer(transfer)) return bad_transfer(transfer);
    return guard([&]() -> int {
        Result<Message> m = bytes_message(opcode, data, size);
        if (!m) return local_error(m.error());
        const auto t = static_cast<posix::Transfer>(transfer);
        if (deadline == 0) return code_of(connection->connection.send_async(*m, region->region, t));
        return code_of(
            connection->connection.send_sync(*m, region->region, t, to_deadline(deadline)));
    });
}

int vipc_connection_send_capability(vipc_connection* connection, std::uint32_t opcode,
                                    const vipc_capability* capability, std::uint64_t deadline) {
    if (connection == nullptr) return invalid("connection");
    if (capability == nullptr) return invalid("capability");
    return guard([&]() -> int {
        return code_of(connection->connection.send_sync(
            Message::small(0, opcode), capability->capability, to_deadline(deadline)));
    });
}

int vipc_connection_receive(vipc_connection* connection, vipc_message* out,
                            std::uint64_t deadline) {
    if (connection == nullptr) return invalid("connection");
    if (out == nullptr) return invalid("out");
    return guard([&]() -> int {
        return receive_c(connection, connection->connection, out, nullptr, 0, nullptr, true, true,
                         deadline, "vipc_connection_receive_into");
    });
}

int vipc_connection_try_receive(vipc_connection* connection, vipc_message* out) {
    if (connection == nullptr) return invalid("connection");
    if (out == nullptr) return invalid("out");
    return guard([&]() -> int {
        return receive_c(connection, connection->connection, out, nullptr, 0, nullptr, true, false,
                         0, "vipc_connection_try_receive_into");
    });
}

int vipc_connection_receive_into(vipc_connection* connection, vipc_message* header, void* buffer,
                                 size_t capacity, size_t* needed, std::uint64_t deadline) {
    if (connection == nullptr) return invalid("connection");
    if (header == nullptr) return invalid("header");
    return guard([&]() -> int {
        return receive_c(connection, connection->connection, header, buffer, capacity, needed,
                         false, true, deadline, nullptr);
    });
}

int vipc_connection_try_receive_into(vipc_connection* connection, vipc_message* header,
                                     void* buffer, size_t capacity, size_t* needed) {
    if (connection == nullptr) return invalid("connection");
    if (header == nullptr) return invalid("header");
    return guard([&]() -> int {
        return receive_c(connection, connection->connection, header, buffer, capacity, needed,
                         false, false, 0, nullptr);
    });
}

int vipc_connection_max_inline(vipc_connection* connection, std::uint32_t* bytes) {
    if (connection == nullptr) return invalid("connection");
    if (bytes == nullptr) return invalid("bytes");
    *bytes = connection->connection.max_inline_payload();
    return VIPC_OK;
}

extern "C++" {
namespace {

// A payload call: the reply's bytes land in this thread's buffer (its capacity reused).
Result<posix::PayloadInfo> payload_call(vipc_connection* connection, std::uint32_t opcode,
                                        const void* data, size_t size,
                                        std::vector<std::byte>*& reply_bytes,
                                        std::uint64_t deadline) {
    thread_local std::vector<std::byte> t_reply;
    reply_bytes = &t_reply;
    const u32 max = connection->connection.max_inline_payload();
    if (size > max) {
        over_inline(size, max, "vipc_connection_call_region");
        return IpcError::MessageTooLarge;
    }
    const std::span<const std::byte> bytes = VIPC_TRY(payload_span(data, size));
    Result<posix::PayloadInfo> r =
        connection->connection.call(opcode, 0, bytes, t_reply, to_deadline(deadline));
    if (!r) runtime_error(r.error());
    return r;
}

}  // namespace
}  // extern "C++"

int vipc_connection_call(vipc_connection* connection, std::uint32_t opcode, const void* data,
                         size_t size, vipc_message* reply, std::uint64_t deadline) {
    if (connection == nullptr) return invalid("connection");
    if (reply == nullptr) return invalid("reply");
    return guard([&]() -> int {
        if (size > LARGE_MESSAGE_INLINE_BYTES) {
            std::vector<std::byte>* bytes = nullptr;
            Result<posix::PayloadInfo> r =
                payload_call(connection, opcode, data, size, bytes, deadline);
            if (!r) return error_code(r.error());
            if (bytes->size() > LARGE_MESSAGE_INLINE_BYTES) {
                return set_detail(VIPC_ERR_MESSAGE_TOO_LARGE,
                                  "the reply has %zu bytes, more than a vipc_message holds (%d): "
                                  "call with vipc_connection_call_into",
                                  bytes->size(), VIPC_INLINE_MAX);
            }
            payload_to_c(*r, *bytes, Message(), reply);
            return VIPC_OK;
        }
        Result<Message> m = bytes_message(opcode, data, size);
        if (!m) return local_error(m.error());
        Result<Message> r = connection->connection.call(*m, to_deadline(deadline));
        if (!r && r.error() == IpcError::MessageTooLarge) {
            return set_detail(VIPC_ERR_MESSAGE_TOO_LARGE,
                              "the reply is more than a vipc_message holds (%d bytes): call "
                              "with vipc_connection_call_into",
                              VIPC_INLINE_MAX);
        }
        if (!r) return runtime_error(r.error());
        to_c(*r, 0, reply);
        return VIPC_OK;
    });
}

int vipc_connection_call_into(vipc_connection* connection, std::uint32_t opcode, const void* data,
                              size_t size, vipc_message* reply_header, void* buffer,
                              size_t capacity, size_t* reply_size, std::uint64_t deadline) {
    if (connection == nullptr) return invalid("connection");
    if (reply_header == nullptr) return invalid("reply_header");
    return guard([&]() -> int {
        std::vector<std::byte>* bytes = nullptr;
        Result<posix::PayloadInfo> r =
            payload_call(connection, opcode, data, size, bytes, deadline);
        if (!r) return error_code(r.error());
        if (reply_size != nullptr) *reply_size = bytes->size();
        if (bytes->size() > capacity) {
            return set_detail(VIPC_ERR_MESSAGE_TOO_LARGE,
                              "the reply has %zu bytes, the buffer %zu; the reply is dropped: "
                              "call with a buffer of vipc_connection_max_inline bytes",
                              bytes->size(), capacity);
        }
        if (!bytes->empty() && buffer == nullptr) return invalid("buffer");
        if (!bytes->empty()) std::memcpy(buffer, bytes->data(), bytes->size());
        payload_to_c(*r, *bytes, Message(), reply_header);
        return VIPC_OK;
    });
}

int vipc_connection_call_small(vipc_connection* connection, const vipc_small* request,
                               vipc_message* reply, std::uint64_t deadline) {
    if (connection == nullptr) return invalid("connection");
    if (request == nullptr) return invalid("request");
    if (reply == nullptr) return invalid("reply");
    return guard([&]() -> int {
        SmallMessage s;
        std::memcpy(&s, request, sizeof s);
        Result<Message> r = connection->connection.call(Message(s), to_deadline(deadline));
        if (!r) return runtime_error(r.error());
        to_c(*r, 0, reply);
        return VIPC_OK;
    });
}

int vipc_connection_call_region(vipc_connection* connection, std::uint32_t opcode, const void* data,
                                size_t size, vipc_region* region, int transfer, vipc_message* reply,
                                std::uint64_t deadline) {
    if (connection == nullptr) return invalid("connection");
    if (region == nullptr) return invalid("region");
    if (reply == nullptr) return invalid("reply");
    if (!valid_transfer(transfer)) return bad_transfer(transfer);
    return guard([&]() -> int {
        Result<Message> m = bytes_message(opcode, data, size);
        if (!m) return local_error(m.error());
        Result<Message> r = connection->connection.call(
            *m, region->region, static_cast<posix::Transfer>(transfer), to_deadline(deadline));
        if (!r) return runtime_error(r.error());
        to_c(*r, 0, reply);
        return VIPC_OK;
    });
}

int vipc_connection_call_begin(vipc_connection* connection, std::uint32_t opcode, const void* data,
                               size_t size, std::uint64_t* transaction_id, std::uint64_t deadline) {
    if (connection == nullptr) return invalid("connection");
    if (transaction_id == nullptr) return invalid("transaction_id");
    if (size > LARGE_MESSAGE_INLINE_BYTES) {
        return set_detail(VIPC_ERR_MESSAGE_TOO_LARGE,
                          "a call begun without waiting carries at most %d bytes, not %zu: make "
                          "a blocking vipc_connection_call_into (from another thread) for more",
                          VIPC_INLINE_MAX, size);
    }
    return guard([&]() -> int {
        Result<Message> m = bytes_message(opcode, data, size);
        if (!m) return local_error(m.error());
        Result<TransactionId> t = connection->connection.begin_call(*m, to_deadline(deadline));
        if (!t) return runtime_error(t.error());
        *transaction_id = *t;
        return VIPC_OK;
    });
}

int vipc_connection_call_poll(vipc_connection* connection, std::uint64_t transaction_id,
                              vipc_message* reply) {
    if (connection == nullptr) return invalid("connection");
    if (reply == nullptr) return invalid("reply");
    return guard([&]() -> int {
        Result<Message> r = connection->connection.take_reply(transaction_id);
        if (!r) return runtime_error(r.error());
        to_c(*r, 0, reply);
        return VIPC_OK;
    });
}

int vipc_connection_call_cancel(vipc_connection* connection, std::uint64_t transaction_id) {
    if (connection == nullptr) return invalid("connection");
    return guard([&]() -> int {
        connection->connection.cancel_call(transaction_id);
        return VIPC_OK;
    });
}

int vipc_connection_pollable_fd(vipc_connection* connection, int* fd) {
    if (connection == nullptr) return invalid("connection");
    if (fd == nullptr) return invalid("fd");
    return guard([&]() -> int {
        const int got = connection->connection.pollable_fd();
        if (got < 0) return runtime_error(IpcError::OutOfMemory);
        *fd = got;
        return VIPC_OK;
    });
}

int vipc_connection_server_pid(vipc_connection* connection, std::uint64_t* pid) {
    if (connection == nullptr) return invalid("connection");
    if (pid == nullptr) return invalid("pid");
    *pid = connection->connection.server_pid().value;
    return VIPC_OK;
}

int vipc_connection_close(vipc_connection* connection) {
    if (connection == nullptr) return invalid("connection");
    return guard([&]() -> int { return code_of(connection->connection.close()); });
}

int vipc_connection_free(vipc_connection* connection) {
    if (connection == nullptr) return VIPC_OK;
    return guard([&]() -> int {
        delete connection;
        return VIPC_OK;
    });
}

int vipc_stat_endpoint(const char* name, const char* runtime_dir, vipc_endpoint_stats* out) {
    if (name == nullptr) return invalid("name");
    if (out == nullptr) return invalid("out");
    return guard([&]() -> int {
        Result<posix::EndpointInfo> in =
            posix::stat_endpoint(name, runtime_dir != nullptr ? runtime_dir : "");
        if (!in) return runtime_error(in.error());
        stats_to_c(*in, out);
        return VIPC_OK;
    });
}

// ---- regions ---------------------------------------------------------------------------------

int vipc_region_create(std::uint64_t size, vipc_region** out) {
    if (out == nullptr) return invalid("out");
    return guard([&]() -> int {
        Result<posix::Region> r = posix::Region::create(size);
        if (!r) return runtime_error(r.error());
        *out = new vipc_region{static_cast<posix::Region&&>(*r)};
        return VIPC_OK;
    });
}

int vipc_region_receive(const vipc_message* message, vipc_region** out) {
    if (message == nullptr) return invalid("message");
    if (out == nullptr) return invalid("out");
    return guard([&]() -> int {
        Result<posix::Region> r = posix::Region::receive(from_c(message));
        if (!r) return runtime_error(r.error());
        *out = new vipc_region{static_cast<posix::Region&&>(*r)};
        return VIPC_OK;
    });
}

int vipc_region_data(vipc_region* region, void** data, std::uint64_t* size, int* writable) {
    if (region == nullptr) return invalid("region");
    if (!region->region.valid()) {
        return set_detail(VIPC_ERR_INVALID_MEMORY_REGION,
                          "the region is empty (it was moved to a peer)");
    }
    if (data != nullptr) *data = region->region.data();
    if (size != nullptr) *size = region->region.size();
    if (writable != nullptr) *writable = region->region.writable() ? 1 : 0;
    return VIPC_OK;
}

int vipc_region_free(vipc_region* region) {
    if (region == nullptr) return VIPC_OK;
    return guard([&]() -> int {
        delete region;
        return VIPC_OK;
    });
}

// ---- capabilities ----------------------------------------------------------------------------

int vipc_capability_receive(const vipc_message* message, std::uint32_t index,
                            vipc_capability** out) {
    if (message == nullptr) return invalid("message");
    if (out == nullptr) return invalid("out");
    return guard([&]() -> int {
        Result<posix::EndpointCapability> c =
            posix::EndpointCapability::receive(from_c(message), index);
        if (!c) return runtime_error(c.error());
        *out = new vipc_capability{static_cast<posix::EndpointCapability&&>(*c)};
        return VIPC_OK;
    });
}

int vipc_capability_derive(const vipc_capability* capability, std::uint32_t rights,
                           vipc_capability** out) {
    if (capability == nullptr) return invalid("capability");
    if (out == nullptr) return invalid("out");
    return guard([&]() -> int {
        Result<posix::EndpointCapability> c =
            capability->capability.derive(static_cast<u16>(rights & Rights::ALL));
        if (!c) return runtime_error(c.error());
        *out = new vipc_capability{static_cast<posix::EndpointCapability&&>(*c)};
        return VIPC_OK;
    });
}

int vipc_capability_rights(const vipc_capability* capability, std::uint32_t* rights) {
    if (capability == nullptr) return invalid("capability");
    if (rights == nullptr) return invalid("rights");
    *rights = capability->capability.rights();
    return VIPC_OK;
}

int vipc_capability_free(vipc_capability* capability) {
    if (capability == nullptr) return VIPC_OK;
    return guard([&]() -> int {
        delete capability;
        return VIPC_OK;
    });
}

}  // extern "C"
