// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc bridge: the import side. A local server whose every call and send goes to
// NATS.
//
// Threads:
//   loop      takes messages from the local endpoint: a call is published as a NATS request
//             (its reply subject INBOX.<call number>) and left pending; one-way messages are
//             gathered into frames and published on the stream, within the credit window
//   inbox     (libnats's thread for the subscription INBOX.*) answers pending calls with
//             their replies, and takes credit (INBOX.c) for the stream
//   reaper    every 10 ms: ends pending calls whose time is up (Timeout), fails in-flight
//             calls when the NATS connection was lost, probes an exporter that returned no
//             credit for a while, reopens the stream after a reconnect
//
// The credit protocol, step by step (one stream at a time; stream_mu_ guards its state):
//   (1) open: a request with Vipc-Op: open to BASE reaches one exporter, which answers with
//       its stream subject; next_seq_ = delivered_ = 0.
//   (2) send: the loop publishes a frame of n messages only when next_seq_ - delivered_ + n
//       <= window_; otherwise it waits on stream_cv_ (in slices, so stop is noticed) and
//       takes nothing more from the local ring, so local senders block or get ChannelFull.
//   (3) credit: the exporter publishes "delivered so far" after every window/4 messages and
//       whenever it has nothing more queued; the inbox thread raises delivered_ and notifies
//       stream_cv_ (SYNC POINT: the notify under stream_mu_ pairs with the wait in (2)).
//   (4) loss: when no credit came for PROBE_AFTER_NS while messages are unconfirmed, the
//       reaper probes the exporter; "no responders" (it is gone), or a reconnect to NATS
//       (frames may have been lost with the server), ends the stream: the unconfirmed
//       messages are counted as such, and the next send opens a new stream (1).
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "bridge/bridge_impl.hpp"
#include "bridge/local_side.hpp"
#include "bridge/mapping.hpp"
#include "bridge/marker.hpp"
#include "bridge/nats_link.hpp"
#include "bridge/remote_error.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::bridge {
namespace {

constexpr u64 MS = 1'000'000;
// A forwarded call's pending entry outlives the duration it carries by this much, so the remote
// side's own Timeout (with its detail) arrives first even on a loaded machine. (The local
// caller is not held up by it: its own deadline ends its call.)
constexpr u64 PENDING_GRACE_NS = 1000 * MS;
constexpr u64 PROBE_AFTER_NS = 300 * MS;
constexpr int PROBE_TIMEOUT_MS = 300;
constexpr int OPEN_TIMEOUT_MS = 1000;
constexpr usize MAX_BATCH = 256;

enum class StreamStatus { Closed, Open };

class Importer final : public Bridge::Impl {
public:
    ~Importer() override { stop(); }

    Result<void> start(std::string_view endpoint, const BridgeOptions& options) {
        this->role = Role::Import;
        this->name = std::string(endpoint);
        this->subject = base_subject(options.prefix, endpoint);
        opts_ = options;
        posix::ServerOptions so;
        so.runtime_dir = options.runtime_dir;
        so.capacity = options.queue_depth;
        so.spin_ns = options.spin_ns;
        Result<posix::Server> server = posix::Server::publish(endpoint, so);
        if (!server) {
            set_detail("%s", posix::last_error_detail());
            return server.error();
        }
        server_ = std::make_unique<posix::Server>(std::move(*server));
        link_.on_disconnected = [this] { disconnect_event_.store(true); };
        link_.on_reconnected = [this] { reconnect_event_.store(true); };
        if (const Result<void> c = link_.connect(options.nats, "vipc-import " + this->name); !c) {
            (void)server_->close();
            return c.error();
        }
        inbox_ = "_INBOX." + hex64(random_id()) + hex64(random_id());
        credit_subject_ = inbox_ + ".c";
        if (link_.subscribe(inbox_ + ".*", nullptr, on_inbox_cb, this) == nullptr) {
            link_.close();
            (void)server_->close();
            return IpcError::InvalidMessage;
        }
        natsConnection_FlushTimeout(link_.nc(), options.nats.connect_timeout_ms);
        // A frame (or a call's record) fits the NATS server's max payload.
        max_frame_bytes_ = static_cast<usize>(link_.max_payload());
        if (max_frame_bytes_ < FRAME_HEAD_BYTES + MAX_RECORD_BYTES) {
            max_frame_bytes_ = FRAME_HEAD_BYTES + MAX_RECORD_BYTES;
        }
        marker_ =
            BridgeMarker{"import", static_cast<u64>(getpid()), this->name, subject, link_.url()};
        marker_fd_ = write_marker(opts_.runtime_dir, marker_);
        loop_ = std::thread([this] { run_loop(); });
        reaper_ = std::thread([this] { run_reaper(); });
        return ok();
    }

    BridgeCounters counters() const override {
        BridgeCounters c;
        c.calls = calls_.load(std::memory_order_relaxed);
        c.call_errors = call_errors_.load(std::memory_order_relaxed);
        c.sends = sends_.load(std::memory_order_relaxed);
        c.sends_refused = sends_refused_.load(std::memory_order_relaxed);
        c.sends_unconfirmed = sends_unconfirmed_.load(std::memory_order_relaxed);
        c.credit_waits = credit_waits_.load(std::memory_order_relaxed);
        c.streams_opened = streams_opened_.load(std::memory_order_relaxed);
        link_.fill(c);
        return c;
    }

    void stop() override {
        if (stopping_.exchange(true)) return;
        {
            std::lock_guard<std::mutex> lock(stream_mu_);
            stream_cv_.notify_all();
        }
        if (loop_.joinable()) loop_.join();
        if (reaper_.joinable()) reaper_.join();
        fail_all_pending(IpcError::EndpointNotFound, "the importing bridge is stopping");
        if (server_) (void)server_->close();
        link_.close();
        remove_marker(opts_.runtime_dir, marker_, marker_fd_);
        marker_fd_ = -1;
    }

private:
    struct Pending {
        posix::Received request;
        u64 expires_ns = 0;
        u64 timeout_ns = 0;  // what was forwarded
    };

    // ---- Replies to local callers --------------------------------------------------------

    void answer(const posix::Received& request, const Message& response) {
        // A caller whose ring is full or who left does not hold up the bridge.
        (void)server_->reply(request, response, posix::after_ms(100));
    }
    void answer_error(const posix::Received& request, IpcError e, const std::string& detail) {
        call_errors_.fetch_add(1, std::memory_order_relaxed);
        (void)reply_with_error(*server_, request, e, detail, posix::after_ms(100));
    }

    std::optional<Pending> take_pending(u64 id) {
        std::lock_guard<std::mutex> lock(calls_mu_);
        auto it = pending_.find(id);
        if (it == pending_.end()) return std::nullopt;
        Pending p = it->second;
        pending_.erase(it);
        return p;
    }

    void fail_all_pending(IpcError e, const std::string& detail) {
        std::unordered_map<u64, Pending> all;
        {
            std::lock_guard<std::mutex> lock(calls_mu_);
            all.swap(pending_);
        }
        for (auto& [id, p] : all)
            answer_error(p.request, e, detail);
    }

    // ---- The loop: local endpoint → NATS -------------------------------------------------

    void run_loop() {
        std::vector<LocalItem> batch;
        // A frame never holds more than the window (it could never be sent).
        const usize max_batch = std::min<usize>(MAX_BATCH, opts_.credit_window);
        batch.reserve(max_batch);
        while (!stopping_.load()) {
            Result<LocalItem> r = take_local(*server_, posix::after_ms(100), true);
            if (!r) {
                if (r.error() == IpcError::EndpointNotFound) break;  // closed
                continue;
            }
            if (r->is_call()) {
                forward_call(*r);
                continue;
            }
            batch.clear();
            batch.push_back(std::move(*r));
            // One-way messages already waiting travel together in frames; a call ends the
            // batch (it goes after the messages sent before it).
            std::optional<LocalItem> call;
            while (batch.size() < max_batch) {
                Result<LocalItem> more = take_local(*server_, Deadline::past(), false);
                if (!more) break;
                if (more->is_call()) {
                    call = std::move(*more);
                    break;
                }
                batch.push_back(std::move(*more));
            }
            forward_sends(batch);
            if (call) forward_call(*call);
        }
    }

    // Appends item's record to body; false (with *e, *why) when it cannot cross.
    bool encode_item(const LocalItem& item, std::vector<u8>& body, IpcError* e,
                     std::string* why) const {
        const usize size = item.is_payload ? RECORD_HEAD_BYTES + item.bytes.size()
                                           : record_size(item.request.message);
        if (item.is_payload && item.bytes.size() > MAX_PAYLOAD_BYTES) {
            *e = IpcError::MessageTooLarge;
            *why = "a payload of " + std::to_string(item.bytes.size()) +
                   " bytes (a loan) is over the 64 KiB a payload may carry across hosts";
            return false;
        }
        if (size + FRAME_HEAD_BYTES > max_frame_bytes_) {
            *e = IpcError::MessageTooLarge;
            *why = "the message (" + std::to_string(size) +
                   " bytes as a record) is over the NATS "
                   "server's max payload (" +
                   std::to_string(max_frame_bytes_) + " bytes)";
            return false;
        }
        if (item.is_payload) {
            encode_payload_record(item.opcode, item.flags, item.bytes, body);
            return true;
        }
        if (const Result<void> c = check_crossable(item.request.message, why); !c) {
            *e = c.error();
            return false;
        }
        encode_record(item.request.message, body);
        return true;
    }

    void forward_call(const LocalItem& item) {
        const posix::Received& request = item.request;
        calls_.fetch_add(1, std::memory_order_relaxed);
        std::string why;
        IpcError e{};
        // The time the call may take: what remains of the local caller's deadline (as the
        // runtime shows it on our clock), at most --call-timeout (the caller's deadline is its
        // word: it cannot make the remote side wait longer than this bridge allows); without
        // one (a SmallMessage call, or no deadline), --call-timeout.
        const u64 now = posix::now_ns();
        u64 timeout_ns = u64{opts_.call_timeout_ms} * MS;
        const Deadline caller = request.caller_deadline;
        if (!caller.is_never()) {
            if (caller.expired(now)) {
                return answer_error(request, IpcError::Timeout,
                                    "the caller's deadline passed before the call reached NATS");
            }
            timeout_ns = std::min(timeout_ns, caller.ns() - now);
        }
        std::vector<u8> body;
        // As a duration (never a clock value), then the record.
        encode_call_head(timeout_ns, body);
        if (!encode_item(item, body, &e, &why)) return answer_error(request, e, why);
        if (!link_.connected()) {
            return answer_error(request, IpcError::EndpointNotFound,
                                "not connected to NATS (reconnecting)");
        }
        u64 id = 0;
        {
            std::lock_guard<std::mutex> lock(calls_mu_);
            id = next_call_++;
            pending_[id] = Pending{request, now + timeout_ns + PENDING_GRACE_NS, timeout_ns};
        }
        const std::string reply = inbox_ + "." + std::to_string(id);
        const natsStatus s = natsConnection_PublishRequest(
            link_.nc(), subject.c_str(), reply.c_str(), body.data(), static_cast<int>(body.size()));
        if (s != NATS_OK) {
            if (auto p = take_pending(id)) {
                answer_error(
                    p->request, error_from_status(s),
                    std::string("cannot publish the call on NATS: ") + natsStatus_GetText(s));
            }
        }
    }

    // One-way messages, in frames of at most max_frame_bytes_.
    void forward_sends(const std::vector<LocalItem>& batch) {
        std::vector<u8> body;
        body.reserve(FRAME_HEAD_BYTES + batch.size() * MAX_RECORD_BYTES);
        body.resize(FRAME_HEAD_BYTES);
        u32 n = 0;
        std::string why;
        for (const LocalItem& item : batch) {
            const usize before = body.size();
            IpcError e{};
            if (!encode_item(item, body, &e, &why)) {
                // A one-way sender cannot be told; it is counted (and documented).
                sends_refused_.fetch_add(1, std::memory_order_relaxed);
                continue;
            }
            if (body.size() > max_frame_bytes_) {
                // This record starts the next frame.
                std::vector<u8> rest(body.begin() + static_cast<std::ptrdiff_t>(before),
                                     body.end());
                body.resize(before);
                publish_frame(body, n);
                body.resize(FRAME_HEAD_BYTES);
                body.insert(body.end(), rest.begin(), rest.end());
                n = 0;
            }
            ++n;
        }
        publish_frame(body, n);
    }

    // Step (2): waits for an open stream with room for n messages, then publishes them.
    void publish_frame(std::vector<u8>& body, u32 n) {
        if (n == 0) return;
        std::unique_lock<std::mutex> lock(stream_mu_);
        bool waited = false;
        for (;;) {
            if (stopping_.load()) {
                sends_unconfirmed_.fetch_add(n, std::memory_order_relaxed);
                return;
            }
            if (!link_.connected()) {
                // Hold the messages (and the local senders) until NATS is back.
                stream_cv_.wait_for(lock, std::chrono::milliseconds(50));
                continue;
            }
            if (status_ != StreamStatus::Open) {
                lock.unlock();
                open_stream();
                lock.lock();
                continue;
            }
            if (next_seq_ - delivered_ + n <= window_) break;
            if (!waited) credit_waits_.fetch_add(1, std::memory_order_relaxed);
            waited = true;
            stream_cv_.wait_for(lock, std::chrono::milliseconds(50));
        }
        std::vector<u8> head;
        encode_frame_head(FrameHead{stream_id_, next_seq_, n}, head);
        std::copy(head.begin(), head.end(), body.begin());
        if (next_seq_ == delivered_) last_progress_ns_ = posix::now_ns();
        next_seq_ += n;
        const std::string to = stream_subject_;
        lock.unlock();
        const natsStatus s = natsConnection_Publish(link_.nc(), to.c_str(), body.data(),
                                                    static_cast<int>(body.size()));
        if (s == NATS_OK) {
            sends_.fetch_add(n, std::memory_order_relaxed);
        } else {
            // Not sent: nothing of this frame can arrive, so the stream starts again.
            sends_unconfirmed_.fetch_add(n, std::memory_order_relaxed);
            end_stream(StreamEnd::PublishFailed);
        }
    }

    // Step (1).
    void open_stream() {
        const u64 id = random_id();
        natsMsg* m = nullptr;
        if (natsMsg_Create(&m, subject.c_str(), nullptr, nullptr, 0) != NATS_OK) return;
        natsMsgHeader_Set(m, HEADER_OP, OP_OPEN);
        natsMsgHeader_Set(m, HEADER_STREAM, hex64(id).c_str());
        natsMsgHeader_Set(m, HEADER_CREDIT, credit_subject_.c_str());
        natsMsgHeader_Set(m, HEADER_WINDOW, std::to_string(opts_.credit_window).c_str());
        natsMsg* reply = nullptr;
        const natsStatus s = natsConnection_RequestMsg(&reply, link_.nc(), m, OPEN_TIMEOUT_MS);
        natsMsg_Destroy(m);
        NatsMsgOwner own(reply);
        std::string to;
        u64 window = 0;
        if (s == NATS_OK) {
            to = header_value(reply, HEADER_STREAM_SUBJECT);
            window = parse_decimal(header_value(reply, HEADER_WINDOW)).value_or(0);
        }
        std::unique_lock<std::mutex> lock(stream_mu_);
        if (to.empty() || window == 0) {
            // No exporter (or none answering): the messages and their senders wait; try again
            // shortly.
            stream_cv_.wait_for(lock, std::chrono::milliseconds(s == NATS_TIMEOUT ? 0 : 100));
            return;
        }
        status_ = StreamStatus::Open;
        stream_id_ = id;
        stream_subject_ = to;
        const usize cut = to.rfind('.');
        probe_subject_ = probe_subject(subject, to.substr(cut + 1));
        next_seq_ = 0;
        delivered_ = 0;
        window_ = static_cast<u32>(std::min<u64>(window, opts_.credit_window));
        last_progress_ns_ = posix::now_ns();
        streams_opened_.fetch_add(1, std::memory_order_relaxed);
    }

    enum class StreamEnd { ExporterGone, Reconnected, PublishFailed };
    // Step (4).
    void end_stream(StreamEnd) {
        std::lock_guard<std::mutex> lock(stream_mu_);
        if (status_ != StreamStatus::Open) return;
        sends_unconfirmed_.fetch_add(next_seq_ - delivered_, std::memory_order_relaxed);
        status_ = StreamStatus::Closed;
        stream_cv_.notify_all();
    }

    // ---- The inbox: NATS → local callers -------------------------------------------------

    static void on_inbox_cb(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
        static_cast<Importer*>(self)->on_inbox(msg);
    }

    void on_inbox(natsMsg* msg) {
        NatsMsgOwner own(msg);
        const std::string_view subj = natsMsg_GetSubject(msg);
        if (subj.size() <= inbox_.size() + 1) return;
        const std::string_view tail = subj.substr(inbox_.size() + 1);
        const auto* data = reinterpret_cast<const u8*>(natsMsg_GetData(msg));
        const usize len = static_cast<usize>(natsMsg_GetDataLength(msg));
        if (tail == "c") {
            // Step (3).
            const auto credit = decode_credit({data, len});
            if (!credit) return;
            std::lock_guard<std::mutex> lock(stream_mu_);
            if (status_ != StreamStatus::Open || credit->stream_id != stream_id_) return;
            const u64 d = std::min(credit->delivered, next_seq_);
            if (d > delivered_) {
                delivered_ = d;
                last_progress_ns_ = posix::now_ns();
                stream_cv_.notify_all();
            }
            return;
        }
        const auto id = parse_decimal(tail);
        if (!id) return;
        std::optional<Pending> p = take_pending(*id);
        if (!p) return;  // its time was up: the caller got Timeout already
        if (natsMsg_IsNoResponders(msg)) {
            return answer_error(p->request, IpcError::EndpointNotFound,
                                "no exporter on NATS subject " + subject);
        }
        const std::string error = header_value(msg, HEADER_ERROR);
        if (!error.empty()) {
            const IpcError e = error_from_name(error).value_or(IpcError::InvalidMessage);
            return answer_error(p->request, e, header_value(msg, HEADER_DETAIL));
        }
        std::string why;
        usize used = 0;
        Result<Record> response = decode_any_record({data, len}, &used, &why);
        if (!response || used != len) {
            return answer_error(p->request, IpcError::InvalidMessage,
                                "malformed reply from the remote bridge: " + why);
        }
        if (response->kind != RecordKind::Payload) return answer(p->request, response->message);
        if (!reply_payload(*server_, p->request, response->opcode, response->flags,
                           response->payload, posix::after_ms(100))) {
            // Only a runtime without payloads cannot answer with one.
            answer_error(p->request, IpcError::MessageTooLarge,
                         "the remote reply is a payload this runtime cannot carry");
        }
    }

    // ---- The reaper ----------------------------------------------------------------------

    void run_reaper() {
        while (!stopping_.load()) {
            {
                std::unique_lock<std::mutex> lock(stream_mu_);
                stream_cv_.wait_for(lock, std::chrono::milliseconds(10),
                                    [&] { return stopping_.load(); });
            }
            if (stopping_.load()) break;
            if (disconnect_event_.exchange(false)) {
                fail_all_pending(IpcError::EndpointNotFound,
                                 "NATS connection lost mid-call (it may have run remotely)");
            }
            if (reconnect_event_.exchange(false)) end_stream(StreamEnd::Reconnected);
            expire_pending();
            probe_exporter();
        }
    }

    void expire_pending() {
        const u64 now = posix::now_ns();
        std::vector<Pending> expired;
        {
            std::lock_guard<std::mutex> lock(calls_mu_);
            for (auto it = pending_.begin(); it != pending_.end();) {
                if (it->second.expires_ns <= now) {
                    expired.push_back(it->second);
                    it = pending_.erase(it);
                } else {
                    ++it;
                }
            }
        }
        for (const Pending& p : expired) {
            answer_error(p.request, IpcError::Timeout,
                         "no answer over NATS within " + std::to_string(p.timeout_ns / MS) + " ms");
        }
    }

    void probe_exporter() {
        std::string to;
        {
            std::lock_guard<std::mutex> lock(stream_mu_);
            if (status_ != StreamStatus::Open || next_seq_ == delivered_) return;
            if (posix::now_ns() - last_progress_ns_ < PROBE_AFTER_NS) return;
            to = probe_subject_;
        }
        natsMsg* reply = nullptr;
        const natsStatus s =
            natsConnection_Request(&reply, link_.nc(), to.c_str(), "", 0, PROBE_TIMEOUT_MS);
        NatsMsgOwner own(reply);
        if (s == NATS_NO_RESPONDERS) {
            end_stream(StreamEnd::ExporterGone);
        } else if (s == NATS_OK) {
            // Alive: its local receiver is slow. Probe again after another quiet period.
            std::lock_guard<std::mutex> lock(stream_mu_);
            last_progress_ns_ = posix::now_ns();
        }
    }

    BridgeOptions opts_;
    std::unique_ptr<posix::Server> server_;
    NatsLink link_;
    std::string inbox_;
    std::string credit_subject_;
    usize max_frame_bytes_ = 0;
    std::thread loop_;
    std::thread reaper_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> disconnect_event_{false};
    std::atomic<bool> reconnect_event_{false};

    std::mutex calls_mu_;
    std::unordered_map<u64, Pending> pending_;  // guarded by calls_mu_
    u64 next_call_ = 1;                         // guarded by calls_mu_

    std::mutex stream_mu_;
    std::condition_variable stream_cv_;
    StreamStatus status_ = StreamStatus::Closed;  // guarded by stream_mu_ (and what follows)
    u64 stream_id_ = 0;
    std::string stream_subject_;
    std::string probe_subject_;
    u64 next_seq_ = 0;
    u64 delivered_ = 0;
    u32 window_ = 1;
    u64 last_progress_ns_ = 0;

    std::atomic<u64> calls_{0}, call_errors_{0}, sends_{0}, sends_refused_{0},
        sends_unconfirmed_{0}, credit_waits_{0}, streams_opened_{0};
    BridgeMarker marker_;
    int marker_fd_ = -1;
};

}  // namespace

Result<std::unique_ptr<Bridge::Impl>> start_importer(std::string_view name,
                                                     const BridgeOptions& options) {
    auto i = std::make_unique<Importer>();
    VIPC_TRY(i->start(name, options));
    return std::unique_ptr<Bridge::Impl>(std::move(i));
}

}  // namespace veridian::ipc::bridge
