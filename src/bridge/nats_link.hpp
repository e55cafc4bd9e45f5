// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc bridge: one NATS connection with the bridge's options, its connection events
// and its counters.
//
// Layer: bridge (hosted); the only file besides exporter.cpp/importer.cpp that includes
// nats.h. libnats reconnects by itself (forever, every reconnect_wait_ms, re-subscribing
// everything); the link counts the events and calls the owner's hooks from libnats's own
// thread (they must not block).
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "bridge/bridge.hpp"

namespace veridian::ipc::bridge {

// Sets the detail bridge::last_error_detail() returns on this thread (printf-style).
void set_detail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

class NatsLink {
public:
    NatsLink() = default;
    ~NatsLink();  // close()
    NatsLink(const NatsLink&) = delete;
    NatsLink& operator=(const NatsLink&) = delete;

    // Hooks, set before connect(): called on libnats's thread after the event.
    std::function<void()> on_disconnected;
    std::function<void()> on_reconnected;

    // Connects with `options`. EndpointNotFound (no server answered), PermissionDenied
    // (credentials or TLS refused), InvalidMessage (an option libnats rejects); the detail
    // names the URL and what libnats said.
    Result<void> connect(const NatsOptions& options, const std::string& client_name);

    natsConnection* nc() const { return nc_; }
    bool connected() const { return connected_.load(std::memory_order_acquire); }
    std::string url() const;  // the server connected to now, or ""
    u64 max_payload() const;
    u64 disconnects() const { return disconnects_.load(std::memory_order_relaxed); }
    u64 reconnects() const { return reconnects_.load(std::memory_order_relaxed); }
    // The link's part of a bridge's counters (disconnects, reconnects, connected, server).
    void fill(BridgeCounters& c) const {
        c.disconnects = disconnects();
        c.reconnects = reconnects();
        c.connected = connected();
        c.nats_server = url();
    }

    // An asynchronous subscription (with `queue`: in that queue group) whose handler runs on
    // a thread of its own. The link tracks it: close() waits until its handler has returned
    // for the last time (libnats's on-complete callback), so `closure` may be freed after
    // close(). nullptr on failure (detail set).
    natsSubscription* subscribe(const std::string& subject, const char* queue,
                                natsMsgHandler handler, void* closure);

    // Stops every subscription, closes the connection and waits (at most 5 s) until no
    // handler or connection callback of ours can run any more. Idempotent.
    void close();

private:
    static void disconnected_cb(natsConnection* nc, void* closure);
    static void reconnected_cb(natsConnection* nc, void* closure);
    static void closed_cb(natsConnection* nc, void* closure);
    static void subscription_done_cb(void* closure);

    natsConnection* nc_ = nullptr;
    std::atomic<bool> connected_{false};
    std::atomic<u64> disconnects_{0};
    std::atomic<u64> reconnects_{0};
    mutable std::mutex url_mu_;
    std::string url_;

    // SYNC POINT: handlers_live_ and closed_ are written by libnats's threads (on-complete and
    // closed callbacks) under done_mu_; close() waits on done_cv_ for both.
    std::mutex done_mu_;
    std::condition_variable done_cv_;
    int handlers_live_ = 0;
    bool closed_ = false;
    std::vector<natsSubscription*> subscriptions_;
};

// natsStatus → the closest IpcError (for errors during operation, not connect).
IpcError error_from_status(natsStatus s);

// A natsMsg owned by a scope.
struct NatsMsgOwner {
    natsMsg* msg = nullptr;
    explicit NatsMsgOwner(natsMsg* m) : msg(m) {}
    ~NatsMsgOwner() {
        if (msg != nullptr) natsMsg_Destroy(msg);
    }
    NatsMsgOwner(const NatsMsgOwner&) = delete;
    NatsMsgOwner& operator=(const NatsMsgOwner&) = delete;
};

// A header's value, or "" when absent.
std::string header_value(natsMsg* msg, const char* key);

}  // namespace veridian::ipc::bridge
