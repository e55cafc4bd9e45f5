// SPDX-License-Identifier: MIT OR Apache-2.0
// The fork-based case runner.
//
// Parent                         server child                 client child
// ------                         ------------                 ------------
// map the shared outcome
// fork server ─────────────────► pin, open(server)
// fork client ──────────────────────────────────────────────► pin, open(client)
//                                (barrier: both opened)       (barrier)
//                                echo until STOP              warm-up, timed round trips, STOP
//                                receive until LAST, ack      stream until count/time, wait ack
//                                (barrier: both finished)     (barrier)
//                                close, exit                  write results, close, exit
// wait for both (deadline) ─ on timeout: SIGKILL both; always reap both
//
// Message header (first 8 bytes): bits 0-61 sequence number, bit 62 LAST (stream end), bit 63
// STOP (end of the latency phase). The server echoes messages unchanged and checks that the
// stream arrives in order; the client checks every echo.
#include "harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

namespace vipc::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kStopFlag = std::uint64_t{1} << 63;
constexpr std::uint64_t kLastFlag = std::uint64_t{1} << 62;
constexpr std::uint64_t kSeqMask = kLastFlag - 1;
constexpr auto kBarrierLimit = std::chrono::seconds(30);

struct SideOutcome {
    std::atomic<std::int32_t> state{0};  // 0 running, 1 done, -1 failed
    char error[512] = {};
};

// Lives in anonymous shared memory, written by the children, read by the parent after both
// were reaped.
struct SharedOutcome {
    std::atomic<std::uint32_t> opened{0};    // barrier: sides that finished open()
    std::atomic<std::uint32_t> finished{0};  // barrier: sides done exchanging messages
    std::atomic<std::uint32_t> abort{0};     // a side failed: the other stops waiting
    SideOutcome client;
    SideOutcome server;
    std::uint64_t rtts = 0;
    double min = 0, p50 = 0, p99 = 0, p999 = 0, max = 0;
    std::uint64_t stream_msgs = 0;
    double stream_seconds = 0;
};

void put_header(std::span<std::byte> message, std::uint64_t header) {
    std::memcpy(message.data(), &header, sizeof header);
}

std::uint64_t get_header(std::span<const std::byte> message) {
    std::uint64_t header = 0;
    std::memcpy(&header, message.data(), sizeof header);
    return header;
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Nearest-rank percentile of sorted samples.
double percentile(const std::vector<double>& sorted, double q) {
    if (sorted.empty()) return 0;
    std::size_t rank = static_cast<std::size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return sorted[rank - 1];
}

Status pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        return Status::from_errno("sched_setaffinity(cpu " + std::to_string(cpu) + ")", errno);
    return {};
}

void fail_side(SharedOutcome& out, SideOutcome& side, const Status& status) {
    std::snprintf(side.error, sizeof side.error, "%s", status.reason().c_str());
    side.state.store(-1);
    out.abort.store(1);
}

// Waits until both sides reached `counter`. Polls with short sleeps: nothing is timed here.
// Used after open() (neither side sends before the other can receive) and after the last
// message (neither side closes while the other still waits for a message: some libraries
// drop what is still queued when a socket closes).
Status barrier(SharedOutcome& out, std::atomic<std::uint32_t>& counter, const char* what) {
    counter.fetch_add(1);
    const auto start = Clock::now();
    while (counter.load() < 2) {
        if (out.abort.load() != 0) return Status::fail(std::string("peer failed to ") + what);
        if (Clock::now() - start > kBarrierLimit)
            return Status::fail(std::string("peer did not ") + what + " within 30 s");
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    return {};
}

Status run_server(const TransportInfo& info, Transport& t, const CaseParams& params) {
    std::vector<std::byte> buf(params.message_size);
    if (info.round_trips) {
        for (;;) {
            if (Status s = t.echo(buf); !s) return s;
            if ((get_header(buf) & kStopFlag) != 0) break;
        }
    }
    if (info.streams) {
        std::uint64_t expected = 0;
        for (;;) {
            if (Status s = t.receive(buf); !s) return s;
            const std::uint64_t header = get_header(buf);
            if ((header & kSeqMask) != expected)
                return Status::fail("stream out of order: expected message " +
                                    std::to_string(expected) + ", got " +
                                    std::to_string(header & kSeqMask));
            ++expected;
            if ((header & kLastFlag) != 0) break;
        }
        put_header(buf, expected);
        if (Status s = t.send(buf); !s) return s;
    }
    return {};
}

Status run_client(const TransportInfo& info, Transport& t, const CaseParams& params,
                  const PhaseLimits& limits, SharedOutcome& out) {
    std::vector<std::byte> buf(params.message_size);
    for (std::size_t i = 8; i < buf.size(); ++i)
        buf[i] = static_cast<std::byte>(i * 7 + 1);
    const std::byte last_byte = buf.back();

    auto one_round_trip = [&](std::uint64_t header) -> Status {
        put_header(buf, header);
        if (Status s = t.round_trip(buf); !s) return s;
        // The last byte is payload only when the message is longer than its header.
        if (get_header(buf) != header || (buf.size() > 8 && buf.back() != last_byte))
            return Status::fail("reply does not match the request (message " +
                                std::to_string(header & kSeqMask) + ")");
        return {};
    };

    if (info.round_trips) {
        std::uint64_t seq = 0;
        // Warm-up: caches, page faults, the peer's first wake.
        const auto warm_start = Clock::now();
        for (std::uint64_t i = 0; i < limits.warmup_rtts; ++i) {
            if (Status s = one_round_trip(seq++); !s) return s;
            if (seconds_since(warm_start) > limits.warmup_seconds) break;
        }
        std::vector<double> samples;
        samples.reserve(limits.rtts);
        const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(limits.latency_seconds));
        for (std::uint64_t i = 0; i < limits.rtts; ++i) {
            const auto t0 = Clock::now();
            if (Status s = one_round_trip(seq++); !s) return s;
            const auto t1 = Clock::now();
            samples.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
            if (t1 > end) break;
        }
        if (Status s = one_round_trip(kStopFlag | seq); !s) return s;
        std::sort(samples.begin(), samples.end());
        out.rtts = samples.size();
        out.min = samples.front();
        out.p50 = percentile(samples, 0.50);
        out.p99 = percentile(samples, 0.99);
        out.p999 = percentile(samples, 0.999);
        out.max = samples.back();
    }

    if (info.streams) {
        const auto start = Clock::now();
        const auto end = start + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(limits.stream_seconds));
        std::uint64_t sent = 0;
        for (;;) {
            bool last = sent + 1 >= limits.stream_msgs;
            // Reading the clock costs ~20 ns: every 64 small messages, every large one.
            if (((sent & 63) == 63 || params.message_size >= 4096) && Clock::now() > end)
                last = true;
            put_header(buf, sent | (last ? kLastFlag : 0));
            if (Status s = t.send(buf); !s) return s;
            ++sent;
            if (last) break;
        }
        if (Status s = t.receive(buf); !s) return s;
        const double elapsed = seconds_since(start);
        if (get_header(buf) != sent)
            return Status::fail("stream: the receiver counted " + std::to_string(get_header(buf)) +
                                " of " + std::to_string(sent) + " messages");
        out.stream_msgs = sent;
        out.stream_seconds = elapsed;
    }
    return {};
}

// One child's whole life. Never returns.
[[noreturn]] void child_main(Role role, const TransportInfo& info, Transport& t,
                             const CaseParams& params, int cpu, const PhaseLimits& limits,
                             SharedOutcome& out, pid_t parent, const std::string& child_log) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(3);
    // The parent's interrupt handler is not ours: Ctrl-C ends a child at once.
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    // Library chatter (e.g. iceoryx logs) goes to a log file, not to the result table.
    const int log_fd = ::open(child_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd >= 0) {
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        ::close(log_fd);
    }
    SideOutcome& side = role == Role::client ? out.client : out.server;
    Status status = pin_to(cpu);
    if (status) status = t.open(role);
    if (!status) {
        fail_side(out, side, status);
        t.close();
        _exit(1);
    }
    status = barrier(out, out.opened, "open");
    if (status) {
        status = role == Role::client ? run_client(info, t, params, limits, out)
                                      : run_server(info, t, params);
    }
    if (status) status = barrier(out, out.finished, "finish");
    if (!status) fail_side(out, side, status);
    t.close();
    if (status) side.state.store(1);
    // A normal exit, so that libraries deregister from their daemons (iceoryx's runtime tells
    // RouDi it leaves). The parent's buffers were flushed before the fork; this process's
    // output goes to the log.
    std::exit(status ? 0 : 1);
}

// Waits for `pid` until `deadline`; true when it was reaped.
bool reap_until(pid_t pid, int* wstatus, Clock::time_point deadline) {
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    for (;;) {
        const pid_t r = waitpid(pid, wstatus, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) {
            if (pidfd >= 0) ::close(pidfd);
            return true;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            if (pidfd >= 0) ::close(pidfd);
            return false;
        }
        if (pidfd >= 0) {
            pollfd p{pidfd, POLLIN, 0};
            poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }
}

std::string describe_exit(const char* who, int wstatus) {
    if (WIFSIGNALED(wstatus))
        return std::string(who) + " died from signal " + std::to_string(WTERMSIG(wstatus)) + " (" +
               strsignal(WTERMSIG(wstatus)) + ")";
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) != 0)
        return std::string(who) + " exited with status " + std::to_string(WEXITSTATUS(wstatus));
    return {};
}

}  // namespace

RepResult run_case(const TransportInfo& info, Transport& transport, const CaseParams& params,
                   const Placement& placement, const PhaseLimits& limits,
                   const std::string& child_log) {
    RepResult result;
    const auto case_start = Clock::now();
    void* mem = mmap(nullptr, sizeof(SharedOutcome), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        result.reason = Status::from_errno("mmap", errno).reason();
        return result;
    }
    SharedOutcome& out = *new (mem) SharedOutcome{};
    const pid_t parent = getpid();
    std::fflush(nullptr);

    const pid_t server = fork();
    if (server == 0)
        child_main(Role::server, info, transport, params, placement.server_cpu, limits, out, parent,
                   child_log);
    pid_t client = -1;
    if (server > 0) {
        client = fork();
        if (client == 0)
            child_main(Role::client, info, transport, params, placement.client_cpu, limits, out,
                       parent, child_log);
    }

    const auto deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(limits.case_timeout_seconds));
    int client_status = 0, server_status = 0;
    bool timed_out = false;
    if (server < 0 || client < 0) {
        result.reason = Status::from_errno("fork", errno).reason();
        if (server > 0) kill(server, SIGKILL);
    }
    // Reap both, whatever happened; kill what outlives the deadline.
    if (client > 0 && !reap_until(client, &client_status, deadline)) {
        timed_out = true;
        kill(client, SIGKILL);
        kill(server, SIGKILL);
        waitpid(client, &client_status, 0);
    }
    if (server > 0 && !reap_until(server, &server_status, deadline)) {
        timed_out = true;
        kill(server, SIGKILL);
        if (client > 0) kill(client, SIGKILL);
    }
    if (server > 0 && timed_out) waitpid(server, &server_status, 0);

    if (result.reason.empty()) {
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%.0f", limits.case_timeout_seconds);
        if (out.client.state.load() == -1)
            result.reason = std::string("client: ") + out.client.error;
        else if (out.server.state.load() == -1)
            result.reason = std::string("server: ") + out.server.error;
        else if (timed_out)
            result.reason = std::string("timed out after ") + seconds + " s (both killed)";
        else if (std::string why = describe_exit("client", client_status); !why.empty())
            result.reason = why;
        else if (std::string why2 = describe_exit("server", server_status); !why2.empty())
            result.reason = why2;
        else if (out.client.state.load() != 1 || out.server.state.load() != 1)
            result.reason = "a side exited without a result";
    }
    if (result.reason.empty()) {
        result.ok = true;
        result.rtts = out.rtts;
        result.min = out.min;
        result.p50 = out.p50;
        result.p99 = out.p99;
        result.p999 = out.p999;
        result.max = out.max;
        result.stream_msgs = out.stream_msgs;
        result.stream_seconds = out.stream_seconds;
    }
    munmap(mem, sizeof(SharedOutcome));
    result.wall_seconds = seconds_since(case_start);
    return result;
}

}  // namespace vipc::bench
