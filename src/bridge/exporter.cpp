// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc bridge: the export side. A client of the local endpoint that serves NATS.
//
// Threads (each NATS subscription has its own, from libnats):
//   concurrency × request handler   queue subscriptions on BASE (group "vipc"): a call is
//                                   served by calling the local endpoint on that thread
//   one frame handler               BASE.%s.<id>: stream frames, delivered in order with
//                                   send_sync; credit goes back to the importer
//   one probe handler               BASE.%p.<id>: answers at once (an importer's liveness
//                                   check while it waits for credit)
// The local connection is shared by all of them (Connection is thread-safe); when the
// local server goes away it is dropped and made again on the next request.
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>

#include "bridge/bridge_impl.hpp"
#include "bridge/local_side.hpp"
#include "bridge/mapping.hpp"
#include "bridge/marker.hpp"
#include "bridge/nats_link.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::bridge {
namespace {

constexpr const char* QUEUE_GROUP = "vipc";
// Streams remembered at once; an importer whose stream was forgotten opens a new one.
constexpr usize MAX_STREAMS = 256;

struct StreamState {
    std::string credit_subject;
    u32 window = 0;
    u64 expected_seq = 0;  // only the frame thread touches the counters
    u64 settled = 0;
    u64 credited = 0;
    u64 opened_order = 0;
};

class Exporter final : public Bridge::Impl {
public:
    ~Exporter() override { stop(); }

    Result<void> start(std::string_view endpoint, const BridgeOptions& options) {
        this->role = Role::Export;
        this->name = std::string(endpoint);
        this->subject = base_subject(options.prefix, endpoint);
        opts_ = options;
        id_ = hex64(random_id());
        stream_subject_ = stream_subject(subject, id_);
        probe_subject_ = probe_subject(subject, id_);

        // The local endpoint first: exporting a name nobody serves is a mistake to report.
        IpcError e{};
        std::string why;
        if (!local(&e, &why)) {
            set_detail("%s", why.c_str());
            return e;
        }
        VIPC_TRY(link_.connect(options.nats, "vipc-export " + this->name));
        for (u32 i = 0; i < options.concurrency; ++i) {
            if (link_.subscribe(subject, QUEUE_GROUP, on_request_cb, this) == nullptr) {
                link_.close();
                return IpcError::InvalidMessage;
            }
        }
        frame_sub_ = link_.subscribe(stream_subject_, nullptr, on_frame_cb, this);
        if (frame_sub_ == nullptr ||
            link_.subscribe(probe_subject_, nullptr, on_probe_cb, this) == nullptr) {
            link_.close();
            return IpcError::InvalidMessage;
        }
        // The subscriptions are registered with the server before we say we serve.
        natsConnection_FlushTimeout(link_.nc(), options.nats.connect_timeout_ms);
        marker_ =
            BridgeMarker{"export", static_cast<u64>(getpid()), this->name, subject, link_.url()};
        marker_fd_ = write_marker(opts_.runtime_dir, marker_);
        return ok();
    }

    BridgeCounters counters() const override {
        BridgeCounters c;
        c.calls = calls_.load(std::memory_order_relaxed);
        c.call_errors = call_errors_.load(std::memory_order_relaxed);
        c.sends = sends_.load(std::memory_order_relaxed);
        c.sends_refused = sends_refused_.load(std::memory_order_relaxed);
        c.sends_unconfirmed = sends_failed_.load(std::memory_order_relaxed);
        c.streams_opened = streams_opened_.load(std::memory_order_relaxed);
        c.sequence_gaps = gaps_.load(std::memory_order_relaxed);
        link_.fill(c);
        return c;
    }

    void stop() override {
        if (stopping_.exchange(true)) return;
        // Blocked local operations return at once (their requests get an error reply while
        // the NATS connection still stands), then the subscriptions end.
        std::shared_ptr<posix::Connection> c;
        {
            std::lock_guard<std::mutex> lock(local_mu_);
            c = std::move(local_);
        }
        if (c) (void)c->close();
        link_.close();
        remove_marker(opts_.runtime_dir, marker_, marker_fd_);
        marker_fd_ = -1;
    }

private:
    static void on_request_cb(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
        static_cast<Exporter*>(self)->on_request(msg);
    }
    static void on_frame_cb(natsConnection*, natsSubscription* sub, natsMsg* msg, void* self) {
        static_cast<Exporter*>(self)->on_frame(sub, msg);
    }
    static void on_probe_cb(natsConnection* nc, natsSubscription*, natsMsg* msg, void*) {
        NatsMsgOwner own(msg);
        if (const char* reply = natsMsg_GetReply(msg)) natsConnection_Publish(nc, reply, "", 0);
    }

    // The local connection, made when there is none. nullptr (with *e, *why) when the local
    // endpoint cannot be reached.
    std::shared_ptr<posix::Connection> local(IpcError* e, std::string* why) {
        std::lock_guard<std::mutex> lock(local_mu_);
        if (local_) return local_;
        if (stopping_.load()) {
            *e = IpcError::EndpointNotFound;
            *why = "the exporting bridge is stopping";
            return nullptr;
        }
        posix::ConnectOptions co;
        co.runtime_dir = opts_.runtime_dir;
        co.rights = opts_.local_rights;
        co.connect_timeout_ms = 1000;
        co.spin_ns = opts_.spin_ns;
        Result<posix::Connection> c = posix::Connection::connect(name, co);
        if (!c) {
            *e = c.error();
            *why = posix::last_error_detail();
            return nullptr;
        }
        local_ = std::make_shared<posix::Connection>(std::move(*c));
        return local_;
    }
    // Forgets a connection that failed for good (its server went away).
    void drop_local(const std::shared_ptr<posix::Connection>& c) {
        {
            std::lock_guard<std::mutex> lock(local_mu_);
            if (local_ == c) local_.reset();
        }
        (void)c->close();
    }
    static bool connection_gone(IpcError e) {
        return e == IpcError::EndpointNotFound || e == IpcError::InvalidCapability ||
               e == IpcError::InvalidMessage;
    }

    void publish_error(const char* reply, IpcError e, const std::string& detail) {
        natsMsg* out = nullptr;
        if (natsMsg_Create(&out, reply, nullptr, nullptr, 0) != NATS_OK) return;
        natsMsgHeader_Set(out, HEADER_ERROR, error_name(e));
        // Header values are one line of text.
        std::string line = detail.substr(0, 400);
        std::replace_if(
            line.begin(), line.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
        natsMsgHeader_Set(out, HEADER_DETAIL, line.c_str());
        natsConnection_PublishMsg(link_.nc(), out);
        natsMsg_Destroy(out);
    }

    void on_request(natsMsg* msg) {
        NatsMsgOwner own(msg);
        const char* reply = natsMsg_GetReply(msg);
        if (header_value(msg, HEADER_OP) == OP_OPEN) return on_open(msg);
        const bool is_call = reply != nullptr && *reply != '\0';
        std::string why;
        usize used = 0;
        const auto* data = reinterpret_cast<const u8*>(natsMsg_GetData(msg));
        usize len = static_cast<usize>(natsMsg_GetDataLength(msg));
        // The caller's remaining time, as a duration; never more than our own bound.
        u64 timeout_ns = u64{opts_.call_timeout_ms} * 1'000'000u;
        if (is_call) {
            const auto t = decode_call_head({data, len});
            if (!t) {
                calls_.fetch_add(1, std::memory_order_relaxed);
                call_errors_.fetch_add(1, std::memory_order_relaxed);
                return publish_error(reply, IpcError::InvalidMessage,
                                     "remote bridge: a call without its 8-byte duration");
            }
            timeout_ns = std::min(timeout_ns, *t);
            data += CALL_HEAD_BYTES;
            len -= CALL_HEAD_BYTES;
        }
        Result<Record> decoded = decode_any_record({data, len}, &used, &why);
        if (decoded && used != len) {
            why = "bytes after the record";
            decoded = IpcError::InvalidMessage;
        }
        if (is_call) calls_.fetch_add(1, std::memory_order_relaxed);
        if (!decoded) {
            if (is_call) {
                call_errors_.fetch_add(1, std::memory_order_relaxed);
                publish_error(reply, decoded.error(), "remote bridge: malformed request: " + why);
            } else {
                sends_refused_.fetch_add(1, std::memory_order_relaxed);
            }
            return;
        }
        IpcError e{};
        const std::shared_ptr<posix::Connection> c = local(&e, &why);
        if (!c) {
            if (is_call) {
                call_errors_.fetch_add(1, std::memory_order_relaxed);
                publish_error(reply, e, "remote: " + why);
            } else {
                sends_failed_.fetch_add(1, std::memory_order_relaxed);
            }
            return;
        }
        if (decoded->kind == RecordKind::Payload) {
            return serve_payload(*c, *decoded, is_call, reply, timeout_ns);
        }
        Message request = decoded->message;
        request.set_flags(request.flags() & ~MessageFlags::IS_REPLY);
        if (!is_call) {
            // A one-way message from a plain NATS publisher (the bridge's own go in streams).
            const Result<void> sent = c->send_sync(request, posix::after_ns(timeout_ns));
            if (sent) {
                sends_.fetch_add(1, std::memory_order_relaxed);
            } else {
                sends_failed_.fetch_add(1, std::memory_order_relaxed);
                if (connection_gone(sent.error())) drop_local(c);
            }
            return;
        }
        Result<Message> answer = c->call(request, posix::after_ns(timeout_ns));
        if (!answer) return call_failed(reply, answer.error(), timeout_ns, c);
        Message response = *answer;
        response.set_flags(response.flags() & ~MessageFlags::IS_REPLY);
        if (!check_crossable(response, &why)) {
            call_errors_.fetch_add(1, std::memory_order_relaxed);
            publish_error(reply, check_crossable(response, &why).error(),
                          "remote reply cannot cross hosts: " + why);
            return;
        }
        std::vector<u8> body;
        body.reserve(record_size(response));
        encode_record(response, body);
        natsConnection_Publish(link_.nc(), reply, body.data(), static_cast<int>(body.size()));
    }

    void call_failed(const char* reply, IpcError err, u64 timeout_ns,
                     const std::shared_ptr<posix::Connection>& c) {
        std::string detail = posix::last_error_detail();
        if (err == IpcError::Timeout) {
            // Details travel in 64 bytes: the essential first.
            detail = "no answer within " + std::to_string(timeout_ns / 1'000'000u) + " ms from '" +
                     name + "'";
        }
        if (connection_gone(err)) drop_local(c);
        call_errors_.fetch_add(1, std::memory_order_relaxed);
        publish_error(reply, err, "remote: " + detail);
    }

    // A payload record (the runtime's payload API): a call or a one-way message.
    void serve_payload(posix::Connection& conn, const Record& r, bool is_call, const char* reply,
                       u64 timeout_ns) {
        const std::shared_ptr<posix::Connection> c = local_ref(conn);
        const u32 flags = r.flags & ~MessageFlags::IS_REPLY;
        if (!is_call) {
            const Result<void> sent =
                send_payload(conn, r.opcode, flags, r.payload, posix::after_ns(timeout_ns));
            if (sent) {
                sends_.fetch_add(1, std::memory_order_relaxed);
            } else {
                sends_failed_.fetch_add(1, std::memory_order_relaxed);
                if (connection_gone(sent.error()) && c) drop_local(c);
            }
            return;
        }
        std::vector<std::byte> answer;
        u32 opcode = 0, reply_flags = 0;
        const Result<void> done = call_payload(conn, r.opcode, flags, r.payload, answer, &opcode,
                                               &reply_flags, posix::after_ns(timeout_ns));
        if (!done) {
            if (c) return call_failed(reply, done.error(), timeout_ns, c);
            return publish_error(reply, done.error(), "remote: payload call failed");
        }
        std::vector<u8> body;
        body.reserve(RECORD_HEAD_BYTES + answer.size());
        encode_payload_record(opcode, reply_flags & ~MessageFlags::IS_REPLY,
                              {reinterpret_cast<const u8*>(answer.data()), answer.size()}, body);
        natsConnection_Publish(link_.nc(), reply, body.data(), static_cast<int>(body.size()));
    }

    // The shared pointer holding `conn`, if it is still the current local connection.
    std::shared_ptr<posix::Connection> local_ref(posix::Connection& conn) {
        std::lock_guard<std::mutex> lock(local_mu_);
        return local_.get() == &conn ? local_ : nullptr;
    }

    void on_open(natsMsg* msg) {
        const char* reply = natsMsg_GetReply(msg);
        if (reply == nullptr) return;
        const auto id = parse_hex64(header_value(msg, HEADER_STREAM));
        const std::string credit = header_value(msg, HEADER_CREDIT);
        const auto window = parse_decimal(header_value(msg, HEADER_WINDOW));
        if (!id || credit.empty() || !window || *window == 0 || *window > 65536) {
            publish_error(reply, IpcError::InvalidMessage, "remote bridge: malformed stream open");
            return;
        }
        {
            std::lock_guard<std::mutex> lock(streams_mu_);
            if (streams_.size() >= MAX_STREAMS) {
                auto oldest = std::min_element(
                    streams_.begin(), streams_.end(), [](const auto& a, const auto& b) {
                        return a.second->opened_order < b.second->opened_order;
                    });
                streams_.erase(oldest);
            }
            auto s = std::make_shared<StreamState>();
            s->credit_subject = credit;
            s->window = static_cast<u32>(*window);
            s->opened_order = ++open_counter_;
            streams_[*id] = std::move(s);
        }
        streams_opened_.fetch_add(1, std::memory_order_relaxed);
        natsMsg* out = nullptr;
        if (natsMsg_Create(&out, reply, nullptr, nullptr, 0) != NATS_OK) return;
        natsMsgHeader_Set(out, HEADER_STREAM_SUBJECT, stream_subject_.c_str());
        natsMsgHeader_Set(out, HEADER_WINDOW, std::to_string(*window).c_str());
        natsConnection_PublishMsg(link_.nc(), out);
        natsMsg_Destroy(out);
    }

    // Delivers one record of a stream; false when it could not be delivered.
    bool deliver(const Record& r) {
        for (;;) {
            IpcError e{};
            std::string why;
            const std::shared_ptr<posix::Connection> c = local(&e, &why);
            if (!c) return false;
            // Sliced, so that stop() is noticed while the local receiver is slow.
            const Result<void> sent =
                r.kind == RecordKind::Payload
                    ? send_payload(*c, r.opcode, r.flags & ~MessageFlags::IS_REPLY, r.payload,
                                   posix::after_ms(100))
                    : c->send_sync(r.message, posix::after_ms(100));
            if (sent) return true;
            if (sent.error() == IpcError::Timeout && !stopping_.load()) continue;
            if (connection_gone(sent.error())) drop_local(c);
            return false;
        }
    }

    void on_frame(natsSubscription* sub, natsMsg* msg) {
        NatsMsgOwner own(msg);
        const auto* data = reinterpret_cast<const u8*>(natsMsg_GetData(msg));
        const usize len = static_cast<usize>(natsMsg_GetDataLength(msg));
        const auto head = decode_frame_head({data, len});
        if (!head) return;
        std::shared_ptr<StreamState> s;
        {
            std::lock_guard<std::mutex> lock(streams_mu_);
            auto it = streams_.find(head->stream_id);
            if (it != streams_.end()) s = it->second;
        }
        if (!s) return;  // a stream we forgot: its importer opens a new one
        if (head->first_seq != s->expected_seq) gaps_.fetch_add(1, std::memory_order_relaxed);
        usize off = FRAME_HEAD_BYTES;
        u32 done = 0;
        for (; done < head->count; ++done) {
            std::string why;
            usize used = 0;
            Result<Record> m = decode_any_record({data + off, len - off}, &used, &why);
            if (!m) break;
            off += used;
            if (!stopping_.load() && deliver(*m)) {
                sends_.fetch_add(1, std::memory_order_relaxed);
            } else {
                sends_failed_.fetch_add(1, std::memory_order_relaxed);
            }
        }
        if (done < head->count)
            sends_refused_.fetch_add(head->count - done, std::memory_order_relaxed);
        s->expected_seq = head->first_seq + head->count;
        // Everything in the frame is settled (delivered, or failed and counted): credit it.
        s->settled = s->expected_seq;
        int pending = 0;
        natsSubscription_GetPending(sub, &pending, nullptr);
        if (s->settled - s->credited >= std::max<u32>(1, s->window / 4) || pending == 0) {
            u8 buf[CREDIT_BYTES];
            encode_credit(Credit{head->stream_id, s->settled}, buf);
            natsConnection_Publish(link_.nc(), s->credit_subject.c_str(), buf, CREDIT_BYTES);
            s->credited = s->settled;
        }
    }

    BridgeOptions opts_;
    std::string id_;
    std::string stream_subject_;
    std::string probe_subject_;
    NatsLink link_;
    natsSubscription* frame_sub_ = nullptr;
    std::atomic<bool> stopping_{false};

    std::mutex local_mu_;
    std::shared_ptr<posix::Connection> local_;  // guarded by local_mu_

    std::mutex streams_mu_;
    std::map<u64, std::shared_ptr<StreamState>> streams_;  // guarded by streams_mu_
    u64 open_counter_ = 0;                                 // guarded by streams_mu_

    std::atomic<u64> calls_{0}, call_errors_{0}, sends_{0}, sends_refused_{0}, sends_failed_{0},
        streams_opened_{0}, gaps_{0};
    BridgeMarker marker_;
    int marker_fd_ = -1;
};

}  // namespace

Result<std::unique_ptr<Bridge::Impl>> start_exporter(std::string_view name,
                                                     const BridgeOptions& options) {
    auto e = std::make_unique<Exporter>();
    VIPC_TRY(e->start(name, options));
    return std::unique_ptr<Bridge::Impl>(std::move(e));
}

}  // namespace veridian::ipc::bridge
