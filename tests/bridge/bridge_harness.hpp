// SPDX-License-Identifier: MIT OR Apache-2.0
// The bridge tests' processes: a real nats-server on a free loopback port (or on an address
// the test assigns inside a network namespace it made), `vipc bridge` processes, and an
// in-process server standing for "host B". Every process is stopped and reaped at the end
// of its test; every wait is bounded.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bridge/local_side.hpp"
#include "bridge/remote_error.hpp"
#include "test_support.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::bridge::test {

using posix::test::RuntimeDir;

inline u64 now_ms() {
    return posix::now_ns() / 1'000'000u;
}

// A child process with its stdout read line by line. The destructor stops it: SIGTERM, then
// SIGKILL after 3 s, and reaps it.
class Process {
public:
    Process(std::vector<std::string> argv, std::vector<std::string> env = {},
            const std::string& stderr_file = "") {
        int out[2];
        if (pipe2(out, O_CLOEXEC) != 0) return;
        std::vector<char*> args;
        for (auto& a : argv)
            args.push_back(a.data());
        args.push_back(nullptr);
        pid_ = fork();
        if (pid_ == 0) {
            dup2(out[1], STDOUT_FILENO);
            if (!stderr_file.empty()) {
                const int e = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
                if (e >= 0) dup2(e, STDERR_FILENO);
            }
            for (auto& kv : env)
                putenv(kv.data());
            execv(args[0], args.data());
            _exit(127);
        }
        ::close(out[1]);
        out_ = out[0];
    }
    ~Process() {
        stop();
        if (out_ >= 0) ::close(out_);
    }
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0; }

    // Reads stdout until a line containing `text`; false after timeout_ms or at EOF.
    bool wait_for(const std::string& text, int timeout_ms = 5000, std::string* line_out = nullptr) {
        const u64 give_up = now_ms() + static_cast<u64>(timeout_ms);
        for (;;) {
            usize nl;
            while ((nl = buffer_.find('\n')) != std::string::npos) {
                const std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                lines_.push_back(line);
                if (line.find(text) != std::string::npos) {
                    if (line_out != nullptr) *line_out = line;
                    return true;
                }
            }
            const u64 now = now_ms();
            if (now >= give_up) return false;
            pollfd p{out_, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(give_up - now)) <= 0) continue;
            char buf[4096];
            const ssize_t n = read(out_, buf, sizeof buf);
            if (n <= 0) return false;
            buffer_.append(buf, static_cast<usize>(n));
        }
    }
    const std::vector<std::string>& lines() const { return lines_; }

    // SIGKILL now and reap.
    void kill_now() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
        drain();
    }
    // After the exit: reads what is left of its output into lines() (bounded: the write end
    // is closed once the process is gone).
    void drain() {
        if (out_ < 0) return;
        fcntl(out_, F_SETFL, O_NONBLOCK);
        char buf[4096];
        ssize_t n;
        while ((n = read(out_, buf, sizeof buf)) > 0)
            buffer_.append(buf, static_cast<usize>(n));
        usize nl;
        while ((nl = buffer_.find('\n')) != std::string::npos) {
            lines_.push_back(buffer_.substr(0, nl));
            buffer_.erase(0, nl + 1);
        }
    }
    // SIGTERM, wait up to timeout_ms for the exit: its exit status, or -1 (then SIGKILLed).
    int stop(int timeout_ms = 3000) {
        if (pid_ <= 0) return -1;
        ::kill(pid_, SIGTERM);
        const u64 give_up = now_ms() + static_cast<u64>(timeout_ms);
        while (now_ms() < give_up) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                drain();
                return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            usleep(5000);
        }
        kill_now();
        return -1;
    }

    // Waits up to timeout_ms for the process to exit by itself: its exit status, or -1 (then
    // it is SIGKILLed).
    int wait_exit(int timeout_ms) {
        const u64 give_up = now_ms() + static_cast<u64>(timeout_ms);
        while (pid_ > 0 && now_ms() < give_up) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                drain();
                return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            usleep(5000);
        }
        kill_now();
        return -1;
    }

    // Resident memory in KiB (from /proc), 0 when unknown.
    u64 rss_kib() const {
        std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
        std::string key;
        while (in >> key) {
            if (key == "VmRSS:") {
                u64 v = 0;
                in >> v;
                return v;
            }
            std::string rest;
            std::getline(in, rest);
        }
        return 0;
    }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    std::string buffer_;
    std::vector<std::string> lines_;
};

// A loopback TCP port nobody listens on now.
inline int free_port() {
    const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(s);
        return -1;
    }
    ::close(s);
    return ntohs(a.sin_port);
}

// True once something accepts TCP connections on host:port (at most timeout_ms).
inline bool wait_listening(const std::string& host, int port, int timeout_ms) {
    const u64 give_up = now_ms() + static_cast<u64>(timeout_ms);
    while (now_ms() < give_up) {
        const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<u16>(port));
        inet_pton(AF_INET, host.c_str(), &a.sin_addr);
        const bool up = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(s);
        if (up) return true;
        usleep(10'000);
    }
    return false;
}

// A nats-server of the test's own, on a free loopback port (optionally in a cluster, or
// inside a network namespace through `wrapper`, e.g. {"/usr/sbin/ip", "netns", "exec", "x"}).
class NatsServer {
public:
    struct Options {
        std::string host = "127.0.0.1";
        int port = 0;          // 0 = a free one
        int cluster_port = 0;  // with routes: a member of a cluster
        std::vector<int> routes;
        std::vector<std::string> wrapper;
        std::string log;
    };
    explicit NatsServer(Options o) : o_(std::move(o)) {
        if (o_.port == 0) o_.port = free_port();
        start();
    }
    NatsServer() : NatsServer(Options{}) {}

    void start() {
        std::vector<std::string> argv = o_.wrapper;
        argv.insert(argv.end(),
                    {VIPC_NATS_SERVER_PATH, "-a", o_.host, "-p", std::to_string(o_.port)});
        if (o_.cluster_port != 0) {
            argv.insert(argv.end(), {"--cluster_name", "vipc-test", "--cluster",
                                     "nats://" + o_.host + ":" + std::to_string(o_.cluster_port)});
            std::string routes;
            for (const int r : o_.routes)
                routes +=
                    (routes.empty() ? "" : ",") + ("nats://" + o_.host + ":") + std::to_string(r);
            if (!routes.empty()) argv.insert(argv.end(), {"--routes", routes});
        }
        const std::string log = o_.log.empty() ? "/dev/null" : o_.log;
        process_ = std::make_unique<Process>(argv, std::vector<std::string>{}, log);
    }
    // Waits until it accepts connections: from this network namespace by connecting, from
    // another one by its log's "Server is ready" (needs Options::log).
    bool ready(int timeout_ms = 5000) const {
        if (o_.wrapper.empty()) return wait_listening(o_.host, o_.port, timeout_ms);
        const u64 give_up = now_ms() + static_cast<u64>(timeout_ms);
        while (now_ms() < give_up) {
            std::ifstream in(o_.log);
            std::stringstream text;
            text << in.rdbuf();
            if (text.str().find("Server is ready") != std::string::npos) return true;
            usleep(10'000);
        }
        return false;
    }
    void kill_now() { process_->kill_now(); }
    void restart() {
        process_->kill_now();
        start();
    }
    std::string url() const { return "nats://" + o_.host + ":" + std::to_string(o_.port); }
    int port() const { return o_.port; }

private:
    Options o_;
    std::unique_ptr<Process> process_;
};

// Environment for a child whose memory the test measures. AddressSanitizer keeps freed
// memory in a quarantine (256 MiB by default) that would look like growth; a small one
// leaves only what the program holds.
inline std::vector<std::string> measured_memory_env() {
#if defined(__SANITIZE_ADDRESS__)
    const char* old = std::getenv("ASAN_OPTIONS");
    return {std::string("ASAN_OPTIONS=") + (old != nullptr ? std::string(old) + ":" : "") +
            "quarantine_size_mb=1:thread_local_quarantine_size_kb=64"};
#else
    return {};
#endif
}

// `vipc bridge MODE NAME --nats-url URL ...` with VIPC_RUNTIME_DIR=dir (and `env`).
inline std::unique_ptr<Process> start_bridge(const std::string& mode, const std::string& name,
                                             const std::string& dir, const std::string& url,
                                             std::vector<std::string> extra = {},
                                             std::vector<std::string> wrapper = {},
                                             std::vector<std::string> env = {}) {
    std::vector<std::string> argv = wrapper;
    argv.insert(argv.end(), {VIPC_PATH, "bridge", mode, name, "--nats-url", url});
    argv.insert(argv.end(), extra.begin(), extra.end());
    env.push_back("VIPC_RUNTIME_DIR=" + dir);
    return std::make_unique<Process>(argv, env);
}

// The server on "host B", in this process: answers OP_CALL with data[0] + 1, holds OP_HOLD
// requests unanswered, and checks one-way OP_DATA messages for order (data[0] must be
// 0, 1, 2, ... per stream, data[1] names the stream).
class HostBServer {
public:
    HostBServer(const std::string& name, const std::string& dir, u32 depth = 64) {
        posix::ServerOptions o;
        o.runtime_dir = dir;
        o.capacity = depth;
        Result<posix::Server> s = posix::Server::publish(name, o);
        if (!s) {
            ADD_FAILURE() << "publish " << name << ": " << posix::last_error_detail();
            return;
        }
        server_ = std::make_unique<posix::Server>(std::move(*s));
        thread_ = std::thread([this] { run(); });
    }
    ~HostBServer() {
        stop_.store(true);
        if (server_) (void)server_->close();
        if (thread_.joinable()) thread_.join();
    }

    u64 calls() const { return calls_.load(); }
    u64 received() const { return received_.load(); }
    u64 out_of_order() const { return out_of_order_.load(); }
    u64 next_expected() const { return next_.load(); }
    std::set<u64> call_senders() const {
        std::lock_guard<std::mutex> lock(mu_);
        return call_senders_;
    }
    std::map<u64, u64> send_senders() const {
        std::lock_guard<std::mutex> lock(mu_);
        return send_senders_;
    }
    u64 held() const { return held_.load(); }
    // What remained of the caller's deadline (Received::caller_deadline) when the last held
    // call was taken, in ns; ~0 when it had none.
    u64 last_held_remaining_ns() const { return held_remaining_ns_.load(); }
    u64 payload_bytes() const { return payload_bytes_.load(); }
    // Makes the server take `us` microseconds per one-way message.
    void set_slow_us(u32 us) { slow_us_.store(us); }

private:
    void run() {
        while (!stop_.load()) {
            // Every kind the runtime carries (payloads too, where it has them).
            Result<LocalItem> item = take_local(*server_, posix::after_ms(100), true);
            if (!item) continue;
            const posix::Received* r = &item->request;
            const Message& m = r->message;
            if (item->is_payload) {
                if (item->is_call()) {
                    calls_.fetch_add(1);
                    // Echo: the same bytes, opcode + 1.
                    (void)reply_payload(*server_, *r, item->opcode + 1, 0, item->bytes,
                                        posix::after_ms(1000));
                } else {
                    payload_bytes_.fetch_add(item->bytes.size());
                    received_.fetch_add(1);
                }
                continue;
            }
            if (m.transaction_id() != 0) {
                {
                    std::lock_guard<std::mutex> lock(mu_);
                    call_senders_.insert(m.sender().value);
                }
                if (m.opcode() == posix::test::OP_HOLD) {
                    const Deadline d = r->caller_deadline;
                    const u64 now = posix::now_ns();
                    held_remaining_ns_.store(d.is_never()   ? ~u64{0}
                                             : d.ns() > now ? d.ns() - now
                                                            : 0);
                    held_.fetch_add(1);
                    continue;
                }
                calls_.fetch_add(1);
                Message answer = m;
                if (answer.is_small()) answer.small_message().data[0] += 1;
                (void)server_->reply(*r, answer, posix::after_ms(1000));
                continue;
            }
            if (const u32 us = slow_us_.load()) usleep(us);
            if (m.is_small()) {
                const u64 seq = m.small_message().data[0];
                if (seq < next_.load()) out_of_order_.fetch_add(1);
                next_.store(seq + 1);
            }
            {
                std::lock_guard<std::mutex> lock(mu_);
                ++send_senders_[m.sender().value];
            }
            received_.fetch_add(1);
        }
    }

    std::unique_ptr<posix::Server> server_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<u64> calls_{0}, received_{0}, out_of_order_{0}, next_{0}, held_{0},
        payload_bytes_{0}, held_remaining_ns_{0};
    std::atomic<u32> slow_us_{0};
    mutable std::mutex mu_;
    std::set<u64> call_senders_;
    std::map<u64, u64> send_senders_;
};

// Connects to `name` in `dir` (the import bridge's endpoint), retrying while it appears.
inline Result<posix::Connection> connect_to(const std::string& name, const std::string& dir,
                                            int timeout_ms = 5000) {
    posix::ConnectOptions o;
    o.runtime_dir = dir;
    const u64 give_up = now_ms() + static_cast<u64>(timeout_ms);
    for (;;) {
        Result<posix::Connection> c = posix::Connection::connect(name, o);
        if (c || now_ms() >= give_up) return c;
        usleep(10'000);
    }
}

inline Message call_message(u32 opcode, u64 data0) {
    return posix::test::small_message(opcode, data0);
}

// Calls until one succeeds (the remote side may need a moment: a route's interest, a
// reconnect), at most timeout_ms. The last result.
inline Result<Message> call_until_ok(posix::Connection& c, u64 data0, int timeout_ms) {
    const u64 give_up = now_ms() + static_cast<u64>(timeout_ms);
    for (;;) {
        Result<Message> r =
            check_reply(c.call(call_message(posix::test::OP_CALL, data0), posix::after_ms(1000)));
        if (r || now_ms() >= give_up) return r;
        usleep(20'000);
    }
}

}  // namespace veridian::ipc::bridge::test
