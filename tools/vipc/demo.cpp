// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc demo: a server and a client as two real processes, then a summary.
//
// How it runs:
//   (1) make a private runtime directory (mkdtemp), so the demo never meets a user's endpoints;
//   (2) fork and exec this same binary as `vipc __demo-server DIR --ready-fd FD`: the server
//       process publishes "demo/echo" in DIR and writes "ready" (or its error) to the pipe;
//   (3) this process is the client: it connects, makes warm-up calls, then timed call/reply
//       round trips, then streams one-way SmallMessages with send_sync (it waits whenever the
//       server's queue is full: backpressure). Each stream message carries its sequence
//       number; a final call asks the server how many arrived and whether any was out of order;
//   (4) a last call tells the server to close and exit; we reap it and check its exit status;
//   (5) on every way out (success, error, Ctrl-C) the server is killed if it still runs and
//       reaped, and the directory is removed. The server also dies with us (PR_SET_PDEATHSIG).
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "commands.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace vipc {

namespace posix = veridian::ipc::posix;
using cli::Args;
using cli::EXIT_FAILURE_RUNTIME;
using cli::EXIT_OK;
using cli::EXIT_USAGE;
using cli::u32;
using cli::u64;
using veridian::ipc::Deadline;
using veridian::ipc::IpcError;
using veridian::ipc::Message;
using veridian::ipc::Result;
using veridian::ipc::SmallMessage;

namespace {

constexpr const char* kEndpointName = "demo/echo";

// The demo's protocol (opcodes of the client's messages).
enum DemoOpcode : u32 {
    kEcho = 1,       // call: the reply is the request
    kStream = 2,     // one-way: data[0] is the sequence number, from 0
    kStreamEnd = 3,  // call: reply data[0] = stream messages received, data[1] = out of order
    kShutdown = 4,   // call: the server replies, closes and exits 0
};

// No single operation of the demo may take longer than this; past it, something is stuck.
constexpr u64 kOperationTimeoutMs = 10'000;
// The server exits on its own when nothing arrives for this long.
constexpr u64 kServerIdleLimitMs = 30'000;

struct DemoOptions {
    u64 calls = 100'000;
    u64 messages = 1'000'000;
    u64 warmup = 1'000;
    u32 depth = posix::DEFAULT_CAPACITY;
    bool json = false;
};

constexpr const char* kDemoHelp =
    "usage: vipc demo [--calls N] [--messages N] [--depth N] [--quick] [--json]\n"
    "\n"
    "Starts a server and a client as two separate processes, in a private runtime directory\n"
    "(removed afterwards), and measures:\n"
    "  call/reply   round trips of a 48-byte message (after a warm-up)\n"
    "  stream       one-way 48-byte messages with backpressure, checked for loss and order\n"
    "then prints the round-trip min/p50/p99/p99.9 in microseconds, calls per second, stream\n"
    "messages per second and MB/s, and the pids of both processes. A live progress line goes\n"
    "to stderr when it is a terminal.\n"
    "\n"
    "  --calls N      timed round trips (default 100000)\n"
    "  --messages N   stream messages (default 1000000)\n"
    "  --depth N      queue depth per direction, 1..1024 (default 64)\n"
    "  --quick        a short run: 2000 calls, 20000 messages\n"
    "  --json         the summary as one JSON object: ok, server_pid, client_pid,\n"
    "                 calls{count, seconds, per_second, rtt_us{min, p50, p99, p99_9, max,\n"
    "                 mean}}, stream{messages, message_bytes, seconds, msgs_per_second,\n"
    "                 mb_per_second, received, out_of_order}\n";

// ---- Progress ---------------------------------------------------------------------------------

// A live "\r" line on a terminal (at most 10 updates a second), and one plain line per
// finished phase either way.
class Progress {
public:
    Progress(const char* phase, u64 total, bool live)
        : phase_(phase), total_(total), live_(live), start_(posix::now_ns()), last_(start_) {}

    void update(u64 done) {
        if (!live_ || (done & 255) != 0) return;
        const u64 now = posix::now_ns();
        if (now - last_ < 100'000'000) return;
        last_ = now;
        const double seconds = static_cast<double>(now - start_) / 1e9;
        std::fprintf(
            stderr, "\r  %-10s %12s / %s  %3llu%%  %s/s   ", phase_, cli::with_commas(done).c_str(),
            cli::with_commas(total_).c_str(),
            static_cast<unsigned long long>(done * 100 / (total_ == 0 ? 1 : total_)),
            cli::with_commas(static_cast<u64>(static_cast<double>(done) / seconds)).c_str());
    }

    void finish(const std::string& summary) {
        std::fprintf(stderr, "%s  %-10s %s\n", live_ ? "\r\033[K" : "", phase_, summary.c_str());
    }

    void abandon() {
        if (live_) std::fputs("\r\033[K", stderr);
    }

private:
    const char* phase_;
    u64 total_;
    bool live_;
    u64 start_;
    u64 last_;
};

// ---- The server process -------------------------------------------------------------------

// The server process and the private directory, cleaned up on every way out.
class DemoServerProcess {
public:
    DemoServerProcess() = default;
    DemoServerProcess(const DemoServerProcess&) = delete;
    DemoServerProcess& operator=(const DemoServerProcess&) = delete;
    ~DemoServerProcess() {
        kill_and_reap();
        remove_dir();
    }

    // Makes the directory and starts the server in it. On failure returns false with *error
    // set to the one line to print.
    bool start(u32 depth, std::string* error) {
        // $TMPDIR when the runtime directory made there leaves room for the longest endpoint
        // name in a socket path (sockaddr_un is ~108 bytes), else /tmp.
        const char* tmp = std::getenv("TMPDIR");
        std::string base = tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp";
        if (base.size() + 12 + posix::MAX_NAME_LENGTH + 8 >= sizeof(sockaddr_un{}.sun_path)) {
            base = "/tmp";
        }
        std::string pattern = base + "/vipcd-XXXXXX";
        if (mkdtemp(pattern.data()) == nullptr) {
            *error = cli::format(
                "cannot create a private directory %s: %s — set TMPDIR to a "
                "writable directory",
                pattern.c_str(), std::strerror(errno));
            return false;
        }
        dir_ = pattern;

        int ready[2];
        if (pipe2(ready, O_CLOEXEC) != 0) {
            *error = cli::format("pipe: %s", std::strerror(errno));
            return false;
        }
        const pid_t parent = getpid();
        const std::string depth_text = std::to_string(depth);
        const std::string fd_text = std::to_string(ready[1]);
        pid_ = fork();
        if (pid_ < 0) {
            *error = cli::format("cannot start the server process: %s", std::strerror(errno));
            close(ready[0]);
            close(ready[1]);
            return false;
        }
        if (pid_ == 0) {
            // The child: die with the client, keep the terminal's Ctrl-C for the client (it
            // stops us in order), keep the pipe's write end across exec.
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(EXIT_FAILURE_RUNTIME);
            setpgid(0, 0);
            close(ready[0]);
            fcntl(ready[1], F_SETFD, 0);
            const char* argv[] = {
                "vipc",       "__demo-server", dir_.c_str(), "--depth", depth_text.c_str(),
                "--ready-fd", fd_text.c_str(), nullptr};
            execv("/proc/self/exe", const_cast<char* const*>(argv));
            const std::string line =
                cli::format("error cannot run /proc/self/exe: %s\n", std::strerror(errno));
            (void)!write(ready[1], line.data(), line.size());
            _exit(EXIT_FAILURE_RUNTIME);
        }
        close(ready[1]);
        const bool ok = wait_ready(ready[0], error);
        close(ready[0]);
        return ok;
    }

    // Waits (bounded) for the server to exit on its own; returns its exit code, or -1 when it
    // had to be killed or died of a signal.
    int wait_exit(u64 timeout_ms) {
        const Deadline until = posix::after_ms(timeout_ms);
        while (pid_ > 0) {
            int status = 0;
            const pid_t r = waitpid(pid_, &status, WNOHANG);
            if (r == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            if (r < 0 && errno != EINTR) break;
            if (until.expired(posix::now_ns())) break;
            usleep(5'000);
        }
        kill_and_reap();
        return -1;
    }

    void kill_and_reap() {
        if (pid_ <= 0) return;
        kill(pid_, SIGKILL);
        while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }

    void remove_dir() {
        if (dir_.empty()) return;
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
        dir_.clear();
    }

    const std::string& dir() const { return dir_; }
    pid_t pid() const { return pid_; }

private:
    // Reads the server's first line: "ready", or "error <the line to print>".
    bool wait_ready(int fd, std::string* error) {
        std::string line;
        const Deadline until = posix::after_ms(kOperationTimeoutMs);
        for (;;) {
            const u64 now = posix::now_ns();
            if (until.expired(now) || stop_requested()) {
                *error = stop_requested() ? "interrupted"
                                          : "the server process did not start within 10 s";
                return false;
            }
            pollfd p{fd, POLLIN, 0};
            const int r = poll(&p, 1, 100);
            if (r <= 0) continue;
            char buf[512];
            const ssize_t n = read(fd, buf, sizeof(buf));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            line.append(buf, static_cast<std::size_t>(n));
            if (line.find('\n') != std::string::npos) break;
        }
        if (line.rfind("ready\n", 0) == 0) return true;
        if (line.rfind("error ", 0) == 0) {
            *error = line.substr(6, line.find('\n') - 6);
        } else {
            *error = "the server process exited before it was ready";
        }
        return false;
    }

    std::string dir_;
    pid_t pid_ = -1;
};

// ---- The client's phases ---------------------------------------------------------------------

struct DemoResult {
    std::vector<u64> rtt_ns;
    double call_seconds = 0;
    double stream_seconds = 0;
    u64 stream_received = 0;
    u64 out_of_order = 0;
};

// What went wrong in a phase, as the one line to print.
std::string phase_error(const char* what, IpcError e) {
    if (e == IpcError::Timeout) {
        return cli::format("%s: no progress for %llu s — the server process is stuck", what,
                           static_cast<unsigned long long>(kOperationTimeoutMs / 1000));
    }
    if (e == IpcError::EndpointNotFound) {
        return cli::format("%s: the server process went away (%s)", what, cli::describe(e).c_str());
    }
    return cli::format("%s: %s", what, cli::describe(e).c_str());
}

Result<Message> timed_call(posix::Connection& conn, u32 opcode, u64 data0) {
    Message m = Message::small(0, opcode);
    m.small_message().data[0] = data0;
    return conn.call(m, posix::after_ms(kOperationTimeoutMs));
}

// Runs warm-up, call/reply and stream. Returns "" on success or the error line.
std::string run_phases(posix::Connection& conn, const DemoOptions& o, bool live, DemoResult* out) {
    // Warm-up: page in the rings, settle the spin budget, wake the CPUs up.
    for (u64 i = 0; i < o.warmup; ++i) {
        if (stop_requested()) return "interrupted";
        Result<Message> r = timed_call(conn, kEcho, i);
        if (!r) return phase_error("warm-up", r.error());
    }

    // Call/reply round trips, each timed on its own.
    out->rtt_ns.reserve(o.calls);
    Progress calls("call/reply", o.calls, live);
    const u64 calls_start = posix::now_ns();
    for (u64 i = 0; i < o.calls; ++i) {
        if (stop_requested()) {
            calls.abandon();
            return "interrupted";
        }
        const u64 start = posix::now_ns();
        Result<Message> r = timed_call(conn, kEcho, i);
        const u64 end = posix::now_ns();
        if (!r) {
            calls.abandon();
            return phase_error("call/reply", r.error());
        }
        if (r->small_message().data[0] != i) {
            calls.abandon();
            return cli::format("call/reply: reply %llu carried %llu — replies are mismatched",
                               static_cast<unsigned long long>(i),
                               static_cast<unsigned long long>(r->small_message().data[0]));
        }
        out->rtt_ns.push_back(end - start);
        calls.update(i + 1);
    }
    out->call_seconds = static_cast<double>(posix::now_ns() - calls_start) / 1e9;
    calls.finish(cli::format("%s round trips in %.2f s", cli::with_commas(o.calls).c_str(),
                             out->call_seconds));

    // The stream: one-way messages, each numbered; send_sync waits while the ring is full.
    Progress stream("stream", o.messages, live);
    Message m = Message::small(0, kStream);
    const u64 stream_start = posix::now_ns();
    for (u64 i = 0; i < o.messages; ++i) {
        if ((i & 1023) == 0 && stop_requested()) {
            stream.abandon();
            return "interrupted";
        }
        m.small_message().data[0] = i;
        Result<void> r = conn.send_sync(m, posix::after_ms(kOperationTimeoutMs));
        if (!r) {
            stream.abandon();
            return phase_error("stream", r.error());
        }
        stream.update(i + 1);
    }
    // The end marker travels behind the stream in the same ring, so its reply means the
    // server has taken every message.
    Result<Message> end = timed_call(conn, kStreamEnd, o.messages);
    if (!end) {
        stream.abandon();
        return phase_error("stream", end.error());
    }
    out->stream_seconds = static_cast<double>(posix::now_ns() - stream_start) / 1e9;
    out->stream_received = end->small_message().data[0];
    out->out_of_order = end->small_message().data[1];
    stream.finish(cli::format("%s messages in %.2f s", cli::with_commas(o.messages).c_str(),
                              out->stream_seconds));
    if (out->stream_received != o.messages || out->out_of_order != 0) {
        return cli::format(
            "stream: the server got %llu of %llu messages, %llu out of order — "
            "messages were lost or reordered: please report this",
            static_cast<unsigned long long>(out->stream_received),
            static_cast<unsigned long long>(o.messages),
            static_cast<unsigned long long>(out->out_of_order));
    }
    return "";
}

void print_summary(const DemoOptions& o, const DemoResult& r, const LatencySummary& s,
                   pid_t server_pid) {
    const double calls_per_s = static_cast<double>(o.calls) / r.call_seconds;
    const double msgs_per_s = static_cast<double>(o.messages) / r.stream_seconds;
    const double mb_per_s = msgs_per_s * sizeof(SmallMessage) / 1e6;
    if (o.json) {
        cli::Json j;
        j.begin_object().key("ok").boolean(true);
        j.key("server_pid").number(static_cast<u64>(server_pid));
        j.key("client_pid").number(static_cast<u64>(getpid()));
        j.key("capacity").number(u64{o.depth});
        j.key("calls").begin_object();
        j.key("count").number(o.calls).key("warmup").number(o.warmup);
        j.key("seconds").number(r.call_seconds, 6).key("per_second").number(calls_per_s);
        j.key("rtt_us").begin_object();
        latency_json(j, s);
        j.end_object().end_object();
        j.key("stream").begin_object();
        j.key("messages").number(o.messages).key("message_bytes").number(u64{sizeof(SmallMessage)});
        j.key("seconds").number(r.stream_seconds, 6).key("msgs_per_second").number(msgs_per_s);
        j.key("mb_per_second").number(mb_per_s);
        j.key("received").number(r.stream_received).key("out_of_order").number(r.out_of_order);
        j.end_object().end_object();
        std::printf("%s\n", j.text().c_str());
        return;
    }
    std::printf("vipc demo: server pid %d, client pid %d, queue depth %u\n",
                static_cast<int>(server_pid), static_cast<int>(getpid()), o.depth);
    std::printf("  call/reply  %s round trips in %.2f s: %s calls/s\n",
                cli::with_commas(o.calls).c_str(), r.call_seconds,
                cli::with_commas(static_cast<u64>(calls_per_s)).c_str());
    std::printf(
        "              round trip (µs): min %.2f  p50 %.2f  p99 %.2f  p99.9 %.2f  "
        "max %.1f\n",
        s.min, s.p50, s.p99, s.p999, s.max);
    std::printf("  stream      %s messages of %zu B in %.2f s: %s msgs/s, %.1f MB/s\n",
                cli::with_commas(o.messages).c_str(), sizeof(SmallMessage), r.stream_seconds,
                cli::with_commas(static_cast<u64>(msgs_per_s)).c_str(), mb_per_s);
    std::printf(
        "  checked     every reply matched its call; every stream message arrived "
        "once, in order\n");
}

}  // namespace

int run_demo(Args& args) {
    DemoOptions o;
    bool calls_set = false;
    bool messages_set = false;
    bool quick = false;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(kDemoHelp, stdout);
            return EXIT_OK;
        } else if (args.is("--calls")) {
            if (!args.number(&o.calls, 1, 100'000'000)) return EXIT_USAGE;
            calls_set = true;
        } else if (args.is("--messages")) {
            if (!args.number(&o.messages, 1, 1'000'000'000)) return EXIT_USAGE;
            messages_set = true;
        } else if (args.is("--depth")) {
            if (!args.number(&o.depth, 1, 1024)) return EXIT_USAGE;
        } else if (args.is("--quick")) {
            quick = true;
        } else if (args.is("--json")) {
            o.json = true;
        } else {
            return args.unknown();
        }
    }
    if (quick) {
        if (!calls_set) o.calls = 2'000;
        if (!messages_set) o.messages = 20'000;
        o.warmup = 100;
    }
    install_stop_signals();
    const bool live = isatty(STDERR_FILENO) != 0;

    DemoServerProcess server;
    std::string error;
    if (!server.start(o.depth, &error)) return cli::runtime_error(args.command(), error);
    const pid_t server_pid = server.pid();
    if (!o.json || live) {
        std::fprintf(stderr, "vipc demo: server pid %d, client pid %d, in %s\n",
                     static_cast<int>(server_pid), static_cast<int>(getpid()),
                     server.dir().c_str());
    }

    posix::ConnectOptions connect_options;
    connect_options.runtime_dir = server.dir();
    Result<posix::Connection> connected =
        posix::Connection::connect(kEndpointName, connect_options);
    if (!connected) {
        return cli::runtime_error(args.command(), "cannot connect to the demo server: " +
                                                      cli::describe(connected.error()));
    }
    posix::Connection conn = std::move(*connected);

    DemoResult result;
    error = run_phases(conn, o, live, &result);
    if (!error.empty()) return cli::runtime_error(args.command(), error);

    // Orderly end: the server replies, closes its endpoint and exits 0.
    Result<Message> bye = timed_call(conn, kShutdown, 0);
    (void)conn.close();
    const int server_exit = bye ? server.wait_exit(5'000) : -1;
    if (!bye) return cli::runtime_error(args.command(), phase_error("shutdown", bye.error()));
    if (server_exit != 0) {
        return cli::runtime_error(
            args.command(), cli::format("the server process exited with status %d", server_exit));
    }
    server.remove_dir();

    const LatencySummary s = summarize(result.rtt_ns);
    print_summary(o, result, s, server_pid);
    return EXIT_OK;
}

// `vipc __demo-server DIR --depth N --ready-fd FD`: the server half of the demo.
int run_demo_server(Args& args) {
    std::string dir;
    u32 depth = posix::DEFAULT_CAPACITY;
    u32 ready_fd = 0;
    while (args.next()) {
        if (args.is("--depth")) {
            if (!args.number(&depth, 1, 1024)) return EXIT_USAGE;
        } else if (args.is("--ready-fd")) {
            if (!args.number(&ready_fd, 3, 1 << 20)) return EXIT_USAGE;
        } else if (args.is_positional() && dir.empty()) {
            dir = args.current();
        } else {
            return args.unknown();
        }
    }
    if (dir.empty() || ready_fd == 0)
        return cli::usage_error("demo", "internal: DIR and --ready-fd are needed");
    const int fd = static_cast<int>(ready_fd);
    const auto tell = [fd](const std::string& line) {
        (void)!write(fd, line.data(), line.size());
        close(fd);
    };

    posix::ServerOptions options;
    options.capacity = depth;
    options.runtime_dir = dir;
    Result<posix::Server> published = posix::Server::publish(kEndpointName, options);
    if (!published) {
        tell("error the demo server cannot publish '" + std::string(kEndpointName) +
             "': " + cli::describe(published.error()) + "\n");
        return EXIT_FAILURE_RUNTIME;
    }
    posix::Server server = std::move(*published);
    tell("ready\n");

    const pid_t parent = getppid();
    u64 expected = 0;
    u64 received = 0;
    u64 out_of_order = 0;
    u64 idle_since = posix::now_ns();
    for (;;) {
        Result<posix::Received> r = server.receive_sync(posix::after_ms(200));
        if (!r) {
            if (r.error() != IpcError::Timeout) break;
            if (getppid() != parent) break;  // the client is gone
            if (posix::now_ns() - idle_since > kServerIdleLimitMs * 1'000'000) break;
            continue;
        }
        idle_since = posix::now_ns();
        const Message& m = r->message;
        if (!m.is_small()) continue;
        switch (m.opcode()) {
            case kStream: {
                const u64 seq = m.small_message().data[0];
                if (seq != expected) ++out_of_order;
                expected = seq + 1;
                ++received;
                break;
            }
            case kEcho:
                (void)server.reply(*r, m);
                break;
            case kStreamEnd: {
                Message answer = Message::small(0, kStreamEnd);
                answer.small_message().data[0] = received;
                answer.small_message().data[1] = out_of_order;
                (void)server.reply(*r, answer);
                expected = received = out_of_order = 0;
                break;
            }
            case kShutdown: {
                (void)server.reply(*r, m);
                // Let the client take the reply and hang up before the endpoint closes
                // (bounded: a client that never hangs up cannot keep us here).
                const Deadline until = posix::after_ms(2'000);
                while (!server.connections().empty() && !until.expired(posix::now_ns())) {
                    usleep(1'000);
                }
                (void)server.close();
                return EXIT_OK;
            }
            default:
                break;
        }
    }
    (void)server.close();
    return EXIT_FAILURE_RUNTIME;
}

}  // namespace vipc
