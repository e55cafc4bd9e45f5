// SPDX-License-Identifier: MIT OR Apache-2.0
// The one interface every benchmarked transport implements, and the table that lists them.
//
// How a case runs
// ---------------
// A case is one transport, one placement (cross-core: e.g. cpus 1/0; same-core: 0/0), one
// message size and one repetition. For each case the harness (harness.cpp):
//
//   parent:  t = info.make();  t->prepare(params)      create what both sides inherit
//   fork ──► server child: pin; t->open(server); barrier; loop { t->echo(buf) } / stream rx
//   fork ──► client child: pin; t->open(client); barrier; warm-up; timed t->round_trip(buf)
//                          ...; then a one-way stream of t->send(buf), one ack t->receive()
//   both children:         barrier (both done); t->close(); exit()
//   parent:  reap both (SIGKILL after the case deadline);  t->cleanup()
//
// The final barrier means close() never runs while the peer still waits for a message, so a
// transport may drop unsent data on close. Children end with exit(), so static destructors
// run (a library may deregister from its daemon there). The parent never calls
// open/send/receive, so a transport may create library contexts (ZeroMQ, NNG, the iceoryx
// runtime) in open() only.
//
// Messages are opaque bytes of exactly `params.message_size` bytes (at least 8). The harness
// owns their content: the first 8 bytes carry a sequence number and flags, and it checks them
// on arrival, so a transport that loses, duplicates or reorders a message fails the case.
//
// Implementing a transport
// ------------------------
//   1. Derive from Transport; implement open(), send() and receive(). Override round_trip() /
//      echo() only when the transport has a native call/reply (the defaults are send+receive
//      and receive+send), prepare()/cleanup() when something must exist before the fork or be
//      removed after it (named queues, socket files), note() to say what limited a case.
//   2. Every call blocks until done and returns Status: Status{} on success, or
//      Status::fail("what went wrong") — that text becomes the row's reason. Never throw out
//      of a transport and never exit the process.
//   3. open(role) returns only when the transport is ready to exchange messages with the peer
//      (connected, subscribed); the harness starts timing after both sides returned. The two
//      sides open concurrently: a client that must connect to the server's listening socket
//      retries for a bounded time (transport_nng.cpp, transport_veridian.cpp).
//   4. A transport whose messages have a fixed layout lays the harness's bytes over its
//      fields and sets max_message_size to what fits (transport_veridian.cpp: 48 bytes).
//   5. Add a TransportInfo to the table: one function returning std::vector<TransportInfo>
//      in transport_<name>.cpp, called from all_transports() in transports.cpp. A transport
//      that cannot run here (library not built, daemon missing, kernel limit) still has a row:
//      its probe() returns the reason, and the row shows it instead of numbers.
//
// The veridian-ipc rows live in transport_veridian.cpp (48-byte messages) and
// transport_veridian_payload.cpp (payloads of any size); see the comments there.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace vipc::bench {

// Success, or a one-line reason. Cheap to return on the hot path (no allocation when ok).
class Status {
public:
    Status() = default;
    static Status fail(std::string reason) {
        Status s;
        s.reason_ = reason.empty() ? std::string("unknown error") : std::move(reason);
        return s;
    }
    // Formats "what: strerror(errno_value)".
    static Status from_errno(const std::string& what, int errno_value);

    bool ok() const { return reason_.empty(); }
    explicit operator bool() const { return ok(); }
    const std::string& reason() const { return reason_; }

private:
    std::string reason_;
};

enum class Role { client, server };

// What one case asks of a transport. Fixed before prepare(); the same in both children.
struct CaseParams {
    std::size_t message_size = 48;   // every message has exactly this many bytes (>= 8)
    std::size_t queue_depth = 1024;  // requested depth for transports that have a queue
    std::string unique_name;         // unique per case, [a-z0-9_]: use it to name queues, topics
    std::string scratch_dir;         // a private directory for socket files; removed after the run
    bool same_core = false;          // both processes share one cpu
};

class Transport {
public:
    virtual ~Transport() = default;

    // Parent, before the fork. Create inherited state: fds, anonymous shared memory, and named
    // objects that both sides open. Must not start threads or library contexts.
    virtual Status prepare(const CaseParams& params) {
        params_ = params;
        return {};
    }
    // Parent, after prepare(): what limited this case (e.g. a queue depth capped by a sysctl),
    // shown in the row; empty when nothing did.
    virtual std::string note() const { return {}; }

    // Child, after pinning. Returns when this side can exchange messages with the peer.
    virtual Status open(Role role) = 0;
    // Child. Sends one message; blocks while the transport is full.
    virtual Status send(std::span<const std::byte> message) = 0;
    // Child. Receives one whole message into `message` (its size is the message size).
    virtual Status receive(std::span<std::byte> message) = 0;
    // Client: send `message`, wait for the reply and store it in `message`.
    virtual Status round_trip(std::span<std::byte> message) {
        if (Status s = send(message); !s) return s;
        return receive(message);
    }
    // Server: receive one message into `message` and send it back unchanged.
    virtual Status echo(std::span<std::byte> message) {
        if (Status s = receive(message); !s) return s;
        return send(message);
    }
    // Child, before it exits (also after a failed open()).
    virtual void close() {}
    // Parent, after both children were reaped — also when they were killed. Removes named
    // objects; must tolerate a partial prepare().
    virtual void cleanup() {}

protected:
    CaseParams params_;
};

// A row of the table.
struct TransportInfo {
    std::string name;         // short id: [a-z0-9_], used by --only and as the JSON key
    std::string description;  // one line: the mechanism and how a waiter waits
    std::string group;        // "floor" (the bench's own minimal transports), "peer" or "veridian"
    std::size_t max_message_size = 0;  // the size sweep stops at this size
    bool round_trips = true;           // supports the ping-pong (latency) phase
    bool streams = true;               // supports the one-way stream (throughput) phase
    // Parent, once per run, before any case: empty Status when the transport can run here,
    // otherwise the reason (e.g. "not built: libzmq3-dev missing — apt-get install ...").
    std::function<Status()> probe = [] { return Status{}; };
    // Parent, once per run, after the last case (e.g. stop a daemon that probe() started).
    std::function<void()> shutdown = [] {};
    // Parent, per case. Null when the transport is not built.
    std::function<std::unique_ptr<Transport>()> make;
    // Per-placement caveat shown in the row, e.g. why a same-core case is capped.
    std::string same_core_note;
};

// A row that is listed but cannot run: probe() returns `reason`.
TransportInfo unavailable_transport(std::string name, std::string description, std::string group,
                                    std::string reason);

// The table, in display order: floors first, then peers, then veridian-ipc.
std::vector<TransportInfo> all_transports();

// Each transport file contributes its rows through one of these (transports.cpp calls them).
std::vector<TransportInfo> floor_transports();             // transport_shm.cpp
std::vector<TransportInfo> eventfd_transports();           // transport_shm.cpp
std::vector<TransportInfo> os_transports();                // transport_os.cpp
std::vector<TransportInfo> boost_transports();             // transport_boost.cpp
std::vector<TransportInfo> zmq_transports();               // transport_zmq.cpp
std::vector<TransportInfo> nng_transports();               // transport_nng.cpp
std::vector<TransportInfo> iceoryx_transports();           // transport_iceoryx.cpp
std::vector<TransportInfo> veridian_transports();          // transport_veridian.cpp
std::vector<TransportInfo> veridian_payload_transports();  // transport_veridian_payload.cpp

}  // namespace vipc::bench
