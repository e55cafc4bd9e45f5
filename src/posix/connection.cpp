// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: the client side of a connection.
//
// Threads sharing one Connection:
//   - senders (send_sync, send_async, fast_send, and call's request) go through the
//     client→server ring's Outbox (outbox.hpp), which serializes them: the ring has one
//     producer, and the hot path needs no atomic read-modify-write in shared memory;
//   - readers (receive_sync, try_receive, and call waiting for its reply) share the
//     server→client ring through a process-local demultiplexer: one thread at a time is "the
//     reader" and takes messages from the ring; a reply (IS_REPLY with a txid) goes to the
//     caller registered for that txid, anything else to the inbox of receive_sync/try_receive.
//
// The call protocol (several threads may call at once):
//   (0) register a waiter for a fresh txid (under mu_)
//   (1) send the request tagged with it (as send_sync: may block for space)
//   (2) wait: if our reply was delivered → (4A). If nobody is the reader, become it: wait on
//       the ring (Inbox::next, which parks as parking.hpp numbers it), take one record,
//       dispatch it (a reply's payload is copied straight into its caller's buffer), wake
//       the other waiters, go back to (2). Otherwise sleep on the condition variable until a
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
#include "posix/inbox.hpp"
#include "posix/outbox.hpp"
#include "posix/parked_count.hpp"
#include "posix/pollable.hpp"
#include "posix/ready_set.hpp"
#include "posix/region_wire.hpp"
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

struct Connection::Impl final : OutboxOwner, InboxOwner {
    std::string name;
    u16 rights = 0;
    RingGeometry geometry;
    ProcessId server_pid{};
    ConnectionId id = 0;
    pid_t pid = getpid();
    SharedWords& words = platform::ProcessSharedWords::instance();

    Fd socket;
    Fd server_pidfd;  // the server process (see connect): its exit is the server's death
    Fd c2s_data_fd, c2s_ctl_fd, s2c_data_fd, s2c_ctl_fd, state_fd, doorbell_fd;
    Fd c2s_pool_fd, s2c_pool_fd;  // the loan pools (ours read-write, the server's read-only)
    Mapping c2s_data, c2s_ctl, s2c_data, s2c_ctl, state_map, doorbell_map, c2s_pool, s2c_pool;
    const ServerState* state = nullptr;
    ServerDoorbell* doorbell = nullptr;
    // The server's ready map (in the doorbell memfd) and our slot in it (ready_set.hpp).
    ReadyMap ready_map;
    u32 ready_slot = ~u32{0};

    Outbox outbox;  // the client→server ring (with SEND)

    // The demultiplexer of the server→client ring (with RECEIVE).
    std::mutex mu;
    std::condition_variable cv;
    bool reader_active VIPC_GUARDED_BY(mu) = false;
    // Messages that are not replies, waiting for receive_*: copied out of the ring.
    struct Queued {
        Incoming::Kind kind = Incoming::Kind::Small;
        Message message;
        PayloadInfo info;
        std::vector<std::byte> payload;
        std::span<const std::byte> loan_view;  // kind Loan: the chunk, in the server's pool
        LoanId loan = 0;
    };
    std::deque<Queued> queue VIPC_GUARDED_BY(mu);
    Queued viewed VIPC_GUARDED_BY(mu);  // what the last receive_view handed out
    // The callers waiting for a reply: one entry per outstanding call, searched linearly (a
    // handful at most in practice); the vector keeps its capacity, so a call allocates nothing.
    struct PendingCall {
        TransactionId txid = 0;
        bool delivered = false;
        IpcError error = IpcError::NotInitialized;  // set when the reply cannot be delivered
        Message reply;                              // a Message caller's reply
        std::vector<std::byte>* payload = nullptr;  // a payload caller's buffer
        PayloadInfo info;
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
    Inbox inbox;

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
    // Records taken while armed since the socket was last drained (read_one()).
    u32 takes_since_drain VIPC_GUARDED_BY(mu) = 0;
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
    // After quick_check() failed with `e`: true when what the server wrote before it went
    // away may still be read (it closed or died; we did not close, it broke nothing, and our
    // capability was not revoked).
    bool may_drain(IpcError e) const {
        return e == IpcError::EndpointNotFound && !closed.load(std::memory_order_acquire) &&
               inbox.valid();
    }
    // Step (3) of pollable.hpp on this side. The set also holds the local signals that stand
    // for what was already moved out of the ring (a reply waiting in the call table, a
    // message in the queue): draining them with the rest would lose them, so they are raised
    // again at once. Under mu, which every move into the call table or the queue holds.
    void rearm_poll() VIPC_REQUIRES(mu) {
        takes_since_drain = 0;
        poll.drain(OnPeerHangup::KeepReadable);
        bool held = !queue.empty();
        for (const PendingCall& p : pending)
            held = held || p.delivered;
        if (held) poll.signal_local();
    }
    // Statistics (Connection::stats()): the parked counts (see parked_count.hpp) and the
    // messages this side sent (written under outbox.mu) and received (written under mu).
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
        if (inbox.unclaimed_owner() != 0) release_unclaimed(inbox.unclaimed_owner());
        const u64 registration = monitor_id.load();
        if (registration != 0) {
            ClientMonitor::instance().remove(registration, socket.get(), server_pidfd.get());
        }
    }

    // OutboxOwner / InboxOwner: between waits, and after each record.
    Result<void> check(bool slice_ended) override;
    void published() override;
    int attachment_socket() override { return socket.get(); }
    u32 peer_cpu() override { return state->cpu.load(std::memory_order_relaxed); }
    std::atomic<u32>& parked_senders() override { return waiting_senders; }
    // Bumped and woken by close() and server_gone() after they set closed/dead: a parked
    // wait sleeps on it too (the Parking's local word, parking.hpp), so their wake is never
    // lost, although the ring words it sleeps on are in pages the server writes.
    std::atomic<u32> wake_epoch{0};
    const std::atomic<u32>* local_wake() override { return &wake_epoch; }
    void wake_local() { bump_local_word(wake_epoch); }
    Result<void> quick_check();
    // The server hung up: mark it, wake every local thread blocked on this connection.
    void server_gone() {
        dead.store(true, std::memory_order_seq_cst);
        wake_local();
        signal_poll();  // a poller looks and gets EndpointNotFound
        if (outbox.valid()) words.wake_all(&c2s_ctl.as<const RingCtl>()->space_wake);
        if (inbox.valid()) words.wake_all(&s2c_data.as<const RingDataHeader>()->tail);
        std::lock_guard<std::mutex> lock(mu);
        cv.notify_all();
    }

    // Through a capability, `presocket` is the connection socket already handed to the server.
    Result<void> connect(std::string_view name_, const ConnectOptions& options,
                         Fd* presocket = nullptr, int capability_fd = -1);
    void explain_refusal(const Welcome& w, IpcError e, const ucred& server);
    bool revoked() const {
        return (outbox.valid() && c2s_ctl.as<const RingCtl>()->closed.load(
                                      std::memory_order_acquire) == CLOSED_REVOKED) ||
               (inbox.valid() && s2c_data.as<const RingDataHeader>()->closed.load(
                                     std::memory_order_acquire) == CLOSED_REVOKED);
    }
    Result<void> send(const OutgoingRecord& record, Blocking blocking, Deadline deadline);
    Result<void> send_message(const Message& msg, TransactionId txid, Blocking blocking,
                              Deadline deadline, const OutgoingAttachment* attachment = nullptr);
    Result<void> send_region(const Message& msg, Region& region, Transfer transfer,
                             TransactionId txid, Deadline deadline, Blocking blocking);
    Result<void> send_payload(u32 opcode, u32 flags, std::span<const std::byte> payload,
                              TransactionId txid, Blocking blocking, Deadline deadline);
    Result<void> fast_send(const SmallMessage& msg);
    // The reader: waits for one record, dispatches it. Called without mu (reader_active).
    Result<void> read_one(Blocking blocking, Deadline deadline, TransactionId own_txid = 0,
                          bool takes_queue = false);
    // Delivers a record to its call or the queue. The caller takes itself the reply to
    // `own_txid` (when != 0) or, with `takes_queue`, the queued message: anything else is
    // for another thread or the event loop, so the pollable descriptor is signalled.
    void dispatch(const RecordView& record, TransactionId own_txid = 0, bool takes_queue = false)
        VIPC_REQUIRES(mu);
    // Waits for the reply to `txid` (txid != 0) or for a queued message (txid == 0).
    Result<void> wait_message(std::unique_lock<std::mutex>& lock, TransactionId txid,
                              Deadline deadline) VIPC_REQUIRES(mu);
    Result<void> need_receive_right();
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
    if (!gone && inbox.valid()) gone = s2c_data.as<const RingDataHeader>()->closed.load() != 0;
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
    if (outbox.valid() && c2s_ctl.as<const RingCtl>()->closed.load() != 0) {
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

namespace {
// A loan pool from the server: like any segment (size, seals), but refused as a memory
// region when it is not sealed against resizing.
Result<Mapping> map_pool(int fd, u64 bytes, bool writable) {
    auto m = map_peer_memfd(fd, bytes, writable);
    if (!m && m.error() == IpcError::InvalidMessage) {
        return fail(IpcError::InvalidMemoryRegion,
                    "the server's loan pool is not a sealed memfd of %llu bytes",
                    static_cast<unsigned long long>(bytes));
    }
    return m;
}
}  // namespace

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

    const u64 pool_kib = (options.pool_bytes + 1023) / 1024;
    const Hello hello{HELLO_MAGIC,
                      WIRE_VERSION,
                      static_cast<u16>(HelloOp::Connect),
                      rights,
                      0,
                      static_cast<u32>(pool_kib > 0xFFFFFFFFu ? 0xFFFFFFFFu : pool_kib)};
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
    geometry = *RingGeometry::make(w.depth, w.max_inline_payload, LOAN_SLOTS);
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
    c2s_pool_fd = take(FdBits::C2S_POOL);
    s2c_pool_fd = take(FdBits::S2C_POOL);

    // Map what our rights give: the pages we write read-write, the server's read-only.
    state_map = VIPC_TRY(map_peer_memfd(state_fd.get(), PAGE_BYTES, false));
    state = state_map.as<const ServerState>();
    if (state->magic != STATE_MAGIC || state->version != WIRE_VERSION) {
        return fail(IpcError::InvalidMessage, "endpoint '%s' sent a foreign state segment",
                    name.c_str());
    }
    const u32 slots = state->ready_slots;
    if (slots == 0 || slots > READY_MAX_SLOTS) {
        return fail(IpcError::InvalidMessage, "endpoint '%s' announced %u ready slots (1..%u)",
                    name.c_str(), slots, READY_MAX_SLOTS);
    }
    doorbell_map = VIPC_TRY(map_peer_memfd(doorbell_fd.get(), doorbell_bytes(slots), true));
    doorbell = doorbell_map.as<ServerDoorbell>();
    ready_map = ReadyMap::over(doorbell_map.get(), slots);
    if ((rights & Rights::SEND) != 0) {
        c2s_data = VIPC_TRY(map_peer_memfd(c2s_data_fd.get(), geometry.data_bytes, true));
        c2s_ctl = VIPC_TRY(map_peer_memfd(c2s_ctl_fd.get(), geometry.ctl_bytes, false));
        // A slot beyond the map (a server that lies) only means no marks: the bell still rings.
        ready_slot = c2s_ctl.as<const RingCtl>()->ready_slot;
        DeadlineLock lock(outbox.mu);
        outbox.attach(words, geometry, c2s_data.as<RingDataHeader>(), c2s_ctl.as<const RingCtl>(),
                      options.spin_ns);
        const RateLimit server_limit{state->limit_messages_per_second,
                                     state->limit_bytes_per_second, state->limit_burst_messages,
                                     state->limit_burst_bytes};
        outbox.set_limits(server_limit, options.rate_limit, now_ns());
        if (w.c2s_pool_bytes != 0) {
            c2s_pool = VIPC_TRY(map_pool(c2s_pool_fd.get(), w.c2s_pool_bytes, true));
            outbox.attach_pool(c2s_pool.as<u8>(), w.c2s_pool_bytes, LOAN_SLOTS,
                               c2s_ctl.as<const RingCtl>());
        }
    }
    if ((rights & Rights::RECEIVE) != 0) {
        s2c_data = VIPC_TRY(map_peer_memfd(s2c_data_fd.get(), geometry.data_bytes, false));
        s2c_ctl = VIPC_TRY(map_peer_memfd(s2c_ctl_fd.get(), geometry.ctl_bytes, true));
        inbox.attach(words, geometry, s2c_data.as<const RingDataHeader>(), s2c_ctl.as<RingCtl>(),
                     options.spin_ns);
        if (w.s2c_pool_bytes != 0) {
            s2c_pool = VIPC_TRY(map_pool(s2c_pool_fd.get(), w.s2c_pool_bytes, false));
            inbox.attach_pool(s2c_pool.as<const u8>(), w.s2c_pool_bytes, LOAN_SLOTS);
        }
        inbox.set_unclaimed(new_unclaimed_owner(), DEFAULT_MAX_UNCLAIMED_PER_CONNECTION);
    }
    if (options.memfds == MemfdDescriptors::Closed) {
        // Mapped: the mappings keep the memory, nothing maps them again.
        for (Fd* fd : {&c2s_data_fd, &c2s_ctl_fd, &s2c_data_fd, &s2c_ctl_fd, &state_fd,
                       &doorbell_fd, &c2s_pool_fd, &s2c_pool_fd})
            fd->reset();
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

void Connection::Impl::published() {
    bump(sent_count);  // under outbox.mu
    // ready_set.hpp (M1)-(M3), paired with the server's arming and its announce on
    // state.waiting (heavy barrier): armed → mark our slot, and ring the bell if it sleeps;
    // polled → if it sleeps, change our tail word (it waits on it) and wake it.
    if (notice_after_publish(words, c2s_ctl.as<const RingCtl>()->ready_arm, ready_map, ready_slot,
                             state->waiting) == ReadyNotice::OwnWord) {
        outbox.publish_tail();
    }
    // Steps (b), (c) of pollable.hpp: the server polls.
    if (state->poll_armed.load(std::memory_order_seq_cst) != 0) notify_peer(socket.get());
}

Result<void> Connection::Impl::send(const OutgoingRecord& record, Blocking blocking,
                                    Deadline deadline) {
    if ((rights & Rights::SEND) == 0) {
        VIPC_TRY(quick_check());
        return fail(IpcError::PermissionDenied,
                    "this connection to '%s' has no SEND right (no descriptor for that ring)",
                    name.c_str());
    }
    auto r = outbox.send(*this, record, blocking, deadline);
    if (!r && r.error() == IpcError::InvalidMessage && !closed.load() && !dead.load()) {
        broken.store(true);
        return quick_check();
    }
    return r;
}

Result<void> Connection::Impl::send_message(const Message& msg, TransactionId txid,
                                            Blocking blocking, Deadline deadline,
                                            const OutgoingAttachment* attachment) {
    if (attachment == nullptr || attachment->is_capability()) VIPC_TRY(check_sendable(msg));
    OutgoingRecord record;
    record.message = &msg;
    record.txid = txid;
    if (txid != 0) record.call_deadline = deadline;  // a call: the server learns what remains
    record.attachment = attachment;
    return send(record, blocking, deadline);
}

Result<void> Connection::Impl::send_payload(u32 opcode, u32 flags,
                                            std::span<const std::byte> payload, TransactionId txid,
                                            Blocking blocking, Deadline deadline) {
    if (payload.size() > geometry.max_inline_payload) {
        VIPC_TRY(quick_check());
        return fail(IpcError::MessageTooLarge,
                    "a %zu-byte payload is over the %u-byte inline limit of '%s' "
                    "(ServerOptions::max_inline_payload); send a Region for more",
                    payload.size(), geometry.max_inline_payload, name.c_str());
    }
    OutgoingRecord record;
    record.kind = OutgoingRecord::Kind::Payload;
    record.opcode = opcode;
    record.flags = flags & ~(MessageFlags::IS_REPLY | MessageFlags::HAS_CAPABILITY | ERROR_REPLY);
    record.payload = payload;
    record.txid = txid;
    if (txid != 0) record.call_deadline = deadline;
    return send(record, blocking, deadline);
}

Result<void> Connection::Impl::send_region(const Message& msg, Region& region, Transfer transfer,
                                           TransactionId txid, Deadline deadline,
                                           Blocking blocking) {
    if ((rights & Rights::SEND) == 0) return send_message(msg, txid, blocking, deadline);
    if (state->max_region_bytes != 0 && region.size() > state->max_region_bytes &&
        transfer != Transfer::Copy) {
        return fail(IpcError::MessageTooLarge,
                    "a %llu-byte region is over the %llu bytes the server of '%s' accepts "
                    "(ServerOptions::max_region_bytes); send less, or ask for a bigger cap",
                    static_cast<unsigned long long>(region.size()),
                    static_cast<unsigned long long>(state->max_region_bytes), name.c_str());
    }
    Message out = VIPC_TRY(prepare_region_message(msg, region, transfer));
    if (transfer == Transfer::Copy) return send_message(out, txid, blocking, deadline);
    if (transfer == Transfer::Move) VIPC_TRY(Region::Access::seal_for_move(region));
    const OutgoingAttachment outgoing = OutgoingAttachment::region(
        VIPC_TRY(Region::Access::descriptor_for(region, transfer)), transfer);
    VIPC_TRY(send_message(out, txid, blocking, deadline, &outgoing));
    if (transfer == Transfer::Move) region.reset();  // the sender loses access
    return ok();
}

Result<void> Connection::Impl::fast_send(const SmallMessage& msg) {
    // Straight line: a few cheap checks, one record, one store. Anything unusual (no right,
    // closed, gone, full, corrupt) leaves for send_message(), which handles everything.
    if (VIPC_UNLIKELY((rights & Rights::SEND) == 0 || outbox.rate_limited() ||
                      closed.load(std::memory_order_relaxed) ||
                      dead.load(std::memory_order_relaxed) ||
                      broken.load(std::memory_order_relaxed) ||
                      state->closed.load(std::memory_order_relaxed) != 0)) {
        return send_message(Message(msg), 0, Blocking::No, Deadline::past());
    }
    // POINT OF NO RETURN: only the transfer below.
    if (VIPC_LIKELY(outbox.try_send_small(*this, msg))) return ok();
    return send_message(Message(msg), 0, Blocking::No, Deadline::past());
}

// ---- receive and call --------------------------------------------------------------------------

Result<void> Connection::Impl::read_one(Blocking blocking, Deadline deadline,
                                        TransactionId own_txid, bool takes_queue) {
    auto r = inbox.next(*this, blocking, deadline);
    if (!r) {
        if (r.error() == IpcError::InvalidMessage && !closed.load() && !dead.load()) {
            broken.store(true);
        }
        return r.error();
    }
    std::lock_guard<std::mutex> lock(mu);
    dispatch(*r, own_txid, takes_queue);
    if (poll_armed.load(std::memory_order_acquire) && ++takes_since_drain >= DRAIN_EVERY_TAKES) {
        // A client that always finds a message never reaches step (3) of pollable.hpp: drain
        // the socket's frames now and then, so they never pile up in front of the records of
        // attachments (not the local signals: they stand for what is queued).
        takes_since_drain = 0;
        poll.drain(OnPeerHangup::KeepReadable, LocalSignals::Keep);
    }
    cv.notify_all();
    if (broken.load()) return quick_check();
    return ok();
}

void Connection::Impl::dispatch(const RecordView& record, TransactionId own_txid,
                                bool takes_queue) {
    // Whoever is not the caller itself learns of it through the pollable descriptor.
    const bool for_caller =
        (record.txid != 0 && record.txid == own_txid) || (record.txid == 0 && takes_queue);
    if (!for_caller) signal_poll();
    if (record.kind == RecordKind::Loan) {
        LoanDescriptor d;
        auto view = inbox.accept_loan(record, &d);  // finishes the record
        if (!view) {
            broken.store(true);
            return;
        }
        const LoanId loan = loan_id(d.slot, d.generation);
        PayloadInfo info{d.opcode, d.flags, d.length, record.txid, server_pid, id};
        if ((d.flags & MessageFlags::IS_REPLY) != 0 && record.txid != 0) {
            PendingCall* p = find_pending(record.txid);
            if (p == nullptr || p->delivered) {
                ++stale_replies;
            } else if (p->payload != nullptr) {
                p->payload->assign(view->begin(), view->end());  // the caller's buffer
                p->info = info;
                p->delivered = true;
            } else {
                p->error = IpcError::MessageTooLarge;
                p->delivered = true;
            }
            (void)inbox.release(loan);
            return;
        }
        Queued q;
        q.kind = Incoming::Kind::Loan;
        q.info = info;
        q.loan_view = *view;
        q.loan = loan;
        queue.push_back(static_cast<Queued&&>(q));
        return;
    }
    const bool payload = record.kind == RecordKind::Payload;
    const u32 flags = payload ? record.payload_head.flags : 0;
    if (payload) {
        PayloadInfo info{record.payload_head.opcode,
                         flags,
                         record.payload_head.length,
                         record.txid,
                         server_pid,
                         id};
        if ((flags & MessageFlags::IS_REPLY) != 0 && record.txid != 0) {
            PendingCall* p = find_pending(record.txid);
            if (p == nullptr || p->delivered) {
                ++stale_replies;  // its caller gave up (timed out), or a duplicate: drop it
            } else if (p->payload != nullptr) {
                p->payload->assign(record.payload, record.payload + info.length);  // one copy out
                p->info = info;
                p->delivered = true;
            } else {
                // A Message caller: a short payload reads as a LargeMessage.
                auto m = RecordConsumer::to_message(record);
                if (m) {
                    p->reply = *m;
                    p->reply.set_sender(server_pid);
                } else {
                    p->error = m.error();
                }
                p->delivered = true;
            }
            inbox.finish(record);
            return;
        }
        Queued q;
        q.kind = Incoming::Kind::Payload;
        q.info = info;
        q.payload.assign(record.payload, record.payload + info.length);  // one copy out
        inbox.finish(record);
        queue.push_back(static_cast<Queued&&>(q));
        return;
    }
    auto got = inbox.message(*this, record);
    if (!got) {
        broken.store(true);
        return;
    }
    Message m = *got;
    m.set_sender(server_pid);
    if ((m.flags() & MessageFlags::IS_REPLY) != 0 && m.transaction_id() != 0) {
        PendingCall* p = find_pending(m.transaction_id());
        if (p == nullptr || p->delivered) {
            ++stale_replies;
        } else {
            if (p->payload != nullptr) {
                // A payload caller answered with a Message: its inline bytes are the payload.
                p->info = PayloadInfo{m.opcode(), m.flags(), 0, m.transaction_id(), server_pid, id};
                if (m.is_large() && m.large_message().region.size == 0) {
                    const LargeMessage& l = m.large_message();
                    const auto* b = reinterpret_cast<const std::byte*>(l.inline_data);
                    p->payload->assign(b, b + l.header.total_size);
                    p->info.length = l.header.total_size;
                } else {
                    p->payload->clear();
                }
            }
            p->reply = m;
            p->delivered = true;
        }
        return;
    }
    Queued q;
    q.kind = m.is_small() ? Incoming::Kind::Small : Incoming::Kind::Large;
    q.message = m;
    q.info = PayloadInfo{m.opcode(), m.flags(), 0, m.transaction_id(), server_pid, id};
    queue.push_back(static_cast<Queued&&>(q));
}

Result<void> Connection::Impl::wait_message(std::unique_lock<std::mutex>& lock, TransactionId txid,
                                            Deadline deadline) {
    std::atomic<u32>& parked = txid != 0 ? waiting_callers : waiting_receivers;
    for (;;) {
        // (2) delivered?
        if (txid != 0) {
            PendingCall* p = find_pending(txid);
            if (p != nullptr && p->delivered) return ok();  // (4A)
        } else if (!queue.empty()) {
            return ok();
        }
        // (3) the other ways out
        if (auto c = quick_check(); !c) {
            // (3A) the server is gone: what it wrote before stays readable; take it one
            // record at a time as the reader, and end once the ring is empty.
            if (!may_drain(c.error())) return c.error();  // (4C)
            if (reader_active) {
                cv.wait_until(lock, to_steady(after_ns(PARK_SLICE_NS)));
                continue;
            }
            if (queue.size() >= geometry.depth) return c.error();  // nothing for us
            reader_active = true;
            lock.unlock();
            auto r = read_one(Blocking::No, Deadline::past(), txid, txid == 0);
            lock.lock();
            reader_active = false;
            cv.notify_all();
            if (!r) return c.error();  // (4C) drained
            continue;
        }
        if (deadline_passed(deadline)) return IpcError::Timeout;  // (4B)
        // Become the reader unless someone is; do not read while the queue is full (the
        // server is then held back by its full ring: backpressure, not unbounded memory).
        if (!reader_active && queue.size() < geometry.depth) {
            reader_active = true;
            lock.unlock();
            Result<void> r = ok();
            {
                ParkedScope scope(parked);
                r = read_one(Blocking::Yes, deadline, txid, txid == 0);
            }
            lock.lock();
            reader_active = false;
            cv.notify_all();
            if (!r && r.error() != IpcError::Timeout) return r.error();  // (4C)
            continue;
        }
        const Deadline slice = after_ns(PARK_SLICE_NS);
        ParkedScope scope(parked);
        cv.wait_until(lock, to_steady(earlier(deadline, slice)));
    }
}

Result<void> Connection::Impl::need_receive_right() {
    if ((rights & Rights::RECEIVE) == 0) {
        VIPC_TRY(quick_check());
        return fail(IpcError::PermissionDenied,
                    "this connection to '%s' has no RECEIVE right (no descriptor for that ring)",
                    name.c_str());
    }
    return ok();
}

// ---- close -------------------------------------------------------------------------------------

void Connection::Impl::close() {
    if (closed.exchange(true, std::memory_order_seq_cst)) return;
    wake_local();  // our own threads blocked in a ring wait
    // (1) say so in the pages we write, (2) wake the server's threads blocked on us and our
    // own blocked threads, (3) hang up the socket (the server's monitor sees it at once).
    if (outbox.valid()) {
        close_producer_side(words, c2s_data.as<RingDataHeader>(), 1);
        words.wake_all(&c2s_ctl.as<const RingCtl>()->space_wake);  // our own senders
    }
    if (inbox.valid()) {
        close_consumer_side(words, s2c_ctl.as<RingCtl>(), 1);
        words.wake_all(&s2c_data.as<const RingDataHeader>()->tail);  // our own readers
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
    return impl_->send_message(msg, 0, Blocking::Yes, deadline);
}

Result<void> Connection::send_async(const Message& msg) {
    if (!impl_) return moved_from();
    return impl_->send_message(msg, 0, Blocking::No, Deadline::past());
}

Result<void> Connection::send_sync(const Message& msg, Region& region, Transfer transfer,
                                   Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->send_region(msg, region, transfer, 0, deadline, Blocking::Yes);
}

Result<void> Connection::send_async(const Message& msg, Region& region, Transfer transfer) {
    if (!impl_) return moved_from();
    return impl_->send_region(msg, region, transfer, 0, Deadline::past(), Blocking::No);
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
    return impl_->send_message(msg, 0, Blocking::Yes, deadline, &att);
}

Result<void> Connection::fast_send(const SmallMessage& msg) {
    if (!impl_) return moved_from();
    return impl_->fast_send(msg);
}

Result<Loan> Connection::loan(usize size, Deadline deadline) {
    if (!impl_) return moved_from();
    Impl& c = *impl_;
    if ((c.rights & Rights::SEND) == 0) {
        VIPC_TRY(c.quick_check());
        return fail(IpcError::PermissionDenied, "this connection to '%s' has no SEND right",
                    c.name.c_str());
    }
    return c.outbox.loan(c, size, deadline);
}

Result<void> Connection::send_loan(Loan& loan, usize length, u32 opcode, u32 flags,
                                   Deadline deadline) {
    if (!impl_) return moved_from();
    OutgoingRecord record;
    record.kind = OutgoingRecord::Kind::Loan;
    record.loan = loan.id;
    record.loan_length = length;
    record.opcode = opcode;
    record.flags = flags & ~(MessageFlags::IS_REPLY | MessageFlags::HAS_CAPABILITY | ERROR_REPLY);
    VIPC_TRY(impl_->send(record, Blocking::Yes, deadline));
    loan = Loan{};
    return ok();
}

Result<void> Connection::cancel_loan(Loan& loan) {
    if (!impl_) return moved_from();
    VIPC_TRY(impl_->outbox.cancel_loan(loan.id));
    loan = Loan{};
    return ok();
}

Result<void> Connection::release(const Incoming& received) {
    if (!impl_) return moved_from();
    if (received.kind != Incoming::Kind::Loan || received.loan == 0) {
        return fail(IpcError::InvalidCapability, "this message is not a loan");
    }
    return impl_->inbox.release(received.loan);
}

Result<PoolUse> Connection::pool_use() const {
    if (!impl_) return moved_from();
    PoolUse u;
    u.send_pool_bytes = impl_->outbox.pool_bytes();
    u.send_pool_used = impl_->outbox.pool_used();
    u.receive_pool_bytes = impl_->inbox.pool_bytes();
    u.receive_pool_held = impl_->inbox.pool_held();
    return u;
}

u32 Connection::max_inline_payload() const {
    return impl_ ? impl_->geometry.max_inline_payload : 0;
}

Result<void> Connection::send_sync(u32 opcode, u32 flags, std::span<const std::byte> payload,
                                   Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->send_payload(opcode, flags, payload, 0, Blocking::Yes, deadline);
}

Result<void> Connection::send_async(u32 opcode, u32 flags, std::span<const std::byte> payload) {
    if (!impl_) return moved_from();
    return impl_->send_payload(opcode, flags, payload, 0, Blocking::No, Deadline::past());
}

namespace {
// What a receive takes from the queue.
enum class Take : u8 { Message, View, Into };
}  // namespace

// Takes the front of the queue as `how` wants it; under c.mu.
static Result<Incoming> take_front(Connection::Impl& c, Take how, std::span<std::byte> buffer,
                                   usize* needed) VIPC_REQUIRES(c.mu) {
    Connection::Impl::Queued& q = c.queue.front();
    if (q.kind == Incoming::Kind::Loan) {
        if (how == Take::Message) {
            return fail(IpcError::MessageTooLarge,
                        "a loan of %zu bytes is waiting on '%s': take it with receive_view() or "
                        "receive_into()",
                        q.loan_view.size(), c.name.c_str());
        }
        if (how == Take::Into && buffer.size() < q.loan_view.size()) {
            if (needed != nullptr) *needed = q.loan_view.size();
            return fail(IpcError::MessageTooLarge,
                        "the buffer has %zu bytes, the loan %zu; it stays queued", buffer.size(),
                        q.loan_view.size());
        }
        Incoming in;
        in.kind = Incoming::Kind::Loan;
        in.info = q.info;
        in.payload = q.loan_view;
        in.loan = q.loan;
        in.message.set_sender(in.info.sender);
        in.message.set_transaction_id(in.info.transaction_id);
        c.queue.pop_front();
        bump(c.received_count);
        return in;
    }
    if (how == Take::Message && q.kind == Incoming::Kind::Payload &&
        q.payload.size() > LARGE_MESSAGE_INLINE_BYTES) {
        return fail(IpcError::MessageTooLarge,
                    "a %zu-byte payload message is waiting on '%s': take it with receive_view() "
                    "or receive_into()",
                    q.payload.size(), c.name.c_str());
    }
    if (how == Take::Into) {
        const usize length = q.kind == Incoming::Kind::Payload ? q.payload.size()
                             : q.kind == Incoming::Kind::Small ? sizeof(SmallMessage)
                                                               : sizeof(LargeMessage);
        if (buffer.size() < length) {
            if (needed != nullptr) *needed = length;
            return fail(IpcError::MessageTooLarge,
                        "the buffer has %zu bytes, the message %zu; it stays queued", buffer.size(),
                        length);
        }
    }
    c.viewed = static_cast<Connection::Impl::Queued&&>(q);
    c.queue.pop_front();
    bump(c.received_count);
    Incoming in;
    in.kind = c.viewed.kind;
    in.info = c.viewed.info;
    if (in.kind == Incoming::Kind::Payload) {
        in.payload = std::span<const std::byte>(c.viewed.payload.data(), c.viewed.payload.size());
        if (c.viewed.payload.size() <= LARGE_MESSAGE_INLINE_BYTES) {
            LargeMessage m{};
            m.header.opcode = in.info.opcode;
            m.header.flags = in.info.flags;
            m.header.total_size = c.viewed.payload.size();
            if (!c.viewed.payload.empty()) {
                std::memcpy(m.inline_data, c.viewed.payload.data(), c.viewed.payload.size());
            }
            in.message = Message(m);
            in.message.set_sender(in.info.sender);
            in.message.set_transaction_id(in.info.transaction_id);
        }
    } else {
        in.message = c.viewed.message;
    }
    return in;
}

static Result<Incoming> receive_as(Connection::Impl& c, Take how, Blocking blocking,
                                   Deadline deadline, std::span<std::byte> buffer = {},
                                   usize* needed = nullptr) {
    VIPC_TRY(c.need_receive_right());
    std::unique_lock<std::mutex> lock(c.mu);
    if (blocking == Blocking::Yes) {
        VIPC_TRY(c.wait_message(lock, 0, deadline));
        return take_front(c, how, buffer, needed);
    }
    for (bool rearmed = false;;) {
        if (!c.queue.empty()) return take_front(c, how, buffer, needed);
        bool draining = false;
        if (auto check = c.quick_check(); !check) {
            // The server is gone: what it wrote before stays readable (docs/CONTRACT.md).
            if (!c.may_drain(check.error()) || c.reader_active) return check.error();
            if (c.queue.size() >= c.geometry.depth) return check.error();
            draining = true;
        }
        // Another thread is the reader: whatever arrives is its to take and dispatch.
        if (c.reader_active || c.queue.size() >= c.geometry.depth) return IpcError::ChannelEmpty;
        c.reader_active = true;
        lock.unlock();
        auto r = c.read_one(Blocking::No, Deadline::past(), 0, true);
        lock.lock();
        c.reader_active = false;
        c.cv.notify_all();
        if (!r && r.error() == IpcError::ChannelEmpty && !draining && !rearmed &&
            c.poll_armed.load()) {
            // Steps (3), (4) of pollable.hpp: re-arm, then look once more.
            c.rearm_poll();
            rearmed = true;
            continue;
        }
        if (!r) return r.error();
    }
}

Result<Message> Connection::receive_sync(Deadline deadline) {
    if (!impl_) return moved_from();
    return VIPC_TRY(receive_as(*impl_, Take::Message, Blocking::Yes, deadline)).message;
}

Result<Message> Connection::try_receive() {
    if (!impl_) return moved_from();
    return VIPC_TRY(receive_as(*impl_, Take::Message, Blocking::No, Deadline::past())).message;
}

Result<Incoming> Connection::receive_view(Deadline deadline) {
    if (!impl_) return moved_from();
    return receive_as(*impl_, Take::View, Blocking::Yes, deadline);
}

Result<Incoming> Connection::try_receive_view() {
    if (!impl_) return moved_from();
    return receive_as(*impl_, Take::View, Blocking::No, Deadline::past());
}

Result<PayloadInfo> Connection::receive_into(std::span<std::byte> buffer, usize* needed,
                                             Deadline deadline) {
    if (!impl_) return moved_from();
    const Incoming in =
        VIPC_TRY(receive_as(*impl_, Take::Into, Blocking::Yes, deadline, buffer, needed));
    PayloadInfo info = in.info;
    if (in.kind == Incoming::Kind::Loan) {
        if (!in.payload.empty()) std::memcpy(buffer.data(), in.payload.data(), in.payload.size());
        info.length = in.payload.size();
        VIPC_TRY(impl_->inbox.release(in.loan));  // copied: the chunk goes back at once
    } else if (in.kind == Incoming::Kind::Payload) {
        if (!in.payload.empty()) std::memcpy(buffer.data(), in.payload.data(), in.payload.size());
        info.length = in.payload.size();
    } else if (in.kind == Incoming::Kind::Small) {
        std::memcpy(buffer.data(), &in.message.small_message(), sizeof(SmallMessage));
        info.length = sizeof(SmallMessage);
    } else {
        std::memcpy(buffer.data(), &in.message.large_message(), sizeof(LargeMessage));
        info.length = sizeof(LargeMessage);
    }
    return info;
}

Result<Message> Connection::call(const Message& request, Deadline deadline) {
    return call_with(request, nullptr, Transfer::Copy, deadline);
}

Result<Message> Connection::call(const Message& request, Region& region, Transfer transfer,
                                 Deadline deadline) {
    return call_with(request, &region, transfer, deadline);
}

namespace {
IpcError call_needs_both(Connection::Impl& c) {
    return fail(IpcError::PermissionDenied, "call on '%s' needs both SEND and RECEIVE rights",
                c.name.c_str());
}
}  // namespace

Result<Message> Connection::call_with(const Message& request, Region* region, Transfer transfer,
                                      Deadline deadline) {
    if (!impl_) return moved_from();
    Impl& c = *impl_;
    if ((c.rights & (Rights::SEND | Rights::RECEIVE)) != (Rights::SEND | Rights::RECEIVE)) {
        VIPC_TRY(c.quick_check());
        return call_needs_both(c);
    }
    // (0) register
    const TransactionId txid = c.next_txid.fetch_add(1, std::memory_order_relaxed);
    {
        std::lock_guard<std::mutex> lock(c.mu);
        Impl::PendingCall p;
        p.txid = txid;
        c.pending.push_back(p);
    }
    // (1) send
    if (auto s = region == nullptr
                     ? c.send_message(request, txid, Blocking::Yes, deadline)
                     : c.send_region(request, *region, transfer, txid, deadline, Blocking::Yes);
        !s) {
        std::lock_guard<std::mutex> lock(c.mu);
        c.erase_pending(txid);
        return s.error();
    }
    // (2)-(4)
    std::unique_lock<std::mutex> lock(c.mu);
    auto w = c.wait_message(lock, txid, deadline);
    Impl::PendingCall* p = c.find_pending(txid);
    const Impl::PendingCall done = *p;
    c.erase_pending(txid);  // (4) end the wait
    if (!w) return w.error();
    bump(c.received_count);
    if (done.error != IpcError::NotInitialized) {
        return fail(done.error,
                    "the reply to this call on '%s' does not fit a Message: call with "
                    "a payload buffer",
                    c.name.c_str());
    }
    VIPC_TRY(c.check_error_reply(done.reply));
    return done.reply;
}

Result<PayloadInfo> Connection::call(u32 opcode, u32 flags, std::span<const std::byte> request,
                                     std::vector<std::byte>& reply_payload, Deadline deadline) {
    if (!impl_) return moved_from();
    Impl& c = *impl_;
    if ((c.rights & (Rights::SEND | Rights::RECEIVE)) != (Rights::SEND | Rights::RECEIVE)) {
        VIPC_TRY(c.quick_check());
        return call_needs_both(c);
    }
    // (0) register, with where the reply's bytes go
    const TransactionId txid = c.next_txid.fetch_add(1, std::memory_order_relaxed);
    {
        std::lock_guard<std::mutex> lock(c.mu);
        Impl::PendingCall p;
        p.txid = txid;
        p.payload = &reply_payload;
        c.pending.push_back(p);
    }
    // (1) send
    if (auto s = c.send_payload(opcode, flags, request, txid, Blocking::Yes, deadline); !s) {
        std::lock_guard<std::mutex> lock(c.mu);
        c.erase_pending(txid);
        return s.error();
    }
    // (2)-(4)
    std::unique_lock<std::mutex> lock(c.mu);
    auto w = c.wait_message(lock, txid, deadline);
    const Impl::PendingCall done = *c.find_pending(txid);
    const PayloadInfo info = done.info;
    c.erase_pending(txid);  // (4) end the wait: a reply arriving later is dropped
    if (!w) return w.error();
    VIPC_TRY(c.check_error_reply(done.reply));
    bump(c.received_count);
    return info;
}

Result<TransactionId> Connection::begin_call(const Message& request, Deadline deadline) {
    if (!impl_) return moved_from();
    Impl& c = *impl_;
    if ((c.rights & (Rights::SEND | Rights::RECEIVE)) != (Rights::SEND | Rights::RECEIVE)) {
        VIPC_TRY(c.quick_check());
        return call_needs_both(c);
    }
    // (0) register, (1) send, as call(); take_reply() does (2)-(4) without waiting.
    const TransactionId txid = c.next_txid.fetch_add(1, std::memory_order_relaxed);
    {
        std::lock_guard<std::mutex> lock(c.mu);
        Impl::PendingCall p;
        p.txid = txid;
        c.pending.push_back(p);
    }
    if (auto s = c.send_message(request, txid, Blocking::Yes, deadline); !s) {
        std::lock_guard<std::mutex> lock(c.mu);
        c.erase_pending(txid);
        return s.error();
    }
    return txid;
}

Result<Message> Connection::take_reply(TransactionId txid) {
    if (!impl_) return moved_from();
    Impl& c = *impl_;
    std::unique_lock<std::mutex> lock(c.mu);
    for (bool drained = false;;) {
        Impl::PendingCall* p = c.find_pending(txid);
        if (p == nullptr) {
            return fail(IpcError::InvalidMessage,
                        "no call %llu is outstanding on '%s' (finished or never begun)",
                        static_cast<unsigned long long>(txid), c.name.c_str());
        }
        if (p->delivered) {
            const Impl::PendingCall done = *p;
            c.erase_pending(txid);
            if (done.error != IpcError::NotInitialized) return done.error;
            VIPC_TRY(c.check_error_reply(done.reply));
            bump(c.received_count);
            return done.reply;
        }
        // Another thread is the reader (it dispatches our reply and signals the descriptor),
        // or the queue is full (the application must take its messages first).
        if (c.reader_active || c.queue.size() >= c.geometry.depth) return IpcError::ChannelEmpty;
        c.reader_active = true;
        lock.unlock();
        auto r = c.read_one(Blocking::No, Deadline::past(), txid, false);
        lock.lock();
        c.reader_active = false;
        c.cv.notify_all();
        if (!r && r.error() == IpcError::ChannelEmpty && !drained && c.poll_armed.load()) {
            c.rearm_poll();  // (3), (4) of pollable.hpp
            drained = true;
            continue;
        }
        if (!r) {
            // Gone (after what it wrote was taken) or broken: this call is over.
            if (r.error() != IpcError::ChannelEmpty) c.erase_pending(txid);
            return r.error();
        }
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
    poll.add(socket.get());
    // Steps (1), (2) of pollable.hpp: the server signals from now on; the first poll looks.
    if (inbox.valid()) s2c_ctl.as<RingCtl>()->poll_armed.store(1, std::memory_order_seq_cst);
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
    Impl& c = *impl_;
    EndpointStats s;
    s.sent = c.sent_count.load(std::memory_order_relaxed);
    s.received = c.received_count.load(std::memory_order_relaxed);
    s.capacity = c.geometry.depth;
    {
        std::lock_guard<std::mutex> lock(c.mu);
        s.queued = static_cast<u32>(c.queue.size());
    }
    if (c.inbox.valid()) {
        // A racy snapshot: statistics only.
        s.queued += count_records(c.geometry, c.s2c_data.as<const RingDataHeader>(),
                                  c.s2c_ctl.as<const RingCtl>());
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
    return d;
}

}  // namespace veridian::ipc::posix
