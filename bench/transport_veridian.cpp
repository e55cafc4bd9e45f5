// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc's own rows: the cross-process runtime (include/veridian/ipc/posix/runtime.hpp)
// measured by the same harness as every peer.
//
// Rows, each twice: with the default waiting strategy (a bounded adaptive spin, then a futex
// sleep) and with spinning off (spin_ns = 0: every wait sleeps at once):
//   veridian_call[_nospin]   call/reply: round_trip() is one Connection::call(); the server
//                            receives the request and reply()s it. No stream phase.
//   veridian_sync[_nospin]   send_sync/receive_sync both ways: ping-pong and stream.
//   veridian_small[_nospin]  the SmallMessage fast path: the client sends with fast_send()
//                            (send_sync when its ring is full); the server answers with
//                            send_sync.
//   veridian_async[_nospin]  send_async streaming (send_sync when the ring is full, so the
//                            stream waits for space instead of dropping); no round trips.
//
// Every message is one SmallMessage (48 bytes): the harness's bytes are laid out over its
// fields (data[0..3], capability, opcode, flags), so messages of 8..48 bytes travel. The
// runtime passes the fields through; the one flag it sets itself, IS_REPLY on a reply, is
// removed again before the bytes go back to the harness.
//
// The server publishes "vipcb/<case>" in a runtime directory inside the bench's scratch
// directory; the client connects by name (retrying until the server published).
#include "transport.hpp"

#if VIPC_BENCH_HAVE_POSIX_RUNTIME

#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "veridian/ipc/posix/runtime.hpp"

namespace vipc::bench {
namespace {

namespace vi = veridian::ipc;
namespace vp = veridian::ipc::posix;

enum class Mode { call, sync, small, async };

constexpr std::size_t kMessageBytes = sizeof(vi::SmallMessage);

Status failure(const std::string& what, vi::IpcError e) {
    std::string text = what + ": " + vi::error_name(e);
    const char* detail = vp::last_error_detail();
    if (detail != nullptr && *detail != '\0') text += std::string(" (") + detail + ")";
    return Status::fail(text);
}

// Harness bytes → SmallMessage fields, in the order data[0..3], capability, opcode, flags.
vi::SmallMessage to_small(std::span<const std::byte> bytes) {
    vi::SmallMessage m{};
    std::size_t at = 0;
    auto put = [&](void* field, std::size_t size) {
        const std::size_t n = bytes.size() > at ? std::min(size, bytes.size() - at) : 0;
        if (n > 0) std::memcpy(field, bytes.data() + at, n);
        at += size;
    };
    put(m.data, sizeof m.data);
    put(&m.capability, sizeof m.capability);
    put(&m.opcode, sizeof m.opcode);
    put(&m.flags, sizeof m.flags);
    return m;
}

void from_small(const vi::SmallMessage& m, std::span<std::byte> bytes) {
    std::size_t at = 0;
    auto get = [&](const void* field, std::size_t size) {
        const std::size_t n = bytes.size() > at ? std::min(size, bytes.size() - at) : 0;
        if (n > 0) std::memcpy(bytes.data() + at, field, n);
        at += size;
    };
    get(m.data, sizeof m.data);
    get(&m.capability, sizeof m.capability);
    get(&m.opcode, sizeof m.opcode);
    get(&m.flags, sizeof m.flags);
}

Status from_message(const vi::Message& m, std::span<std::byte> bytes) {
    if (!m.is_small()) return Status::fail("received a large message, expected a SmallMessage");
    from_small(m.small_message(), bytes);
    return {};
}

class VeridianTransport final : public Transport {
public:
    VeridianTransport(Mode mode, bool spin) : mode_(mode), spin_(spin) {}

    Status prepare(const CaseParams& params) override {
        params_ = params;
        name_ = "vipcb/" + params.unique_name;
        runtime_dir_ = params.scratch_dir + "/vipc";
        return {};
    }

    Status open(Role role) override {
        const vi::u32 spin_ns = spin_ ? vp::DEFAULT_SPIN_NS : 0;
        const vi::u32 depth =
            static_cast<vi::u32>(std::min<std::size_t>(params_.queue_depth, 1024));
        if (role == Role::server) {
            vp::ServerOptions options;
            options.capacity = depth;
            options.spin_ns = spin_ns;
            options.max_connections = 1;
            options.runtime_dir = runtime_dir_;
            auto server = vp::Server::publish(name_, options);
            if (!server) return failure("publish " + name_, server.error());
            server_.emplace(std::move(server.value()));
            return {};
        }
        vp::ConnectOptions options;
        options.spin_ns = spin_ns;
        options.runtime_dir = runtime_dir_;
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
        const vi::SmallMessage small = to_small(message);
        if (server_) {
            // The server answers the client it heard from (it always receives first).
            if (auto r = server_->send_sync(peer_, vi::Message(small)); !r)
                return failure("Server::send_sync", r.error());
            return {};
        }
        switch (mode_) {
            case Mode::small:
                if (auto r = connection_->fast_send(small); r)
                    return {};
                else if (r.error() != vi::IpcError::ChannelFull)
                    return failure("fast_send", r.error());
                break;
            case Mode::async:
                if (auto r = connection_->send_async(vi::Message(small)); r)
                    return {};
                else if (r.error() != vi::IpcError::ChannelFull)
                    return failure("send_async", r.error());
                break;
            case Mode::call:
            case Mode::sync:
                break;
        }
        // Full ring (fast path, async) or a blocking row: wait for space.
        if (auto r = connection_->send_sync(vi::Message(small)); !r)
            return failure("send_sync", r.error());
        return {};
    }

    Status receive(std::span<std::byte> message) override {
        if (server_) {
            auto r = server_->receive_sync();
            if (!r) return failure("Server::receive", r.error());
            peer_ = r->connection;
            return from_message(r->message, message);
        }
        auto r = connection_->receive_sync();
        if (!r) return failure("receive_sync", r.error());
        return from_message(*r, message);
    }

    Status round_trip(std::span<std::byte> message) override {
        if (mode_ != Mode::call) return Transport::round_trip(message);
        const vi::SmallMessage request = to_small(message);
        auto r = connection_->call(vi::Message(request));
        if (!r) return failure("call", r.error());
        if (!r->is_small()) return Status::fail("call: the reply is a large message");
        vi::SmallMessage reply = r->small_message();
        // IS_REPLY is the runtime's marker, not part of the bytes sent.
        reply.flags = (reply.flags & ~vi::MessageFlags::IS_REPLY) |
                      (request.flags & vi::MessageFlags::IS_REPLY);
        from_small(reply, message);
        return {};
    }

    Status echo(std::span<std::byte> message) override {
        if (mode_ != Mode::call) return Transport::echo(message);
        auto r = server_->receive_sync();
        if (!r) return failure("Server::receive", r.error());
        peer_ = r->connection;
        if (Status s = from_message(r->message, message); !s) return s;
        if (auto sent = server_->reply(*r, r->message); !sent)
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
    Mode mode_;
    bool spin_;
    std::string name_;
    std::string runtime_dir_;
    std::optional<vp::Server> server_;
    std::optional<vp::Connection> connection_;
    vp::ConnectionId peer_ = 0;
};

}  // namespace

std::vector<TransportInfo> veridian_transports() {
    struct Row {
        const char* name;
        const char* description;
        Mode mode;
        bool spin;
    };
    const Row rows[] = {
        {"veridian_call", "veridian-ipc call/reply, default wait (adaptive spin, then futex)",
         Mode::call, true},
        {"veridian_call_nospin", "veridian-ipc call/reply, spinning off (futex only)", Mode::call,
         false},
        {"veridian_sync", "veridian-ipc send_sync/receive_sync, default wait", Mode::sync, true},
        {"veridian_sync_nospin", "veridian-ipc send_sync/receive_sync, spinning off", Mode::sync,
         false},
        {"veridian_small", "veridian-ipc SmallMessage fast path (fast_send), default wait",
         Mode::small, true},
        {"veridian_small_nospin", "veridian-ipc SmallMessage fast path (fast_send), spinning off",
         Mode::small, false},
        {"veridian_async", "veridian-ipc send_async streaming, default wait", Mode::async, true},
        {"veridian_async_nospin", "veridian-ipc send_async streaming, spinning off", Mode::async,
         false},
    };
    std::vector<TransportInfo> out;
    for (const Row& r : rows) {
        TransportInfo info;
        info.name = r.name;
        info.description = r.description;
        info.group = "veridian";
        info.max_message_size = kMessageBytes;
        info.round_trips = r.mode != Mode::async;
        info.streams = r.mode != Mode::call;
        const Mode mode = r.mode;
        const bool spin = r.spin;
        info.make = [mode, spin] { return std::make_unique<VeridianTransport>(mode, spin); };
        out.push_back(std::move(info));
    }
    return out;
}

}  // namespace vipc::bench

#else  // !VIPC_BENCH_HAVE_POSIX_RUNTIME

namespace vipc::bench {

// Without the runtime the rows are still listed, each saying why it has no numbers.
std::vector<TransportInfo> veridian_transports() {
    struct Row {
        const char* name;
        const char* description;
        bool round_trips;
        bool streams;
    };
    const Row rows[] = {
        {"veridian_call", "veridian-ipc call/reply, default wait", true, false},
        {"veridian_call_nospin", "veridian-ipc call/reply, spinning off", true, false},
        {"veridian_sync", "veridian-ipc send_sync/receive_sync, default wait", true, true},
        {"veridian_sync_nospin", "veridian-ipc send_sync/receive_sync, spinning off", true, true},
        {"veridian_small", "veridian-ipc SmallMessage fast path, default wait", true, true},
        {"veridian_small_nospin", "veridian-ipc SmallMessage fast path, spinning off", true, true},
        {"veridian_async", "veridian-ipc send_async streaming, default wait", false, true},
        {"veridian_async_nospin", "veridian-ipc send_async streaming, spinning off", false, true},
    };
    std::vector<TransportInfo> out;
    for (const Row& r : rows) {
        TransportInfo info = unavailable_transport(r.name, r.description, "veridian",
                                                   VIPC_BENCH_POSIX_RUNTIME_MISSING);
        info.round_trips = r.round_trips;
        info.streams = r.streams;
        out.push_back(std::move(info));
    }
    return out;
}

}  // namespace vipc::bench

#endif
