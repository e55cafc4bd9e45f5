// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc-scale-bench: the cross-process runtime with many connections on one machine.
//
// A separate binary from vipc-bench because its unit is different: vipc-bench runs one case
// as two forked processes (one client, one server, pinned) for every transport alike; this
// one runs one server process (with 1..N receiver threads) against many client processes,
// most of them holding idle connections, and measures the runtime alone. Its results are its
// own tables (and JSON), side by side in one run with a floor measured between the same two
// CPUs in the same run.
//
// What one run measures (all sizes are options; --quick shrinks them for the smoke test):
//   floor        spin_line: two processes ping-pong one 64-byte line (sequence word +
//                payload), server CPU <-> client CPU: the physical floor of a round trip
//   latency      for each count of idle connections (default 0, 100, 1000, 10000): one
//                active caller's call/reply (a 48-byte SmallMessage) p50/p99, cross-core
//                (server pinned to --server-cpu, caller to --client-cpu); the idle
//                connections are held by several client processes (at most --per-holder
//                each), made before the caller starts, closed after it finishes
//   setup        the same idle connections: how long the holders took to connect them all
//                (connections per second), and what they cost: the server's descriptors
//                and resident memory before and after, per connection; the holders' too
//   throughput   for each count of receiver threads (1, 2) and of active client processes
//                (1, 2, 4): the aggregate rate of calls (each client one call outstanding,
//                for --seconds), median of --reps runs, with a handler that echoes, one
//                that computes for --work-us per call, and one that waits (sleeps) that
//                long. Unpinned: the kernel places the server's receivers and the clients
//                over the CPUs (stated in the output)
//
// Output: the tables on stdout, and with --json-out / --markdown the same results as JSON
// and Markdown (with the targets computed from them). RLIMIT_NOFILE is raised to what the
// idle connections need (up to the hard limit, beyond it when the process may).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "veridian/ipc/posix/runtime.hpp"

namespace {

namespace vi = veridian::ipc;
namespace vp = veridian::ipc::posix;
using Clock = std::chrono::steady_clock;

constexpr vi::u32 OP_ECHO = 1;

struct Options {
    std::vector<unsigned> idle = {0, 100, 1000, 10000};
    std::vector<unsigned> clients = {1, 2, 4};
    std::vector<unsigned> receivers = {1, 2};
    unsigned calls = 20000;
    unsigned warmup = 2000;
    double seconds = 1.0;
    unsigned reps = 3;
    unsigned per_holder = 2500;
    int server_cpu = 0;
    int client_cpu = 1;
    unsigned work_us = 20;  // the second and third throughput tables: handler work per call
    std::string json_out;
    std::string markdown;
    std::string svg;  // the latency plot
    bool quick = false;
};

double now_s() {
    return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

std::vector<unsigned> parse_list(const char* text) {
    std::vector<unsigned> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty())
            out.push_back(static_cast<unsigned>(std::strtoul(item.c_str(), nullptr, 10)));
    return out;
}

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "vipc-scale-bench: %s\n", what.c_str());
    std::exit(2);
}

std::string error_text(const std::string& what, vi::IpcError e) {
    std::string text = what + ": " + vi::error_name(e);
    const char* detail = vp::last_error_detail();
    if (detail != nullptr && *detail != '\0') text += std::string(" (") + detail + ")";
    return text;
}

void pin_to(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)sched_setaffinity(0, sizeof set, &set);
}

// Descriptors: as many as `wanted`, up to the hard limit, beyond it when allowed (root).
rlim_t raise_nofile(rlim_t wanted) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    if (wanted > rl.rlim_max) {
        rlimit more{wanted, wanted};
        if (setrlimit(RLIMIT_NOFILE, &more) == 0) return wanted;
    }
    rl.rlim_cur = std::min(std::max(wanted, rl.rlim_cur), rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

long count_fds(pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = opendir(path.c_str());
    if (d == nullptr) return -1;
    long n = 0;
    while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') ++n;
    closedir(d);
    return pid == getpid() ? n - 1 : n;  // less the directory's own descriptor
}

// Resident memory (VmRSS) in KiB.
long rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    }
    return -1;
}

// ---- pipes between the bench and its children ---------------------------------------------

struct Pipe {
    int r = -1, w = -1;
    Pipe() {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) die("pipe2 failed");
        r = fds[0];
        w = fds[1];
    }
};

void write_all(int fd, const void* data, size_t n) {
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return;
        p += k;
        n -= static_cast<size_t>(k);
    }
}

bool read_all(int fd, void* data, size_t n) {
    auto* p = static_cast<char*>(data);
    while (n > 0) {
        const ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        n -= static_cast<size_t>(k);
    }
    return true;
}

// A child's report: ok, a few numbers, and a message when not ok.
struct Report {
    int ok = 0;
    double v[6] = {};
    char text[240] = {};
};

void send_report(int fd, const Report& r) {
    write_all(fd, &r, sizeof r);
}

Report failed_report(const std::string& text) {
    Report r;
    std::snprintf(r.text, sizeof r.text, "%s", text.c_str());
    return r;
}

template <typename Body>
pid_t spawn(Body&& body) {
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0) die("fork failed");
    if (pid == 0) {
        body();
        _exit(0);
    }
    return pid;
}

void reap(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

// ---- the floor: one 64-byte line per direction ------------------------------------------------

struct alignas(64) Line {
    std::atomic<vi::u64> seq;
    char payload[56];
};

std::pair<double, double> spin_line_floor(const Options& o) {
    void* mem = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) die("mmap failed");
    auto* lines = new (mem) Line[2]{};
    Pipe result;
    const unsigned total = o.warmup + o.calls;
    const pid_t server = spawn([&] {
        pin_to(o.server_cpu);
        for (vi::u64 i = 1; i <= total; ++i) {
            while (lines[0].seq.load(std::memory_order_acquire) != i) {
            }
            std::memcpy(lines[1].payload, lines[0].payload, 48);
            lines[1].seq.store(i, std::memory_order_release);
        }
    });
    const pid_t client = spawn([&] {
        pin_to(o.client_cpu);
        std::vector<double> us;
        us.reserve(o.calls);
        for (vi::u64 i = 1; i <= total; ++i) {
            const auto t0 = Clock::now();
            std::memset(lines[0].payload, static_cast<int>(i), 48);
            lines[0].seq.store(i, std::memory_order_release);
            while (lines[1].seq.load(std::memory_order_acquire) != i) {
            }
            if (i > o.warmup)
                us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        }
        std::sort(us.begin(), us.end());
        Report r;
        r.ok = 1;
        r.v[0] = us[us.size() / 2];
        r.v[1] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
        send_report(result.w, r);
    });
    Report r;
    const bool got = read_all(result.r, &r, sizeof r);
    reap(client);
    reap(server);
    close(result.r);
    close(result.w);
    munmap(mem, 4096);
    if (!got || r.ok == 0) return {0, 0};
    return {r.v[0], r.v[1]};
}

// ---- the server process ----------------------------------------------------------------------

volatile sig_atomic_t g_stop = 0;

// Publishes `name` and echoes every call from `receivers` threads until SIGTERM. Reports
// (once published) its pid through `ready`.
// What the handler does for work_us per call.
enum class Handler : unsigned char {
    Echo,     // nothing
    Compute,  // busy on the CPU (a service that computes)
    Wait,     // sleeps (a service that waits for a disk, a database, a device)
};
const char* handler_name(Handler h) {
    return h == Handler::Echo ? "echo" : h == Handler::Compute ? "compute" : "wait";
}

pid_t start_server(const std::string& dir, const std::string& name, unsigned receivers,
                   unsigned max_connections, int cpu, unsigned work_us = 0,
                   Handler handler = Handler::Echo) {
    Pipe ready;
    const pid_t pid = spawn([&] {
        close(ready.r);
        signal(SIGTERM, [](int) { g_stop = 1; });
        if (cpu >= 0) pin_to(cpu);
        vp::ServerOptions options;
        options.runtime_dir = dir;
        options.max_connections = max_connections;
        auto server = vp::Server::publish(name, options);
        if (!server) {
            send_report(ready.w, failed_report(error_text("publish " + name, server.error())));
            return;
        }
        Report r;
        r.ok = 1;
        send_report(ready.w, r);
        close(ready.w);
        auto loop = [&] {
            if (handler == Handler::Wait) prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
            while (g_stop == 0) {
                auto got = server->receive_sync(vp::after_ms(50));
                if (!got) continue;
                if (handler == Handler::Compute) {
                    // The handler's work: busy for work_us (a service that computes).
                    const auto until = Clock::now() + std::chrono::microseconds(work_us);
                    while (Clock::now() < until) {
                    }
                } else if (handler == Handler::Wait) {
                    // The handler waits work_us without using the CPU (an I/O-bound service);
                    // a timer slack of 1 ns (set below) keeps the sleep near work_us.
                    const timespec t{0, static_cast<long>(work_us) * 1000};
                    nanosleep(&t, nullptr);
                }
                if (auto sent = server->reply(*got, got->message); !sent) {
                    // A reply that cannot be sent leaves its caller waiting: say why.
                    std::fprintf(stderr, "vipc-scale-bench: server: %s\n",
                                 error_text("reply", sent.error()).c_str());
                }
            }
        };
        std::vector<std::thread> threads;
        for (unsigned i = 1; i < receivers; ++i)
            threads.emplace_back(loop);
        loop();
        for (auto& t : threads)
            t.join();
        (void)server->close();
    });
    close(ready.w);
    Report r;
    if (!read_all(ready.r, &r, sizeof r) || r.ok == 0) {
        close(ready.r);
        reap(pid);
        die(std::string("the server did not start: ") + r.text);
    }
    close(ready.r);
    return pid;
}

void stop_server(pid_t pid) {
    kill(pid, SIGTERM);
    reap(pid);
}

// ---- idle holders -----------------------------------------------------------------------------

struct Holders {
    std::vector<pid_t> pids;
    std::vector<int> release;  // closing one lets its holder go
    double setup_seconds = 0;
    double client_fds_per_conn = 0;
    double client_rss_kib_per_conn = 0;
    std::string failure;
};

// Opens `idle` connections from processes of at most `per_holder` each; returns once all are
// connected (or one failed).
Holders hold_idle(const std::string& dir, const std::string& name, unsigned idle,
                  unsigned per_holder) {
    Holders h;
    if (idle == 0) return h;
    const unsigned count = (idle + per_holder - 1) / per_holder;
    std::vector<int> results;
    const double start = now_s();
    for (unsigned k = 0; k < count; ++k) {
        const unsigned mine = std::min(per_holder, idle - k * per_holder);
        Pipe result, go;
        const pid_t pid = spawn([&, mine] {
            close(result.r);
            close(go.w);
            for (int fd : h.release)
                close(fd);  // the earlier holders' "go": only the bench may hold those
            const long fds0 = count_fds(getpid());
            const long rss0 = rss_kib(getpid());
            std::vector<vp::Connection> conns;
            conns.reserve(mine);
            vp::ConnectOptions options;
            options.runtime_dir = dir;
            for (unsigned i = 0; i < mine; ++i) {
                auto c = vp::Connection::connect(name, options);
                if (!c) {
                    send_report(result.w, failed_report(error_text(
                                              "idle connection " + std::to_string(i), c.error())));
                    return;
                }
                conns.push_back(std::move(*c));
            }
            Report r;
            r.ok = 1;
            r.v[0] = static_cast<double>(count_fds(getpid()) - fds0) / mine;
            r.v[1] = static_cast<double>(rss_kib(getpid()) - rss0) / mine;
            send_report(result.w, r);
            char byte;
            (void)read(go.r, &byte, 1);  // until the bench lets go
        });
        close(result.w);
        close(go.r);
        h.pids.push_back(pid);
        h.release.push_back(go.w);
        results.push_back(result.r);
    }
    for (int fd : results) {
        Report r;
        if (!read_all(fd, &r, sizeof r) || r.ok == 0) {
            if (h.failure.empty()) h.failure = r.text[0] != '\0' ? r.text : "a holder died";
        } else {
            h.client_fds_per_conn = r.v[0];
            h.client_rss_kib_per_conn = r.v[1];
        }
        close(fd);
    }
    h.setup_seconds = now_s() - start;
    return h;
}

void release(Holders& h) {
    for (int fd : h.release)
        close(fd);
    for (pid_t pid : h.pids)
        reap(pid);
    h.release.clear();
    h.pids.clear();
}

// ---- the active caller ------------------------------------------------------------------------

Report caller_latency(const std::string& dir, const std::string& name, const Options& o) {
    Pipe result;
    const pid_t pid = spawn([&] {
        close(result.r);
        pin_to(o.client_cpu);
        vp::ConnectOptions options;
        options.runtime_dir = dir;
        auto c = vp::Connection::connect(name, options);
        if (!c) {
            send_report(result.w, failed_report(error_text("connect", c.error())));
            return;
        }
        vi::SmallMessage m{};
        m.opcode = OP_ECHO;
        const vi::Message request(m);
        std::vector<double> us;
        us.reserve(o.calls);
        for (unsigned i = 0; i < o.warmup + o.calls; ++i) {
            const auto t0 = Clock::now();
            auto reply = c->call(request);
            const auto t1 = Clock::now();
            if (!reply) {
                send_report(result.w, failed_report(error_text("call", reply.error())));
                return;
            }
            if (i >= o.warmup)
                us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        }
        std::sort(us.begin(), us.end());
        Report r;
        r.ok = 1;
        r.v[0] = us[us.size() / 2];
        r.v[1] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
        send_report(result.w, r);
    });
    close(result.w);
    Report r = failed_report("the caller died");
    (void)read_all(result.r, &r, sizeof r);
    close(result.r);
    reap(pid);
    return r;
}

// `clients` processes call as fast as they can for `seconds`; returns calls per second.
Report callers_throughput(const std::string& dir, const std::string& name, unsigned clients,
                          double seconds, unsigned client_spin_ns) {
    std::vector<pid_t> pids;
    std::vector<int> results;
    Pipe go;
    for (unsigned k = 0; k < clients; ++k) {
        Pipe result;
        pids.push_back(spawn([&] {
            close(result.r);
            close(go.w);
            vp::ConnectOptions options;
            options.runtime_dir = dir;
            options.spin_ns = client_spin_ns;
            auto c = vp::Connection::connect(name, options);
            Report ready;
            ready.ok = c ? 1 : 0;
            if (!c) ready = failed_report(error_text("connect", c.error()));
            send_report(result.w, ready);
            if (!c) return;
            char byte;
            (void)read(go.r, &byte, 1);  // everyone connected: go
            vi::SmallMessage m{};
            m.opcode = OP_ECHO;
            const vi::Message request(m);
            const double end = now_s() + seconds;
            double calls = 0;
            const double start = now_s();
            double t = start;
            while (t < end) {
                for (int i = 0; i < 64; ++i) {
                    auto reply = c->call(request, vp::after_ms(5000));
                    if (!reply) {
                        send_report(result.w, failed_report(error_text("call", reply.error())));
                        return;
                    }
                }
                calls += 64;
                t = now_s();
            }
            Report r;
            r.ok = 1;
            r.v[0] = calls / (t - start);
            send_report(result.w, r);
        }));
        close(result.w);
        results.push_back(result.r);
    }
    close(go.r);
    Report total;
    total.ok = 1;
    for (int fd : results) {
        Report ready;
        if (!read_all(fd, &ready, sizeof ready) || ready.ok == 0) {
            total = failed_report(ready.text[0] != '\0' ? ready.text : "a client died");
        }
    }
    close(go.w);  // go
    for (int fd : results) {
        Report r;
        if (!read_all(fd, &r, sizeof r) || r.ok == 0) {
            if (total.ok != 0) total = failed_report(r.text[0] != '\0' ? r.text : "a client died");
        } else {
            total.v[0] += r.v[0];
        }
        close(fd);
    }
    for (pid_t pid : pids)
        reap(pid);
    return total;
}

// ---- the run ---------------------------------------------------------------------------------

struct LatencyRow {
    unsigned idle = 0;
    bool ok = false;
    bool skipped = false;  // does not fit the descriptor limit (the reason says so)
    std::string failure;
    double p50 = 0, p99 = 0;
    double setup_seconds = 0;
    double server_fds_per_conn = 0, server_rss_kib_per_conn = 0;
    double client_fds_per_conn = 0, client_rss_kib_per_conn = 0;
};

struct ThroughputRow {
    unsigned clients = 0, receivers = 0, work_us = 0;
    Handler handler = Handler::Echo;
    bool ok = false;
    std::string failure;
    double calls_per_second = 0;  // median of the reps
};

std::string json_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) < 0x20) {
            out += ' ';
            continue;
        }
        out += c;
    }
    return out;
}

double load_average() {
    double load[1] = {0};
    return getloadavg(load, 1) == 1 ? load[0] : -1;
}

void usage() {
    std::printf(
        "usage: vipc-scale-bench [--quick] [--idle 0,100,1000,10000] [--clients 1,2,4]\n"
        "                        [--receivers 1,2] [--calls N] [--seconds S] [--reps N]\n"
        "                        [--per-holder N] [--server-cpu N] [--client-cpu N]\n"
        "                        [--work-us N (handlers that compute and that wait; 0: none; "
        "default 20)]\n"
        "                        [--json-out FILE] [--markdown FILE] [--svg FILE]\n"
        "  --quick: idle 0,100; clients 1,2; receivers 1,2; 2000 calls; 0.2 s; 1 rep (~10 s)\n");
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) die("missing value after " + a);
            return argv[++i];
        };
        if (a == "--quick") {
            o.quick = true;
            o.idle = {0, 100};
            o.clients = {1, 2};
            o.calls = 2000;
            o.warmup = 500;
            o.seconds = 0.2;
            o.reps = 1;
            o.work_us = 0;
        } else if (a == "--idle") {
            o.idle = parse_list(value());
        } else if (a == "--clients") {
            o.clients = parse_list(value());
        } else if (a == "--receivers") {
            o.receivers = parse_list(value());
        } else if (a == "--calls") {
            o.calls = static_cast<unsigned>(std::strtoul(value(), nullptr, 10));
        } else if (a == "--seconds") {
            o.seconds = std::strtod(value(), nullptr);
        } else if (a == "--reps") {
            o.reps = static_cast<unsigned>(std::strtoul(value(), nullptr, 10));
        } else if (a == "--per-holder") {
            o.per_holder = static_cast<unsigned>(std::strtoul(value(), nullptr, 10));
        } else if (a == "--server-cpu") {
            o.server_cpu = std::atoi(value());
        } else if (a == "--work-us") {
            o.work_us = static_cast<unsigned>(std::strtoul(value(), nullptr, 10));
        } else if (a == "--client-cpu") {
            o.client_cpu = std::atoi(value());
        } else if (a == "--json-out") {
            o.json_out = value();
        } else if (a == "--markdown") {
            o.markdown = value();
        } else if (a == "--svg") {
            o.svg = value();
        } else if (a == "--help" || a == "-h") {
            usage();
            return 0;
        } else {
            usage();
            die("unknown option " + a);
        }
    }
    if (o.calls == 0 || o.reps == 0 || o.per_holder == 0 || o.seconds <= 0)
        die("counts must be > 0");
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (o.server_cpu >= cpus) o.server_cpu = -1;
    if (o.client_cpu >= cpus) o.client_cpu = -1;
    unsigned most_idle = 0;
    for (unsigned n : o.idle)
        most_idle = std::max(most_idle, n);
    // The server holds a descriptor per connection, each holder two per its share.
    const rlim_t nofile = raise_nofile(
        std::max<rlim_t>(static_cast<rlim_t>(most_idle) * 2, rlim_t{o.per_holder} * 4) + 1024);

    // Each client connection holds 2 descriptors (its socket and the server's pidfd; measured
    // below), with room to spare: spread the idle ones over enough holders for the limit.
    const unsigned fit = static_cast<unsigned>((nofile > 512 ? nofile - 256 : 256) / 4);
    if (o.per_holder > fit) o.per_holder = std::max(1u, fit);

    char dir_template[] = "/tmp/vipc-scale-XXXXXX";
    if (mkdtemp(dir_template) == nullptr) die("mkdtemp failed");
    const std::string dir = dir_template;

    utsname un{};
    uname(&un);
    const double load_before = load_average();
    std::printf(
        "vipc-scale-bench: %ld CPUs, Linux %s, load %.2f, RLIMIT_NOFILE %llu, at most "
        "%u idle connections per holder process\n",
        cpus, un.release, load_before, static_cast<unsigned long long>(nofile), o.per_holder);
    std::printf(
        "latency: server on CPU %d, caller on CPU %d (cross-core); idle holders and "
        "throughput runs unpinned\n\n",
        o.server_cpu, o.client_cpu);

    const auto [floor_p50, floor_p99] = spin_line_floor(o);
    std::printf("floor spin_line (one 64-byte line each way): p50 %.2f us  p99 %.2f us\n\n",
                floor_p50, floor_p99);

    // Latency and setup, per idle count.
    std::vector<LatencyRow> latency;
    unsigned case_no = 0;
    std::printf("%8s %9s %9s %10s %11s %10s %12s %10s %12s\n", "idle", "p50 us", "p99 us",
                "setup s", "conns/s", "srv fd/c", "srv KiB/c", "cli fd/c", "cli KiB/c");
    // What fits: the server holds SERVER_DESCRIPTORS_PER_CONNECTION per connection and
    // SERVER_DESCRIPTORS_PER_CLIENT_PROCESS per holder. A count beyond it is reported as such,
    // and the largest count that fits is measured instead.
    const auto server_fds = [&](unsigned idle) {
        const unsigned holders = (idle + o.per_holder - 1) / o.per_holder;
        return idle * vp::SERVER_DESCRIPTORS_PER_CONNECTION +
               (holders + 1) * vp::SERVER_DESCRIPTORS_PER_CLIENT_PROCESS + 400;
    };
    unsigned fit_idle = 0;
    while (server_fds(fit_idle + 500) <= nofile)
        fit_idle += 500;
    std::vector<unsigned> idle_counts;
    for (unsigned idle : o.idle) {
        idle_counts.push_back(idle);
        if (idle > fit_idle && std::find(o.idle.begin(), o.idle.end(), fit_idle) == o.idle.end() &&
            std::find(idle_counts.begin(), idle_counts.end(), fit_idle) == idle_counts.end()) {
            idle_counts.insert(idle_counts.end() - 1, fit_idle);
        }
    }
    for (unsigned idle : idle_counts) {
        LatencyRow row;
        row.idle = idle;
        if (idle > fit_idle) {
            char why[300];
            std::snprintf(why, sizeof why,
                          "needs about %u descriptors in the server (%u per connection, %u per "
                          "client process) and RLIMIT_NOFILE allows %llu here (hard limit); "
                          "raise it (ulimit -Hn, LimitNOFILE=) to measure it",
                          server_fds(idle), vp::SERVER_DESCRIPTORS_PER_CONNECTION,
                          vp::SERVER_DESCRIPTORS_PER_CLIENT_PROCESS,
                          static_cast<unsigned long long>(nofile));
            row.failure = why;
            row.skipped = true;
            std::printf("%8u not run: %s\n", idle, why);
            latency.push_back(row);
            continue;
        }
        const std::string name = "scale/latency-" + std::to_string(case_no++);
        const pid_t server = start_server(dir, name, 1, idle + 16, o.server_cpu);
        const long fds0 = count_fds(server);
        const long rss0 = rss_kib(server);
        Holders h = hold_idle(dir, name, idle, o.per_holder);
        if (!h.failure.empty()) {
            row.failure = h.failure;
        } else {
            row.setup_seconds = h.setup_seconds;
            row.client_fds_per_conn = h.client_fds_per_conn;
            row.client_rss_kib_per_conn = h.client_rss_kib_per_conn;
            if (idle > 0) {
                row.server_fds_per_conn = static_cast<double>(count_fds(server) - fds0) / idle;
                row.server_rss_kib_per_conn = static_cast<double>(rss_kib(server) - rss0) / idle;
            }
            const Report r = caller_latency(dir, name, o);
            if (r.ok != 0) {
                row.ok = true;
                row.p50 = r.v[0];
                row.p99 = r.v[1];
            } else {
                row.failure = r.text;
            }
        }
        release(h);
        stop_server(server);
        if (row.ok) {
            std::printf("%8u %9.2f %9.2f %10.3f %11.0f %10.2f %12.1f %10.2f %12.1f\n", idle,
                        row.p50, row.p99, row.setup_seconds,
                        idle > 0 ? idle / row.setup_seconds : 0.0, row.server_fds_per_conn,
                        row.server_rss_kib_per_conn, row.client_fds_per_conn,
                        row.client_rss_kib_per_conn);
        } else {
            std::printf("%8u failed: %s\n", idle, row.failure.c_str());
        }
        std::fflush(stdout);
        latency.push_back(row);
    }

    // Throughput.
    std::printf("\nthroughput (calls/s, median of %u; unpinned):\n%10s %10s %14s\n", o.reps,
                "receivers", "clients", "calls/s");
    std::vector<ThroughputRow> throughput;
    for (const Handler handler : {Handler::Echo, Handler::Compute, Handler::Wait}) {
        if (handler != Handler::Echo && o.work_us == 0) break;
        const unsigned work = handler == Handler::Echo ? 0 : o.work_us;
        if (handler != Handler::Echo) {
            std::printf(
                "\nthroughput with a handler that %s for %u us per call, callers not spinning "
                "(calls/s, median of %u; unpinned):\n%10s %10s %14s\n",
                handler == Handler::Compute ? "computes" : "waits (sleeps)", work, o.reps,
                "receivers", "clients", "calls/s");
        }
        for (unsigned receivers : o.receivers) {
            for (unsigned clients : o.clients) {
                ThroughputRow row;
                row.receivers = receivers;
                row.clients = clients;
                row.work_us = work;
                row.handler = handler;
                std::vector<double> reps;
                for (unsigned rep = 0; rep < o.reps && row.failure.empty(); ++rep) {
                    const std::string name = "scale/throughput-" + std::to_string(case_no++);
                    const pid_t server =
                        start_server(dir, name, receivers, clients + 16, -1, work, handler);
                    // With handler work a caller waits tens of microseconds: it sleeps instead
                    // of spinning (on a small machine a spinning caller takes the CPU a
                    // second receiver needs).
                    const Report r = callers_throughput(dir, name, clients, o.seconds,
                                                        work != 0 ? 0 : vp::DEFAULT_SPIN_NS);
                    stop_server(server);
                    if (r.ok == 0) {
                        row.failure = r.text;
                    } else {
                        reps.push_back(r.v[0]);
                    }
                }
                if (row.failure.empty()) {
                    std::sort(reps.begin(), reps.end());
                    row.ok = true;
                    row.calls_per_second = reps[reps.size() / 2];
                    std::printf("%10u %10u %14.0f\n", receivers, clients, row.calls_per_second);
                } else {
                    std::printf("%10u %10u failed: %s\n", receivers, clients, row.failure.c_str());
                }
                std::fflush(stdout);
                throughput.push_back(row);
            }
        }
    }
    const double load_after = load_average();

    // Targets.
    struct Target {
        std::string what;
        std::string measured;
        bool met = false;
        bool known = false;
    };
    std::vector<Target> targets;
    const LatencyRow* base = nullptr;
    const LatencyRow* most = nullptr;
    const LatencyRow* wanted = nullptr;  // the largest count asked for, run or not
    for (const LatencyRow& r : latency) {
        if (wanted == nullptr || r.idle > wanted->idle) wanted = &r;
        if (!r.ok) continue;
        if (r.idle == 0) base = &r;
        if (most == nullptr || r.idle > most->idle) most = &r;
    }
    if (wanted != nullptr && !wanted->ok) {
        targets.push_back({"p50/p99 with " + std::to_string(wanted->idle) + " idle",
                           "not run: " + wanted->failure, false, false});
    }
    char text[256];
    if (base != nullptr && most != nullptr && most->idle > 0) {
        const double p50 = most->p50 / base->p50, p99 = most->p99 / base->p99;
        std::snprintf(text, sizeof text, "%.2fx (%.2f vs %.2f us)", p50, most->p50, base->p50);
        targets.push_back({"p50 with " + std::to_string(most->idle) + " idle <= 1.1x p50 with none",
                           text, p50 <= 1.1, true});
        std::snprintf(text, sizeof text, "%.2fx (%.2f vs %.2f us)", p99, most->p99, base->p99);
        targets.push_back({"p99 with " + std::to_string(most->idle) + " idle <= 1.5x p99 with none",
                           text, p99 <= 1.5, true});
        std::snprintf(text, sizeof text, "%.3f s (%.0f connections/s)", most->setup_seconds,
                      most->idle / most->setup_seconds);
        targets.push_back(
            {std::to_string(most->idle) + " connections set up in < " +
                 (most->idle >= 10000 ? std::string("2 s") : std::string("2 s x n/10000")),
             text, most->setup_seconds < 2.0 * std::max(1.0, most->idle / 10000.0), true});
    }
    for (const ThroughputRow& two : throughput) {
        if (!two.ok || two.receivers != 2 || two.clients < 2) continue;
        for (const ThroughputRow& one : throughput) {
            if (!one.ok || one.receivers != 1 || one.clients != two.clients ||
                one.work_us != two.work_us || one.handler != two.handler)
                continue;
            const double ratio = two.calls_per_second / one.calls_per_second;
            std::snprintf(text, sizeof text, "%.2fx (%.0f vs %.0f calls/s)", ratio,
                          two.calls_per_second, one.calls_per_second);
            const std::string handler = two.handler == Handler::Echo
                                            ? std::string("echo")
                                            : std::string(handler_name(two.handler)) + " " +
                                                  std::to_string(two.work_us) + " us";
            targets.push_back({"throughput, 2 receivers vs 1, " + std::to_string(two.clients) +
                                   " clients, " + handler + " >= 1.7x",
                               text, ratio >= 1.7, true});
        }
    }
    std::printf("\ntargets:\n");
    for (const Target& t : targets)
        std::printf("  %-58s %-36s %s\n", t.what.c_str(), t.measured.c_str(),
                    t.met ? "met" : "NOT met");
    std::printf("load average: %.2f before, %.2f after\n", load_before, load_after);

    if (!o.json_out.empty()) {
        std::ofstream j(o.json_out);
        j << "{\n  \"tool\": \"vipc scale bench\",\n";
        j << "  \"machine\": {\"cpus\": " << cpus << ", \"kernel\": \"" << json_escape(un.release)
          << "\", \"load_before\": " << load_before << ", \"load_after\": " << load_after
          << ", \"nofile\": " << nofile << ", \"server_cpu\": " << o.server_cpu
          << ", \"client_cpu\": " << o.client_cpu << "},\n";
        j << "  \"floor\": {\"name\": \"spin_line\", \"p50_us\": " << floor_p50
          << ", \"p99_us\": " << floor_p99 << "},\n";
        j << "  \"latency\": [\n";
        for (size_t i = 0; i < latency.size(); ++i) {
            const LatencyRow& r = latency[i];
            j << "    {\"idle\": " << r.idle << ", \"ok\": " << (r.ok ? "true" : "false");
            if (r.ok) {
                j << ", \"p50_us\": " << r.p50 << ", \"p99_us\": " << r.p99
                  << ", \"setup_seconds\": " << r.setup_seconds
                  << ", \"setup_per_second\": " << (r.idle > 0 ? r.idle / r.setup_seconds : 0.0)
                  << ", \"server_fds_per_connection\": " << r.server_fds_per_conn
                  << ", \"server_rss_kib_per_connection\": " << r.server_rss_kib_per_conn
                  << ", \"client_fds_per_connection\": " << r.client_fds_per_conn
                  << ", \"client_rss_kib_per_connection\": " << r.client_rss_kib_per_conn;
            } else {
                j << ", \"skipped\": " << (r.skipped ? "true" : "false") << ", \"reason\": \""
                  << json_escape(r.failure) << "\"";
            }
            j << "}" << (i + 1 < latency.size() ? "," : "") << "\n";
        }
        j << "  ],\n  \"throughput\": [\n";
        for (size_t i = 0; i < throughput.size(); ++i) {
            const ThroughputRow& r = throughput[i];
            j << "    {\"receivers\": " << r.receivers << ", \"clients\": " << r.clients
              << ", \"handler\": \"" << handler_name(r.handler) << "\", \"work_us\": " << r.work_us
              << ", \"ok\": " << (r.ok ? "true" : "false");
            if (r.ok) {
                j << ", \"calls_per_second\": " << r.calls_per_second;
            } else {
                j << ", \"reason\": \"" << json_escape(r.failure) << "\"";
            }
            j << "}" << (i + 1 < throughput.size() ? "," : "") << "\n";
        }
        j << "  ],\n  \"targets\": [\n";
        for (size_t i = 0; i < targets.size(); ++i) {
            j << "    {\"target\": \"" << json_escape(targets[i].what) << "\", \"measured\": \""
              << json_escape(targets[i].measured)
              << "\", \"met\": " << (targets[i].met ? "true" : "false") << "}"
              << (i + 1 < targets.size() ? "," : "") << "\n";
        }
        j << "  ]\n}\n";
    }
    if (!o.markdown.empty()) {
        std::ofstream m(o.markdown);
        m << "## Scale (vipc-scale-bench)\n\n";
        m << "Machine: " << cpus << " CPUs, Linux " << un.release << ", load average "
          << load_before << " before, " << load_after << " after. Latency: server on CPU "
          << o.server_cpu << ", caller on CPU " << o.client_cpu
          << " (cross-core); throughput unpinned.\n\n";
        m << "Floor spin_line (one 64-byte line each way): p50 " << floor_p50 << " us, p99 "
          << floor_p99 << " us.\n\n";
        m << "| idle connections | p50 us | p99 us | set-up s | connections/s | server fds/conn | "
             "server KiB/conn | client fds/conn | client KiB/conn |\n";
        m << "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
        for (const LatencyRow& r : latency) {
            if (!r.ok) {
                m << "| " << r.idle << " | not run: " << r.failure << " |||||||\n";
                continue;
            }
            m << "| " << r.idle << " | " << r.p50 << " | " << r.p99 << " | " << r.setup_seconds
              << " | " << (r.idle > 0 ? r.idle / r.setup_seconds : 0.0) << " | "
              << r.server_fds_per_conn << " | " << r.server_rss_kib_per_conn << " | "
              << r.client_fds_per_conn << " | " << r.client_rss_kib_per_conn << " |\n";
        }
        m << "\n| handler | work us | receivers | clients | calls/s |\n|---|---:|---:|---:|---:|\n";
        for (const ThroughputRow& r : throughput) {
            m << "| " << handler_name(r.handler) << " | " << r.work_us << " | " << r.receivers
              << " | " << r.clients << " | ";
            if (r.ok) {
                m << r.calls_per_second;
            } else {
                m << "failed: " << r.failure;
            }
            m << " |\n";
        }
        m << "\n### Targets\n\n| target | measured | |\n|---|---|---|\n";
        for (const Target& t : targets)
            m << "| " << t.what << " | " << t.measured << " | " << (t.met ? "met" : "not met")
              << " |\n";
    }
    if (!o.svg.empty()) {
        // p50 and p99 of the active caller against the idle connections (x: log scale, 0 at
        // the left edge), with the floor's p50 as a line.
        std::vector<const LatencyRow*> rows;
        double top = floor_p50;
        unsigned most_idle_run = 1;
        for (const LatencyRow& r : latency) {
            if (!r.ok) continue;
            rows.push_back(&r);
            top = std::max(top, r.p99);
            most_idle_run = std::max(most_idle_run, r.idle);
        }
        top = top * 1.25 + 0.01;
        const double w = 640, h = 360, l = 60, r = 20, t = 30, b = 50;
        auto x_of = [&](unsigned idle) {
            const double span = std::log10(std::max(10.0, static_cast<double>(most_idle_run)));
            const double v = idle == 0 ? 0 : 0.15 + 0.85 * std::log10(idle) / span;
            return l + v * (w - l - r);
        };
        auto y_of = [&](double us) { return h - b - us / top * (h - t - b); };
        std::ofstream g(o.svg);
        g << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
          << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
        g << "<text x=\"" << l
          << "\" y=\"18\">one active caller's call/reply vs idle "
             "connections (us)</text>\n";
        g << "<line x1=\"" << l << "\" y1=\"" << h - b << "\" x2=\"" << w - r << "\" y2=\"" << h - b
          << "\" stroke=\"black\"/>\n";
        g << "<line x1=\"" << l << "\" y1=\"" << t << "\" x2=\"" << l << "\" y2=\"" << h - b
          << "\" stroke=\"black\"/>\n";
        for (int k = 0; k <= 4; ++k) {
            const double us = top * k / 4;
            g << "<text x=\"5\" y=\"" << y_of(us) + 4 << "\">" << std::round(us * 100) / 100
              << "</text>\n";
        }
        g << "<line x1=\"" << l << "\" y1=\"" << y_of(floor_p50) << "\" x2=\"" << w - r
          << "\" y2=\"" << y_of(floor_p50)
          << "\" stroke=\"gray\" stroke-dasharray=\"4\"/><text x=\"" << w - r - 150 << "\" y=\""
          << y_of(floor_p50) - 4 << "\" fill=\"gray\">spin_line floor p50</text>\n";
        const char* colors[2] = {"#1f77b4", "#d62728"};
        for (int series = 0; series < 2; ++series) {
            g << "<polyline fill=\"none\" stroke=\"" << colors[series] << "\" points=\"";
            for (const LatencyRow* row : rows)
                g << x_of(row->idle) << "," << y_of(series == 0 ? row->p50 : row->p99) << " ";
            g << "\"/>\n";
            for (const LatencyRow* row : rows) {
                g << "<circle cx=\"" << x_of(row->idle) << "\" cy=\""
                  << y_of(series == 0 ? row->p50 : row->p99) << "\" r=\"3\" fill=\""
                  << colors[series] << "\"/>\n";
            }
            g << "<text x=\"" << w - r - 60 << "\" y=\"" << t + 14 * (series + 1) << "\" fill=\""
              << colors[series] << "\">" << (series == 0 ? "p50" : "p99") << "</text>\n";
        }
        for (const LatencyRow* row : rows) {
            g << "<text x=\"" << x_of(row->idle) - 12 << "\" y=\"" << h - b + 16 << "\">"
              << row->idle << "</text>\n";
        }
        g << "<text x=\"" << (l + w) / 2 - 60 << "\" y=\"" << h - 10
          << "\">idle connections</text>\n</svg>\n";
    }
    std::string rm = "rm -rf '" + dir + "'";
    (void)std::system(rm.c_str());
    bool all_ok = true;
    for (const LatencyRow& r : latency)
        all_ok = all_ok && (r.ok || r.skipped);
    for (const ThroughputRow& r : throughput)
        all_ok = all_ok && r.ok;
    return all_ok ? 0 : 1;
}
