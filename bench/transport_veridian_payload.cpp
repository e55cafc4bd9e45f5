// SPDX-License-Identifier: MIT OR Apache-2.0
//
// veridian-ipc's payload rows: messages of any size through the cross-process runtime's
// payload API (include/veridian/ipc/posix/runtime.hpp: inline records and loans), measured by
// the same harness as every floor and peer. Both rows use the default waiting strategy.
//
//   veridian_inline  inline records, one copy in and one copy out per direction.
//                    round_trip(): Connection::call(opcode, flags, request, reply) and the
//                    reply bytes copied into the harness's buffer; the server takes the
//                    request as a view (receive_view) and replies from that view. Stream:
//                    send_async (send_sync when the ring is full, so the stream waits for
//                    space instead of dropping); the receiver copies each record out with
//                    receive_into. The server publishes with max_inline_payload = the case's
//                    size (at least the default), so the sweep stops at the runtime's hard cap.
//   veridian_loan    zero-copy loans from each direction's pre-mapped pool: the sender
//                    loan()s a chunk, writes the message in place and send_loan()s it; the
//                    receiver reads the read-only view (receive_view) and release()s it. Round
//                    trips are a loan each way; the stream is loans one way. Each side writes
//                    and reads in place only the bytes the harness checks (the 8-byte header
//                    and the last byte): the row measures what a loan costs, i.e. handing a
//                    chunk over, not filling it (a producer that fills a chunk pays its own
//                    writes, whatever carries the chunk). The pool of each direction holds
//                    at least four messages of the case's size.
//
// The server publishes "vipcp/<case>" in a runtime directory inside the bench's scratch
// directory; the client connects by name (retrying until the server published).
//
// Built when the runtime has the payload API (CMake compiles this file against the header
// first, as for transport_veridian.cpp: once for inline records, VIPC_BENCH_HAVE_PAYLOAD_API,
// once more with loans, VIPC_BENCH_HAVE_LOAN_API); a row whose API is missing is listed with
// the reason.
#include "transport.hpp"

// The reasons shown by rows that are not built (CMake passes the precise ones).
#ifndef VIPC_BENCH_PAYLOAD_API_MISSING
#define VIPC_BENCH_PAYLOAD_API_MISSING "not built: the runtime has no payload API"
#endif
#ifndef VIPC_BENCH_LOAN_API_MISSING
#define VIPC_BENCH_LOAN_API_MISSING "not built: the runtime has no loans"
#endif

#if VIPC_BENCH_HAVE_POSIX_RUNTIME && VIPC_BENCH_HAVE_PAYLOAD_API

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "veridian/ipc/posix/runtime.hpp"

namespace vipc::bench {
namespace {

namespace vi = veridian::ipc;
namespace vp = veridian::ipc::posix;

enum class PayloadMode { inline_records, loans };

constexpr vi::u32 kOpcode = 1;
// A loan waits this long for a chunk of a full pool before the case fails.
constexpr vi::u64 kLoanWaitMs = 20000;

// The ring capacity option is `queue_depth` in older runtimes and `capacity` in newer ones.
template <class Options>
void set_capacity(Options& options, vi::u32 messages) {
    if constexpr (requires { options.capacity; })
        options.capacity = messages;
    else
        options.queue_depth = messages;
}

// The loan pool option exists only in runtimes with loans.
template <class Options>
void set_pool_bytes(Options& options, vi::u64 bytes) {
    if constexpr (requires { options.pool_bytes; }) options.pool_bytes = bytes;
}

#if VIPC_BENCH_HAVE_LOAN_API
// A deadline `ms` from now on CLOCK_MONOTONIC, the clock of every runtime Deadline.
vi::Deadline after_ms(vi::u64 ms) {
    return vi::Deadline::at(vp::now_ns() + ms * 1'000'000);
}
#endif

Status failure(const std::string& what, vi::IpcError e) {
    std::string text = what + ": " + vi::error_name(e);
    const char* detail = vp::last_error_detail();
    if (detail != nullptr && *detail != '\0') text += std::string(" (") + detail + ")";
    return Status::fail(text);
}

#if VIPC_BENCH_HAVE_LOAN_API
// The bytes of a message the harness checks: the 8-byte header and the last byte.
void write_checked_bytes(std::span<std::byte> chunk, std::span<const std::byte> message) {
    std::memcpy(chunk.data(), message.data(), std::min<std::size_t>(8, message.size()));
    chunk[message.size() - 1] = message.back();
}

Status read_checked_bytes(const vp::Incoming& in, std::span<std::byte> message) {
    if (in.kind != vp::Incoming::Kind::Loan)
        return Status::fail("expected a loan, received another kind of message");
    if (in.payload.size() != message.size())
        return Status::fail("loan of " + std::to_string(in.payload.size()) + " B, expected " +
                            std::to_string(message.size()) + " B");
    std::memcpy(message.data(), in.payload.data(), std::min<std::size_t>(8, message.size()));
    message[message.size() - 1] = in.payload[message.size() - 1];
    return {};
}
#endif

Status copy_payload(const vp::Incoming& in, std::span<std::byte> message) {
    if (in.kind != vp::Incoming::Kind::Payload)
        return Status::fail("expected an inline payload, received another kind of message");
    if (in.payload.size() != message.size())
        return Status::fail("payload of " + std::to_string(in.payload.size()) + " B, expected " +
                            std::to_string(message.size()) + " B");
    std::memcpy(message.data(), in.payload.data(), message.size());
    return {};
}

Status check_length(const vp::PayloadInfo& info, std::size_t expected) {
    if (info.length == expected) return {};
    return Status::fail("payload of " + std::to_string(info.length) + " B, expected " +
                        std::to_string(expected) + " B");
}

class VeridianPayloadTransport final : public Transport {
public:
    explicit VeridianPayloadTransport(PayloadMode mode) : mode_(mode) {}

    Status prepare(const CaseParams& params) override {
        params_ = params;
        name_ = "vipcp/" + params.unique_name;
        runtime_dir_ = params.scratch_dir + "/vipc";
        // Four messages per direction, at least the default pool.
        pool_bytes_ = std::max<vi::u64>(
            vi::u64{1} << 20, std::bit_ceil(static_cast<vi::u64>(params.message_size)) * 4);
        return {};
    }

    Status open(Role role) override {
        const vi::u32 depth =
            static_cast<vi::u32>(std::min<std::size_t>(params_.queue_depth, 1024));
        if (role == Role::server) {
            vp::ServerOptions options;
            set_capacity(options, depth);
            options.max_connections = 1;
            options.runtime_dir = runtime_dir_;
            options.max_inline_payload = static_cast<vi::u32>(
                std::clamp<std::size_t>(params_.message_size, vp::DEFAULT_MAX_INLINE_PAYLOAD,
                                        vp::MAX_INLINE_PAYLOAD_LIMIT));
            set_pool_bytes(options, mode_ == PayloadMode::loans ? pool_bytes_ : 0);
            auto server = vp::Server::publish(name_, options);
            if (!server) return failure("publish " + name_, server.error());
            server_.emplace(std::move(server.value()));
            return {};
        }
        vp::ConnectOptions options;
        options.runtime_dir = runtime_dir_;
        set_pool_bytes(options, mode_ == PayloadMode::loans ? pool_bytes_ : 0);
        reply_.reserve(params_.message_size);
        // The server may not have published yet: retry for a bounded time.
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        for (;;) {
            auto connection = vp::Connection::connect(name_, options);
            if (connection) {
                connection_.emplace(std::move(connection.value()));
                return {};
            }
            if (connection.error() != vi::IpcError::EndpointNotFound ||
                std::chrono::steady_clock::now() > give_up)
                return failure("connect " + name_, connection.error());
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }

    Status send(std::span<const std::byte> message) override {
#if VIPC_BENCH_HAVE_LOAN_API
        if (mode_ == PayloadMode::loans) return send_loan(message);
#endif
        if (server_) {
            // The server answers the client it heard from (it always receives first).
            if (auto r = server_->send_sync(peer_, kOpcode, 0, message); !r)
                return failure("Server::send_sync", r.error());
            return {};
        }
        if (auto r = connection_->send_async(kOpcode, 0, message); r)
            return {};
        else if (r.error() != vi::IpcError::ChannelFull)
            return failure("send_async", r.error());
        // Full ring: wait for space.
        if (auto r = connection_->send_sync(kOpcode, 0, message); !r)
            return failure("send_sync", r.error());
        return {};
    }

    Status receive(std::span<std::byte> message) override {
#if VIPC_BENCH_HAVE_LOAN_API
        if (mode_ == PayloadMode::loans) return receive_loan(message);
#endif
        std::size_t needed = 0;
        auto r = server_ ? server_->receive_into(message, &needed)
                         : connection_->receive_into(message, &needed);
        if (!r) return failure("receive_into", r.error());
        if (server_) peer_ = r->connection;
        return check_length(*r, message.size());
    }

    Status round_trip(std::span<std::byte> message) override {
        if (mode_ == PayloadMode::loans) return Transport::round_trip(message);
        auto r = connection_->call(kOpcode, 0, message, reply_);
        if (!r) return failure("call", r.error());
        if (Status s = check_length(*r, message.size()); !s) return s;
        std::memcpy(message.data(), reply_.data(), message.size());
        return {};
    }

    Status echo(std::span<std::byte> message) override {
        if (mode_ == PayloadMode::loans) return Transport::echo(message);
        auto r = server_->receive_view();
        if (!r) return failure("Server::receive_view", r.error());
        peer_ = r->info.connection;
        // The harness reads the header (STOP flag) from `message`; the reply goes out of the
        // view (the one copy of this direction).
        if (Status s = copy_header(*r, message); !s) return s;
        if (auto sent = server_->reply(*r, kOpcode, 0, r->payload); !sent)
            return failure("Server::reply", sent.error());
        return {};
    }

    void close() override {
        if (connection_) (void)connection_->close();
        if (server_) (void)server_->close();
        connection_.reset();
        server_.reset();
    }

private:
    static Status copy_header(const vp::Incoming& in, std::span<std::byte> message) {
        if (in.kind != vp::Incoming::Kind::Payload || in.payload.size() != message.size())
            return copy_payload(in, message);  // fails with the reason
        std::memcpy(message.data(), in.payload.data(), std::min<std::size_t>(8, message.size()));
        return {};
    }

#if VIPC_BENCH_HAVE_LOAN_API
    Status send_loan(std::span<const std::byte> message) {
        const vi::Deadline wait = after_ms(kLoanWaitMs);
        auto loan = server_ ? server_->loan(peer_, message.size(), wait)
                            : connection_->loan(message.size(), wait);
        if (!loan) return failure("loan", loan.error());
        if (loan->bytes.size() < message.size())
            return Status::fail("loan of " + std::to_string(loan->bytes.size()) + " B, asked for " +
                                std::to_string(message.size()) + " B");
        write_checked_bytes(loan->bytes, message);
        auto sent = server_ ? server_->send_loan(peer_, *loan, message.size(), kOpcode, 0)
                            : connection_->send_loan(*loan, message.size(), kOpcode, 0);
        if (!sent) return failure("send_loan", sent.error());
        return {};
    }

    Status receive_loan(std::span<std::byte> message) {
        auto r = server_ ? server_->receive_view() : connection_->receive_view();
        if (!r) return failure("receive_view", r.error());
        if (server_) peer_ = r->info.connection;
        const Status read = read_checked_bytes(*r, message);
        if (r->kind == vp::Incoming::Kind::Loan) {
            auto released = server_ ? server_->release(*r) : connection_->release(*r);
            if (!released) return failure("release", released.error());
        }
        return read;
    }
#endif

    PayloadMode mode_;
    std::string name_;
    std::string runtime_dir_;
    vi::u64 pool_bytes_ = 0;
    std::optional<vp::Server> server_;
    std::optional<vp::Connection> connection_;
    vp::ConnectionId peer_ = 0;
    std::vector<std::byte> reply_;  // call()'s reply bytes; capacity reused
};

}  // namespace

std::vector<TransportInfo> veridian_payload_transports() {
    TransportInfo inline_row;
    inline_row.name = "veridian_inline";
    inline_row.description =
        "veridian-ipc inline records (call/reply; send_async stream), default wait";
    inline_row.group = "veridian";
    inline_row.max_message_size = vp::MAX_INLINE_PAYLOAD_LIMIT;
    inline_row.make = [] {
        return std::make_unique<VeridianPayloadTransport>(PayloadMode::inline_records);
    };
#if VIPC_BENCH_HAVE_LOAN_API
    TransportInfo loan_row;
    loan_row.name = "veridian_loan";
    loan_row.description =
        "veridian-ipc zero-copy loans (send_loan/receive_view/release), default wait";
    loan_row.group = "veridian";
    loan_row.max_message_size = std::size_t{64} << 20;
    loan_row.make = [] { return std::make_unique<VeridianPayloadTransport>(PayloadMode::loans); };
#else
    TransportInfo loan_row = unavailable_transport(
        "veridian_loan", "veridian-ipc zero-copy loans (send_loan/receive_view/release)",
        "veridian", VIPC_BENCH_LOAN_API_MISSING);
#endif
    return {inline_row, loan_row};
}

}  // namespace vipc::bench

#else  // the runtime or its payload API is not available

namespace vipc::bench {

// The rows are still listed, each saying why it has no numbers.
std::vector<TransportInfo> veridian_payload_transports() {
    return {unavailable_transport("veridian_inline",
                                  "veridian-ipc inline records (call/reply; send_async stream)",
                                  "veridian", VIPC_BENCH_PAYLOAD_API_MISSING),
            unavailable_transport("veridian_loan",
                                  "veridian-ipc zero-copy loans (send_loan/receive_view/release)",
                                  "veridian", VIPC_BENCH_LOAN_API_MISSING)};
}

}  // namespace vipc::bench

#endif
