// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: the server side of a named endpoint.
//
// Threads of a Server:
//   - callers of receive/try_receive, any number at once: each takes receive_mu for one pass
//     over the ready set and one take (the one consumer of every client→server ring at a
//     time); what it took it handles without the lock, while the next one receives. A
//     connection's messages are handed out in its order; one whose record a thread holds as
//     a view is not read by another until that thread's next receive (or its exit) ends it,
//   - callers of reply/send_* (serialized per connection by its Outbox, outbox.hpp),
//   - the monitor thread: accepts clients on the discovery socket, answers stat requests,
//     notices hang-ups of connection sockets (peer death) with epoll, and serves the
//     capability sockets (connect and derive requests; see endpoint_capability.hpp).
//
// Revocation, paired with handle_hello for connections made through a capability:
//   (1) revoke(): under caps_mu, mark the capability and its descendants revoked, tell their
//       sockets (CAP_REVOKED_BYTE) and shut them down
//   (2) under conns_mu, end every listed connection tagged with one of them: its closed words
//       = CLOSED_REVOKED, wake, hang up (the client's monitor turns that into
//       InvalidCapability at once)
//   handle_hello: (a) refuses a revoked capability under caps_mu, (b) lists the connection
//   under conns_mu, (c) looks again under caps_mu and ends it if it was revoked meanwhile.
//   Either (2) sees the listed connection, or (c) sees the mark: none survives a revoke.
//
// The receive protocol is the ready set's (ready_set.hpp: passes over the polled connections
// and the marked ones, then the sleep on the bell, the polled tails and rx_private), paired
// with the client's published() in connection.cpp (notice_after_publish). Every word a client
// writes is trusted for nothing: the server only ever looks at the rings, whose indexes it
// checks.
//
// Views with several receivers, paired with the ready set's Deferred:
//   (V1) a receive that hands out a payload record as a view sets the connection's `viewed`
//        and records (connection, record) in its thread's view list
//   (V2) the same thread's next receive on this server (or the thread's exit) finishes the
//        record without receive_mu (no other thread touches that connection's ring while
//        `viewed` is set), then stores viewed = 0 (seq_cst), then loads state.waiting
//        (seq_cst): set → bumps rx_private and wakes it
//   A receiver asleep in the ready set read rx_private before it looked at the connection
//   (ready_set.hpp (S3)), so either it saw viewed = 0 or the bump changes its word.
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "posix/error_reply.hpp"
#include "posix/inbox.hpp"
#include "posix/outbox.hpp"
#include "posix/parked_count.hpp"
#include "posix/pollable.hpp"
#include "posix/rate_limit.hpp"
#include "posix/ready_set.hpp"
#include "posix/region_wire.hpp"
#include "posix/wire.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::posix {

using namespace detail;

namespace {

SharedWords& words() {
    return platform::ProcessSharedWords::instance();
}

// Adds one to a statistics counter that has a single writer at a time (the holder of the lock
// named at its declaration): a plain load and store, no read-modify-write on the hot path.
// Readers (info()) take racy snapshots.
void bump(std::atomic<u64>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// Ready slots for a connection limit: the live ones, plus room for those that ended and
// wait for the next receive to forget them.
// How long a non-blocking send or a reply waits for another thread of this server holding the
// same connection's outbox (one slice: longer than a time slice of a preempted holder).
inline constexpr u64 SERVER_LOCK_WAIT_NS = PARK_SLICE_NS;

u32 ready_slots_for(u32 max_connections) {
    const u64 slots = u64{max_connections} + max_connections / 4 + 16;
    return static_cast<u32>(slots < READY_MAX_SLOTS ? slots : READY_MAX_SLOTS);
}

// The lock files this process holds (record locks do not exclude their own process).
class HeldLocks {
public:
    bool claim(const std::string& key) {
        std::lock_guard<std::mutex> lock(mu_);
        for (const std::string& k : held_) {
            if (k == key) return false;
        }
        held_.push_back(key);
        return true;
    }
    void release(const std::string& key) {
        std::lock_guard<std::mutex> lock(mu_);
        for (usize k = 0; k < held_.size(); ++k) {
            if (held_[k] == key) {
                held_[k] = held_.back();
                held_.pop_back();
                return;
            }
        }
    }

private:
    std::mutex mu_;
    std::vector<std::string> held_;
};
HeldLocks& held_locks() {
    static HeldLocks* locks = new HeldLocks();  // never destroyed: Servers may outlive statics
    return *locks;
}

// Sockets connected (or handed over through a capability) whose Hello has not arrived yet.
// Each must send it within the handshake timeout, and at most `cap` wait at once: past it,
// the oldest is dropped (an honest client sends its Hello right after connecting, so the
// oldest waiting is the likeliest to be one that never will). Monitor thread only.
class PendingHandshakes {
public:
    struct Entry {
        Fd sock;
        CapabilityId through = 0;
        u64 seq = 0;
    };
    PendingHandshakes(u32 cap, u64 timeout_ns)
        : cap_(cap == 0 ? 1 : cap), timeout_ns_(timeout_ns) {}
    // Adds `sock`; returns how many older ones it dropped to make room.
    u32 add(Fd sock, CapabilityId through, u64 now) {
        u32 dropped = 0;
        while (entries_.size() >= cap_ && !order_.empty()) {
            const Due oldest = order_.front();
            order_.pop_front();
            auto it = entries_.find(oldest.fd);
            if (it != entries_.end() && it->second.seq == oldest.seq) {
                entries_.erase(it);  // closes it (and takes it out of epoll)
                ++dropped;
            }
        }
        const int fd = sock.get();
        const u64 seq = ++next_seq_;
        entries_[fd] = Entry{static_cast<Fd&&>(sock), through, seq};
        order_.push_back(Due{now + timeout_ns_, fd, seq});
        return dropped;
    }
    bool take(int fd, Entry* out) {
        auto it = entries_.find(fd);
        if (it == entries_.end()) return false;
        *out = static_cast<Entry&&>(it->second);
        entries_.erase(it);
        return true;
    }
    // Drops every socket past its deadline; returns how many.
    u32 expire(u64 now) {
        u32 dropped = 0;
        while (!order_.empty() && order_.front().deadline <= now) {
            const Due d = order_.front();
            order_.pop_front();
            auto it = entries_.find(d.fd);
            if (it != entries_.end() && it->second.seq == d.seq) {
                entries_.erase(it);
                ++dropped;
            }
        }
        // Forget the order entries of sockets handled meanwhile once they dominate.
        if (order_.size() > 4 * cap_ + 64) {
            std::deque<Due> kept;
            for (const Due& d : order_) {
                auto it = entries_.find(d.fd);
                if (it != entries_.end() && it->second.seq == d.seq) kept.push_back(d);
            }
            order_.swap(kept);
        }
        return dropped;
    }
    // Milliseconds epoll_wait may sleep before the next deadline (-1: none).
    int timeout_ms(u64 now) const {
        if (entries_.empty() || order_.empty()) return -1;
        const u64 due = order_.front().deadline;
        return due <= now ? 0 : static_cast<int>((due - now + 999'999) / 1'000'000);
    }
    usize size() const { return entries_.size(); }

private:
    struct Due {
        u64 deadline;
        int fd;
        u64 seq;
    };
    u32 cap_;
    u64 timeout_ns_;
    u64 next_seq_ = 0;
    std::unordered_map<int, Entry> entries_;
    std::deque<Due> order_;
};

// One client connection, as the server sees it.
struct ServerConnection final : InboxOwner,
                                ReadyMember,
                                std::enable_shared_from_this<ServerConnection> {
    ConnectionId id = 0;
    pid_t pid = 0;
    uid_t uid = 0;
    u16 rights = 0;
    CapabilityId capability = 0;  // made through this capability (0: by name)
    Fd socket;                    // closed only when the last reference goes
    u64 unclaimed_owner = 0;      // its key in the table of unclaimed descriptors
    // 1 while a receiving thread holds a view of its next record (see "Views" above).
    std::atomic<u32> viewed{0};
    bool limited = false;  // ServerOptions::client_rate_limit is set (fixed before listing)

    // Mappings: c2s.data and s2c.ctl are written by the client (trusted for nothing);
    // c2s.ctl and s2c.data by us.
    Mapping c2s_data, c2s_ctl, s2c_data, s2c_ctl;
    // The loan pools: the client's (read-only here) and ours for this client (read-write).
    Mapping c2s_pool, s2c_pool;

    Inbox inbox;  // the client→server ring; guarded by Server::Impl::receive_mu
    // ServerOptions::client_rate_limit as the server enforces it, with twice the burst (a
    // client that keeps the limit is never held back by it): while a bucket is empty, the
    // server does not read this client's ring. Guarded by Server::Impl::receive_mu_.
    TokenBucket limit_messages, limit_bytes;
    bool throttled(u64 now) {
        return (limit_messages.enabled() && limit_messages.wait_ns(1, now) != 0) ||
               (limit_bytes.enabled() && limit_bytes.wait_ns(1, now) != 0);
    }
    void charge_bytes(u64 bytes) {
        if (limit_messages.enabled()) limit_messages.take(1);
        if (limit_bytes.enabled()) limit_bytes.take(bytes);
    }
    // InboxOwner: the server reads its rings without waiting on one (it parks on the
    // doorbell), so only the socket of attachments matters here.
    Result<void> check(bool) override { return ok(); }
    int attachment_socket() override { return socket.get(); }
    u32 peer_cpu() override { return 0; }
    Outbox outbox;  // the server→client ring

    // Bumped and woken after anything here ends the connection (death noticed, broken,
    // disconnect, revoke, close): our senders parked on its ring sleep on it too (the
    // Parking's local word, parking.hpp), so that wake is never lost, although the ring's own
    // futex word is in a page the client writes and we map read-only.
    std::atomic<u32> wake_epoch{0};
    void wake_local() { bump_local_word(wake_epoch); }
    // ReadyMember: the one check a mark or a wake costs (under Server::Impl::receive_mu).
    ReadyCheck check_ready(u64 now, u64* retry_at) override {
        if (broken.load(std::memory_order_relaxed)) return ReadyCheck::Empty;
        if (viewed.load(std::memory_order_acquire) != 0) {
            *retry_at = 0;  // until the view ends (it bumps rx_private)
            return ReadyCheck::Deferred;
        }
        const auto a = inbox.ready();
        if (!a) return ReadyCheck::Work;  // corrupt: the taker finds out and breaks it
        if (!*a) return ReadyCheck::Empty;
        if (limited && throttled(now)) {
            // Over its rate limit: its messages wait until the buckets refill.
            const u64 wait = std::max(limit_messages.enabled() ? limit_messages.wait_ns(1, now) : 0,
                                      limit_bytes.enabled() ? limit_bytes.wait_ns(1, now) : 0);
            *retry_at = now + (wait != 0 ? wait : 1'000'000);
            return ReadyCheck::Deferred;
        }
        return ReadyCheck::Work;
    }

    std::atomic<bool> dead{false};       // the client closed or died (socket hung up)
    std::atomic<bool> broken{false};     // the client broke the protocol
    std::atomic<bool> uncounted{false};  // taken out of Server::Impl::live_connections
    std::atomic<u64> received{0};        // written under Server::Impl::receive_mu
    std::atomic<u64> sent{0};            // written under outbox.mu

    const RingDataHeader* c2s_header() const { return c2s_data.as<const RingDataHeader>(); }
    const RingCtl* s2c_control() const { return s2c_ctl.as<const RingCtl>(); }
    bool client_closed() const {
        return dead.load(std::memory_order_acquire) ||
               c2s_header()->closed.load(std::memory_order_relaxed) != 0 ||
               s2c_control()->closed.load(std::memory_order_relaxed) != 0;
    }
};

}  // namespace

struct Server::Impl {
    std::string name;
    std::string dir;
    EndpointPaths paths;
    ServerOptions options;
    RingGeometry geometry;
    pid_t pid = getpid();

    OpenedDir opened_dir;  // the runtime directory, checked; every file is reached through it
    std::string lock_file, socket_file;  // their names in it
    Fd lock_fd;
    std::string lock_key;  // in held_locks(), while claimed_lock
    bool claimed_lock = false;
    bool owns_name = false;  // we hold the lock: close() removes the name's files
    Fd listen_fd;
    Fd monitor_wake;  // eventfd: tells the monitor thread to stop
    PollSet poll;     // pollable_fd(): only this process holds it (see pollable.hpp)
    Fd state_fd;      // read-only descriptor of the state memfd, handed to clients
    Fd doorbell_fd;   // read-write descriptor of the doorbell memfd, handed to clients
    Mapping state_map;
    Mapping doorbell_map;
    ServerState* state = nullptr;
    ServerDoorbell* doorbell = nullptr;

    mutable std::mutex conns_mu;
    std::vector<std::shared_ptr<ServerConnection>> conns VIPC_GUARDED_BY(conns_mu);
    // The same connections by id: find() (every reply and send) costs one lookup, not a walk
    // over every connection.
    std::unordered_map<ConnectionId, std::shared_ptr<ServerConnection>> by_id
        VIPC_GUARDED_BY(conns_mu);
    ConnectionId next_id VIPC_GUARDED_BY(conns_mu) = 1;
    // Connections gone while the server still held loans of theirs: kept (their pool stays
    // mapped, so the views stay valid) until the last of those loans is released.
    std::vector<std::shared_ptr<ServerConnection>> retired VIPC_GUARDED_BY(conns_mu);
    // Bumped (seq_cst, under conns_mu) whenever `conns` changes. The receiver scans its own
    // copy of the list (rx_conns) and takes conns_mu only to refresh it when this moved, so
    // the receive path locks nothing but receive_mu while the set of clients is stable.
    std::atomic<u64> conns_version{0};

    DeadlineMutex receive_mu;
    // Which connections may have a message (ready_set.hpp), over the ready map in the
    // doorbell memfd. Passes and sleeps under receive_mu; add() from the monitor thread.
    ReadySet ready;
    ReadyMap ready_map;
    bool have_waitv VIPC_GUARDED_BY(receive_mu) = true;
    // The receivers' own wake word (shared futex ops: woken with wake_all): close() and the
    // end of a view bump and wake it.
    std::atomic<u32> rx_private{0};
    std::atomic<u64> spurious_wakes{0};  // a copy of the ready set's, for statistics
    SpinBudget receive_spin VIPC_GUARDED_BY(receive_mu);
    // Bumped whenever a connection is found dead or broken: the next receive forgets the
    // gone ones (forget_gone) and gives their slots back.
    std::atomic<u64> gone_version{0};
    u64 gone_seen VIPC_GUARDED_BY(receive_mu) = 0;
    // Messages taken while the pollable descriptor is armed since its sockets were last
    // drained (see receive()).
    u32 takes_since_drain VIPC_GUARDED_BY(receive_mu) = 0;
    void note_gone() { gone_version.fetch_add(1, std::memory_order_release); }
    // Listed connections neither dead nor broken (for max_connections, without a scan): +1 when
    // listed, -1 once when it is marked dead or broken (count_gone, after the mark).
    std::atomic<u32> live_connections{0};
    void count_gone(ServerConnection& c) {
        if (!c.uncounted.exchange(true, std::memory_order_acq_rel)) {
            live_connections.fetch_sub(1, std::memory_order_relaxed);
        }
    }
    // Wakes every sleeping receiver (close, a finished view): rx_private, and the bell for a
    // receiver that sleeps on the bell alone (no futex_waitv).
    void wake_receivers() {
        rx_private.fetch_add(1, std::memory_order_seq_cst);
        words().wake_all(&rx_private);
        if (doorbell != nullptr) {
            doorbell->ring.fetch_add(1, std::memory_order_seq_cst);
            words().wake_all(&doorbell->ring);
        }
    }
    // This server among the views of a thread (see "Views" above).
    const u64 serial = next_serial();
    static u64 next_serial() {
        static std::atomic<u64> counter{0};
        return counter.fetch_add(1, std::memory_order_relaxed) + 1;
    }
    std::atomic<u32> last_client_cpu{0};
    // How a thread that ends a view after this server is gone finds out (see "Views").
    struct ViewWaker {
        std::mutex mu;
        Impl* impl VIPC_GUARDED_BY(mu) = nullptr;
    };
    std::shared_ptr<ViewWaker> view_waker = std::make_shared<ViewWaker>();

    bool limits_clients = false;  // client_rate_limit set: connections check their buckets
    std::atomic<bool> closed{false};
    std::mutex close_mu;
    std::thread monitor;

    std::atomic<u64> accepted{0};
    std::atomic<u64> received_total{0};  // written under receive_mu
    std::atomic<u64> sent_total{0};
    std::atomic<u64> broken_total{0};
    // Threads parked in receive_sync and in sends to a client (see parked_count.hpp).
    std::atomic<u32> waiting_receivers{0};
    std::atomic<u32> waiting_senders{0};

    // Capabilities minted by this server and derived from them. Entries stay (for the
    // lineage) after their socket is gone.
    struct CapEntry {
        CapabilityId id;
        CapabilityId parent;  // 0 for a minted one
        u16 rights;
        bool revoked;
        bool watched;  // added to the monitor's epoll
        Fd socket;     // our end of the capability socket
    };
    std::mutex caps_mu;
    std::vector<CapEntry> caps VIPC_GUARDED_BY(caps_mu);
    CapabilityId next_cap VIPC_GUARDED_BY(caps_mu) = 1;
    Fd caps_wake;  // eventfd: new capability sockets to watch
    CapEntry* find_cap(CapabilityId id) VIPC_REQUIRES(caps_mu) {
        for (CapEntry& e : caps) {
            if (e.id == id) return &e;
        }
        return nullptr;
    }
    bool cap_revoked(CapabilityId id) {
        std::lock_guard<std::mutex> lock(caps_mu);
        const CapEntry* e = find_cap(id);
        return e == nullptr || e->revoked;
    }
    void watch_new_caps(int epfd);
    void handle_cap_request(CapabilityId id, int epfd, PendingHandshakes& pending);
    std::atomic<u64> half_open_dropped{0};  // sockets dropped before their Hello
    std::atomic<u64> over_cap_regions{0};   // regions over max_region_bytes (their clients dropped)
    std::atomic<u64> refused_no_fds{0};     // connections closed for want of descriptors
    Result<void> revoke(CapabilityId id);
    void end_revoked(ServerConnection& c);

    ~Impl() {
        close();
        std::lock_guard<std::mutex> lock(view_waker->mu);
        view_waker->impl = nullptr;
    }

    Result<void> start();
    void close();
    void monitor_loop();
    // The monitor thread's own view of the live connections: their sockets (watched for
    // hang-ups) and their client processes, one pidfd per process however many connections
    // it has (watched for its exit). Touched by the monitor thread only.
    struct Watched {
        std::unordered_map<int, std::shared_ptr<ServerConnection>> sockets;
        struct Process {
            Fd pidfd;
            // Its connections, for its exit; some may have ended (pruned as the list grows).
            std::vector<std::weak_ptr<ServerConnection>> connections;
            u32 live = 0;  // of them, those whose socket is still watched
        };
        std::unordered_map<pid_t, Process> processes;
    };
    void handle_hello(int sock, Watched& watched, int epfd, CapabilityId through = 0);
    // The client process of `conn` (whose pidfd is `fresh`, opened for this connection):
    // watched already (then `fresh` is closed) or from now on.
    void watch_process(Watched& watched, int epfd, ServerConnection& conn, Fd fresh);
    // The connection ended here (its socket hung up, or its process exited): marked dead,
    // its socket no longer watched.
    void end_watched(Watched& watched, int epfd, ServerConnection& conn);
    // The client process `process` exited: every connection it had ends.
    void end_process(Watched& watched, int epfd, pid_t process);
    Result<std::shared_ptr<ServerConnection>> create_connection(pid_t peer_pid, uid_t peer_uid,
                                                                u16 rights, u64 c2s_pool_bytes,
                                                                u64 s2c_pool_bytes, int fds[],
                                                                int* nfds);
    void answer_stat(int sock);
    // The rights the access policy grants the peer of `sock` (0: none).
    u16 granted_rights(int sock, const ucred& cred) const;
    // One line on stderr (rate-limited) naming who was refused what, and why.
    void log_refusal(const ucred& cred, const char* what, const char* why);
    u64 refusal_window_start = 0;  // monitor thread only
    u32 refusals_in_window = 0;
    u32 refusals_unlogged = 0;
    // What a connection holds beyond its rings, freed once it is gone (see region_wire.hpp).
    void release_connection_resources(ServerConnection& c);

    void forget_gone() VIPC_REQUIRES(receive_mu);
    // What a receive takes: a Message, a view, or a copy into a buffer.
    enum class Take : u8 { Message, View, Into };
    struct Taking {
        Take how = Take::Message;
        std::span<std::byte> buffer;
        usize* needed = nullptr;
    };
    // (V2) for the calling thread's view on this server, if any; without receive_mu.
    void finish_view();
    // Ends this thread's view of `connection`'s record now; false when it holds none.
    bool finish_view_of(ConnectionId connection);
    Result<Incoming> take_from(ServerConnection& c, const RecordView& record, const Taking& taking)
        VIPC_REQUIRES(receive_mu);
    Result<Incoming> receive(const Taking& taking, Blocking blocking, Deadline deadline);
    enum class Answer : u8 { Send, Reply };
    Result<void> send_to(ConnectionId to, OutgoingRecord record, Answer answer, Blocking blocking,
                         Deadline deadline);
    Result<void> send_message_to(ConnectionId to, const Message& msg, TransactionId txid,
                                 Answer answer, Blocking blocking, Deadline deadline,
                                 const OutgoingAttachment* attachment = nullptr);
    Result<void> send_payload_to(ConnectionId to, u32 opcode, u32 flags,
                                 std::span<const std::byte> payload, TransactionId txid,
                                 Answer answer, Blocking blocking, Deadline deadline);
    Result<void> send_region_to(ConnectionId to, const Message& msg, Region& region,
                                Transfer transfer, TransactionId txid, Answer answer,
                                Blocking blocking, Deadline deadline);
    Result<void> send_capability_to(ConnectionId to, const Message& msg,
                                    std::span<const EndpointCapability> given, TransactionId txid,
                                    Answer answer, Deadline deadline);
    std::shared_ptr<ServerConnection> find(ConnectionId id) const;
    void mark_broken(ServerConnection& c);
    void drain_notify();
    EndpointInfo info() const;
};

// ---- publish -----------------------------------------------------------------------------------

Result<void> Server::Impl::start() {
    // Descriptors for max_connections (and a reserve for everything else), as far as the
    // hard limit allows; beyond it the acceptor refuses with the EMFILE message.
    rlimit files{};
    if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
        const rlim_t wanted =
            rlim_t{options.max_connections} *
                (SERVER_DESCRIPTORS_PER_CONNECTION + SERVER_DESCRIPTORS_PER_CLIENT_PROCESS) +
            256;
        if (files.rlim_cur < wanted && files.rlim_cur < files.rlim_max) {
            files.rlim_cur = wanted < files.rlim_max ? wanted : files.rlim_max;
            (void)setrlimit(RLIMIT_NOFILE, &files);
        }
    }
    {
        std::lock_guard<std::mutex> lock(view_waker->mu);
        view_waker->impl = this;
    }
    VIPC_TRY(validate_name(name));
    opened_dir = VIPC_TRY(open_runtime_dir(dir, DirUse::Publish, {static_cast<u32>(geteuid())}));
    paths = endpoint_paths(dir, name);
    lock_file = endpoint_file(name, ".lock");
    socket_file = endpoint_file(name, ".sock");
    const int dfd = opened_dir.fd.get();

    // Who owns the name: whoever holds a POSIX record lock (F_SETLK) on its lock file. The
    // kernel drops it when its holder dies, and, unlike flock(), a child made by fork() does
    // not inherit it, so a dead owner's name is free at once even if its children live on.
    // Record locks do not exclude the holder's own process: the process-wide table of held
    // lock files does that. After locking, check the file is still the one at the path (a
    // closing owner unlinks it).
    struct stat dir_st {};
    if (fstat(dfd, &dir_st) != 0) {
        return fail(IpcError::PermissionDenied, "cannot stat runtime directory '%s': %s",
                    dir.c_str(), strerror(errno));
    }
    // Claimed before the file is opened: closing any descriptor of a locked file drops the
    // process's record lock, so a second Server of this process must not even open it.
    lock_key =
        std::to_string(dir_st.st_dev) + ":" + std::to_string(dir_st.st_ino) + ":" + lock_file;
    if (!held_locks().claim(lock_key)) {
        return fail(IpcError::EndpointBusy,
                    "endpoint name '%s' is taken by this process (pid %d); pick another name or "
                    "close that Server",
                    name.c_str(), pid);
    }
    claimed_lock = true;
    for (int attempt = 0;; ++attempt) {
        Fd fd(openat(dfd, lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!fd.valid()) {
            return fail(IpcError::PermissionDenied, "cannot open lock file '%s': %s",
                        paths.lock.c_str(), strerror(errno));
        }
        struct stat held {};
        if (fstat(fd.get(), &held) != 0 || !S_ISREG(held.st_mode) || held.st_uid != geteuid()) {
            return fail(IpcError::PermissionDenied,
                        "lock file '%s' is not a regular file of ours; remove it",
                        paths.lock.c_str());
        }
        struct flock want {};
        want.l_type = F_WRLCK;
        want.l_whence = SEEK_SET;
        if (fcntl(fd.get(), F_SETLK, &want) != 0) {
            // The holder's pid as the kernel knows it (not what anyone wrote in the file).
            struct flock who {};
            who.l_type = F_WRLCK;
            who.l_whence = SEEK_SET;
            const long owner = fcntl(fd.get(), F_GETLK, &who) == 0 && who.l_type != F_UNLCK
                                   ? static_cast<long>(who.l_pid)
                                   : 0;
            return fail(IpcError::EndpointBusy,
                        "endpoint name '%s' is taken by a live process (pid %ld); pick another "
                        "name or stop that process",
                        name.c_str(), owner);
        }
        struct stat at_path {};
        if (fstatat(dfd, lock_file.c_str(), &at_path, AT_SYMLINK_NOFOLLOW) == 0 &&
            held.st_ino == at_path.st_ino && held.st_dev == at_path.st_dev) {
            char buf[32];
            const int n = std::snprintf(buf, sizeof buf, "%d\n", pid);
            if (ftruncate(fd.get(), 0) != 0 ||
                pwrite(fd.get(), buf, static_cast<usize>(n), 0) != n) {
                return fail(IpcError::PermissionDenied, "cannot write lock file '%s'",
                            paths.lock.c_str());
            }
            lock_fd = static_cast<Fd&&>(fd);
            owns_name = true;
            break;
        }
        if (attempt > 8) {
            return fail(IpcError::ResourceBusy, "lock file '%s' keeps changing; retry",
                        paths.lock.c_str());
        }
    }

    // We own the name: a socket file still there was left by a dead owner. Replace it.
    unlinkat(dfd, socket_file.c_str(), 0);
    listen_fd = Fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listen_fd.valid()) return fail(IpcError::OutOfMemory, "socket(): %s", strerror(errno));
    const sockaddr_un addr = VIPC_TRY(socket_address(opened_dir, socket_file));
    if (bind(listen_fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        return fail(IpcError::PermissionDenied, "cannot create socket '%s': %s",
                    paths.socket.c_str(), strerror(errno));
    }
    // Others may reach the socket only when the access policy lets someone else in (SO_PEERCRED
    // decides then); the runtime directory's own mode still applies.
    fchmodat(dfd, socket_file.c_str(), options.access.admits_others() ? 0666 : 0600, 0);
    if (listen(listen_fd.get(), 128) != 0) {
        return fail(IpcError::OutOfMemory, "listen(): %s", strerror(errno));
    }

    // Shared pages of the server.
    CreatedMemfd st = VIPC_TRY(create_memfd("vipc-server-state", PAGE_BYTES));
    VIPC_TRY(finish_seals(st.fd.get(), /*future_write_sealed=*/true));
    state_fd = VIPC_TRY(reopen_read_only(st.fd.get()));
    state_map = static_cast<Mapping&&>(st.map);
    state = new (state_map.get()) ServerState{};
    state->magic = STATE_MAGIC;
    state->version = WIRE_VERSION;
    state->limit_messages_per_second = options.client_rate_limit.messages_per_second;
    state->limit_burst_messages = options.client_rate_limit.burst_messages;
    state->limit_bytes_per_second = options.client_rate_limit.bytes_per_second;
    state->limit_burst_bytes = options.client_rate_limit.burst_bytes;
    state->max_region_bytes = options.max_region_bytes;

    // The doorbell memfd holds the ready map: a slot per connection, with room for the ones
    // gone but not yet forgotten.
    const u32 slots = ready_slots_for(options.max_connections);
    state->ready_slots = slots;
    CreatedMemfd db = VIPC_TRY(create_memfd("vipc-server-doorbell", doorbell_bytes(slots)));
    VIPC_TRY(finish_seals(db.fd.get(), /*future_write_sealed=*/false));
    doorbell_fd = static_cast<Fd&&>(db.fd);
    doorbell_map = static_cast<Mapping&&>(db.map);
    doorbell = new (doorbell_map.get()) ServerDoorbell{};
    ready_map = ReadyMap::over(doorbell_map.get(), slots);
    ready.attach(words(), ready_map);

    VIPC_TRY(poll.open());
    monitor_wake = Fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!monitor_wake.valid()) return fail(IpcError::OutOfMemory, "eventfd(): %s", strerror(errno));
    caps_wake = Fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!caps_wake.valid()) return fail(IpcError::OutOfMemory, "eventfd(): %s", strerror(errno));

    monitor = std::thread([this] { monitor_loop(); });
    return ok();
}

// ---- the monitor thread: accept, hello, stat, hang-ups -----------------------------------------

namespace {
constexpr u64 TAG_LISTEN = 1;
constexpr u64 TAG_WAKE = 2;
constexpr u64 TAG_CAPS = 3;
// A capability socket's tag: this bit | its CapabilityId.
constexpr u64 TAG_CAPABILITY = u64{1} << 62;
// A client process's pidfd: this bit | its pid.
constexpr u64 TAG_PROCESS = u64{1} << 61;
// Other epoll tags are socket fds + 16: pending (hello not read yet) or a live connection.
constexpr u64 TAG_SOCKET_BASE = 16;
}  // namespace

void Server::Impl::monitor_loop() {
    Fd epfd(epoll_create1(EPOLL_CLOEXEC));
    if (!epfd.valid()) return;
    auto add = [&](int fd, u64 tag, u32 events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = tag;
        epoll_ctl(epfd.get(), EPOLL_CTL_ADD, fd, &ev);
    };
    add(listen_fd.get(), TAG_LISTEN, EPOLLIN);
    add(monitor_wake.get(), TAG_WAKE, EPOLLIN);
    add(caps_wake.get(), TAG_CAPS, EPOLLIN);
    // Sockets whose Hello has not arrived yet, and the sockets and processes of live
    // connections.
    PendingHandshakes pending(options.max_pending_handshakes,
                              u64{options.handshake_timeout_ms} * 1'000'000u);
    Watched watched;
    // A descriptor kept in reserve: when accept() fails for want of descriptors, it is closed
    // to accept (and at once close) the waiting connection, which otherwise would keep the
    // listening socket readable and this loop spinning.
    Fd reserve(open("/dev/null", O_RDONLY | O_CLOEXEC));

    for (;;) {
        epoll_event events[32];
        const int n = epoll_wait(epfd.get(), events, 32, pending.timeout_ms(now_ns()));
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (const u32 expired = pending.expire(now_ns()); expired != 0) {
            half_open_dropped.fetch_add(expired, std::memory_order_relaxed);
        }
        for (int i = 0; i < n; ++i) {
            const u64 tag = events[i].data.u64;
            if (tag == TAG_WAKE) return;  // close(): the Impl tears everything down
            if (tag == TAG_CAPS) {
                u64 count = 0;
                if (read(caps_wake.get(), &count, sizeof count) < 0) {
                }
                watch_new_caps(epfd.get());
                continue;
            }
            if ((tag & TAG_CAPABILITY) != 0) {
                handle_cap_request(tag & ~TAG_CAPABILITY, epfd.get(), pending);
                continue;
            }
            if ((tag & TAG_PROCESS) != 0) {
                end_process(watched, epfd.get(), static_cast<pid_t>(tag & ~TAG_PROCESS));
                continue;
            }
            if (tag == TAG_LISTEN) {
                for (int k = 0; k < 256; ++k) {  // bounded: let the other events have a turn
                    const int s =
                        accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
                    if (s < 0) {
                        if ((errno == EMFILE || errno == ENFILE) && reserve.valid()) {
                            reserve.reset();
                            const int drop =
                                accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
                            if (drop >= 0) ::close(drop);
                            reserve = Fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
                            refused_no_fds.fetch_add(1, std::memory_order_relaxed);
                            if (options.refusal_log == RefusalLog::Stderr && drop >= 0) {
                                ucred none{};
                                log_refusal(none, "a connection",
                                            "this server is out of file descriptors "
                                            "(RLIMIT_NOFILE); raise it or lower max_connections");
                            }
                            continue;
                        }
                        break;
                    }
                    Fd sock(s);
                    add(s, TAG_SOCKET_BASE + static_cast<u64>(s), EPOLLIN | EPOLLRDHUP);
                    if (const u32 dropped = pending.add(static_cast<Fd&&>(sock), 0, now_ns());
                        dropped != 0) {
                        half_open_dropped.fetch_add(dropped, std::memory_order_relaxed);
                    }
                }
                continue;
            }
            const int s = static_cast<int>(tag - TAG_SOCKET_BASE);
            if (PendingHandshakes::Entry e; pending.take(s, &e)) {
                epoll_ctl(epfd.get(), EPOLL_CTL_DEL, s, nullptr);
                handle_hello(e.sock.release(), watched, epfd.get(), e.through);
                continue;
            }
            if (auto it = watched.sockets.find(s); it != watched.sockets.end()) {
                // A live connection's socket is watched for hang-ups only (records of
                // attachments and notification frames arrive on it as data): the client
                // closed it or died.
                const std::shared_ptr<ServerConnection> c = it->second;
                end_watched(watched, epfd.get(), *c);
                // Its process keeps its pidfd only while it has other live connections.
                if (auto p = watched.processes.find(c->pid);
                    p != watched.processes.end() && --p->second.live == 0) {
                    epoll_ctl(epfd.get(), EPOLL_CTL_DEL, p->second.pidfd.get(), nullptr);
                    watched.processes.erase(p);
                }
            }
        }
    }
}

void Server::Impl::end_watched(Watched& watched, int epfd, ServerConnection& conn) {
    conn.dead.store(true, std::memory_order_seq_cst);
    count_gone(conn);
    note_gone();
    // Wake our threads blocked sending to it (they re-check and see it dead).
    conn.wake_local();
    const int s = conn.socket.get();
    if (s >= 0 && watched.sockets.erase(s) != 0) epoll_ctl(epfd, EPOLL_CTL_DEL, s, nullptr);
}

void Server::Impl::end_process(Watched& watched, int epfd, pid_t process) {
    auto p = watched.processes.find(process);
    // A stale event: the pidfd it came from was replaced after its process exited (see
    // watch_process), and the process now watched under that pid lives.
    if (p == watched.processes.end() || !process_exited(p->second.pidfd.get())) return;
    // The process exited: each of its connections ends, whoever still holds its socket (a
    // child it forked without exec, see "Peer death" in runtime.hpp).
    for (const auto& w : p->second.connections) {
        if (const auto c = w.lock()) end_watched(watched, epfd, *c);
    }
    epoll_ctl(epfd, EPOLL_CTL_DEL, p->second.pidfd.get(), nullptr);
    watched.processes.erase(p);
}

void Server::Impl::watch_process(Watched& watched, int epfd, ServerConnection& conn, Fd fresh) {
    auto p = watched.processes.find(conn.pid);
    if (p != watched.processes.end()) {
        // `fresh` was opened for the process that has this pid now. A watched pidfd for the
        // same pid whose process still lives is that process (a pid belongs to one live
        // process): keep it. One whose process exited (its event not handled yet, the pid
        // re-used since) is ended here and replaced, so its event cannot end the new one.
        if (!process_exited(p->second.pidfd.get())) {
            Watched::Process& process = p->second;
            // Prune the ended ones once they are half the list: amortized O(1) per connection.
            if (process.connections.size() >= 2 * process.live + 16) {
                std::erase_if(process.connections, [](const std::weak_ptr<ServerConnection>& w) {
                    const auto c = w.lock();
                    return c == nullptr || c->dead.load(std::memory_order_relaxed);
                });
            }
            process.connections.push_back(conn.weak_from_this());
            ++process.live;
            return;  // `fresh` closes
        }
        end_process(watched, epfd, conn.pid);
    }
    Watched::Process& added = watched.processes[conn.pid];
    added.pidfd = static_cast<Fd&&>(fresh);
    added.connections.push_back(conn.weak_from_this());
    added.live = 1;
    epoll_event ev{};
    ev.events = EPOLLIN;  // readable once the process exited
    ev.data.u64 = TAG_PROCESS | static_cast<u64>(conn.pid);
    epoll_ctl(epfd, EPOLL_CTL_ADD, added.pidfd.get(), &ev);
}

void Server::Impl::handle_hello(int raw_sock, Watched& watched, int epfd, CapabilityId through) {
    Fd sock(raw_sock);
    alignas(8) u8 buf[sizeof(Hello) + 1];
    const ssize_t n = recv(sock.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) return;  // hung up (e.g. a liveness probe) or nothing: drop it
    const auto hello = parse_hello(buf, static_cast<usize>(n));
    if (!hello) return;  // not one of ours: drop it
    // Who may connect or read statistics, and with which rights: the access policy, on the
    // credentials the kernel gives (SO_PEERCRED, SO_PEERGROUPS), never on what the peer says.
    ucred cred{};
    socklen_t len = sizeof cred;
    const bool known = getsockopt(sock.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;
    const u16 granted = known ? granted_rights(sock.get(), cred) : 0;
    if (hello->op == static_cast<u16>(HelloOp::Stat)) {
        if (granted != 0) {
            answer_stat(sock.get());
        } else {
            log_refusal(cred, "statistics",
                        "its access policy does not admit that uid or its groups");
            StatReply r{};
            r.magic = STAT_MAGIC;
            r.version = WIRE_VERSION;
            r.owner_pid = static_cast<u64>(pid);
            r.owner_uid = geteuid();
            r.status = error_code(IpcError::PermissionDenied);
            if (send(sock.get(), &r, sizeof r, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
            }
        }
        return;
    }

    Welcome w{};
    w.magic = WELCOME_MAGIC;
    w.version = WIRE_VERSION;
    w.depth = geometry.depth;
    w.max_inline_payload = geometry.max_inline_payload;
    w.server_pid = static_cast<u64>(pid);
    w.server_uid = geteuid();
    // The loan pools: the client's as it asked, within our cap; ours as configured. Whole
    // pages; a pool only for a direction the client's rights use.
    const auto whole_pages = [](u64 bytes) {
        return bytes > MAX_POOL_BYTES ? MAX_POOL_BYTES
                                      : (bytes + PAGE_BYTES - 1) / PAGE_BYTES * PAGE_BYTES;
    };
    const u64 asked_pool = u64{hello->pool_kib} * 1024;
    const u64 c2s_pool_bytes = (hello->rights & Rights::SEND) == 0
                                   ? 0
                                   : whole_pages(asked_pool < options.max_client_pool_bytes
                                                     ? asked_pool
                                                     : options.max_client_pool_bytes);
    const u64 s2c_pool_bytes =
        (hello->rights & Rights::RECEIVE) == 0 ? 0 : whole_pages(options.pool_bytes);

    IpcError refusal = IpcError::NotInitialized;
    bool refused = false;
    char why[160] = "";
    if (granted == 0) {
        refused = true;
        refusal = IpcError::PermissionDenied;
        w.reason = static_cast<u16>(Refusal::NotAdmitted);
        std::snprintf(why, sizeof why, "its access policy does not admit uid %u or its groups",
                      cred.uid);
    } else if ((hello->rights & ~granted) != 0) {
        refused = true;
        refusal = IpcError::PermissionDenied;
        w.reason = static_cast<u16>(Refusal::RightsBeyond);
        w.limit = granted;
        std::snprintf(why, sizeof why, "it asked for rights 0x%x, the access policy grants 0x%x",
                      hello->rights, granted);
    } else {
        if (live_connections.load(std::memory_order_relaxed) >= options.max_connections) {
            refused = true;
            refusal = IpcError::ResourceBusy;
            w.reason = static_cast<u16>(Refusal::TooMany);
            w.limit = options.max_connections;
            std::snprintf(why, sizeof why,
                          "it has its maximum of %u connections (ServerOptions::max_connections)",
                          options.max_connections);
        }
    }
    if (closed.load()) {
        refused = true;
        refusal = IpcError::EndpointNotFound;
        w.reason = static_cast<u16>(Refusal::Closed);
    }
    if (!refused && through != 0) {
        // (a) through a capability: not revoked, and no more rights than it carries
        std::lock_guard<std::mutex> lock(caps_mu);
        const CapEntry* e = find_cap(through);
        if (e == nullptr || e->revoked) {
            refused = true;
            refusal = IpcError::InvalidCapability;
            w.reason = static_cast<u16>(Refusal::Revoked);
        } else if ((hello->rights & ~e->rights) != 0) {
            refused = true;
            refusal = IpcError::PermissionDenied;
            w.reason = static_cast<u16>(Refusal::CapRights);
        }
    }
    // The client process itself, watched for its exit (see "Peer death" in runtime.hpp).
    Fd peer_process;
    if (!refused) {
        auto pfd = peer_pidfd(sock.get(), cred);
        if (!pfd) return;  // gone already: nobody to answer
        peer_process = static_cast<Fd&&>(*pfd);
    }
    int fds[MAX_WELCOME_FDS];
    int nfds = 0;
    std::shared_ptr<ServerConnection> conn;
    if (!refused) {
        auto created = create_connection(cred.pid, cred.uid, hello->rights, c2s_pool_bytes,
                                         s2c_pool_bytes, fds, &nfds);
        if (!created) {
            refused = true;
            refusal = created.error();
            w.reason = static_cast<u16>(Refusal::OutOfResources);
            std::snprintf(why, sizeof why, "%s", last_error_detail());
        } else {
            conn = *created;
        }
    }
    if (refused) {
        if (why[0] != '\0') log_refusal(cred, "a connection", why);
        w.status = error_code(refusal);
        send_with_fds(sock.get(), &w, sizeof w, nullptr, 0);
        return;
    }
    w.status = 0;
    w.rights = hello->rights;
    w.fd_bits = fd_bits_for(hello->rights, c2s_pool_bytes, s2c_pool_bytes);
    w.c2s_pool_bytes = c2s_pool_bytes;
    w.s2c_pool_bytes = s2c_pool_bytes;
    w.connection_id = conn->id;
    // Register the connection before the client learns of it: it may send at once, and a
    // receiver scanning (or a pollable descriptor drained) before the connection is listed
    // would miss that message's notification.
    conn->socket = static_cast<Fd&&>(sock);
    const int s = conn->socket.get();
    epoll_event ev{};
    ev.events = EPOLLRDHUP;  // hang-ups only: region records arrive as data
    ev.data.u64 = TAG_SOCKET_BASE + static_cast<u64>(s);
    epoll_ctl(epfd, EPOLL_CTL_ADD, s, &ev);
    watched.sockets.emplace(s, conn);
    watch_process(watched, epfd, *conn, static_cast<Fd&&>(peer_process));
    // Its notification frames make the pollable descriptor readable (pollable.hpp).
    poll.add(s);
    conn->capability = through;
    // Counted before anything can mark it gone (a receiver, once it is listed). Hellos are
    // handled by this thread alone, so the check above and this count do not race.
    live_connections.fetch_add(1, std::memory_order_relaxed);
    ready.list(*conn);  // its socket is set and watched: receivers may reach it now
    {
        std::lock_guard<std::mutex> lock(conns_mu);  // (b)
        conns.push_back(conn);
        by_id.emplace(conn->id, conn);
        conns_version.fetch_add(1, std::memory_order_seq_cst);
    }
    // No wake for the receivers: the connection is armed (ready.add in create_connection),
    // so its first message marks its slot and rings the bell if they sleep.
    if (through != 0 && cap_revoked(through)) end_revoked(*conn);  // (c)
    const bool sent = send_with_fds(s, &w, sizeof w, fds, nfds);
    // fds[] are ours (fresh read-only reopens, or the memfds themselves, plus dup()s of the
    // shared ones): close them either way.
    for (int i = 0; i < nfds; ++i)
        ::close(fds[i]);
    if (!sent) {
        conn->dead.store(true, std::memory_order_release);  // forgotten by the next receive
        count_gone(*conn);
        note_gone();
        return;
    }
    accepted.fetch_add(1, std::memory_order_relaxed);
}

Result<std::shared_ptr<ServerConnection>> Server::Impl::create_connection(
    pid_t peer_pid, uid_t peer_uid, u16 rights, u64 c2s_pool_bytes, u64 s2c_pool_bytes, int fds[],
    int* nfds) {
    auto c = std::make_shared<ServerConnection>();
    c->unclaimed_owner = new_unclaimed_owner();
    c->inbox.set_unclaimed(c->unclaimed_owner, options.max_unclaimed_per_connection);
    c->pid = peer_pid;
    c->uid = peer_uid;
    c->rights = rights;
    {
        std::lock_guard<std::mutex> lock(conns_mu);
        c->id = next_id++;
    }
    // Client-written memfds keep read-write descriptors for the client; server-written ones
    // are sealed against new writable mappings and handed over read-only.
    CreatedMemfd c2s_data = VIPC_TRY(create_memfd("vipc-c2s-data", geometry.data_bytes));
    CreatedMemfd c2s_ctl = VIPC_TRY(create_memfd("vipc-c2s-ctl", geometry.ctl_bytes));
    CreatedMemfd s2c_data = VIPC_TRY(create_memfd("vipc-s2c-data", geometry.data_bytes));
    CreatedMemfd s2c_ctl = VIPC_TRY(create_memfd("vipc-s2c-ctl", geometry.ctl_bytes));
    VIPC_TRY(finish_seals(c2s_data.fd.get(), false));
    VIPC_TRY(finish_seals(c2s_ctl.fd.get(), true));
    VIPC_TRY(finish_seals(s2c_data.fd.get(), true));
    VIPC_TRY(finish_seals(s2c_ctl.fd.get(), false));
    Fd c2s_ctl_ro = VIPC_TRY(reopen_read_only(c2s_ctl.fd.get()));
    Fd s2c_data_ro = VIPC_TRY(reopen_read_only(s2c_data.fd.get()));
    Fd state_dup(fcntl(state_fd.get(), F_DUPFD_CLOEXEC, 0));
    Fd doorbell_dup(fcntl(doorbell_fd.get(), F_DUPFD_CLOEXEC, 0));
    if (!state_dup.valid() || !doorbell_dup.valid()) {
        return fail(IpcError::OutOfMemory, "out of descriptors: %s", strerror(errno));
    }

    c->c2s_data = static_cast<Mapping&&>(c2s_data.map);
    c->c2s_ctl = static_cast<Mapping&&>(c2s_ctl.map);
    c->s2c_data = static_cast<Mapping&&>(s2c_data.map);
    c->s2c_ctl = static_cast<Mapping&&>(s2c_ctl.map);
    auto* c2s_header = new (c->c2s_data.get()) RingDataHeader{};
    auto* c2s_control = new (c->c2s_ctl.get()) RingCtl{};
    auto* s2c_header = new (c->s2c_data.get()) RingDataHeader{};
    auto* s2c_control = new (c->s2c_ctl.get()) RingCtl{};
    c->inbox.attach(words(), geometry, c2s_header, c2s_control, options.spin_ns);
    const RateLimit& limit = options.client_rate_limit;
    const u64 now = now_ns();
    const u64 burst_messages =
        limit.burst_messages != 0 ? limit.burst_messages : limit.messages_per_second;
    const u64 burst_bytes = limit.burst_bytes != 0 ? limit.burst_bytes : limit.bytes_per_second;
    c->limit_messages = TokenBucket(limit.messages_per_second, 2 * burst_messages, now);
    c->limit_bytes = TokenBucket(limit.bytes_per_second, 2 * burst_bytes, now);
    {
        DeadlineLock lock(c->outbox.mu);
        c->outbox.attach(words(), geometry, s2c_header, s2c_control, options.spin_ns);
    }

    // The loan pools (loan_pool.hpp): sealed against resizing; ours also against new
    // writable mappings (the client gets it read-only); the client's mapped read-only here.
    Fd c2s_pool_fd, s2c_pool_fd;
    if (c2s_pool_bytes != 0) {
        CreatedMemfd pool = VIPC_TRY(create_memfd("vipc-c2s-pool", c2s_pool_bytes));
        VIPC_TRY(finish_seals(pool.fd.get(), false));
        pool.map = Mapping();
        c->c2s_pool = VIPC_TRY(map_peer_memfd(pool.fd.get(), c2s_pool_bytes, false));
        c->inbox.attach_pool(c->c2s_pool.as<const u8>(), c2s_pool_bytes, LOAN_SLOTS);
        c2s_pool_fd = static_cast<Fd&&>(pool.fd);
    }
    if (s2c_pool_bytes != 0) {
        CreatedMemfd pool = VIPC_TRY(create_memfd("vipc-s2c-pool", s2c_pool_bytes));
        VIPC_TRY(finish_seals(pool.fd.get(), true));
        s2c_pool_fd = VIPC_TRY(reopen_read_only(pool.fd.get()));
        c->s2c_pool = static_cast<Mapping&&>(pool.map);
        DeadlineLock lock(c->outbox.mu);
        c->outbox.attach_pool(c->s2c_pool.as<u8>(), s2c_pool_bytes, LOAN_SLOTS, c->s2c_control());
    }

    // A slot in the ready set, armed, before the client learns of the connection.
    c->arm = &c2s_control->ready_arm;
    c->wake_word = &c2s_header->tail;
    c->limited = limits_clients;
    auto slot = ready.add(*c);
    if (!slot && receive_mu.lock_for(Blocking::No, Deadline::past())) {
        // Slots of connections gone but not yet forgotten: forget them now.
        DeadlineLock guard(receive_mu, std::adopt_lock);
        forget_gone();
        slot = ready.add(*c);
    }
    if (!slot) {
        return fail(IpcError::ResourceBusy,
                    "endpoint '%s' has no free connection slot (%u slots for max_connections %u; "
                    "connections that ended are freed by the next receive)",
                    name.c_str(), ready_map.slots, options.max_connections);
    }
    c2s_control->ready_slot = *slot;

    const u16 bits = fd_bits_for(rights, c2s_pool_bytes, s2c_pool_bytes);
    *nfds = 0;
    auto put = [&](u16 bit, Fd& fd) {
        if ((bits & bit) != 0) fds[(*nfds)++] = fd.release();
    };
    put(FdBits::C2S_DATA, c2s_data.fd);
    put(FdBits::C2S_CTL, c2s_ctl_ro);
    put(FdBits::S2C_DATA, s2c_data_ro);
    put(FdBits::S2C_CTL, s2c_ctl.fd);
    put(FdBits::STATE, state_dup);
    put(FdBits::DOORBELL, doorbell_dup);
    put(FdBits::C2S_POOL, c2s_pool_fd);
    put(FdBits::S2C_POOL, s2c_pool_fd);
    return c;
}

u16 Server::Impl::granted_rights(int sock, const ucred& cred) const {
    const AccessPolicy& policy = options.access;
    u16 rights = 0;
    if (cred.uid == geteuid() || cred.uid == 0) rights |= policy.same_user_rights;
    for (const AccessGrant& g : policy.users) {
        if (g.id == cred.uid) rights |= g.rights;
    }
    if (!policy.groups.empty()) {
        gid_t groups[256];
        socklen_t len = sizeof groups;
        int count = 0;
        if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
            count = static_cast<int>(len / sizeof(gid_t));
        }
        for (const AccessGrant& g : policy.groups) {
            bool member = g.id == cred.gid;
            for (int i = 0; i < count && !member; ++i)
                member = groups[i] == g.id;
            if (member) rights |= g.rights;
        }
    }
    return static_cast<u16>(rights & (Rights::SEND | Rights::RECEIVE));
}

void Server::Impl::log_refusal(const ucred& cred, const char* what, const char* why) {
    if (options.refusal_log == RefusalLog::Silent) return;
    const u64 now = now_ns();
    if (now - refusal_window_start >= 1'000'000'000u) {
        if (refusals_unlogged != 0) {
            std::fprintf(stderr, "vipc: endpoint '%s' refused %u more peers in the last second\n",
                         name.c_str(), refusals_unlogged);
        }
        refusal_window_start = now;
        refusals_in_window = 0;
        refusals_unlogged = 0;
    }
    if (++refusals_in_window > 10) {
        ++refusals_unlogged;
        return;
    }
    std::fprintf(stderr, "vipc: endpoint '%s' refused %s to pid %d (uid %u, gid %u): %s\n",
                 name.c_str(), what, cred.pid, cred.uid, cred.gid, why);
}

void Server::Impl::release_connection_resources(ServerConnection& c) {
    // Regions and capabilities it sent that nobody claimed: closed with the connection.
    release_unclaimed(c.unclaimed_owner);
}

void Server::Impl::answer_stat(int sock) {
    const EndpointInfo in = info();
    StatReply r{};
    r.magic = STAT_MAGIC;
    r.version = WIRE_VERSION;
    r.owner_pid = in.owner.value;
    r.owner_uid = in.owner_uid;
    r.queue_depth = in.capacity;
    r.connections = static_cast<u32>(in.per_connection.size());
    r.accepted = in.accepted;
    r.received = in.received;
    r.sent = in.sent;
    r.broken = in.broken;
    r.max_inline_payload = in.max_inline_payload;
    r.ring_bytes_per_connection = in.ring_bytes_per_connection;
    r.server_pool_bytes = in.server_pool_bytes;
    std::vector<u8> bytes(sizeof r + in.per_connection.size() * sizeof(ConnectionStatsWire));
    std::memcpy(bytes.data(), &r, sizeof r);
    for (usize i = 0; i < in.per_connection.size(); ++i) {
        const ConnectionStatsWire w = to_wire(in.per_connection[i]);
        std::memcpy(bytes.data() + sizeof r + i * sizeof w, &w, sizeof w);
    }
    // The socket is non-blocking; a stat answer is small. A reader too slow to take it
    // simply gets a truncated answer (and says so), never stalls the monitor.
    usize off = 0;
    while (off < bytes.size()) {
        const ssize_t n = send(sock, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<usize>(n);
    }
}

EndpointInfo Server::Impl::info() const {
    EndpointInfo in;
    in.name = name;
    in.owner = ProcessId{static_cast<u64>(pid)};
    in.owner_uid = geteuid();
    in.capacity = geometry.depth;
    in.max_inline_payload = geometry.max_inline_payload;
    in.ring_bytes_per_connection = 2 * (geometry.data_bytes + geometry.ctl_bytes);
    in.server_pool_bytes = (options.pool_bytes + PAGE_BYTES - 1) / PAGE_BYTES * PAGE_BYTES;
    in.accepted = accepted.load(std::memory_order_relaxed);
    in.received = received_total.load(std::memory_order_relaxed);
    in.sent = sent_total.load(std::memory_order_relaxed);
    in.broken = broken_total.load(std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(conns_mu);
    for (const auto& c : conns) {
        ConnectionStats s;
        s.id = c->id;
        s.peer = ProcessId{static_cast<u64>(c->pid)};
        s.peer_uid = c->uid;
        s.rights = c->rights;
        s.capacity = geometry.depth;
        // Racy snapshots (statistics only, never used for access).
        s.queued = count_records(geometry, c->c2s_header(), c->c2s_ctl.as<const RingCtl>());
        s.to_client_queued =
            count_records(geometry, c->s2c_data.as<const RingDataHeader>(), c->s2c_control());
        s.received = c->received.load(std::memory_order_relaxed);
        s.sent = c->sent.load(std::memory_order_relaxed);
        s.server_pool_used = c->outbox.pool_used();
        s.client_pool_held = c->inbox.pool_held();
        s.client_pool_bytes = c->inbox.pool_bytes();
        s.alive = !c->client_closed() && !c->broken.load();
        if (s.alive) ++in.connections;
        in.per_connection.push_back(s);
    }
    return in;
}

// ---- receive -----------------------------------------------------------------------------------

void Server::Impl::mark_broken(ServerConnection& c) {
    if (!c.broken.exchange(true)) {
        count_gone(c);
        broken_total.fetch_add(1, std::memory_order_relaxed);
        c.wake_local();
        note_gone();
        // Hang up on it: the client sees EndpointNotFound, our monitor sees the hang-up.
        if (c.socket.valid()) shutdown(c.socket.get(), SHUT_RDWR);
    }
}

void Server::Impl::forget_gone() {
    // Forget connections that are gone and have nothing left to deliver; their ready slots
    // go back (a mark left in one costs its next owner one check).
    gone_seen = gone_version.load(std::memory_order_acquire);
    std::lock_guard<std::mutex> lock(conns_mu);
    bool changed = false;
    for (usize i = 0; i < conns.size();) {
        ServerConnection& c = *conns[i];
        const bool gone = c.broken.load() || (c.dead.load() && c.viewed.load() == 0 &&
                                              !c.inbox.ready().value_or(true));
        if (gone) {
            release_connection_resources(c);
            ready.remove(c);
            if (c.inbox.pool_held() != 0) retired.push_back(conns[i]);
            by_id.erase(c.id);
            conns.erase(conns.begin() + static_cast<std::ptrdiff_t>(i));
            changed = true;
        } else {
            ++i;
        }
    }
    if (changed) conns_version.fetch_add(1, std::memory_order_seq_cst);
}

namespace {
// A record one thread holds as a view, per server (see "Views" above). The list ends the
// views of a thread that exits.
struct HeldView {
    u64 server = 0;  // Server::Impl::serial
    std::shared_ptr<ServerConnection> connection;
    RecordView record;
    std::shared_ptr<Server::Impl::ViewWaker> waker;
};
void end_view(HeldView& v) {
    // (V2): finish, then viewed = 0, then look for a sleeping receiver.
    v.connection->inbox.finish(v.record);
    v.connection->viewed.store(0, std::memory_order_seq_cst);
    std::lock_guard<std::mutex> lock(v.waker->mu);
    Server::Impl* impl = v.waker->impl;
    if (impl != nullptr && impl->state->waiting.load(std::memory_order_seq_cst) != 0) {
        impl->wake_receivers();
    }
}
struct ThreadViews {
    std::vector<HeldView> held;
    ~ThreadViews() {
        for (HeldView& v : held)
            end_view(v);
    }
};
thread_local ThreadViews t_views;
}  // namespace

void Server::Impl::finish_view() {
    std::vector<HeldView>& held = t_views.held;
    for (usize i = 0; i < held.size(); ++i) {
        if (held[i].server != serial) continue;
        end_view(held[i]);
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
        return;
    }
}

bool Server::Impl::finish_view_of(ConnectionId connection) {
    std::vector<HeldView>& held = t_views.held;
    for (usize i = 0; i < held.size(); ++i) {
        if (held[i].server != serial || held[i].connection->id != connection) continue;
        end_view(held[i]);
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
        return true;
    }
    return false;
}

Result<Incoming> Server::Impl::take_from(ServerConnection& c, const RecordView& record,
                                         const Taking& taking) {
    Incoming in;
    in.info.transaction_id = record.txid;
    in.info.sender = ProcessId{static_cast<u64>(c.pid)};
    in.info.connection = c.id;
    // The caller's remaining time, on our clock from now (a hint: see runtime.hpp).
    if (record.remaining_ns != 0 && record.txid != 0) {
        in.info.caller_deadline = after_ns(record.remaining_ns);
    }
    if (record.kind == RecordKind::Loan) {
        LoanDescriptor d;
        std::memcpy(&d, record.body, sizeof d);
        if (taking.how == Take::Message) {
            return fail(IpcError::MessageTooLarge,
                        "a loan of %llu bytes is waiting: take it with receive_view() or "
                        "receive_into()",
                        static_cast<unsigned long long>(d.length));
        }
        if (taking.how == Take::Into && taking.buffer.size() < d.length) {
            if (taking.needed != nullptr) *taking.needed = d.length;
            return fail(IpcError::MessageTooLarge,
                        "the buffer has %zu bytes, the loan %llu; it stays queued",
                        taking.buffer.size(), static_cast<unsigned long long>(d.length));
        }
        const std::span<const std::byte> view = VIPC_TRY(c.inbox.accept_loan(record, &d));
        in.kind = Incoming::Kind::Loan;
        in.info.opcode = d.opcode;
        in.info.flags = d.flags;
        in.info.length = d.length;
        in.loan = loan_id(d.slot, d.generation);
        if (taking.how == Take::Into) {
            if (!view.empty()) std::memcpy(taking.buffer.data(), view.data(), view.size());
            VIPC_TRY(c.inbox.release(in.loan));  // copied: the chunk goes back at once
            in.loan = 0;
        } else {
            in.payload = view;
        }
        in.message.set_sender(in.info.sender);
        in.message.set_transaction_id(record.txid);
        return in;
    }
    if (record.kind == RecordKind::Payload) {
        const PayloadHead& h = record.payload_head;
        in.kind = Incoming::Kind::Payload;
        in.info.opcode = h.opcode;
        in.info.flags = h.flags;
        in.info.length = h.length;
        if (taking.how == Take::Message) {
            // A short payload reads as a LargeMessage; a longer one stays (MessageTooLarge).
            in.message = VIPC_TRY(RecordConsumer::to_message(record));
            c.inbox.finish(record);
        } else if (taking.how == Take::Into) {
            if (taking.buffer.size() < h.length) {
                if (taking.needed != nullptr) *taking.needed = h.length;
                return fail(IpcError::MessageTooLarge,
                            "the buffer has %zu bytes, the message %u; it stays queued",
                            taking.buffer.size(), h.length);
            }
            if (h.length != 0) std::memcpy(taking.buffer.data(), record.payload, h.length);
            c.inbox.finish(record);
        } else {
            // The view: in place, until the next receive finishes it.
            in.payload = std::span<const std::byte>(record.payload, h.length);
        }
    } else {
        if (taking.how == Take::Into) {
            const usize length =
                record.kind == RecordKind::Small ? sizeof(SmallMessage) : sizeof(LargeMessage);
            if (taking.buffer.size() < length) {
                if (taking.needed != nullptr) *taking.needed = length;
                return fail(IpcError::MessageTooLarge,
                            "the buffer has %zu bytes, the message %zu; it stays queued",
                            taking.buffer.size(), length);
            }
        }
        in.message = VIPC_TRY(c.inbox.message(c, record));  // finished; attachments read
        if (in.message.is_large() &&
            in.message.large_message().region.size > options.max_region_bytes) {
            // Over the server's cap: the client's library refuses to send this, so this
            // client bypassed it. Its descriptor is closed unmapped; the caller drops it.
            Fd dropped;
            u64 size = 0;
            u32 kind = 0;
            const MemoryRegion& mr = in.message.large_message().region;
            for (const Transfer t :
                 {Transfer::Move, Transfer::ShareReadOnly, Transfer::ShareReadWrite}) {
                if (take_descriptor(mr.base, static_cast<u32>(t), &dropped, &size, &kind)) break;
            }
            over_cap_regions.fetch_add(1, std::memory_order_relaxed);
            return fail(IpcError::InvalidMemoryRegion,
                        "a region of %llu bytes is over this server's max_region_bytes",
                        static_cast<unsigned long long>(mr.size));
        }
        in.kind = in.message.is_small() ? Incoming::Kind::Small : Incoming::Kind::Large;
        in.info.opcode = in.message.opcode();
        in.info.flags = in.message.flags();
        if (taking.how == Take::Into) {
            if (in.kind == Incoming::Kind::Small) {
                std::memcpy(taking.buffer.data(), &in.message.small_message(),
                            sizeof(SmallMessage));
                in.info.length = sizeof(SmallMessage);
            } else {
                std::memcpy(taking.buffer.data(), &in.message.large_message(),
                            sizeof(LargeMessage));
                in.info.length = sizeof(LargeMessage);
            }
        }
    }
    in.message.set_sender(in.info.sender);
    in.message.set_transaction_id(record.txid);
    return in;
}

void Server::Impl::drain_notify() {
    takes_since_drain = 0;
    poll.drain(OnPeerHangup::Forget);
}

namespace {
// The receive lock holder's side of the ready set's sleep: futex_waitv on the bell, the polled
// connections' tails and rx_private; on a kernel without it, the bell alone (then close()
// and the end of a view ring the bell too: wake_receivers()).
class ReceiveWaiter final : public ReadyWaiter {
public:
    ReceiveWaiter(const std::atomic<bool>& closed, ServerState* state, std::atomic<u32>& rx_private,
                  bool& have_waitv, u32 peer_cpu)
        : closed_(closed),
          state_(state),
          rx_private_(rx_private),
          have_waitv_(have_waitv),
          peer_cpu_(peer_cpu) {}
    Result<void> check() override {
        if (closed_.load(std::memory_order_acquire)) return IpcError::EndpointNotFound;
        return ok();
    }
    std::atomic<u32>& waiting() override { return state_->waiting; }
    const std::atomic<u32>* private_word() override { return have_waitv_ ? &rx_private_ : nullptr; }
    long sleep(const std::atomic<u32>* const* words_to_wait, const u32* values, u32 count,
               u64 until_ns) override {
        if (have_waitv_) {
            const long r = futex_wait_any(words_to_wait, values, count, -1, until_ns);
            if (r != -2) return r;
            have_waitv_ = false;  // an old kernel: the bell alone from now on; look again
            return -1;
        }
        if (count == 0) {
            std::atomic<u32> never{0};
            (void)words().wait(&never, 0, Deadline::at(until_ns));
            return -1;
        }
        return words().wait(words_to_wait[0], values[0], Deadline::at(until_ns)) ==
                       WaitResult::TimedOut
                   ? -1
                   : 0;
    }
    u32 sleep_capacity() override { return have_waitv_ ? FUTEX_WAIT_ANY_MAX : 1; }
    u32 peer_cpu() override { return peer_cpu_; }

private:
    const std::atomic<bool>& closed_;
    ServerState* state_;
    std::atomic<u32>& rx_private_;
    bool& have_waitv_;
    u32 peer_cpu_;
};
}  // namespace

Result<Incoming> Server::Impl::receive(const Taking& taking, Blocking blocking, Deadline deadline) {
    if (closed.load(std::memory_order_acquire)) {
        return fail(IpcError::EndpointNotFound, "endpoint '%s' is closed", name.c_str());
    }
    finish_view();  // (V2) this thread's view, before anything else
    // Another receiving thread holds the consumer side: it takes what arrives, then we do.
    if (!lock_counting_parked(receive_mu, blocking, deadline, waiting_receivers)) {
        return blocking == Blocking::Yes ? IpcError::Timeout : IpcError::ChannelEmpty;
    }
    DeadlineLock guard(receive_mu, std::adopt_lock);
    if (gone_version.load(std::memory_order_acquire) != gone_seen) forget_gone();
    SharedWords& w = words();
    const u32 me = w.cpu_hint();
    if (state->cpu.load(std::memory_order_relaxed) != me)
        state->cpu.store(me, std::memory_order_relaxed);
    ReceiveWaiter waiter(closed, state, rx_private, have_waitv,
                         last_client_cpu.load(std::memory_order_relaxed));
    bool drained = false;
    for (;;) {
        Result<ReadyMember*> got = IpcError::ChannelEmpty;
        if (blocking == Blocking::Yes) {
            ParkedScope parked(waiting_receivers);
            got = ready.wait_ready(waiter, receive_spin, blocking, deadline);
        } else {
            got = ready.wait_ready(waiter, receive_spin, blocking, deadline);
        }
        spurious_wakes.store(ready.spurious_wakes(), std::memory_order_relaxed);
        if (!got) {
            if (got.error() == IpcError::EndpointNotFound) {
                return fail(IpcError::EndpointNotFound, "endpoint '%s' is closed", name.c_str());
            }
            if (got.error() != IpcError::ChannelEmpty || blocking == Blocking::Yes) {
                return got.error();
            }
            if (state->poll_armed.load(std::memory_order_relaxed) == 0 || drained) {
                return IpcError::ChannelEmpty;
            }
            // Re-arm the pollable descriptor: drain it, then look once more (steps (3), (4)
            // of pollable.hpp: a client that published after our pass has sent its
            // notification frame, or we see its record now).
            drain_notify();
            drained = true;
            continue;
        }
        ServerConnection& c = static_cast<ServerConnection&>(**got);
        auto record = c.inbox.ring().peek();
        if (!record) {
            if (record.error() != IpcError::ChannelEmpty) mark_broken(c);
            continue;
        }
        auto in = take_from(c, *record, taking);
        if (!in) {
            if (in.error() == IpcError::MessageTooLarge) return in.error();  // stays queued
            mark_broken(c);
            continue;
        }
        if (state->poll_armed.load(std::memory_order_relaxed) != 0 &&
            ++takes_since_drain >= DRAIN_EVERY_TAKES) {
            // A server that always finds a message never reaches step (3): the frames of
            // busy clients would pile up in their sockets until the records of their
            // attachments waited for room. Drain the sockets now and then (not the local
            // signals: this is no step (3), what they stand for is looked at anyway).
            takes_since_drain = 0;
            poll.drain(OnPeerHangup::Forget, LocalSignals::Keep);
        }
        if (taking.how == Take::View && record->kind == RecordKind::Payload) {
            // (V1)
            c.viewed.store(1, std::memory_order_relaxed);
            t_views.held.push_back(HeldView{serial, c.shared_from_this(), *record, view_waker});
        }
        if (limits_clients)
            c.charge_bytes(in->kind == Incoming::Kind::Payload ? in->info.length
                           : in->message.is_small()
                               ? sizeof(SmallMessage)
                               : in->message.large_message().header.total_size);
        bump(c.received);
        bump(received_total);
        if (c.dead.load(std::memory_order_relaxed)) note_gone();  // forget it once drained
        // The client's CPU (a hint it publishes when it waits: for a reply, in the s2c
        // ring's ctl page; for space, in its c2s data page).
        const u32 hint = c.s2c_control()->cpu.load(std::memory_order_relaxed);
        last_client_cpu.store(
            hint != 0 ? hint : c.c2s_header()->cpu.load(std::memory_order_relaxed),
            std::memory_order_relaxed);
        return in;
    }
}

// ---- send and reply ----------------------------------------------------------------------------

std::shared_ptr<ServerConnection> Server::Impl::find(ConnectionId id) const {
    std::lock_guard<std::mutex> lock(conns_mu);
    const auto it = by_id.find(id);
    return it != by_id.end() ? it->second : nullptr;
}

namespace {
// The OutboxOwner of one send to one client.
class ServerSend final : public OutboxOwner {
public:
    ServerSend(const std::atomic<bool>& server_closed, ServerConnection& c, IpcError gone,
               std::atomic<u32>& parked)
        : server_closed_(server_closed), c_(c), gone_(gone), parked_(parked) {}
    std::atomic<u32>& parked_senders() override { return parked_; }
    Result<void> check(bool) override {
        if (server_closed_.load(std::memory_order_acquire)) return IpcError::EndpointNotFound;
        if (c_.broken.load(std::memory_order_acquire)) return IpcError::InvalidMessage;
        if (c_.client_closed()) return gone_;
        return ok();
    }
    const std::atomic<u32>* local_wake() override { return &c_.wake_epoch; }
    // The record itself wakes a sleeping client (P6); a polling one gets a frame
    // (pollable.hpp).
    void published() override {
        if (c_.s2c_control()->poll_armed.load(std::memory_order_seq_cst) != 0) {
            notify_peer(c_.socket.get());
        }
    }
    int attachment_socket() override { return c_.socket.get(); }
    u32 peer_cpu() override { return c_.s2c_control()->cpu.load(std::memory_order_relaxed); }

private:
    const std::atomic<bool>& server_closed_;
    ServerConnection& c_;
    IpcError gone_;
    std::atomic<u32>& parked_;
};
}  // namespace

Result<void> Server::Impl::send_to(ConnectionId to, OutgoingRecord record, Answer answer,
                                   Blocking blocking, Deadline deadline) {
    if (answer == Answer::Reply && record.txid == 0) {
        return fail(IpcError::InvalidMessage,
                    "reply to a message that is not a call (it has no transaction id); use "
                    "send_sync to answer a plain message");
    }
    const IpcError gone =
        answer == Answer::Reply ? IpcError::ProcessNotFound : IpcError::EndpointNotFound;
    if (closed.load(std::memory_order_acquire)) {
        return fail(IpcError::EndpointNotFound, "endpoint '%s' is closed", name.c_str());
    }
    std::shared_ptr<ServerConnection> c = find(to);
    if (c == nullptr) {
        return fail(gone, "endpoint '%s' has no connection %llu (the client is gone)", name.c_str(),
                    static_cast<unsigned long long>(to));
    }
    if ((c->rights & Rights::RECEIVE) == 0) {
        return fail(IpcError::PermissionDenied,
                    "client pid %d of '%s' connected without RECEIVE: it cannot get messages",
                    c->pid, name.c_str());
    }
    ServerSend owner(closed, *c, gone, waiting_senders);
    // A reply never waits for the client (a client that does not read its replies cannot
    // stall the server): a full ring drops it with ChannelFull. It may wait, briefly, for
    // another thread of ours that holds this connection's outbox (another receiving thread,
    // preempted in the middle of its send): SERVER_LOCK_WAIT_NS at most.
    if (answer == Answer::Reply) blocking = Blocking::No;
    auto r = c->outbox.send(owner, record, blocking, deadline,
                            blocking == Blocking::No ? SERVER_LOCK_WAIT_NS : 0);
    if (r) {
        bump(c->sent);  // single writer per connection: the outbox lock was just released,
        sent_total.fetch_add(1, std::memory_order_relaxed);  // so two senders may race here:
        return ok();                                         // statistics only
    }
    if (r.error() == IpcError::ChannelFull) {
        return fail(IpcError::ChannelFull,
                    "client pid %d of '%s' has unread messages filling its ring; the %s was "
                    "dropped",
                    c->pid, name.c_str(), answer == Answer::Reply ? "reply" : "message");
    }
    if (r.error() == IpcError::InvalidMessage && !c->broken.load()) {
        mark_broken(*c);
        return fail(IpcError::InvalidMessage,
                    "client pid %d of '%s' corrupted its ring; connection dropped", c->pid,
                    name.c_str());
    }
    return r.error();
}

Result<void> Server::Impl::send_message_to(ConnectionId to, const Message& msg, TransactionId txid,
                                           Answer answer, Blocking blocking, Deadline deadline,
                                           const OutgoingAttachment* attachment) {
    if (attachment == nullptr || attachment->is_capability()) VIPC_TRY(check_sendable(msg));
    Message out = msg;
    if (answer == Answer::Reply) out.set_flags(out.flags() | MessageFlags::IS_REPLY);
    OutgoingRecord record;
    record.message = &out;
    record.txid = txid;
    record.attachment = attachment;
    return send_to(to, record, answer, blocking, deadline);
}

Result<void> Server::Impl::send_payload_to(ConnectionId to, u32 opcode, u32 flags,
                                           std::span<const std::byte> payload, TransactionId txid,
                                           Answer answer, Blocking blocking, Deadline deadline) {
    if (payload.size() > geometry.max_inline_payload) {
        return fail(IpcError::MessageTooLarge,
                    "a %zu-byte payload is over the %u-byte inline limit of '%s' "
                    "(ServerOptions::max_inline_payload); send a Region for more",
                    payload.size(), geometry.max_inline_payload, name.c_str());
    }
    OutgoingRecord record;
    record.kind = OutgoingRecord::Kind::Payload;
    record.opcode = opcode;
    record.flags =
        (flags & ~(MessageFlags::IS_REPLY | MessageFlags::HAS_CAPABILITY | ERROR_REPLY)) |
        (answer == Answer::Reply ? MessageFlags::IS_REPLY : 0);
    record.payload = payload;
    record.txid = txid;
    return send_to(to, record, answer, blocking, deadline);
}

Result<void> Server::Impl::send_capability_to(ConnectionId to, const Message& msg,
                                              std::span<const EndpointCapability> given,
                                              TransactionId txid, Answer answer,
                                              Deadline deadline) {
    const OutgoingAttachment att = VIPC_TRY(OutgoingAttachment::capabilities(given));
    return send_message_to(to, msg, txid, answer, Blocking::Yes, deadline, &att);
}

Result<void> Server::Impl::send_region_to(ConnectionId to, const Message& msg, Region& region,
                                          Transfer transfer, TransactionId txid, Answer answer,
                                          Blocking blocking, Deadline deadline) {
    Message out = VIPC_TRY(prepare_region_message(msg, region, transfer));
    if (transfer == Transfer::Copy) {
        return send_message_to(to, out, txid, answer, blocking, deadline);
    }
    if (transfer == Transfer::Move) VIPC_TRY(Region::Access::seal_for_move(region));
    const OutgoingAttachment outgoing = OutgoingAttachment::region(
        VIPC_TRY(Region::Access::descriptor_for(region, transfer)), transfer);
    VIPC_TRY(send_message_to(to, out, txid, answer, blocking, deadline, &outgoing));
    if (transfer == Transfer::Move) region.reset();  // the sender loses access
    return ok();
}

// ---- capabilities ------------------------------------------------------------------------------

void Server::Impl::watch_new_caps(int epfd) {
    std::lock_guard<std::mutex> lock(caps_mu);
    for (CapEntry& e : caps) {
        if (e.watched || !e.socket.valid()) continue;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.u64 = TAG_CAPABILITY | e.id;
        epoll_ctl(epfd, EPOLL_CTL_ADD, e.socket.get(), &ev);
        e.watched = true;
    }
}

void Server::Impl::handle_cap_request(CapabilityId id, int epfd, PendingHandshakes& pending) {
    std::lock_guard<std::mutex> lock(caps_mu);
    CapEntry* e = find_cap(id);
    if (e == nullptr || !e->socket.valid()) return;
    CapRequest req{};
    int fds[MAX_WELCOME_FDS];
    int nfds = 0;
    bool truncated = false;
    const long n = receive_with_fds(e->socket.get(), &req, sizeof req, fds, MAX_WELCOME_FDS, &nfds,
                                    &truncated);
    Fd received[MAX_WELCOME_FDS];
    for (int i = 0; i < nfds; ++i)
        received[i] = Fd(fds[i]);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        // Every holder let go (or we shut it down revoking it): stop watching.
        epoll_ctl(epfd, EPOLL_CTL_DEL, e->socket.get(), nullptr);
        e->socket.reset();
        return;
    }
    // Anything malformed, and anything asked of a revoked capability, is dropped (the
    // holder's new socket end closes: it sees a hang-up).
    if (e->revoked || truncated || n != static_cast<long>(sizeof req) || nfds != 1 ||
        req.magic != CAP_REQUEST_MAGIC) {
        return;
    }
    const u16 rights = static_cast<u16>(req.rights & e->rights);
    const int s = received[0].get();
    if (req.op == static_cast<u16>(CapOp::Connect)) {
        // The new socket is a connection socket whose Hello follows, as from accept().
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.u64 = TAG_SOCKET_BASE + static_cast<u64>(s);
        epoll_ctl(epfd, EPOLL_CTL_ADD, s, &ev);
        if (const u32 dropped = pending.add(static_cast<Fd&&>(received[0]), id, now_ns());
            dropped != 0) {
            half_open_dropped.fetch_add(dropped, std::memory_order_relaxed);
        }
    } else if (req.op == static_cast<u16>(CapOp::Derive)) {
        const CapabilityId child = next_cap++;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.u64 = TAG_CAPABILITY | child;
        epoll_ctl(epfd, EPOLL_CTL_ADD, s, &ev);
        caps.push_back(CapEntry{child, id, rights, false, true, static_cast<Fd&&>(received[0])});
    }
}

void Server::Impl::end_revoked(ServerConnection& c) {
    close_consumer_side(words(), c.c2s_ctl.as<RingCtl>(), CLOSED_REVOKED);
    close_producer_side(words(), c.s2c_data.as<RingDataHeader>(), CLOSED_REVOKED);
    c.dead.store(true, std::memory_order_seq_cst);
    count_gone(c);
    c.wake_local();
    note_gone();
    if (c.socket.valid()) shutdown(c.socket.get(), SHUT_RDWR);
}

Result<void> Server::Impl::revoke(CapabilityId id) {
    std::vector<CapabilityId> gone;
    {
        // (1) the capability and, transitively, every one derived from it
        std::lock_guard<std::mutex> lock(caps_mu);
        if (find_cap(id) == nullptr) {
            return fail(IpcError::InvalidCapability, "endpoint '%s' minted no capability %llu",
                        name.c_str(), static_cast<unsigned long long>(id));
        }
        gone.push_back(id);
        for (bool grew = true; grew;) {
            grew = false;
            for (const CapEntry& e : caps) {
                bool parent_gone = false;
                bool listed = false;
                for (const CapabilityId g : gone) {
                    parent_gone = parent_gone || e.parent == g;
                    listed = listed || e.id == g;
                }
                if (parent_gone && !listed) {
                    gone.push_back(e.id);
                    grew = true;
                }
            }
        }
        for (const CapabilityId g : gone) {
            CapEntry* e = find_cap(g);
            e->revoked = true;
            if (e->socket.valid()) {
                const char last = CAP_REVOKED_BYTE;
                if (send(e->socket.get(), &last, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
                }
                shutdown(e->socket.get(), SHUT_RDWR);
            }
        }
    }
    // (2) every connection made through one of them
    std::lock_guard<std::mutex> lock(conns_mu);
    for (const auto& c : conns) {
        for (const CapabilityId g : gone) {
            if (c->capability == g) end_revoked(*c);
        }
    }
    return ok();
}

// ---- close -------------------------------------------------------------------------------------

void Server::Impl::close() {
    std::lock_guard<std::mutex> close_lock(close_mu);
    const bool was_open = !closed.exchange(true, std::memory_order_acq_rel);
    if (state != nullptr && was_open) {
        // (1) tell the clients, in the pages they read, (2) wake them, (3) hang up.
        state->closed.store(1, std::memory_order_release);
        std::lock_guard<std::mutex> lock(conns_mu);
        for (const auto& c : conns) {
            close_consumer_side(words(), c->c2s_ctl.as<RingCtl>(), 1);
            close_producer_side(words(), c->s2c_data.as<RingDataHeader>(), 1);
            c->wake_local();  // our own blocked senders
            if (c->socket.valid()) shutdown(c->socket.get(), SHUT_RDWR);
        }
    }
    {
        // Holders of our capabilities see the endpoint gone (EndpointNotFound).
        std::lock_guard<std::mutex> lock(caps_mu);
        for (CapEntry& e : caps) {
            if (e.socket.valid()) shutdown(e.socket.get(), SHUT_RDWR);
        }
    }
    wake_receivers();     // our blocked receivers (they read `closed` after rx_private)
    poll.signal_local();  // a poller looks and gets EndpointNotFound
    if (monitor.joinable()) {
        const u64 one = 1;
        if (write(monitor_wake.get(), &one, sizeof one) < 0) {
        }
        monitor.join();
    }
    if (owns_name) {
        // Unpublish: remove the socket, then the lock file while we still hold the lock.
        unlinkat(opened_dir.fd.get(), socket_file.c_str(), 0);
        unlinkat(opened_dir.fd.get(), lock_file.c_str(), 0);
        owns_name = false;
    }
    listen_fd.reset();
    lock_fd.reset();  // releases the record lock
    if (claimed_lock) {
        held_locks().release(lock_key);
        claimed_lock = false;
    }
}

Result<Server> Server::publish(std::string_view name, const ServerOptions& options) {
    clear_error_detail();
    auto impl = std::make_shared<Impl>();
    impl->name = std::string(name);
    impl->options = options;
    impl->dir = resolve_runtime_dir(options.runtime_dir);
    const u32 max_inline = options.max_inline_payload < MAX_INLINE_PAYLOAD_LIMIT
                               ? options.max_inline_payload
                               : MAX_INLINE_PAYLOAD_LIMIT;
    impl->geometry = *RingGeometry::make(normalize_depth(options.capacity), max_inline, LOAN_SLOTS);
    impl->limits_clients = options.client_rate_limit.messages_per_second != 0 ||
                           options.client_rate_limit.bytes_per_second != 0;
    {
        DeadlineLock lock(impl->receive_mu);
        impl->receive_spin = SpinBudget(options.spin_ns);
    }
    if (auto r = impl->start(); !r) {
        const IpcError e = r.error();
        impl->close();
        return e;
    }
    return Server(static_cast<std::shared_ptr<Impl>&&>(impl));
}

// ---- the public class --------------------------------------------------------------------------

Server::Server(std::shared_ptr<Impl> impl) : impl_(static_cast<std::shared_ptr<Impl>&&>(impl)) {}
Server::Server(Server&&) noexcept = default;
Server& Server::operator=(Server&& o) noexcept {
    if (this != &o) {
        if (impl_) impl_->close();
        impl_ = static_cast<std::shared_ptr<Impl>&&>(o.impl_);
    }
    return *this;
}
Server::~Server() {
    if (impl_) impl_->close();
}

namespace {
const std::string& empty_name() {
    static const std::string empty;
    return empty;
}
IpcError moved_from() {
    return fail(IpcError::InvalidCapability, "the Server object was moved from");
}
}  // namespace

const std::string& Server::name() const {
    return impl_ ? impl_->name : empty_name();
}

namespace {
Received to_received(const Incoming& in) {
    Received r;
    r.message = in.message;
    r.connection = in.info.connection;
    r.caller_deadline = in.info.caller_deadline;
    return r;
}
}  // namespace

Result<Received> Server::receive_sync(Deadline deadline) {
    if (!impl_) return moved_from();
    return to_received(VIPC_TRY(impl_->receive(Impl::Taking{}, Blocking::Yes, deadline)));
}

Result<Received> Server::try_receive() {
    if (!impl_) return moved_from();
    return to_received(VIPC_TRY(impl_->receive(Impl::Taking{}, Blocking::No, Deadline::past())));
}

Result<Incoming> Server::receive_view(Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->receive(Impl::Taking{Impl::Take::View, {}, nullptr}, Blocking::Yes, deadline);
}

Result<Incoming> Server::try_receive_view() {
    if (!impl_) return moved_from();
    return impl_->receive(Impl::Taking{Impl::Take::View, {}, nullptr}, Blocking::No,
                          Deadline::past());
}

Result<PayloadInfo> Server::receive_into(std::span<std::byte> buffer, usize* needed,
                                         Deadline deadline) {
    if (!impl_) return moved_from();
    return VIPC_TRY(impl_->receive(Impl::Taking{Impl::Take::Into, buffer, needed}, Blocking::Yes,
                                   deadline))
        .info;
}

Result<Loan> Server::loan(ConnectionId to, usize size, Deadline deadline) {
    if (!impl_) return moved_from();
    Impl& s = *impl_;
    std::shared_ptr<ServerConnection> c = s.find(to);
    if (c == nullptr) {
        return fail(IpcError::EndpointNotFound, "endpoint '%s' has no connection %llu",
                    s.name.c_str(), static_cast<unsigned long long>(to));
    }
    ServerSend owner(s.closed, *c, IpcError::EndpointNotFound, s.waiting_senders);
    return c->outbox.loan(owner, size, deadline);
}

Result<void> Server::send_loan(ConnectionId to, Loan& loan, usize length, u32 opcode, u32 flags,
                               Deadline deadline) {
    if (!impl_) return moved_from();
    OutgoingRecord record;
    record.kind = OutgoingRecord::Kind::Loan;
    record.loan = loan.id;
    record.loan_length = length;
    record.opcode = opcode;
    record.flags = flags & ~(MessageFlags::IS_REPLY | MessageFlags::HAS_CAPABILITY | ERROR_REPLY);
    VIPC_TRY(impl_->send_to(to, record, Impl::Answer::Send, Blocking::Yes, deadline));
    loan = Loan{};
    return ok();
}

Result<void> Server::reply_loan(const Incoming& request, Loan& loan, usize length, u32 opcode,
                                u32 flags, Deadline deadline) {
    if (!impl_) return moved_from();
    OutgoingRecord record;
    record.kind = OutgoingRecord::Kind::Loan;
    record.loan = loan.id;
    record.loan_length = length;
    record.opcode = opcode;
    record.flags =
        (flags & ~(MessageFlags::IS_REPLY | MessageFlags::HAS_CAPABILITY)) | MessageFlags::IS_REPLY;
    record.txid = request.info.transaction_id;
    VIPC_TRY(impl_->send_to(request.info.connection, record, Impl::Answer::Reply, Blocking::Yes,
                            deadline));
    loan = Loan{};
    return ok();
}

Result<void> Server::cancel_loan(ConnectionId to, Loan& loan) {
    if (!impl_) return moved_from();
    std::shared_ptr<ServerConnection> c = impl_->find(to);
    if (c == nullptr) return IpcError::EndpointNotFound;
    VIPC_TRY(c->outbox.cancel_loan(loan.id));
    loan = Loan{};
    return ok();
}

Result<void> Server::release(const Incoming& received) {
    if (!impl_) return moved_from();
    if (received.kind == Incoming::Kind::Payload) {
        if (impl_->finish_view_of(received.info.connection)) return ok();
        return fail(IpcError::InvalidCapability,
                    "this thread holds no view of that message (ended by a later receive, or "
                    "released twice)");
    }
    if (received.kind != Incoming::Kind::Loan || received.loan == 0) {
        return fail(IpcError::InvalidCapability, "this message is not a loan");
    }
    std::shared_ptr<ServerConnection> c = impl_->find(received.info.connection);
    if (c != nullptr) return c->inbox.release(received.loan);
    // A client that is gone: its pool stays mapped until we let go of its last loan.
    std::lock_guard<std::mutex> lock(impl_->conns_mu);
    auto& retired = impl_->retired;
    for (usize i = 0; i < retired.size(); ++i) {
        if (retired[i]->id != received.info.connection) continue;
        VIPC_TRY(retired[i]->inbox.release(received.loan));
        if (retired[i]->inbox.pool_held() == 0) {
            retired.erase(retired.begin() + static_cast<std::ptrdiff_t>(i));
        }
        return ok();
    }
    return fail(IpcError::InvalidCapability, "this loan is not held here (released twice?)");
}

Result<PoolUse> Server::pool_use(ConnectionId connection) const {
    if (!impl_) return moved_from();
    std::shared_ptr<ServerConnection> c = impl_->find(connection);
    if (c == nullptr) return IpcError::EndpointNotFound;
    PoolUse u;
    u.send_pool_bytes = c->outbox.pool_bytes();
    u.send_pool_used = c->outbox.pool_used();
    u.receive_pool_bytes = c->inbox.pool_bytes();
    u.receive_pool_held = c->inbox.pool_held();
    return u;
}

u32 Server::max_inline_payload() const {
    return impl_ ? impl_->geometry.max_inline_payload : 0;
}

Result<void> Server::send_sync(ConnectionId to, u32 opcode, u32 flags,
                               std::span<const std::byte> payload, Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->send_payload_to(to, opcode, flags, payload, 0, Impl::Answer::Send, Blocking::Yes,
                                  deadline);
}

Result<void> Server::send_async(ConnectionId to, u32 opcode, u32 flags,
                                std::span<const std::byte> payload) {
    if (!impl_) return moved_from();
    return impl_->send_payload_to(to, opcode, flags, payload, 0, Impl::Answer::Send, Blocking::No,
                                  Deadline::past());
}

Result<void> Server::reply(const Received& request, u32 opcode, u32 flags,
                           std::span<const std::byte> payload, Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->send_payload_to(request.connection, opcode, flags, payload,
                                  request.message.transaction_id(), Impl::Answer::Reply,
                                  Blocking::Yes, deadline);
}

Result<void> Server::reply(const Incoming& request, u32 opcode, u32 flags,
                           std::span<const std::byte> payload, Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->send_payload_to(request.info.connection, opcode, flags, payload,
                                  request.info.transaction_id, Impl::Answer::Reply, Blocking::Yes,
                                  deadline);
}

Result<void> Server::reply(const Received& request, const Message& response, Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->send_message_to(request.connection, response, request.message.transaction_id(),
                                  Impl::Answer::Reply, Blocking::Yes, deadline);
}

Result<void> Server::send_sync(ConnectionId to, const Message& msg, Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->send_message_to(to, msg, 0, Impl::Answer::Send, Blocking::Yes, deadline);
}

Result<void> Server::send_async(ConnectionId to, const Message& msg) {
    if (!impl_) return moved_from();
    return impl_->send_message_to(to, msg, 0, Impl::Answer::Send, Blocking::No, Deadline::past());
}

Result<void> Server::send_sync(ConnectionId to, const Message& msg, Region& region,
                               Transfer transfer, Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->send_region_to(to, msg, region, transfer, 0, Impl::Answer::Send, Blocking::Yes,
                                 deadline);
}

Result<void> Server::send_async(ConnectionId to, const Message& msg, Region& region,
                                Transfer transfer) {
    if (!impl_) return moved_from();
    return impl_->send_region_to(to, msg, region, transfer, 0, Impl::Answer::Send, Blocking::No,
                                 Deadline::past());
}

Result<void> Server::reply(const Received& request, const Message& response, Region& region,
                           Transfer transfer, Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->send_region_to(request.connection, response, region, transfer,
                                 request.message.transaction_id(), Impl::Answer::Reply,
                                 Blocking::Yes, deadline);
}

Result<MintedCapability> Server::mint_capability(u16 rights) {
    if (!impl_) return moved_from();
    Impl& s = *impl_;
    if (s.closed.load()) {
        return fail(IpcError::EndpointNotFound, "endpoint '%s' is closed", s.name.c_str());
    }
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        return fail(IpcError::OutOfMemory, "socketpair(): %s", strerror(errno));
    }
    Fd ours(pair[0]);
    Fd theirs(pair[1]);
    if (fcntl(ours.get(), F_SETFL, O_NONBLOCK) != 0) {
        return fail(IpcError::OutOfMemory, "fcntl(): %s", strerror(errno));
    }
    const u16 kept = static_cast<u16>(rights & Rights::ALL);
    MintedCapability out;
    {
        std::lock_guard<std::mutex> lock(s.caps_mu);
        out.id = s.next_cap++;
        s.caps.push_back(Impl::CapEntry{out.id, 0, kept, false, false, static_cast<Fd&&>(ours)});
    }
    const u64 one = 1;
    if (write(s.caps_wake.get(), &one, sizeof one) < 0) {
    }
    out.capability = EndpointCapability::Access::adopt(theirs.release(), kept);
    return out;
}

Result<void> Server::revoke(CapabilityId id) {
    if (!impl_) return moved_from();
    return impl_->revoke(id);
}

Result<void> Server::send_sync(ConnectionId to, const Message& msg,
                               const EndpointCapability& capability, Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->send_capability_to(to, msg, std::span<const EndpointCapability>(&capability, 1),
                                     0, Impl::Answer::Send, deadline);
}

Result<void> Server::send_sync(ConnectionId to, const Message& msg,
                               std::span<const EndpointCapability> capabilities,
                               Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->send_capability_to(to, msg, capabilities, 0, Impl::Answer::Send, deadline);
}

Result<void> Server::reply(const Received& request, const Message& response,
                           const EndpointCapability& capability, Deadline deadline) {
    if (!impl_) return moved_from();
    return impl_->send_capability_to(
        request.connection, response, std::span<const EndpointCapability>(&capability, 1),
        request.message.transaction_id(), Impl::Answer::Reply, deadline);
}

Result<void> Server::disconnect(ConnectionId connection) {
    if (!impl_) return moved_from();
    std::shared_ptr<ServerConnection> c = impl_->find(connection);
    if (c == nullptr) return IpcError::EndpointNotFound;
    close_consumer_side(words(), c->c2s_ctl.as<RingCtl>(), 1);
    close_producer_side(words(), c->s2c_data.as<RingDataHeader>(), 1);
    c->dead.store(true, std::memory_order_seq_cst);
    impl_->count_gone(*c);
    c->wake_local();
    impl_->note_gone();
    if (c->socket.valid()) shutdown(c->socket.get(), SHUT_RDWR);
    return ok();
}

Result<void> Server::close() {
    if (!impl_) return moved_from();
    impl_->close();
    return ok();
}

int Server::pollable_fd() {
    if (!impl_) return -1;
    // Steps (1), (2) of pollable.hpp: clients signal from now on; the first poll looks.
    impl_->state->poll_armed.store(1, std::memory_order_seq_cst);
    impl_->poll.signal_local();
    return impl_->poll.fd();
}

Result<void> Server::reply_error(const Received& request, IpcError error, Deadline deadline) {
    return reply_error(request, error, std::string_view{}, deadline);
}

Result<void> Server::reply_error(const Received& request, IpcError error, std::string_view detail,
                                 Deadline) {
    if (!impl_) return moved_from();
    const int code = error_code(error);
    IpcError checked;
    if (!error_from_code(code, &checked)) {
        return fail(IpcError::InvalidMessage,
                    "reply_error: %d is not an IpcError code (they are -1..-%d)", code,
                    IPC_ERROR_KIND_COUNT);
    }
    if (request.message.transaction_id() == 0) {
        return fail(IpcError::InvalidMessage,
                    "reply to a message that is not a call (it has no transaction id); use "
                    "send_sync to answer a plain message");
    }
    return impl_->send_message_to(request.connection, error_reply_message(checked, detail),
                                  request.message.transaction_id(), Impl::Answer::Reply,
                                  Blocking::No, Deadline::past());
}

std::vector<ConnectionId> Server::connections() const {
    std::vector<ConnectionId> out;
    if (!impl_) return out;
    std::lock_guard<std::mutex> lock(impl_->conns_mu);
    for (const auto& c : impl_->conns) {
        if (!c->client_closed() && !c->broken.load()) out.push_back(c->id);
    }
    return out;
}

EndpointInfo Server::info() const {
    return impl_ ? impl_->info() : EndpointInfo{};
}

Result<EndpointStats> Server::stats() const {
    if (!impl_) return moved_from();
    const Impl& s = *impl_;
    const EndpointInfo in = s.info();
    EndpointStats out;
    out.sent = in.sent;
    out.received = in.received;
    out.capacity = in.capacity;
    for (const ConnectionStats& c : in.per_connection)
        out.queued += c.queued;
    out.waiting_receivers = s.waiting_receivers.load(std::memory_order_seq_cst);
    out.waiting_senders = s.waiting_senders.load(std::memory_order_seq_cst);
    out.active = !s.closed.load(std::memory_order_acquire);
    return out;
}

}  // namespace veridian::ipc::posix
