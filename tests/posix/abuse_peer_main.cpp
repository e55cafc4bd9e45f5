// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc_abuse_peer: the hostile or careless other process of the posix runtime's security
// tests. Each role connects to (or publishes) an endpoint, prints "READY" on stdout once it is
// doing its part, and keeps doing it until it is killed. Errors go to stderr, exit status 2.
//
// Every role runs at nice 19: the tests measure what the protocol lets an abuser do to the
// others, not the CPU a busy loop takes on a two-CPU machine (any busy process slows its
// neighbours there, and scheduling priorities are the answer to that).
//
// Usage: vipc_abuse_peer <role> <runtime-dir> <name> [arguments...]
//   stuck-caller        connect; make calls that give up at once (Deadline::past()) and never
//                       read a reply, forever: its server→client ring fills with replies
//                       nobody takes. READY after 4 × its depth calls.
//   doorbell-hammer <how>  connect (SEND only); then, sending nothing, in a loop: bump the
//                       server's shared doorbell word ("bump"), bump it and FUTEX_WAKE it
//                       ("wake"), or FUTEX_WAKE its own c2s tail word ("tail": the word the
//                       server sleeps on for this client)
//   flooder             connect (SEND only); send_async OP_DATA as fast as the ring takes them
//   as-user <uid> <role> [args]  drop to that uid (gid = uid, no supplementary groups), then
//                       play <role> (needs root)
//   connect-report <rights>  connect ("s", "r" or "sr"), print "CONNECTED", or "REFUSED <error>
//                       <detail>", and exit 0
//   stat-report         stat_endpoint, print "STAT <connections>" or "REFUSED <error> <detail>"
//   publish-report      publish; print "PUBLISHED" and wait, or "REFUSED <error> <detail>"
//   policy-server <uid>:<rights>...  publish with those AccessPolicy::users grants (rights "s",
//                       "r", "sr"); its stderr goes to stdout; print READY; answer every call
//   raw-listener <uid>  bind the name's socket (as root), drop to uid, then listen: a server
//                       the kernel reports as that uid; print READY, then for each client
//                       "ACCEPTED" and "GOT <bytes it sent within 300 ms>"
//   fork-holder-client  connect; fork() a child that only waits (it holds every descriptor);
//                       print "READY <child pid>"; wait
//   fork-holder-server  publish; fork() such a child; print "READY <child pid>"; print "GOT"
//                       for each message received, never answer
//   half-open <count>   open <count> sockets to the name's socket file and never send a byte;
//                       print "READY <how many connected>"; wait
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "posix/loan_pool.hpp"
#include "posix/record_ring.hpp"
#include "posix/server_pages.hpp"
#include "test_ops.hpp"
#include "veridian/ipc/posix/runtime.hpp"

using namespace veridian::ipc;
using namespace veridian::ipc::posix;

namespace {

[[noreturn]] void die(const char* what, IpcError e) {
    std::fprintf(stderr, "vipc_abuse_peer: %s: %s (%s)\n", what, error_name(e),
                 last_error_detail());
    std::exit(2);
}

void ready() {
    std::printf("READY\n");
    std::fflush(stdout);
}

Connection open(const std::string& dir, const std::string& name, u16 rights) {
    ConnectOptions options;
    options.runtime_dir = dir;
    options.rights = rights;
    options.memfds = MemfdDescriptors::Kept;  // an attacker keeps what it was given
    auto c = Connection::connect(name, options);
    if (!c) die("connect", c.error());
    return static_cast<Connection&&>(*c);
}

[[noreturn]] void stuck_caller(Connection& c) {
    const Message request = Message::small(0, test::OP_CALL);
    const u32 before_ready = 4 * c.capacity();
    for (u64 i = 0;; ++i) {
        auto r = c.call(request, Deadline::past());
        if (!r && r.error() != IpcError::Timeout) die("call", r.error());
        if (i + 1 == before_ready) ready();
        if (i >= before_ready) usleep(100);  // keep calling, without eating a whole CPU
    }
}

[[noreturn]] void doorbell_hammer(Connection& c, const char* how) {
    using namespace veridian::ipc::posix::detail;
    const ConnectionDescriptors d = c.descriptors();
    void* bell =
        mmap(nullptr, PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, d.server_doorbell, 0);
    if (bell == MAP_FAILED) die("mmap doorbell", IpcError::OutOfMemory);
    auto* doorbell = static_cast<ServerDoorbell*>(bell);
    if (std::strcmp(how, "tail") == 0) {
        // The word the server waits on for this client: its own c2s tail.
        const auto geometry = *RingGeometry::make(c.capacity(), c.max_inline_payload(), LOAN_SLOTS);
        void* data =
            mmap(nullptr, geometry.data_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, d.c2s_data, 0);
        if (data == MAP_FAILED) die("mmap c2s", IpcError::OutOfMemory);
        auto* header = static_cast<RingDataHeader*>(data);
        ready();
        for (;;)
            veridian::ipc::platform::ProcessSharedWords::instance().wake_all(&header->tail);
    }
    const bool wake = std::strcmp(how, "wake") == 0;
    ready();
    for (;;) {
        doorbell->ring.fetch_add(1, std::memory_order_seq_cst);
        if (wake) veridian::ipc::platform::ProcessSharedWords::instance().wake_all(&doorbell->ring);
    }
}

[[noreturn]] void flooder(Connection& c) {
    const Message m = Message::small(0, test::OP_DATA);
    ready();
    for (;;) {
        auto r = c.send_async(m);
        if (!r && r.error() != IpcError::ChannelFull) die("send_async", r.error());
        if (!r) sched_yield();
    }
}

u16 rights_of(const char* s) {
    u16 rights = 0;
    if (std::strchr(s, 's') != nullptr) rights |= Rights::SEND;
    if (std::strchr(s, 'r') != nullptr) rights |= Rights::RECEIVE;
    return rights;
}

void report_refusal(IpcError e) {
    std::printf("REFUSED %s %s\n", error_name(e), last_error_detail());
    std::fflush(stdout);
}

[[noreturn]] void wait_forever() {
    for (;;)
        pause();
}

int connect_report(const std::string& dir, const std::string& name, const char* rights) {
    ConnectOptions options;
    options.runtime_dir = dir;
    options.rights = rights_of(rights);
    auto c = Connection::connect(name, options);
    if (!c) {
        report_refusal(c.error());
        return 0;
    }
    std::printf("CONNECTED\n");
    std::fflush(stdout);
    return 0;
}

int stat_report(const std::string& dir, const std::string& name) {
    auto info = stat_endpoint(name, dir);
    if (!info) {
        report_refusal(info.error());
        return 0;
    }
    std::printf("STAT %u\n", info->connections);
    std::fflush(stdout);
    return 0;
}

int publish_report(const std::string& dir, const std::string& name) {
    ServerOptions options;
    options.runtime_dir = dir;
    auto server = Server::publish(name, options);
    if (!server) {
        report_refusal(server.error());
        return 0;
    }
    std::printf("PUBLISHED\n");
    std::fflush(stdout);
    wait_forever();
}

[[noreturn]] void serve_calls(Server& server) {
    for (;;) {
        auto r = server.receive_sync();
        if (!r) die("receive", r.error());
        if (r->message.transaction_id() != 0) (void)server.reply(*r, r->message);
    }
}

int policy_server(const std::string& dir, const std::string& name, int argc, char** argv) {
    dup2(STDOUT_FILENO, STDERR_FILENO);
    setvbuf(stderr, nullptr, _IOLBF, 0);
    ServerOptions options;
    options.runtime_dir = dir;
    for (int i = 0; i < argc; ++i) {
        const char* colon = std::strchr(argv[i], ':');
        if (colon == nullptr) die("grant", IpcError::InvalidMessage);
        options.access.users.push_back(
            AccessGrant{static_cast<u32>(std::atol(argv[i])), rights_of(colon + 1)});
    }
    auto server = Server::publish(name, options);
    if (!server) die("publish", server.error());
    ready();
    serve_calls(*server);
}

std::string socket_path(const std::string& dir, const std::string& name) {
    std::string file = name;
    for (char& c : file) {
        if (c == '/') c = ':';
    }
    return dir + "/" + file + ".sock";
}

int raw_listener(const std::string& dir, const std::string& name, uid_t uid) {
    const std::string path = socket_path(dir, name);
    const int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    unlink(path.c_str());
    if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        die("bind", IpcError::PermissionDenied);
    }
    chmod(path.c_str(), 0666);
    if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) {
        die("setuid", IpcError::PermissionDenied);
    }
    if (listen(s, 16) != 0) die("listen", IpcError::OutOfMemory);
    ready();
    for (;;) {
        const int c = accept(s, nullptr, nullptr);
        if (c < 0) continue;
        std::printf("ACCEPTED\n");
        std::fflush(stdout);
        long got = 0;
        const u64 until = now_ns() + 300'000'000u;
        for (;;) {
            const u64 now = now_ns();
            if (now >= until) break;
            pollfd p{c, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>((until - now) / 1'000'000u) + 1) <= 0) continue;
            char buf[64];
            const ssize_t n = read(c, buf, sizeof buf);
            if (n <= 0) break;
            got += n;
        }
        std::printf("GOT %ld\n", got);
        std::fflush(stdout);
        ::close(c);
    }
}

pid_t fork_holder() {
    const pid_t child = fork();
    if (child == 0) {
        // Holds every descriptor of its parent, uses none of them, never exec()s.
        for (;;)
            pause();
    }
    return child;
}

int fork_holder_client(const std::string& dir, const std::string& name) {
    Connection c = open(dir, name, Rights::SEND | Rights::RECEIVE);
    const pid_t child = fork_holder();
    std::printf("READY %d\n", static_cast<int>(child));
    std::fflush(stdout);
    wait_forever();
}

int fork_holder_server(const std::string& dir, const std::string& name) {
    ServerOptions options;
    options.runtime_dir = dir;
    auto server = Server::publish(name, options);
    if (!server) die("publish", server.error());
    const pid_t child = fork_holder();
    std::printf("READY %d\n", static_cast<int>(child));
    std::fflush(stdout);
    for (;;) {
        auto r = server->receive_sync();
        if (!r) die("receive", r.error());
        std::printf("GOT\n");
        std::fflush(stdout);
    }
}

int half_open(const std::string& dir, const std::string& name, int count) {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    const std::string path = socket_path(dir, name);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    int connected = 0;
    for (int i = 0; i < count; ++i) {
        const int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s < 0) break;
        // Non-blocking: past the listen backlog connect() says EAGAIN; retry a little.
        for (int attempt = 0; attempt < 200; ++attempt) {
            if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
                ++connected;
                break;
            }
            if (errno != EAGAIN) break;
            usleep(1000);
        }
    }
    std::printf("READY %d\n", connected);
    std::fflush(stdout);
    wait_forever();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: vipc_abuse_peer <role> <runtime-dir> <name> [args]\n");
        return 2;
    }
    if (nice(19) < 0) std::perror("vipc_abuse_peer: nice");
    signal(SIGPIPE, SIG_IGN);
    if (std::string(argv[1]) == "as-user" && argc >= 6) {
        // vipc_abuse_peer as-user <uid> <role> <dir> <name> [args]
        const auto uid = static_cast<uid_t>(std::atol(argv[2]));
        if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) {
            std::perror("vipc_abuse_peer: setuid");
            return 2;
        }
        argv += 2;
        argc -= 2;
    }
    const std::string role = argv[1];
    const std::string dir = argv[2];
    const std::string name = argv[3];
    const char* arg = argc > 4 ? argv[4] : nullptr;
    if (role == "connect-report") return connect_report(dir, name, arg != nullptr ? arg : "sr");
    if (role == "stat-report") return stat_report(dir, name);
    if (role == "publish-report") return publish_report(dir, name);
    if (role == "policy-server") return policy_server(dir, name, argc - 4, argv + 4);
    if (role == "raw-listener") {
        return raw_listener(dir, name, static_cast<uid_t>(arg != nullptr ? std::atol(arg) : 0));
    }
    if (role == "fork-holder-client") return fork_holder_client(dir, name);
    if (role == "fork-holder-server") return fork_holder_server(dir, name);
    if (role == "half-open") return half_open(dir, name, arg != nullptr ? std::atoi(arg) : 1100);
    if (role == "stuck-caller") {
        Connection c = open(dir, name, Rights::SEND | Rights::RECEIVE);
        stuck_caller(c);
    }
    if (role == "doorbell-hammer") {
        Connection c = open(dir, name, Rights::SEND);
        doorbell_hammer(c, arg != nullptr ? arg : "wake");
    }
    if (role == "flooder") {
        Connection c = open(dir, name, Rights::SEND);
        flooder(c);
    }
    std::fprintf(stderr, "vipc_abuse_peer: unknown role '%s'\n", role.c_str());
    return 2;
}
