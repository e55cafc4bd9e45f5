// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc_bridge_bench: the bridge against its floors, side by side in one run.
//
//   latency (call round trip, p50/p99 over --calls calls, median of --reps repetitions; the
//   three paths interleaved in rounds of 50 calls so that they share the machine's load):
//     local        a posix Connection::call to a server in another process (no bridge)
//     nats         a NATS request/reply between two plain libnats programs (this one and a
//                  responder child): the floor of the engine
//     bridged      client → import bridge → NATS → export bridge → server, all processes
//   throughput (one-way, --stream messages):
//     nats         a plain libnats program publishing 64-byte messages (the size of a
//                  bridged SmallMessage record) to a subscriber child, until it has them all
//     bridged      send_sync through the import bridge to a server behind the export bridge,
//                  until the server has them all
// It starts its own nats-server on a free loopback port and stops everything at the end.
//
// Usage: vipc_bridge_bench [--calls N] [--reps N] [--stream N]
//        (children: --role responder|sink|server ARGS...)
#include <arpa/inet.h>
#include <fcntl.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bridge/remote_error.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace {

using namespace veridian::ipc;

constexpr u32 OP_CALL = 2;
constexpr u32 OP_DATA = 1;

u64 now_ms() {
    return posix::now_ns() / 1'000'000u;
}

// ---- Children -------------------------------------------------------------------------------

class Child {
public:
    Child(std::vector<std::string> argv, const std::string& env = "") {
        int out[2];
        if (pipe2(out, O_CLOEXEC) != 0) return;
        std::vector<char*> args;
        for (auto& a : argv)
            args.push_back(a.data());
        args.push_back(nullptr);
        env_ = env;
        pid_ = fork();
        if (pid_ == 0) {
            dup2(out[1], STDOUT_FILENO);
            const int devnull = ::open("/dev/null", O_WRONLY);
            if (argv[0].find("nats-server") != std::string::npos) dup2(devnull, STDERR_FILENO);
            if (!env_.empty()) putenv(env_.data());
            execv(args[0], args.data());
            _exit(127);
        }
        ::close(out[1]);
        out_ = out[0];
    }
    ~Child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            for (int i = 0; i < 300; ++i) {
                if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
                    pid_ = -1;
                    break;
                }
                usleep(10'000);
            }
            if (pid_ > 0) {
                ::kill(pid_, SIGKILL);
                waitpid(pid_, nullptr, 0);
            }
        }
        if (out_ >= 0) ::close(out_);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    bool wait_for(const std::string& text, int timeout_ms, std::string* line = nullptr) {
        const u64 give_up = now_ms() + static_cast<u64>(timeout_ms);
        for (;;) {
            usize nl;
            while ((nl = buf_.find('\n')) != std::string::npos) {
                std::string l = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                if (l.find(text) != std::string::npos) {
                    if (line) *line = l;
                    return true;
                }
            }
            const u64 now = now_ms();
            if (now >= give_up) return false;
            pollfd p{out_, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(give_up - now)) <= 0) continue;
            char b[4096];
            const ssize_t n = read(out_, b, sizeof b);
            if (n <= 0) return false;
            buf_.append(b, static_cast<usize>(n));
        }
    }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    std::string buf_;
    std::string env_;
};

int free_port() {
    const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    return ntohs(a.sin_port);
}

bool wait_listening(int port, int timeout_ms) {
    const u64 give_up = now_ms() + static_cast<u64>(timeout_ms);
    while (now_ms() < give_up) {
        const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<u16>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const bool up = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(s);
        if (up) return true;
        usleep(10'000);
    }
    return false;
}

natsConnection* nats_connect(const std::string& url) {
    natsConnection* nc = nullptr;
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url.c_str());
    // Same as the bridge's links: publish from the calling thread.
    natsOptions_SetSendAsap(o, true);
    const natsStatus s = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    return s == NATS_OK ? nc : nullptr;
}

volatile sig_atomic_t g_stop = 0;
void on_term(int) {
    g_stop = 1;
}

// A plain libnats responder: answers every request on SUBJECT with its payload.
int role_responder(const std::string& url, const std::string& subject) {
    signal(SIGTERM, on_term);
    natsConnection* nc = nats_connect(url);
    if (nc == nullptr) return 2;
    natsSubscription* sub = nullptr;
    natsConnection_Subscribe(
        &sub, nc, subject.c_str(),
        [](natsConnection* c, natsSubscription*, natsMsg* m, void*) {
            natsConnection_Publish(c, natsMsg_GetReply(m), natsMsg_GetData(m),
                                   natsMsg_GetDataLength(m));
            natsMsg_Destroy(m);
        },
        nullptr);
    natsConnection_Flush(nc);
    std::printf("READY\n");
    std::fflush(stdout);
    while (!g_stop)
        usleep(50'000);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    return 0;
}

// A plain libnats subscriber: prints "GOT n" each time another `count` messages arrived.
int role_sink(const std::string& url, const std::string& subject, u64 count) {
    signal(SIGTERM, on_term);
    natsConnection* nc = nats_connect(url);
    if (nc == nullptr) return 2;
    static std::atomic<u64> got{0};
    static u64 batch = 0;
    batch = count;
    natsSubscription* sub = nullptr;
    natsConnection_Subscribe(
        &sub, nc, subject.c_str(),
        [](natsConnection*, natsSubscription*, natsMsg* m, void*) {
            natsMsg_Destroy(m);
            if (got.fetch_add(1) + 1 == batch) {
                got.store(0);
                std::printf("GOT %llu\n", static_cast<unsigned long long>(batch));
                std::fflush(stdout);
            }
        },
        nullptr);
    natsSubscription_SetPendingLimits(sub, -1, -1);
    natsConnection_Flush(nc);
    std::printf("READY\n");
    std::fflush(stdout);
    while (!g_stop)
        usleep(50'000);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    return 0;
}

// The vipc server (for the local call and behind the export bridge): echoes calls, counts
// one-way messages and prints "GOT n" after each `count` of them.
int role_server(const std::string& dir, const std::string& name, u64 count, u32 spin_ns) {
    signal(SIGTERM, on_term);
    posix::ServerOptions o;
    o.spin_ns = spin_ns;
    o.runtime_dir = dir;
    o.capacity = 1024;
    Result<posix::Server> s = posix::Server::publish(name, o);
    if (!s) return 2;
    std::printf("READY\n");
    std::fflush(stdout);
    u64 got = 0;
    while (!g_stop) {
        Result<posix::Received> r = s->receive_sync(posix::after_ms(100));
        if (!r) continue;
        if (r->message.transaction_id() != 0) {
            (void)s->reply(*r, r->message);
        } else if (++got == count) {
            got = 0;
            std::printf("GOT %llu\n", static_cast<unsigned long long>(count));
            std::fflush(stdout);
        }
    }
    return 0;
}

// ---- Measurements -------------------------------------------------------------------------

struct Latency {
    double p50_us = 0, p99_us = 0;
};

Latency summarize(std::vector<u64>& ns) {
    std::sort(ns.begin(), ns.end());
    auto at = [&](double q) {
        return static_cast<double>(ns[std::min(ns.size() - 1, static_cast<usize>(q * ns.size()))]) /
               1000.0;
    };
    return {at(0.50), at(0.99)};
}

// Times `calls` calls of each of three paths, interleaved in rounds of 50 (A B C A B C ...),
// so that all three see the same load on a shared machine. False when a call failed.
template <typename A, typename B, typename C>
bool measure3(u64 calls, A&& a, B&& b, C&& c, Latency out[3]) {
    std::vector<u64> ns[3];
    for (auto& v : ns)
        v.reserve(calls);
    auto timed = [&](auto& one, std::vector<u64>& v, u64 n, bool keep) {
        for (u64 i = 0; i < n; ++i) {
            const u64 t0 = posix::now_ns();
            if (!one()) return false;
            if (keep) v.push_back(posix::now_ns() - t0);
        }
        return true;
    };
    const u64 warmup = calls / 10 + 10;
    if (!timed(a, ns[0], warmup, false) || !timed(b, ns[1], warmup, false) ||
        !timed(c, ns[2], warmup, false)) {
        return false;
    }
    for (u64 done = 0; done < calls; done += 50) {
        const u64 n = std::min<u64>(50, calls - done);
        if (!timed(a, ns[0], n, true) || !timed(b, ns[1], n, true) || !timed(c, ns[2], n, true))
            return false;
    }
    for (int k = 0; k < 3; ++k)
        out[k] = summarize(ns[k]);
    return true;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    signal(SIGPIPE, SIG_IGN);
    const std::string self = "/proc/self/exe";
    char exe[4096] = {};
    if (readlink(self.c_str(), exe, sizeof exe - 1) <= 0) return 2;
    if (argc >= 3 && std::string(argv[1]) == "--role") {
        const std::string role = argv[2];
        if (role == "responder" && argc == 5) return role_responder(argv[3], argv[4]);
        if (role == "sink" && argc == 6)
            return role_sink(argv[3], argv[4], std::strtoull(argv[5], nullptr, 10));
        if (role == "server" && argc == 7)
            return role_server(argv[3], argv[4], std::strtoull(argv[5], nullptr, 10),
                               static_cast<u32>(std::strtoul(argv[6], nullptr, 10)));
        return 2;
    }
    u64 calls = 2000, reps = 3, stream = 200'000;
    std::string spin_ns;  // --spin-ns for both bridges ("" = their default)
    std::string vipc = VIPC_PATH, nats_server = VIPC_NATS_SERVER_PATH;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--calls")
            calls = std::strtoull(argv[i + 1], nullptr, 10);
        else if (a == "--reps")
            reps = std::strtoull(argv[i + 1], nullptr, 10);
        else if (a == "--stream")
            stream = std::strtoull(argv[i + 1], nullptr, 10);
        else if (a == "--bridge-spin-ns")
            spin_ns = argv[i + 1];
        else {
            std::fprintf(stderr,
                         "usage: vipc_bridge_bench [--calls N] [--reps N] [--stream N] "
                         "[--bridge-spin-ns NS]\n");
            return 2;
        }
    }
    if (calls == 0 || reps == 0 || stream == 0) return 2;

    char dir_a[] = "/tmp/vipc-bench-a-XXXXXX", dir_b[] = "/tmp/vipc-bench-b-XXXXXX";
    if (mkdtemp(dir_a) == nullptr || mkdtemp(dir_b) == nullptr) return 2;
    const int port = free_port();
    const std::string url = "nats://127.0.0.1:" + std::to_string(port);
    const std::string name = "bench/echo";
    int rc = 0;
    {
        Child nats({nats_server, "-a", "127.0.0.1", "-p", std::to_string(port)});
        if (!wait_listening(port, 5000)) {
            std::fprintf(stderr, "nats-server did not start\n");
            return 1;
        }
        Child responder({exe, "--role", "responder", url, "bench.direct"});
        Child sink({exe, "--role", "sink", url, "bench.stream", std::to_string(stream)});
        // --bridge-spin-ns applies to every local side of the bridged path (the bridges, the
        // client and the server behind the export), so that none of them sleeps while a
        // call is on NATS.
        const std::string end_spin =
            spin_ns.empty() ? std::to_string(posix::DEFAULT_SPIN_NS) : spin_ns;
        Child server_b({exe, "--role", "server", dir_b, name, std::to_string(stream), end_spin});
        Child server_local({exe, "--role", "server", dir_a, "bench/local", "1000000000",
                            std::to_string(posix::DEFAULT_SPIN_NS)});
        if (!responder.wait_for("READY", 5000) || !sink.wait_for("READY", 5000) ||
            !server_b.wait_for("READY", 5000) || !server_local.wait_for("READY", 5000)) {
            std::fprintf(stderr, "a child did not start\n");
            return 1;
        }
        std::vector<std::string> export_argv = {vipc, "bridge", "export", name, "--nats-url", url};
        std::vector<std::string> import_argv = {vipc,         "bridge", "import",  name,
                                                "--nats-url", url,      "--depth", "1024"};
        if (!spin_ns.empty()) {
            for (auto* v : {&export_argv, &import_argv})
                v->insert(v->end(), {"--spin-ns", spin_ns});
        }
        Child exporter(export_argv, std::string("VIPC_RUNTIME_DIR=") + dir_b);
        if (!exporter.wait_for("exporting", 5000)) return 1;
        Child importer(import_argv, std::string("VIPC_RUNTIME_DIR=") + dir_a);
        if (!importer.wait_for("importing", 5000)) return 1;

        posix::ConnectOptions co;
        co.runtime_dir = dir_a;
        Result<posix::Connection> local = posix::Connection::connect("bench/local", co);
        posix::ConnectOptions bco = co;
        bco.spin_ns = static_cast<u32>(std::stoul(end_spin));
        Result<posix::Connection> bridged = posix::Connection::connect(name, bco);
        natsConnection* nc = nats_connect(url);
        if (!local || !bridged || nc == nullptr) {
            std::fprintf(stderr, "cannot connect: %s\n", posix::last_error_detail());
            return 1;
        }
        const Message request = Message::small(0, OP_CALL);
        u8 payload[64] = {};
        std::vector<double> l50, l99, n50, n99, b50, b99, nats_tput, bridge_tput;
        for (u64 rep = 0; rep < reps; ++rep) {
            Latency lat[3];
            const bool measured = measure3(
                calls,
                [&] { return static_cast<bool>(local->call(request, posix::after_ms(2000))); },
                [&] {
                    natsMsg* reply = nullptr;
                    const natsStatus s = natsConnection_Request(&reply, nc, "bench.direct", payload,
                                                                sizeof payload, 2000);
                    if (reply) natsMsg_Destroy(reply);
                    return s == NATS_OK;
                },
                [&] {
                    return static_cast<bool>(
                        bridge::check_reply(bridged->call(request, posix::after_ms(2000))));
                },
                lat);
            if (!measured) {
                std::fprintf(stderr, "a call failed: %s\n", posix::last_error_detail());
                return 1;
            }
            const Latency &l = lat[0], &n = lat[1], &b = lat[2];
            l50.push_back(l.p50_us), l99.push_back(l.p99_us);
            n50.push_back(n.p50_us), n99.push_back(n.p99_us);
            b50.push_back(b.p50_us), b99.push_back(b.p99_us);

            u64 t0 = posix::now_ns();
            for (u64 i = 0; i < stream; ++i)
                natsConnection_Publish(nc, "bench.stream", payload, sizeof payload);
            natsConnection_Flush(nc);
            if (!sink.wait_for("GOT", 60'000)) return 1;
            nats_tput.push_back(static_cast<double>(stream) /
                                (static_cast<double>(posix::now_ns() - t0) / 1e9));

            t0 = posix::now_ns();
            Message m = Message::small(0, OP_DATA);
            for (u64 i = 0; i < stream; ++i) {
                m.small_message().data[0] = i;
                if (!bridged->send_sync(m, posix::after_ms(10'000))) return 1;
            }
            if (!server_b.wait_for("GOT", 60'000)) return 1;
            bridge_tput.push_back(static_cast<double>(stream) /
                                  (static_cast<double>(posix::now_ns() - t0) / 1e9));
            std::printf(
                "rep %llu: call p50 µs local %.1f nats %.1f bridged %.1f | stream msgs/s "
                "nats %.0f bridged %.0f\n",
                static_cast<unsigned long long>(rep + 1), l.p50_us, n.p50_us, b.p50_us,
                nats_tput.back(), bridge_tput.back());
        }
        natsConnection_Destroy(nc);
        std::printf("\n| path | call p50 µs | call p99 µs | stream msgs/s |\n|---|---|---|---|\n");
        std::printf("| local call (no bridge) | %.1f | %.1f | |\n", median(l50), median(l99));
        std::printf("| direct NATS request/reply, publish | %.1f | %.1f | %.0f |\n", median(n50),
                    median(n99), median(nats_tput));
        std::printf("| bridged (import → NATS → export) | %.1f | %.1f | %.0f |\n", median(b50),
                    median(b99), median(bridge_tput));
        std::printf(
            "\nbridged / direct NATS: call p50 %.2fx (target <= 1.3x), stream %.2fx "
            "(target >= 0.7x)\n",
            median(b50) / median(n50), median(bridge_tput) / median(nats_tput));
        std::printf("medians of %llu repetitions, %llu calls each, streams of %llu messages\n",
                    static_cast<unsigned long long>(reps), static_cast<unsigned long long>(calls),
                    static_cast<unsigned long long>(stream));
    }
    for (const char* d : {dir_a, dir_b}) {
        const std::string cmd = std::string("rm -rf '") + d + "'";
        if (std::system(cmd.c_str()) != 0) rc = 1;
    }
    return rc;
}
