// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc bridge: the NATS connection (see nats_link.hpp).
#include "bridge/nats_link.hpp"

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <vector>

namespace veridian::ipc::bridge {
namespace {
thread_local std::string t_detail;

std::string nats_error_text(natsStatus s) {
    const char* text = nats_GetLastError(nullptr);
    std::string out = natsStatus_GetText(s);
    if (text != nullptr && *text != '\0' && out != text) {
        out += ": ";
        out += text;
    }
    return out;
}
}  // namespace

void set_detail(const char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    t_detail = buf;
}

const char* last_error_detail() {
    return t_detail.c_str();
}

IpcError error_from_status(natsStatus s) {
    switch (s) {
        case NATS_NO_RESPONDERS:
        case NATS_NO_SERVER:
        case NATS_CONNECTION_CLOSED:
        case NATS_CONNECTION_DISCONNECTED:
        case NATS_STALE_CONNECTION:
            return IpcError::EndpointNotFound;
        case NATS_TIMEOUT:
            return IpcError::Timeout;
        case NATS_NOT_PERMITTED:
        case NATS_CONNECTION_AUTH_FAILED:
        case NATS_SSL_ERROR:
            return IpcError::PermissionDenied;
        case NATS_MAX_PAYLOAD:
            return IpcError::MessageTooLarge;
        case NATS_SLOW_CONSUMER:
        case NATS_INSUFFICIENT_BUFFER:
            return IpcError::ChannelFull;
        case NATS_NO_MEMORY:
            return IpcError::OutOfMemory;
        default:
            return IpcError::InvalidMessage;
    }
}

std::string header_value(natsMsg* msg, const char* key) {
    const char* v = nullptr;
    if (natsMsgHeader_Get(msg, key, &v) != NATS_OK || v == nullptr) return {};
    return v;
}

NatsLink::~NatsLink() {
    close();
}

void NatsLink::disconnected_cb(natsConnection*, void* closure) {
    auto* self = static_cast<NatsLink*>(closure);
    self->connected_.store(false, std::memory_order_release);
    self->disconnects_.fetch_add(1, std::memory_order_relaxed);
    if (self->on_disconnected) self->on_disconnected();
}

void NatsLink::closed_cb(natsConnection*, void* closure) {
    auto* self = static_cast<NatsLink*>(closure);
    std::lock_guard<std::mutex> lock(self->done_mu_);
    self->closed_ = true;
    self->done_cv_.notify_all();
}

void NatsLink::subscription_done_cb(void* closure) {
    auto* self = static_cast<NatsLink*>(closure);
    std::lock_guard<std::mutex> lock(self->done_mu_);
    --self->handlers_live_;
    self->done_cv_.notify_all();
}

natsSubscription* NatsLink::subscribe(const std::string& subject, const char* queue,
                                      natsMsgHandler handler, void* closure) {
    natsSubscription* sub = nullptr;
    const natsStatus s =
        queue != nullptr
            ? natsConnection_QueueSubscribe(&sub, nc_, subject.c_str(), queue, handler, closure)
            : natsConnection_Subscribe(&sub, nc_, subject.c_str(), handler, closure);
    if (s != NATS_OK) {
        set_detail("cannot subscribe to NATS subject %s: %s", subject.c_str(),
                   nats_error_text(s).c_str());
        return nullptr;
    }
    {
        std::lock_guard<std::mutex> lock(done_mu_);
        ++handlers_live_;
    }
    if (natsSubscription_SetOnCompleteCB(sub, subscription_done_cb, this) != NATS_OK) {
        std::lock_guard<std::mutex> lock(done_mu_);
        --handlers_live_;
    }
    subscriptions_.push_back(sub);
    return sub;
}

void NatsLink::reconnected_cb(natsConnection* nc, void* closure) {
    auto* self = static_cast<NatsLink*>(closure);
    char buf[256] = {};
    natsConnection_GetConnectedUrl(nc, buf, sizeof buf);
    {
        std::lock_guard<std::mutex> lock(self->url_mu_);
        self->url_ = buf;
    }
    self->connected_.store(true, std::memory_order_release);
    self->reconnects_.fetch_add(1, std::memory_order_relaxed);
    if (self->on_reconnected) self->on_reconnected();
}

Result<void> NatsLink::connect(const NatsOptions& o, const std::string& client_name) {
    natsOptions* opts = nullptr;
    if (natsOptions_Create(&opts) != NATS_OK) {
        set_detail("NATS: cannot create connection options (out of memory)");
        return IpcError::OutOfMemory;
    }
    std::string all_urls;
    std::vector<const char*> urls;
    for (const std::string& u : o.urls) {
        urls.push_back(u.c_str());
        all_urls += (all_urls.empty() ? "" : ",") + u;
    }
    natsStatus s = NATS_OK;
    const char* what = "";
    auto apply = [&](natsStatus r, const char* option) {
        if (s == NATS_OK && r != NATS_OK) {
            s = r;
            what = option;
        }
    };
    apply(natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size())), "--nats-url");
    apply(natsOptions_SetName(opts, client_name.c_str()), "name");
    apply(natsOptions_SetNoRandomize(opts, true), "no-randomize");
    apply(natsOptions_SetTimeout(opts, o.connect_timeout_ms), "--connect-timeout");
    apply(natsOptions_SetAllowReconnect(opts, true), "reconnect");
    apply(natsOptions_SetMaxReconnect(opts, -1), "reconnect");
    apply(natsOptions_SetReconnectWait(opts, o.reconnect_wait_ms), "reconnect");
    apply(natsOptions_SetReconnectJitter(opts, 0, 0), "reconnect");
    // Requests made while disconnected fail at once rather than wait for a reconnect: a call
    // in flight must end within its deadline with a clear error.
    apply(natsOptions_SetFailRequestsOnDisconnect(opts, true), "reconnect");
    // Publish without waiting for the flusher thread: a call's latency is what matters.
    apply(natsOptions_SetSendAsap(opts, true), "send-asap");
    // Detect a dead server quickly (default: 2 minutes).
    apply(natsOptions_SetPingInterval(opts, 1000), "ping");
    apply(natsOptions_SetMaxPingsOut(opts, 2), "ping");
    apply(natsOptions_SetDisconnectedCB(opts, disconnected_cb, this), "callbacks");
    apply(natsOptions_SetReconnectedCB(opts, reconnected_cb, this), "callbacks");
    apply(natsOptions_SetClosedCB(opts, closed_cb, this), "callbacks");
    if (!o.user.empty()) {
        apply(natsOptions_SetUserInfo(opts, o.user.c_str(), o.password.c_str()), "--user");
    }
    if (!o.token.empty()) apply(natsOptions_SetToken(opts, o.token.c_str()), "--token");
    if (!o.creds_file.empty()) {
        apply(natsOptions_SetUserCredentialsFromFiles(opts, o.creds_file.c_str(), nullptr),
              "--creds");
    }
    if (!o.nkey_seed_file.empty()) {
        apply(natsOptions_SetNKeyFromSeed(opts, o.nkey_public.c_str(), o.nkey_seed_file.c_str()),
              "--nkey");
    }
    if (o.tls) apply(natsOptions_SetSecure(opts, true), "--tls");
    if (!o.tls_ca_file.empty()) {
        apply(natsOptions_LoadCATrustedCertificates(opts, o.tls_ca_file.c_str()), "--tls-ca");
    }
    if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
        apply(natsOptions_LoadCertificatesChain(opts, o.tls_cert_file.c_str(),
                                                o.tls_key_file.c_str()),
              "--tls-cert/--tls-key");
    }
    if (!o.tls_hostname.empty()) {
        apply(natsOptions_SetExpectedHostname(opts, o.tls_hostname.c_str()), "--tls-hostname");
    }
    if (s != NATS_OK) {
        set_detail("NATS option %s refused: %s", what, nats_error_text(s).c_str());
        natsOptions_Destroy(opts);
        return s == NATS_SSL_ERROR ? IpcError::PermissionDenied : IpcError::InvalidMessage;
    }
    s = natsConnection_Connect(&nc_, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        nc_ = nullptr;
        const IpcError e = error_from_status(s);
        if (e == IpcError::PermissionDenied) {
            set_detail(
                "NATS server at %s refused us (%s): check --creds, --nkey/--nkey-seed, "
                "--user/--password or the TLS options",
                all_urls.c_str(), nats_error_text(s).c_str());
        } else {
            set_detail("no NATS server answered at %s (%s): is nats-server running there?",
                       all_urls.c_str(), nats_error_text(s).c_str());
        }
        return e == IpcError::PermissionDenied ? e : IpcError::EndpointNotFound;
    }
    char buf[256] = {};
    natsConnection_GetConnectedUrl(nc_, buf, sizeof buf);
    {
        std::lock_guard<std::mutex> lock(url_mu_);
        url_ = buf;
    }
    connected_.store(true, std::memory_order_release);
    return ok();
}

std::string NatsLink::url() const {
    if (!connected()) return {};
    std::lock_guard<std::mutex> lock(url_mu_);
    return url_;
}

u64 NatsLink::max_payload() const {
    if (nc_ == nullptr) return 0;
    const int64_t m = natsConnection_GetMaxPayload(nc_);
    return m > 0 ? static_cast<u64>(m) : 0;
}

void NatsLink::close() {
    if (nc_ == nullptr) return;
    for (natsSubscription* sub : subscriptions_)
        natsSubscription_Unsubscribe(sub);
    if (connected()) natsConnection_FlushTimeout(nc_, 500);
    natsConnection_Close(nc_);
    {
        // Wait until libnats has called its last handler and connection callback: after
        // that, nothing refers to this link or to the subscriptions' closures.
        std::unique_lock<std::mutex> lock(done_mu_);
        done_cv_.wait_for(lock, std::chrono::seconds(5),
                          [&] { return closed_ && handlers_live_ <= 0; });
    }
    for (natsSubscription* sub : subscriptions_)
        natsSubscription_Destroy(sub);
    subscriptions_.clear();
    natsConnection_Destroy(nc_);
    nc_ = nullptr;
    connected_.store(false, std::memory_order_release);
}

}  // namespace veridian::ipc::bridge
