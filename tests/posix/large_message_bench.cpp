// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc_large_message_bench: the cost of sending a large message is flat in its size.
//
// Usage: vipc_large_message_bench [iterations]   (default 2000 per size and mode)
//
// Two processes: this one forks a server that, for every request, takes the region
// (Region::receive: checks the descriptor and maps it), reads its first and last byte and
// answers with a small reply. The client measures call() round trips carrying a region of
// 4 KiB .. 256 MiB:
//   share   Transfer::ShareReadOnly, the region taken from a RegionPool (created once,
//           reused: the steady state)
//   move    Transfer::Move of a region created before each timed call (its creation is not
//           timed: a moved region cannot be reused)
// Each round trip is one send + one receive + map + unmap on the server + a 48-byte reply.
// Nothing about the payload is copied, so the time does not depend on its size. Prints a
// Markdown table (median, p99, min in microseconds) and the ratio of the largest to the
// smallest size's median.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "veridian/ipc/posix/region.hpp"
#include "veridian/ipc/posix/runtime.hpp"

using namespace veridian::ipc;
using namespace veridian::ipc::posix;

namespace {

constexpr u32 OP_TAKE = 1;
constexpr u32 OP_EXIT = 2;

[[noreturn]] void die(const char* what, IpcError e) {
    std::fprintf(stderr, "vipc_large_message_bench: %s: %s (%s)\n", what, error_name(e),
                 last_error_detail());
    std::exit(2);
}

[[noreturn]] void serve(const std::string& dir, int ready_fd) {
    ServerOptions options;
    options.runtime_dir = dir;
    auto server = Server::publish("bench/large", options);
    if (!server) die("publish", server.error());
    const char byte = 1;
    if (write(ready_fd, &byte, 1) != 1) std::exit(2);
    for (;;) {
        auto in = server->receive_sync();
        if (!in) die("receive", in.error());
        if (in->message.opcode() == OP_EXIT) std::exit(0);
        auto region = Region::receive(in->message);
        if (!region) die("Region::receive", region.error());
        Message answer = Message::small(0, OP_TAKE);
        answer.small_message().data[0] = region->data()[0] + region->data()[region->size() - 1];
        auto r = server->reply(*in, answer);
        if (!r) die("reply", r.error());
    }
}

struct Stats {
    double median_us, p99_us, min_us;
};

Stats stats_of(std::vector<u64>& ns) {
    std::sort(ns.begin(), ns.end());
    const usize n = ns.size();
    return Stats{ns[n / 2] / 1e3, ns[n * 99 / 100] / 1e3, ns[0] / 1e3};
}

}  // namespace

int main(int argc, char** argv) {
    const int iterations = argc > 1 ? std::atoi(argv[1]) : 2000;
    const int warmup = iterations / 10 + 1;
    char tmpl[] = "/tmp/vipc-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return 2;
    const std::string dir = tmpl;
    int ready[2];
    if (pipe(ready) != 0) return 2;
    const pid_t child = fork();
    if (child == 0) {
        ::close(ready[0]);
        serve(dir, ready[1]);
    }
    ::close(ready[1]);
    char byte = 0;
    if (read(ready[0], &byte, 1) != 1) return 2;

    ConnectOptions options;
    options.runtime_dir = dir;
    auto conn = Connection::connect("bench/large", options);
    if (!conn) die("connect", conn.error());

    std::vector<u64> sizes;
    for (u64 s = 4096; s <= (u64{256} << 20); s *= 4)
        sizes.push_back(s);

    RegionPool pool(4);
    std::printf(
        "| payload | share: median µs | p99 µs | min µs | move: median µs | p99 µs | "
        "min µs |\n|---:|---:|---:|---:|---:|---:|---:|\n");
    double first_share = 0, last_share = 0, first_move = 0, last_move = 0;
    LargeMessage lm{};
    lm.header.opcode = OP_TAKE;
    const Message request(lm);
    for (const u64 size : sizes) {
        std::vector<u64> share_ns, move_ns;
        share_ns.reserve(static_cast<usize>(iterations));
        move_ns.reserve(static_cast<usize>(iterations));
        for (int i = 0; i < warmup + iterations; ++i) {
            auto r = pool.acquire(size);
            if (!r) die("acquire", r.error());
            r->data()[0] = static_cast<u8>(i);
            const u64 t0 = now_ns();
            auto reply = conn->call(request, *r, Transfer::ShareReadOnly);
            const u64 t1 = now_ns();
            if (!reply) die("call (share)", reply.error());
            if (i >= warmup) share_ns.push_back(t1 - t0);
            pool.release(static_cast<Region&&>(*r));
        }
        for (int i = 0; i < warmup + iterations; ++i) {
            auto r = Region::create(size);
            if (!r) die("create", r.error());
            r->data()[0] = static_cast<u8>(i);
            const u64 t0 = now_ns();
            auto reply = conn->call(request, *r, Transfer::Move);
            const u64 t1 = now_ns();
            if (!reply) die("call (move)", reply.error());
            if (i >= warmup) move_ns.push_back(t1 - t0);
        }
        const Stats s = stats_of(share_ns);
        const Stats m = stats_of(move_ns);
        char label[32];
        if (size >= (u64{1} << 20)) {
            std::snprintf(label, sizeof label, "%llu MiB",
                          static_cast<unsigned long long>(size >> 20));
        } else {
            std::snprintf(label, sizeof label, "%llu KiB",
                          static_cast<unsigned long long>(size >> 10));
        }
        std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", label, s.median_us,
                    s.p99_us, s.min_us, m.median_us, m.p99_us, m.min_us);
        std::fflush(stdout);
        if (size == sizes.front()) {
            first_share = s.median_us;
            first_move = m.median_us;
        }
        last_share = s.median_us;
        last_move = m.median_us;
    }
    std::printf(
        "\nmedian 256 MiB / 4 KiB: share %.2fx, move %.2fx (%d round trips per cell; "
        "regions created by the pool: %llu)\n",
        last_share / first_share, last_move / first_move, iterations,
        static_cast<unsigned long long>(pool.created()));
    (void)conn->send_sync(Message::small(0, OP_EXIT), after_ms(1000));
    int status = 0;
    waitpid(child, &status, 0);
    rmdir(dir.c_str());
    return 0;
}
