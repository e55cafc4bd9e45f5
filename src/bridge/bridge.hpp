// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc bridge: named endpoints carried between hosts over NATS.
//
// Layer: bridge (hosted). Depends on the posix runtime's public API (runtime.hpp) and on
// libnats; nothing else in the project links libnats.
//
//   host B (has the server)                    host A (has the clients)
//   Exporter::start("sensors/imu", o)          Importer::start("sensors/imu", o)
//     a client of the local endpoint             a local Server named "sensors/imu"
//     subscribes vipc.sensors.imu (queue)        forwards every call and send to NATS
//
// Calls: a local call to the imported name becomes a NATS request to the base subject; one
// exporter (queue group: several exporters of one name share the calls) calls the real
// endpoint with the remaining time as its deadline and publishes the reply. The import bridge
// answers the caller with that reply or, when the call failed remotely, with an error reply
// (see remote_error.hpp).
//
// One-way messages: the import bridge opens a stream to one exporter and sends them in
// frames with sequence numbers; the exporter delivers them in order with send_sync and
// returns credit. At most credit_window messages are unconfirmed: beyond that the import
// bridge stops taking messages from its local ring, so the local senders feel the remote
// receiver (send_sync waits, send_async gets ChannelFull) and no queue anywhere grows past
// the window. Delivery is at most once: messages in flight to an exporter that dies or to a
// NATS server that restarts may be lost (counted in sends_unconfirmed); the stream then moves
// to another exporter and stays in order.
//
// Both classes run their own threads and stop with stop() (or destruction); their counters
// may be read at any time. Threads: start/stop from one thread; counters() from any.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/types.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::bridge {

// How to reach NATS. Everything here is passed through to libnats unchanged.
struct NatsOptions {
    std::vector<std::string> urls{"nats://127.0.0.1:4222"};  // tried in order, then on reconnect
    std::string creds_file;                                  // a .creds file (user JWT + nkey seed)
    std::string nkey_public;     // with nkey_seed_file: nkey authentication
    std::string nkey_seed_file;  // a file holding the nkey seed
    std::string user;            // user/password (or put them in the URL)
    std::string password;
    std::string token;
    bool tls = false;           // require TLS (also implied by tls:// URLs)
    std::string tls_ca_file;    // trusted CA certificates (PEM)
    std::string tls_cert_file;  // client certificate chain (PEM), for mutual TLS
    std::string tls_key_file;   // its private key
    std::string tls_hostname;   // expected server host name, if not the URL's
    u32 connect_timeout_ms = 2000;
    u32 reconnect_wait_ms = 100;  // between reconnect attempts (forever, never given up)
};

struct BridgeOptions {
    NatsOptions nats;
    std::string prefix = "vipc";  // subject prefix (see mapping.hpp)
    std::string runtime_dir;      // "" = posix::runtime_directory()
    // Import: the longest time a forwarded call may take (the duration in the request is the
    // local caller's remaining time, at most this; this when the caller's deadline is not
    // known: a SmallMessage call, or none). Export: the longest deadline honoured for a
    // remote request.
    u32 call_timeout_ms = 5000;
    // Import: one-way messages that may be unconfirmed at once (1..65536).
    u32 credit_window = 1024;
    // Export: calls served at once (each one a queue subscription with its own thread).
    u32 concurrency = 4;
    // Export: the rights the exporter asks for on the local endpoint (SEND|RECEIVE: calls and
    // sends; SEND only: one-way messages only, calls get PermissionDenied).
    u16 local_rights = 3;
    // Import: the local endpoint's queue depth.
    u32 queue_depth = 64;
    // The local side's spin bound before a futex sleep (ServerOptions/ConnectOptions
    // spin_ns); the runtime's default unless set. A bridged call waits a whole NATS round
    // trip (tens of µs), longer than the default spin: a longer spin saves the wake-ups on
    // an idle machine and wastes CPU on a busy one.
    u32 spin_ns = posix::DEFAULT_SPIN_NS;
};

// What a bridge did (monotonic counters, read without stopping it).
struct BridgeCounters {
    u64 calls = 0;              // calls forwarded (import) / served (export)
    u64 call_errors = 0;        // of those, answered with an error
    u64 sends = 0;              // one-way messages forwarded / delivered
    u64 sends_refused = 0;      // one-way messages that could not cross (capability, region)
    u64 sends_unconfirmed = 0;  // one-way messages lost with a dead exporter or server
    u64 credit_waits = 0;       // times the import bridge waited for credit
    u64 streams_opened = 0;     // streams opened (import) / accepted (export)
    u64 sequence_gaps = 0;      // export: frames that did not follow their predecessor
    u64 disconnects = 0;        // NATS connection lost
    u64 reconnects = 0;         // NATS connection re-established
    bool connected = false;     // connected to a NATS server now
    std::string nats_server;    // the URL connected to, or ""
};

enum class Role { Export, Import };

class Bridge {
public:
    // Export: connects to the local endpoint `name` and to NATS, then serves. EndpointNotFound
    // when `name` is not published locally; Import: publishes `name` locally (EndpointBusy
    // when a live process has it). Either: EndpointNotFound when no NATS server answers within
    // connect_timeout_ms; PermissionDenied when NATS refuses the credentials; InvalidMessage
    // for a malformed name, prefix or option. last_error_detail() says which.
    static Result<Bridge> start(Role role, std::string_view name, const BridgeOptions& options);

    Bridge(Bridge&&) noexcept;
    Bridge& operator=(Bridge&&) noexcept;
    Bridge(const Bridge&) = delete;
    Bridge& operator=(const Bridge&) = delete;
    ~Bridge();  // stop()

    Role role() const;
    const std::string& name() const;
    const std::string& subject() const;  // the base subject
    BridgeCounters counters() const;
    // Stops serving: in-flight calls are answered with an error (EndpointNotFound), the local
    // endpoint (import) or connection (export) is closed, NATS is drained and closed.
    // Idempotent.
    void stop();

    struct Impl;

private:
    explicit Bridge(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// A one-line explanation of the last error Bridge::start returned on this thread.
const char* last_error_detail();

}  // namespace veridian::ipc::bridge
