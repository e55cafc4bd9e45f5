// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: the client side of a connection.
//
// Threads sharing one Connection:
//   - senders (send_sync, send_async, fast_send, and call's request) are serialized by
//     send_mu_: the client→server ring has one producer, and the hot path needs no atomic
//     read-modify-write in shared memory;
//   - readers (receive_sync, try_receive, and call waiting for its reply) share the
//     server→client ring through a process-local demultiplexer: one thread at a time is "the
//     reader" and takes messages from the ring; a reply (IS_REPLY with a txid) goes to the
//     caller registered for that txid, anything else to the inbox of receive_sync/try_receive.
//
// The call protocol (several threads may call at once):
//   (0) register a waiter for a fresh txid (under mu_)
//   (1) send the request tagged with it (as send_sync: may block for space)
//   (2) wait: if our reply was delivered → (4A). If nobody is the reader, become it: wait on
//       the ring (wait_for_data, numbered in shm.hpp), take one message, dispatch it, wake the
//       other waiters, go back to (2). Otherwise sleep on the condition variable until a
//       dispatch, at most one slice.
//   (3) the ways out besides a reply: the deadline (4B, Timeout), the connection closed, the
//       server gone or the ring corrupted (4C, its error). (3A) When the server is gone (it
//       closed or died, and neither did we close nor was our capability revoked), what it
//       wrote before stays readable: become the reader, take one message without waiting,
//       dispatch it, back to (2); once the ring is empty, (4C).
//   (4) end the wait: unregister the txid (a reply arriving later is dropped and counted).
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "posix/error_reply.hpp"
#include "posix/parked_count.hpp"
#include "posix/pollable.hpp"
#include "posix/rate_limit.hpp"
#include "posix/region_wire.hpp"
#include "posix/shm.hpp"
#include "posix/wire.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::posix {

using namespace detail;

namespace {

// Adds one to a counter with a single writer at a time (the holder of the lock named at its
// declaration): a plain load and store, no read-modify-write on the hot path.
void bump(std::atomic<u64>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

std::chrono::steady_clock::time_point to_steady(Deadline d) {
    if (d.is_never()) return std::chrono::steady_clock::time_point::max();
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(d.ns()));
}

Deadline earlier(Deadline a, Deadline b) {
    return a.ns() < b.ns() ? a : b;
}

}  // namespace

// The peer-death monitor of a client process: one thread, started with the first connection,
// that watches every connection's socket with epoll. The server writes nothing to a socket
// after its Welcome, so any event on it means the server hung up (closed or died): the
// monitor marks the connection dead and wakes every local thread blocked on it at once.
// Registrations are keyed by a never-reused id (not the fd, which the kernel reuses), and
// hold the connection weakly, so a connection can go away at any time.
class ClientMonitor {
public:
    static ClientMonitor& instance() {
        // Never destroyed: the thread may outlive every static object's destructor.
        static ClientMonitor* monitor = [] {
            auto* m = new ClientMonitor();
            pthread_atfork(&ClientMonitor::before_fork, &ClientMonitor::after_fork_in_parent,
                           &ClientMonitor::after_fork_in_child);
            return m;
        }();
        return *monitor;
    }
    // Returns the registration id (0 if the monitor could not be started: the sliced sleeps
    // then notice a dead server, later).
    u64 add(int sock, int pidfd, std::weak_ptr<Connection::Impl> conn);
    void remove(u64 id, int sock, int pidfd);

private:
    ClientMonitor() = default;
    void run();

    // fork(): the child gets no copy of the monitor thread. Hold the lock across fork() so the
    // child's copy of the state is consistent, then let the child start afresh (its first
    // connection starts its own monitor; the parent's connections are not its to use).
    static void before_fork() { instance().mu_.lock(); }
    static void after_fork_in_parent() { instance().mu_.unlock(); }
    static void after_fork_in_child() {
        ClientMonitor& m = instance();
        if (m.epfd_ >= 0) ::close(m.epfd_);
        m.epfd_ = -1;
        m.started_ = false;
        m.conns_.clear();
        m.mu_.unlock();
    }

    std::mutex mu_;
    int epfd_ = -1;
    bool started_ = false;
    u64 next_id_ = 1;
    std::unordered_map<u64, std::weak_ptr<Connection::Impl>> conns_;
};

struct Connection::Impl final : WaitCheck {
    std::string name;
    u16 rights = 0;
    RingGeometry geometry;
    ProcessId server_pid{};
    ConnectionId id = 0;
    pid_t pid = getpid();

    Fd socket;
    Fd server_pidfd;  // the server process (see connect): its exit is the server's death
    Fd c2s_data_fd, c2s_ctl_fd, s2c_data_fd, s2c_ctl_fd, state_fd, doorbell_fd, notify_fd;
    Mapping c2s_data, c2s_ctl, s2c_data, s2c_ctl, state_map, doorbell_map;
    const ServerState* state = nullptr;
    ServerDoorbell* doorbell = nullptr;

    DeadlineMutex send_mu;
    RingProducer c2s VIPC_GUARDED_BY(send_mu);
    SpinBudget send_spin VIPC_GUARDED_BY(send_mu);
    RegionSender regions_out VIPC_GUARDED_BY(send_mu);
    // Rate limits: the server's and our own, each a bucket of messages and one of bytes.
    static constexpr int LIMIT_BUCKETS = 4;
    TokenBucket limits[LIMIT_BUCKETS] VIPC_GUARDED_BY(send_mu);
    bool rate_limited = false;  // any bucket enabled (fixed at connect)
    // Waits (blocking) or refuses (RateLimitExceeded) until `msg` fits every limit; charge()
    // takes its tokens once it was pushed (the producer lock is held throughout).
    Result<void> admit(const Message& msg, Deadline deadline, bool blocking) VIPC_REQUIRES(send_mu);
    void charge(const Message& msg) VIPC_REQUIRES(send_mu);
    static u64 charged_bytes(const Message& msg) {
        return msg.is_small() ? sizeof(SmallMessage) : msg.large_message().header.total_size;
    }

    std::mutex mu;
    std::condition_variable cv;
    bool reader_active VIPC_GUARDED_BY(mu) = false;
    std::deque<Message> inbox VIPC_GUARDED_BY(mu);
    // The callers waiting for a reply: one entry per outstanding call, searched linearly (a
    // handful at most in practice); the vector keeps its capacity, so a call allocates nothing.
    struct PendingCall {
        TransactionId txid;
        std::optional<Message> reply;
    };
    std::vector<PendingCall> pending VIPC_GUARDED_BY(mu);
    PendingCall* find_pending(TransactionId txid) VIPC_REQUIRES(mu) {
        for (PendingCall& p : pending) {
            if (p.txid == txid) return &p;
        }
        return nullptr;
    }
    void erase_pending(TransactionId txid) VIPC_REQUIRES(mu) {
        for (usize i = 0; i < pending.size(); ++i) {
            if (pending[i].txid == txid) {
                pending[i] = pending.back();
                pending.pop_back();
                return;
            }
        }
    }
    u64 stale_replies VIPC_GUARDED_BY(mu) = 0;
    // The ring's consumer side belongs to whoever is the reader (reader_active).
    RingConsumer s2c;
    SpinBudget receive_spin;
    RegionReceiver regions_in;  // the reader's, like s2c

    std::atomic<u64> next_txid{1};
    std::atomic<bool> closed{false};  // closed by us
    std::atomic<bool> dead{false};    // the server closed, died or hung up
    std::atomic<bool> broken{false};  // the server broke the protocol
    std::atomic<u64> monitor_id{0};   // registration with ClientMonitor (0 = none)

    // pollable_fd() (see pollable.hpp): made on first use, under poll_mu; poll_armed is set
    // (release) once `poll` is complete, and read (acquire) before signalling it.
    std::mutex poll_mu;
    PollSet poll;
    std::atomic<bool> poll_armed{false};
    int arm_poll();
    // Ok, or the error a reply_error() answer carries (with the server's detail).
    Result<void> check_error_reply(const Message& reply) const {
        std::string detail;
        if (auto e = error_in_reply(reply, &detail); !e) {
            return fail(e.error(), "the server of '%s' answered the call with %s%s%s", name.c_str(),
                        error_name(e.error()), detail.empty() ? "" : ": ", detail.c_str());
        }
        return ok();
    }
    void signal_poll() {
        if (poll_armed.load(std::memory_order_acquire)) poll.signal_local();
    }
    // Step (3) of pollable.hpp on this side. The set also holds the local signals that stand
    // for what was already moved out of the ring (a reply waiting in the call table, a
    // message in the inbox): draining them with the rest would lose them, so they are raised
    // again at once. Under mu, which every move into the call table or the inbox holds.
    void rearm_poll() VIPC_REQUIRES(mu) {
        poll.drain(OnPeerHangup::KeepReadable);
        bool held = !inbox.empty();
        for (const PendingCall& p : pending) held = held || p.reply.has_value();
        if (held) poll.signal_local();
    }
    // Statistics (Connection::stats()): the parked counts (see parked_count.hpp) and the
    // messages this side sent (written under send_mu) and received (written under mu).
    std::atomic<u32> waiting_senders{0};
    std::atomic<u32> waiting_receivers{0};
    std::atomic<u32> waiting_callers{0};
    std::atomic<u64> sent_count{0};
    std::atomic<u64> received_count{0};

    Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    ~Impl() {
        close();
        // What the server sent and nobody claimed goes with the connection.
        if (regions_in.owner != 0) release_unclaimed(regions_in.owner);
        const u64 registration = monitor_id.load();
        if (registration != 0) {
            ClientMonitor::instance().remove(registration, socket.get(), server_pidfd.get());
        }
    }

    // WaitCheck: between waits.
    Result<void> check(bool slice_ended) override;
    // Bumped and woken by close() and server_gone() after they set closed/dead (see
    // WaitCheck::local_wake): a blocked wait sleeps on it too, so their wake is never lost.
    std::atomic<u32> wake_epoch{0};
    const std::atomic<u32>* local_wake() const override { return &wake_epoch; }
    void wake_local() {
        wake_epoch.fetch_add(1, std::memory_order_seq_cst);
        futex_wake_all(&wake_epoch);
    }
    Result<void> quick_check();
    // The server hung up: mark it, wake every local thread blocked on this connection.
    void server_gone() {
        dead.store(true, std::memory_order_seq_cst);
        wake_local();
        signal_poll();  // a poller looks and gets EndpointNotFound
        if (c2s.valid()) futex_wake_all(&c2s_ctl.as<const RingCtl>()->head);
        if (s2c.valid()) futex_wake_all(&s2c_data.as<const RingDataHeader>()->tail);
        std::lock_guard<std::mutex> lock(mu);
        cv.notify_all();
    }

    // Through a capability, `presocket` is the connection socket already handed to the server.
    Result<void> connect(std::string_view name_, const ConnectOptions& options,
                         Fd* presocket = nullptr, int capability_fd = -1);
    void explain_refusal(const Welcome& w, IpcError e, const ucred& server);
    bool revoked() const {
        return (c2s.valid() && c2s_ctl.as<const RingCtl>()->closed.load(
                                   std::memory_order_acquire) == CLOSED_REVOKED) ||
               (s2c.valid() && s2c_data.as<const RingDataHeader>()->closed.load(
                                   std::memory_order_acquire) == CLOSED_REVOKED);
    }
    // `region`: a region's or a capability's descriptor to pass with msg (see region_wire.hpp).
    using OutgoingRegion = OutgoingAttachment;
    Result<void> send_capability(const Message& msg, const EndpointCapability& cap,
                                 Deadline deadline, bool blocking);
    Result<void> send(const Message& msg, TransactionId txid, Deadline deadline, bool blocking,
                      const OutgoingRegion* region = nullptr);
    Result<void> send_region(const Message& msg, Region& region, Transfer transfer,
                             TransactionId txid, Deadline deadline, bool blocking);
    Result<void> push_with_region(const Message& msg, TransactionId txid,
                                  const OutgoingRegion& region, Deadline deadline)
        VIPC_REQUIRES(send_mu);
    Result<void> fast_send(const SmallMessage& msg);
    void notify_server();
    // Wait: block until a message (wait_for_data); Look: take one if there is one; Drain:
    // take one even though the server is gone (what it wrote before stays readable).
    enum class ReadMode : u8 { Wait, Look, Drain };
    Result<Message> read_one(Deadline deadline, ReadMode mode);
    // After quick_check() failed with `e`: true when what the server wrote before it went
    // away may still be read (it closed or died; we did not close, it broke nothing, and our
    // capability was not revoked).
    bool may_drain(IpcError e) const {
        return e == IpcError::EndpointNotFound && !closed.load(std::memory_order_acquire) &&
               s2c.valid();
    }
    // Delivers `m` to its call or the inbox. The caller takes itself the reply to `own_txid`
    // (when != 0) or, with `takes_inbox`, the inbox message: anything else is for another
    // thread or the event loop, so the pollable descriptor is signalled.
    void dispatch(const Message& m, TransactionId own_txid = 0, bool takes_inbox = false)
        VIPC_REQUIRES(mu);
    // Waits for the reply to `txid` (txid != 0) or for an inbox message (txid == 0).
    Result<Message> wait_message(TransactionId txid, Deadline deadline);
    void close();
};

// ---- checks ------------------------------------------------------------------------------------

Result<void> Connection::Impl::quick_check() {
    if (closed.load(std::memory_order_acquire)) {
        // The same error as an operation on a closed core endpoint (docs/CONTRACT.md).
        return fail(IpcError::EndpointNotFound, "the connection to '%s' was closed by this process",
                    name.c_str());
    }
    if (broken.load(std::memory_order_acquire)) {
        return fail(IpcError::InvalidMessage,
                    "the server of '%s' corrupted the connection; it was dropped", name.c_str());
    }
    // The words read here sit on cache lines we read anyway (the s2c tail's) or that rarely
    // change (the server's state); the c2s ring's closed flag shares its line with the head
    // the server writes for every message, so it is read only between waits (check()): a
    // connection the server dropped is also hung up, which the monitor notices at once.
    bool gone =
        dead.load(std::memory_order_acquire) || state->closed.load(std::memory_order_acquire) != 0;
    if (!gone && s2c.valid()) gone = s2c_data.as<const RingDataHeader>()->closed.load() != 0;
    if (gone) {
        dead.store(true, std::memory_order_release);
        if (revoked()) {
            return fail(IpcError::InvalidCapability,
                        "the capability this connection was made with has been revoked");
        }
        return fail(IpcError::EndpointNotFound, "endpoint '%s' is gone (its server closed or died)",
                    name.c_str());
    }
    return ok();
}

Result<void> Connection::Impl::check(bool slice_ended) {
    VIPC_TRY(quick_check());
    if (c2s.valid() && c2s_ctl.as<const RingCtl>()->closed.load() != 0) {
        server_gone();
        return quick_check();
    }
    if (slice_ended) {
        // The server never writes to the socket after its Welcome: readable means hung up.
        // Region records may be waiting on it: only a hang-up counts.
        pollfd p{socket.get(), POLLRDHUP, 0};
        if ((::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) ||
            (server_pidfd.valid() && process_exited(server_pidfd.get()))) {
            server_gone();
            return quick_check();
        }
    }
    return ok();
}

// ---- connect -----------------------------------------------------------------------------------

void Connection::Impl::explain_refusal(const Welcome& w, IpcError e, const ucred& server) {
    const char* why = "";
    char buf[160] = "";
    switch (static_cast<Refusal>(w.reason)) {
        case Refusal::NotAdmitted:
            std::snprintf(buf, sizeof buf,
                          "its access policy admits neither our uid %u nor any of our groups",
                          geteuid());
            why = buf;
            break;
        case Refusal::RightsBeyond:
            std::snprintf(buf, sizeof buf,
                          "we asked for rights 0x%x, its access policy grants uid %u only 0x%x",
                          rights, geteuid(), w.limit);
            why = buf;
            break;
        case Refusal::TooMany:
            std::snprintf(buf, sizeof buf,
                          "it has its maximum of %u connections (ServerOptions::max_connections); "
                          "retry later, or raise the limit",
                          w.limit);
            why = buf;
            break;
        case Refusal::Closed:
            why = "it is closing";
            break;
        case Refusal::Revoked:
            why = "the capability was revoked";
            break;
        case Refusal::CapRights:
            why = "we asked for more rights than the capability carries";
            break;
        case Refusal::OutOfResources:
            why = "it could not make the connection (out of descriptors or memory)";
            break;
        case Refusal::None:
            why = error_text(e);
            break;
    }
    fail(e, "endpoint '%s' (server pid %d, uid %u) refused us (uid %u): %s", name.c_str(),
         server.pid, server.uid, geteuid(), why);
}

Result<void> Connection::Impl::connect(std::string_view name_, const ConnectOptions& options,
                                       Fd* presocket, int capability_fd) {
    name = std::string(name_);
    VIPC_TRY(validate_name(name));
    rights = options.rights & (Rights::SEND | Rights::RECEIVE);
    if (rights == 0) {
        return fail(IpcError::PermissionDenied,
                    "a connection to '%s' needs Rights::SEND or Rights::RECEIVE", name.c_str());
    }
    // Who the server is, from the kernel: for a connection by name, the process listening on
    // the socket (checked against the uids we trust before anything is sent); through a
    // capability, the process that minted it (the creator of the capability's socket pair).
    ucred server_cred{};
    const std::vector<u32> trusted = trusted_uids(options.trusted_server_uids);
    if (presocket != nullptr) {
        socket = static_cast<Fd&&>(*presocket);
        socklen_t len = sizeof server_cred;
        if (capability_fd < 0 ||
            getsockopt(capability_fd, SOL_SOCKET, SO_PEERCRED, &server_cred, &len) != 0) {
            return fail(IpcError::InvalidCapability, "cannot learn who minted the capability");
        }
        auto pfd = peer_pidfd(capability_fd, server_cred);
        if (!pfd) return fail(IpcError::EndpointNotFound, "the server of this capability is gone");
        server_pidfd = static_cast<Fd&&>(*pfd);
    } else {
        const std::string dir = resolve_runtime_dir(options.runtime_dir);
        socket = VIPC_TRY(open_endpoint_socket(dir, name, trusted, &server_cred));
        auto pfd = peer_pidfd(socket.get(), server_cred);
        if (!pfd) {
            return fail(IpcError::EndpointNotFound, "endpoint '%s' is gone (its server died)",
                        name.c_str());
        }
        server_pidfd = static_cast<Fd&&>(*pfd);
    }
    // A server that died while a process it forked keeps its socket open still accepts
    // connections in the kernel, but nobody will ever answer: say so at once.
    if (process_exited(server_pidfd.get())) {
        return fail(IpcError::EndpointNotFound,
                    "endpoint '%s' is gone: its server (pid %d) died, and a process it forked "
                    "still holds its socket",
                    name.c_str(), server_cred.pid);
    }

    const Hello hello{HELLO_MAGIC, WIRE_VERSION, static_cast<u16>(HelloOp::Connect), rights, 0, 0};
    if (!send_with_fds(socket.get(), &hello, sizeof hello, nullptr, 0)) {
        return fail(IpcError::EndpointNotFound, "endpoint '%s' hung up during connect",
                    name.c_str());
    }
    const u64 deadline = now_ns() + u64{options.connect_timeout_ms} * 1'000'000u;
    if (!wait_readable(socket.get(), deadline)) {
        return fail(IpcError::Timeout, "endpoint '%s' did not answer within %u ms", name.c_str(),
                    options.connect_timeout_ms);
    }
    alignas(8) u8 buf[sizeof(Welcome) + 8];
    int fds[MAX_WELCOME_FDS];
    int nfds = 0;
    bool truncated = false;
    const long n =
        receive_with_fds(socket.get(), buf, sizeof buf, fds, MAX_WELCOME_FDS, &nfds, &truncated);
    // Own every descriptor that arrived before looking at anything else.
    Fd received[MAX_WELCOME_FDS];
    for (int i = 0; i < nfds; ++i)
        received[i] = Fd(fds[i]);
    if (n <= 0) {
        return fail(IpcError::EndpointNotFound, "endpoint '%s' hung up during connect",
                    name.c_str());
    }
    if (truncated) {
        // MSG_CTRUNC with room for every descriptor we expect: this process had no free
        // descriptor numbers for them (the kernel drops what it cannot install).
        if (nfds < MAX_WELCOME_FDS) {
            return fail(IpcError::OutOfMemory,
                        "this process is out of file descriptors: the %s descriptors of the "
                        "connection to '%s' could not be received; raise RLIMIT_NOFILE or close "
                        "some",
                        nfds == 0 ? "" : "remaining", name.c_str());
        }
        return fail(IpcError::InvalidMessage, "endpoint '%s' sent too many descriptors",
                    name.c_str());
    }
    auto parsed = parse_welcome(buf, static_cast<usize>(n), nfds, rights);
    if (!parsed) {
        Welcome refused{};
        if (static_cast<usize>(n) == sizeof refused) std::memcpy(&refused, buf, sizeof refused);
        if (refused.magic == WELCOME_MAGIC && refused.status != 0) {
            explain_refusal(refused, parsed.error(), server_cred);
        }
        return parsed.error();
    }
    const Welcome w = *parsed;
    // The Welcome's pid and uid are the server's own view (another pid or user namespace
    // numbers them differently): trust was decided on the kernel's view (SO_PEERCRED) above.
    geometry = *RingGeometry::for_depth(w.depth);
    server_pid = ProcessId{w.server_pid};
    id = w.connection_id;

    int next = 0;
    auto take = [&](u16 bit) {
        return (w.fd_bits & bit) != 0 ? static_cast<Fd&&>(received[next++]) : Fd();
    };
    c2s_data_fd = take(FdBits::C2S_DATA);
    c2s_ctl_fd = take(FdBits::C2S_CTL);
    s2c_data_fd = take(FdBits::S2C_DATA);
    s2c_ctl_fd = take(FdBits::S2C_CTL);
    state_fd = take(FdBits::STATE);
    doorbell_fd = take(FdBits::DOORBELL);
    notify_fd = take(FdBits::NOTIFY);
    // The notification socket (see pollable.hpp): we only ever write one byte to it, but a
    // server that sent something else gets nothing written into a file of its choosing.
    struct stat notify_stat {};
    if (fstat(notify_fd.get(), &notify_stat) != 0 || !S_ISSOCK(notify_stat.st_mode)) {
        return fail(IpcError::InvalidMessage,
                    "endpoint '%s' sent a notification descriptor that is not a socket",
                    name.c_str());
    }

    // Map what our rights give: the pages we write read-write, the server's read-only.
    state_map = VIPC_TRY(map_peer_memfd(state_fd.get(), PAGE_BYTES, false));
    doorbell_map = VIPC_TRY(map_peer_memfd(doorbell_fd.get(), PAGE_BYTES, true));
    state = state_map.as<const ServerState>();
    doorbell = doorbell_map.as<ServerDoorbell>();
    if (state->magic != STATE_MAGIC || state->version != WIRE_VERSION) {
        return fail(IpcError::InvalidMessage, "endpoint '%s' sent a foreign state segment",
                    name.c_str());
    }
    if ((rights & Rights::SEND) != 0) {
        c2s_data = VIPC_TRY(map_peer_memfd(c2s_data_fd.get(), geometry.data_bytes, true));
        c2s_ctl = VIPC_TRY(map_peer_memfd(c2s_ctl_fd.get(), geometry.ctl_bytes, false));
        DeadlineLock lock(send_mu);
        c2s = RingProducer(geometry, c2s_data.as<RingDataHeader>(), c2s_ctl.as<const RingCtl>());
        send_spin = SpinBudget(options.spin_ns);
        const u64 now = now_ns();
        const RateLimit& own = options.rate_limit;
        limits[0] = TokenBucket(state->limit_messages_per_second, state->limit_burst_messages, now);
        limits[1] = TokenBucket(state->limit_bytes_per_second, state->limit_burst_bytes, now);
        limits[2] = TokenBucket(own.messages_per_second, own.burst_messages, now);
        limits[3] = TokenBucket(own.bytes_per_second, own.burst_bytes, now);
        for (const TokenBucket& b : limits)
            rate_limited = rate_limited || b.enabled();
    }
    if ((rights & Rights::RECEIVE) != 0) {
        s2c_data = VIPC_TRY(map_peer_memfd(s2c_data_fd.get(), geometry.data_bytes, false));
        s2c_ctl = VIPC_TRY(map_peer_memfd(s2c_ctl_fd.get(), geometry.ctl_bytes, true));
        s2c = RingConsumer(geometry, s2c_data.as<const RingDataHeader>(), s2c_ctl.as<RingCtl>());
        receive_spin = SpinBudget(options.spin_ns);
        regions_in.owner = new_unclaimed_owner();
        regions_in.quota = DEFAULT_MAX_UNCLAIMED_PER_CONNECTION;
    }
    return ok();
}

Result<Connection> Connection::connect(const EndpointCapability& capability,
                                       const ConnectOptions& options) {
    clear_error_detail();
    if (!capability.valid()) return fail(IpcError::InvalidCapability, "the capability is empty");
    ConnectOptions through = options;
    through.rights = static_cast<u16>(options.rights & capability.rights());
    if ((through.rights & (Rights::SEND | Rights::RECEIVE)) == 0) {
        return fail(IpcError::PermissionDenied,
                    "the capability gives neither SEND nor RECEIVE of what was asked");
    }
    // (1) a fresh socket pair; (2) its far end to the server over the capability socket;
    // (3) the usual Hello/Welcome over our end.
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        return fail(IpcError::OutOfMemory, "socketpair(): %s", strerror(errno));
    }
    Fd mine(pair[0]);
    Fd theirs(pair[1]);
    VIPC_TRY(send_cap_request(capability.fd(), CapOp::Connect, through.rights, theirs.get()));
    theirs.reset();
    auto impl = std::make_shared<Impl>();
    if (auto r = impl->connect("capability", through, &mine, capability.fd()); !r) {
        // A server that dropped our request (revoked meanwhile) or is gone hangs up on us.
        if (r.error() == IpcError::EndpointNotFound || r.error() == IpcError::Timeout) {
            return capability_gone(capability.fd());
        }
        return r.error();
    }
    impl->monitor_id.store(
        ClientMonitor::instance().add(impl->socket.get(), impl->server_pidfd.get(), impl));
    return Connection(static_cast<std::shared_ptr<Impl>&&>(impl));
}

Result<Connection> Connection::connect(std::string_view name, const ConnectOptions& options) {
    clear_error_detail();
    auto impl = std::make_shared<Impl>();
    VIPC_TRY(impl->connect(name, options));
    impl->monitor_id.store(
        ClientMonitor::instance().add(impl->socket.get(), impl->server_pidfd.get(), impl));
    return Connection(static_cast<std::shared_ptr<Impl>&&>(impl));
}

// ---- the monitor ----------------------------------------------------------------------------

u64 ClientMonitor::add(int sock, int pidfd, std::weak_ptr<Connection::Impl> conn) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_) {
        epfd_ = epoll_create1(EPOLL_CLOEXEC);
        if (epfd_ < 0) return 0;
        std::thread([this] { run(); }).detach();
        started_ = true;
    }
    const u64 id = next_id_++;
    epoll_event ev{};
    ev.events = EPOLLRDHUP;  // hang-ups only: region records arrive as data
    ev.data.u64 = id;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, sock, &ev) != 0) return 0;
    // The server process itself: readable once it exited, whoever still holds its sockets
    // (a child it forked keeps the socket from hanging up, not the process from dying).
    epoll_event pev{};
    pev.events = EPOLLIN;
    pev.data.u64 = id;
    if (pidfd >= 0 && epoll_ctl(epfd_, EPOLL_CTL_ADD, pidfd, &pev) != 0) {
        epoll_ctl(epfd_, EPOLL_CTL_DEL, sock, nullptr);
        return 0;
    }
    conns_.emplace(id, static_cast<std::weak_ptr<Connection::Impl>&&>(conn));
    return id;
}

void ClientMonitor::remove(u64 id, int sock, int pidfd) {
    std::lock_guard<std::mutex> lock(mu_);
    if (conns_.erase(id) != 0) {
        epoll_ctl(epfd_, EPOLL_CTL_DEL, sock, nullptr);
        if (pidfd >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, pidfd, nullptr);
    }
}

void ClientMonitor::run() {
    for (;;) {
        epoll_event events[16];
        const int n = epoll_wait(epfd_, events, 16, -1);
        for (int i = 0; i < n; ++i) {
            std::shared_ptr<Connection::Impl> conn;
            {
                std::lock_guard<std::mutex> lock(mu_);
                auto it = conns_.find(events[i].data.u64);
                if (it == conns_.end()) continue;  // removed meanwhile
                conn = it->second.lock();
                conns_.erase(it);
                // Stop watching (the event would stay pending, level-triggered). A connection
                // being destroyed (conn is null) removes itself; its id is gone already.
                if (conn) {
                    epoll_ctl(epfd_, EPOLL_CTL_DEL, conn->socket.get(), nullptr);
                    if (conn->server_pidfd.valid()) {
                        epoll_ctl(epfd_, EPOLL_CTL_DEL, conn->server_pidfd.get(), nullptr);
                    }
                    conn->monitor_id.store(0);
                }
            }
            if (conn) conn->server_gone();
            // Dropping `conn` may destroy the connection here, if its owner let go meanwhile:
            // its destructor finds monitor_id 0 and does not call back into the monitor.
        }
    }
}

// ---- send --------------------------------------------------------------------------------------

void Connection::Impl::notify_server() {
    // Paired with the server's receive steps (4)/(5): our tail store (seq_cst, in the ring),
    // then the server's flag (seq_cst): either we see it set, or the server sees our tail.
    // The server sleeps on every client's own tail word (so that it can tell who woke it:
    // see Server::Impl::receive), and on the shared doorbell only when it says so.
    if (state->waiting.load(std::memory_order_seq_cst) != 0) {
        futex_wake_all(&c2s_data.as<const RingDataHeader>()->tail);
        if (state->wake_doorbell.load(std::memory_order_seq_cst) != 0) {
            doorbell->ring.fetch_add(1, std::memory_order_seq_cst);
            futex_wake_all(&doorbell->ring);
        }
    }
    // Steps (b), (c) of pollable.hpp: the server polls.
    if (state->poll_armed.load(std::memory_order_seq_cst) != 0) notify_peer(notify_fd.get());
}

Result<void> Connection::Impl::send(const Message& msg, TransactionId txid, Deadline deadline,
                                    bool blocking, const OutgoingRegion* region) {
    if ((rights & Rights::SEND) == 0) {
        VIPC_TRY(quick_check());
        return fail(IpcError::PermissionDenied,
                    "this connection to '%s' has no SEND right (no descriptor for that ring)",
                    name.c_str());
    }
    if (region == nullptr || region->is_capability()) VIPC_TRY(check_sendable(msg));
    // Another sending thread holds the producer side (and is blocked only on a full ring).
    if (!lock_counting_parked(send_mu, blocking, deadline, waiting_senders)) {
        return blocking ? IpcError::Timeout : IpcError::ChannelFull;
    }
    DeadlineLock guard(send_mu, std::adopt_lock);
    if (rate_limited) VIPC_TRY(admit(msg, deadline, blocking));
    for (;;) {
        VIPC_TRY(quick_check());
        auto r = region == nullptr ? c2s.try_push(msg, txid)
                                   : push_with_region(msg, txid, *region, deadline);
        if (r) {
            if (rate_limited) charge(msg);
            bump(sent_count);
            notify_server();
            return ok();
        }
        if (r.error() == IpcError::InvalidMessage) {
            broken.store(true);
            return quick_check();
        }
        if (r.error() != IpcError::ChannelFull) return r.error();
        if (!blocking) return IpcError::ChannelFull;
        ParkedScope parked(waiting_senders);
        auto w = wait_for_space(c2s, send_spin, deadline, &state->cpu, *this);
        if (!w) {
            if (w.error() == IpcError::InvalidMessage && !closed.load() && !dead.load()) {
                broken.store(true);
            }
            return w.error();
        }
    }
}

Result<void> Connection::Impl::admit(const Message& msg, Deadline deadline, bool blocking) {
    const u64 bytes = charged_bytes(msg);
    for (;;) {
        const u64 now = now_ns();
        u64 wait = 0;
        for (int i = 0; i < LIMIT_BUCKETS; ++i) {
            if (!limits[i].enabled()) continue;
            const u64 w = limits[i].wait_ns(i % 2 == 0 ? 1 : bytes, now);
            wait = w > wait ? w : wait;
        }
        if (wait == 0) break;
        if (!blocking) {
            return fail(IpcError::RateLimitExceeded,
                        "the rate limit of the connection to '%s' is reached; retry in %llu us",
                        name.c_str(), static_cast<unsigned long long>(wait / 1000));
        }
        if (!deadline.is_never() && now + wait > deadline.ns()) {
            // The limit will not let it through in time: wait out the deadline, as any
            // blocking send does, then say so.
            if (deadline.ns() > now)
                std::this_thread::sleep_for(std::chrono::nanoseconds(deadline.ns() - now));
            return IpcError::Timeout;
        }
        // Sleep in slices so that a close or the server's death is noticed meanwhile.
        const u64 slice = u64{PEER_CHECK_INTERVAL_MS} * 1'000'000u;
        std::this_thread::sleep_for(std::chrono::nanoseconds(wait < slice ? wait : slice));
        VIPC_TRY(quick_check());
    }
    return ok();
}

void Connection::Impl::charge(const Message& msg) {
    const u64 bytes = charged_bytes(msg);
    for (int i = 0; i < LIMIT_BUCKETS; ++i) {
        if (limits[i].enabled()) limits[i].take(i % 2 == 0 ? 1 : bytes);
    }
}

Result<void> Connection::Impl::push_with_region(const Message& msg, TransactionId txid,
                                                const OutgoingRegion& region, Deadline deadline) {
    // The sending steps of region_wire.hpp: (1) a free slot, (2) the record, (3) the slot.
    if (VIPC_TRY(c2s.free_slots()) == 0) return IpcError::ChannelFull;
    const u64 sequence = regions_out.next_sequence;
    // A non-blocking send may still wait briefly for room in the socket (it holds one small
    // record per slot in flight, so it is full only when the peer stopped reading it).
    VIPC_TRY(send_record(socket.get(), sequence, region,
                         deadline.expired(now_ns()) ? after_ms(100) : deadline));
    ++regions_out.next_sequence;
    Message out = msg;
    region.stamp(out, sequence);
    return c2s.try_push(out, txid);  // (3) cannot be full: we are the only producer
}

Result<void> Connection::Impl::send_region(const Message& msg, Region& region, Transfer transfer,
                                           TransactionId txid, Deadline deadline, bool blocking) {
    if ((rights & Rights::SEND) == 0) return send(msg, txid, deadline, blocking);  // its error
    if (state->max_region_bytes != 0 && region.size() > state->max_region_bytes &&
        transfer != Transfer::Copy) {
        return fail(IpcError::MessageTooLarge,
                    "a %llu-byte region is over the %llu bytes the server of '%s' accepts "
                    "(ServerOptions::max_region_bytes); send less, or ask for a bigger cap",
                    static_cast<unsigned long long>(region.size()),
                    static_cast<unsigned long long>(state->max_region_bytes), name.c_str());
    }
    Message out = VIPC_TRY(prepare_region_message(msg, region, transfer));
    if (transfer == Transfer::Copy) return send(out, txid, deadline, blocking);
    if (transfer == Transfer::Move) VIPC_TRY(Region::Access::seal_for_move(region));
    const OutgoingRegion outgoing = OutgoingAttachment::region(
        VIPC_TRY(Region::Access::descriptor_for(region, transfer)), transfer);
    VIPC_TRY(send(out, txid, deadline, blocking, &outgoing));
    if (transfer == Transfer::Move) region.reset();  // the sender loses access
    return ok();
}

Result<void> Connection::Impl::fast_send(const SmallMessage& msg) {
    // Straight line: a few cheap checks, one slot write, one release store. Anything unusual
    // (no right, closed, gone, full, corrupt) leaves for send(), which handles everything.
    if (VIPC_UNLIKELY((rights & Rights::SEND) == 0 || rate_limited ||
                      closed.load(std::memory_order_relaxed) ||
                      dead.load(std::memory_order_relaxed) ||
                      broken.load(std::memory_order_relaxed) ||
                      state->closed.load(std::memory_order_relaxed) != 0)) {
        return send(Message(msg), 0, Deadline::past(), false);
    }
    if (VIPC_LIKELY(send_mu.lock_for(false, Deadline::past()))) {
        DeadlineLock guard(send_mu, std::adopt_lock);
        if (VIPC_LIKELY(c2s.try_push_small(msg, 0).has_value())) {
            bump(sent_count);
            notify_server();
            return ok();
        }
    }
    return send(Message(msg), 0, Deadline::past(), false);
}

// ---- receive and call --------------------------------------------------------------------------

Result<Message> Connection::Impl::read_one(Deadline deadline, ReadMode mode) {
    if (mode == ReadMode::Wait) {
        VIPC_TRY(wait_for_data(s2c, receive_spin, deadline, &state->cpu, *this));
    } else if (mode == ReadMode::Look) {
        VIPC_TRY(quick_check());
    }
    auto r = s2c.try_pop();
    if (!r) {
        if (r.error() == IpcError::InvalidMessage) broken.store(true);
        return r.error();
    }
    notify_producer(s2c);
    if ((r->is_large() && r->large_message().region.size != 0) ||
        (r->flags() & MessageFlags::HAS_CAPABILITY) != 0) {
        if (auto g = receive_attachments(socket.get(), regions_in, *r); !g) {
            broken.store(true);
            return g.error();
        }
    }
    r->set_sender(server_pid);
    return r;
}

void Connection::Impl::dispatch(const Message& m, TransactionId own_txid, bool takes_inbox) {
    if ((m.flags() & MessageFlags::IS_REPLY) != 0 && m.transaction_id() != 0) {
        PendingCall* p = find_pending(m.transaction_id());
        if (p != nullptr && !p->reply.has_value()) {
            p->reply = m;
            if (m.transaction_id() != own_txid) signal_poll();
        } else {
            ++stale_replies;  // its caller gave up (timed out), or a duplicate: drop it
        }
        return;
    }
    inbox.push_back(m);
    if (!takes_inbox) signal_poll();
}

Result<Message> Connection::Impl::wait_message(TransactionId txid, Deadline deadline) {
    std::unique_lock<std::mutex> lock(mu);
    auto finish = [&](Result<Message> r) -> Result<Message> {
        if (txid != 0) erase_pending(txid);  // (4) end the wait
        if (r) bump(received_count);
        return r;
    };
    std::atomic<u32>& parked = txid != 0 ? waiting_callers : waiting_receivers;
    for (;;) {
        // (2) delivered?
        if (txid != 0) {
            PendingCall* p = find_pending(txid);
            if (p != nullptr && p->reply.has_value()) {
                Message m = *p->reply;
                return finish(m);  // (4A)
            }
        } else if (!inbox.empty()) {
            Message m = inbox.front();
            inbox.pop_front();
            return finish(m);
        }
        // (3) the other ways out
        if (auto c = quick_check(); !c) {
            // (3A) the server is gone: what it wrote before stays readable; take it one
            // message at a time as the reader, and end once the ring is empty.
            if (!may_drain(c.error())) return finish(c.error());  // (4C)
            if (reader_active) {
                cv.wait_until(lock, to_steady(after_ns(u64{PEER_CHECK_INTERVAL_MS} * 1'000'000u)));
                continue;
            }
            if (inbox.size() >= geometry.depth) return finish(c.error());  // nothing for us
            reader_active = true;
            lock.unlock();
            auto r = read_one(Deadline::past(), ReadMode::Drain);
            lock.lock();
            reader_active = false;
            cv.notify_all();
            if (!r) return finish(c.error());  // (4C) drained
            dispatch(*r, txid, txid == 0);
            continue;
        }
        if (deadline_passed(deadline)) return finish(IpcError::Timeout);  // (4B)
        // Become the reader unless someone is; do not read while the inbox is full (the
        // server is then held back by its full ring: backpressure, not unbounded memory).
        if (!reader_active && inbox.size() < geometry.depth) {
            reader_active = true;
            lock.unlock();
            Result<Message> r = IpcError::Timeout;
            {
                ParkedScope scope(parked);
                r = read_one(deadline, ReadMode::Wait);
            }
            lock.lock();
            reader_active = false;
            if (r) dispatch(*r, txid, txid == 0);
            cv.notify_all();
            if (!r && r.error() != IpcError::Timeout) return finish(r.error());  // (4C)
            continue;
        }
        const Deadline slice = after_ns(u64{PEER_CHECK_INTERVAL_MS} * 1'000'000u);
        ParkedScope scope(parked);
        cv.wait_until(lock, to_steady(earlier(deadline, slice)));
    }
}

// ---- close -------------------------------------------------------------------------------------

void Connection::Impl::close() {
    if (closed.exchange(true, std::memory_order_seq_cst)) return;
    wake_local();  // our own threads blocked in a ring wait
    // (1) say so in the pages we write, (2) wake the server's threads blocked on us and our
    // own blocked threads, (3) hang up the socket (the server's monitor sees it at once).
    if (c2s.valid()) {
        c2s_data.as<RingDataHeader>()->closed.store(1, std::memory_order_release);
        futex_wake_all(&c2s_ctl.as<const RingCtl>()->head);
    }
    if (s2c.valid()) {
        s2c_ctl.as<RingCtl>()->closed.store(1, std::memory_order_release);
        futex_wake_all(&s2c_ctl.as<RingCtl>()->head);
        futex_wake_all(&s2c_data.as<const RingDataHeader>()->tail);
    }
    {
        std::lock_guard<std::mutex> lock(mu);
        cv.notify_all();
    }
    signal_poll();
    if (socket.valid()) shutdown(socket.get(), SHUT_RDWR);
}

// ---- the public class --------------------------------------------------------------------------

Connection::Connection(std::shared_ptr<Impl> impl)
    : impl_(static_cast<std::shared_ptr<Impl>&&>(impl)) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&& o) noexcept {
    if (this != &o) {
        if (impl_) impl_->close();
        impl_ = static_cast<std::shared_ptr<Impl>&&>(o.impl_);
    }
    return *this;
}
Connection::~Connection() {
    if (impl_) impl_->close();
}

namespace {
const std::string& no_name() {
    static const std::string empty;
    return empty;
}
IpcError moved_from() {
    return fail(IpcError::InvalidCapability, "the Connection object was moved from");
}
}  // namespace

const std::string& Connection::name() const {
    return impl_ ? impl_->name : no_name();
}
u16 Connection::rights() const {
    return impl_ ? impl_->rights : 0;
}
ProcessId Connection::server_pid() const {
    return impl_ ? impl_->server_pid : ProcessId{};
}
ConnectionId Connection::id() const {
    return impl_ ? impl_->id : 0;
}
u32 Connection::capacity() const {
    return impl_ ? impl_->geometry.depth : 0;
}

Result<void> Connection::send_sync(const Message& msg, Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->send(msg, 0, deadline, true);
}

Result<void> Connection::send_async(const Message& msg) {
    if (!impl_) return moved_from();
    return impl_->send(msg, 0, Deadline::past(), false);
}

Result<void> Connection::send_sync(const Message& msg, Region& region, Transfer transfer,
                                   Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->send_region(msg, region, transfer, 0, deadline, true);
}

Result<void> Connection::send_async(const Message& msg, Region& region, Transfer transfer) {
    if (!impl_) return moved_from();
    return impl_->send_region(msg, region, transfer, 0, Deadline::past(), false);
}

Result<void> Connection::send_sync(const Message& msg, const EndpointCapability& capability,
                                   Deadline deadline) {
    return send_sync(msg, std::span<const EndpointCapability>(&capability, 1), deadline);
}

Result<void> Connection::send_sync(const Message& msg,
                                   std::span<const EndpointCapability> capabilities,
                                   Deadline deadline) {
    if (!impl_) return moved_from();
    const OutgoingAttachment att = VIPC_TRY(OutgoingAttachment::capabilities(capabilities));
    return impl_->send(msg, 0, deadline, true, &att);
}

Result<void> Connection::fast_send(const SmallMessage& msg) {
    if (!impl_) return moved_from();
    return impl_->fast_send(msg);
}

Result<Message> Connection::receive_sync(Deadline deadline) {
    if (!impl_) return moved_from();
    if ((impl_->rights & Rights::RECEIVE) == 0) {
        VIPC_TRY(impl_->quick_check());
        return fail(IpcError::PermissionDenied,
                    "this connection to '%s' has no RECEIVE right (no descriptor for that ring)",
                    impl_->name.c_str());
    }
    return impl_->wait_message(0, deadline);
}

Result<Message> Connection::try_receive() {
    if (!impl_) return moved_from();
    Impl& c = *impl_;
    if ((c.rights & Rights::RECEIVE) == 0) {
        VIPC_TRY(c.quick_check());
        return fail(IpcError::PermissionDenied,
                    "this connection to '%s' has no RECEIVE right (no descriptor for that ring)",
                    c.name.c_str());
    }
    std::lock_guard<std::mutex> lock(c.mu);
    for (;;) {
        if (!c.inbox.empty()) {
            Message m = c.inbox.front();
            c.inbox.pop_front();
            bump(c.received_count);
            return m;
        }
        Impl::ReadMode mode = Impl::ReadMode::Look;
        if (auto check = c.quick_check(); !check) {
            // The server is gone: what it wrote before stays readable (docs/CONTRACT.md).
            if (!c.may_drain(check.error()) || c.reader_active) return check.error();
            if (c.inbox.size() >= c.geometry.depth) return check.error();
            mode = Impl::ReadMode::Drain;
        }
        // Another thread is the reader: whatever arrives is its to take and dispatch.
        if (c.reader_active || c.inbox.size() >= c.geometry.depth) return IpcError::ChannelEmpty;
        auto r = c.read_one(Deadline::past(), mode);
        if (!r && r.error() == IpcError::ChannelEmpty && mode == Impl::ReadMode::Look &&
            c.poll_armed.load()) {
            // Steps (3), (4) of pollable.hpp: re-arm, then look once more.
            c.rearm_poll();
            r = c.read_one(Deadline::past(), mode);
        }
        if (!r) {
            if (mode == Impl::ReadMode::Drain && r.error() == IpcError::ChannelEmpty) {
                return c.quick_check().error();  // drained (the check fails for good once gone)
            }
            return r.error();
        }
        c.dispatch(*r, 0, true);
        c.cv.notify_all();
    }
}

Result<Message> Connection::call(const Message& request, Deadline deadline) {
    return call_with(request, nullptr, Transfer::Copy, deadline);
}

Result<Message> Connection::call(const Message& request, Region& region, Transfer transfer,
                                 Deadline deadline) {
    return call_with(request, &region, transfer, deadline);
}

Result<Message> Connection::call_with(const Message& request, Region* region, Transfer transfer,
                                      Deadline deadline) {
    if (!impl_) return moved_from();
    Impl& c = *impl_;
    if ((c.rights & (Rights::SEND | Rights::RECEIVE)) != (Rights::SEND | Rights::RECEIVE)) {
        VIPC_TRY(c.quick_check());
        return fail(IpcError::PermissionDenied, "call on '%s' needs both SEND and RECEIVE rights",
                    c.name.c_str());
    }
    // (0) register
    const TransactionId txid = c.next_txid.fetch_add(1, std::memory_order_relaxed);
    {
        std::lock_guard<std::mutex> lock(c.mu);
        c.pending.push_back(Impl::PendingCall{txid, std::nullopt});
    }
    // (1) send
    if (auto s = region == nullptr
                     ? c.send(request, txid, deadline, true)
                     : c.send_region(request, *region, transfer, txid, deadline, true);
        !s) {
        std::lock_guard<std::mutex> lock(c.mu);
        c.erase_pending(txid);
        return s.error();
    }
    // (2)-(4)
    Result<Message> reply = c.wait_message(txid, deadline);
    if (reply) VIPC_TRY(c.check_error_reply(*reply));
    return reply;
}

Result<TransactionId> Connection::begin_call(const Message& request, Deadline deadline) {
    if (!impl_) return moved_from();
    Impl& c = *impl_;
    if ((c.rights & (Rights::SEND | Rights::RECEIVE)) != (Rights::SEND | Rights::RECEIVE)) {
        VIPC_TRY(c.quick_check());
        return fail(IpcError::PermissionDenied, "call on '%s' needs both SEND and RECEIVE rights",
                    c.name.c_str());
    }
    // (0) register, (1) send, as call(); take_reply() does (2)-(4) without waiting.
    const TransactionId txid = c.next_txid.fetch_add(1, std::memory_order_relaxed);
    {
        std::lock_guard<std::mutex> lock(c.mu);
        c.pending.push_back(Impl::PendingCall{txid, std::nullopt});
    }
    if (auto s = c.send(request, txid, deadline, true); !s) {
        std::lock_guard<std::mutex> lock(c.mu);
        c.erase_pending(txid);
        return s.error();
    }
    return txid;
}

Result<Message> Connection::take_reply(TransactionId txid) {
    if (!impl_) return moved_from();
    Impl& c = *impl_;
    std::lock_guard<std::mutex> lock(c.mu);
    for (bool drained = false;;) {
        Impl::PendingCall* p = c.find_pending(txid);
        if (p == nullptr) {
            return fail(IpcError::InvalidMessage,
                        "no call %llu is outstanding on '%s' (finished or never begun)",
                        static_cast<unsigned long long>(txid), c.name.c_str());
        }
        if (p->reply.has_value()) {
            const Message m = *p->reply;
            c.erase_pending(txid);
            bump(c.received_count);
            VIPC_TRY(c.check_error_reply(m));
            return m;
        }
        // Another thread is the reader (it dispatches our reply and signals the descriptor),
        // or the inbox is full (the application must take its messages first).
        const bool cannot_read = c.reader_active || c.inbox.size() >= c.geometry.depth;
        Impl::ReadMode mode = Impl::ReadMode::Look;
        if (auto q = c.quick_check(); !q) {
            // The server is gone: a reply it wrote before stays readable (as for call()).
            if (!c.may_drain(q.error()) || (!c.reader_active && cannot_read)) {
                c.erase_pending(txid);
                return q.error();
            }
            mode = Impl::ReadMode::Drain;
        }
        if (cannot_read) return IpcError::ChannelEmpty;
        auto r = c.read_one(Deadline::past(), mode);
        if (!r && r.error() == IpcError::ChannelEmpty && mode == Impl::ReadMode::Look && !drained &&
            c.poll_armed.load()) {
            c.rearm_poll();  // (3), (4) of pollable.hpp
            drained = true;
            continue;
        }
        if (!r) {
            if (mode == Impl::ReadMode::Drain) {
                c.erase_pending(txid);
                return c.quick_check().error();  // drained, and still no reply
            }
            return r.error();
        }
        c.dispatch(*r, txid, false);
        c.cv.notify_all();
    }
}

void Connection::cancel_call(TransactionId txid) {
    if (!impl_) return;
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->erase_pending(txid);
}

int Connection::Impl::arm_poll() {
    std::lock_guard<std::mutex> lock(poll_mu);
    if (poll_armed.load(std::memory_order_relaxed)) return poll.fd();
    if (!poll.open()) return -1;
    poll.add(notify_fd.get());
    // Steps (1), (2) of pollable.hpp: the server signals from now on; the first poll looks.
    if (s2c.valid()) s2c_ctl.as<RingCtl>()->poll_armed.store(1, std::memory_order_seq_cst);
    poll_armed.store(true, std::memory_order_release);
    poll.signal_local();
    return poll.fd();
}

int Connection::pollable_fd() {
    if (!impl_) {
        (void)moved_from();
        return -1;
    }
    return impl_->arm_poll();
}

Result<void> Connection::close() {
    if (!impl_) return moved_from();
    impl_->close();
    return ok();
}

Result<EndpointStats> Connection::stats() const {
    if (!impl_) return moved_from();
    const Impl& c = *impl_;
    EndpointStats s;
    s.sent = c.sent_count.load(std::memory_order_relaxed);
    s.received = c.received_count.load(std::memory_order_relaxed);
    s.capacity = c.geometry.depth;
    {
        std::lock_guard<std::mutex> lock(impl_->mu);
        s.queued = static_cast<u32>(c.inbox.size());
    }
    if (c.s2c.valid()) {
        // A racy snapshot of the ring's indexes, clamped: statistics only.
        const u32 tail =
            c.s2c_data.as<const RingDataHeader>()->tail.load(std::memory_order_relaxed);
        const u32 head = c.s2c_ctl.as<const RingCtl>()->head.load(std::memory_order_relaxed);
        s.queued += tail - head > c.geometry.depth ? 0 : tail - head;
    }
    s.waiting_senders = c.waiting_senders.load(std::memory_order_seq_cst);
    s.waiting_receivers = c.waiting_receivers.load(std::memory_order_seq_cst);
    s.waiting_callers = c.waiting_callers.load(std::memory_order_seq_cst);
    s.active = !c.closed.load() && !c.dead.load() && !c.broken.load();
    return s;
}

ConnectionDescriptors Connection::descriptors() const {
    ConnectionDescriptors d;
    if (!impl_) return d;
    d.socket = impl_->socket.get();
    d.c2s_data = impl_->c2s_data_fd.get();
    d.c2s_ctl = impl_->c2s_ctl_fd.get();
    d.s2c_data = impl_->s2c_data_fd.get();
    d.s2c_ctl = impl_->s2c_ctl_fd.get();
    d.server_state = impl_->state_fd.get();
    d.server_doorbell = impl_->doorbell_fd.get();
    d.notify = impl_->notify_fd.get();
    return d;
}

}  // namespace veridian::ipc::posix
