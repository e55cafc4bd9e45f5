// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc_scale_peer: the client processes of the scale tests (scale_test.cpp). Usage:
//   vipc_scale_peer <role> <runtime dir> <name> [args...]
// Roles:
//   send <count> <every> <messages> <tag>
//                      open `count` connections; on every `every`-th of them (0, every, ...)
//                      send `messages` payloads of 12 bytes (tag, connection index, sequence),
//                      round robin over the active connections, with send_sync; print DONE,
//                      then wait (the connections stay open until the test kills us)
//   bogus <ms>         open one connection; for `ms` milliseconds set every bit and summary
//                      word of the server's ready map, mark our own slot without sending and
//                      ring the bell, in a loop; print DONE, then wait
//   churn <rounds> <tag>
//                      `rounds` times: connect, send one payload (tag, round, 0), close;
//                      print DONE
// Errors go to stderr as one line, exit 1.
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "posix/ready_set.hpp"
#include "posix/record_ring.hpp"
#include "posix/server_pages.hpp"
#include "veridian/ipc/posix/runtime.hpp"

using namespace veridian::ipc;
using namespace veridian::ipc::posix;

namespace {

[[noreturn]] void die(const char* what, IpcError e) {
    std::fprintf(stderr, "vipc_scale_peer: %s: %s (%s)\n", what, error_name(e),
                 last_error_detail());
    std::exit(1);
}

[[noreturn]] void wait_forever() {
    for (;;)
        pause();
}

void say(const char* line) {
    std::printf("%s\n", line);
    std::fflush(stdout);
}

Connection connect_to(const std::string& dir, const std::string& name,
                      MemfdDescriptors memfds = MemfdDescriptors::Closed) {
    ConnectOptions options;
    options.runtime_dir = dir;
    options.pool_bytes = 0;
    options.memfds = memfds;
    auto c = Connection::connect(name, options);
    if (!c) die("connect", c.error());
    return static_cast<Connection&&>(*c);
}

void put_u32(std::byte* at, u32 v) {
    std::memcpy(at, &v, 4);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: vipc_scale_peer <role> <dir> <name> [args...]\n");
        return 2;
    }
    const std::string role = argv[1], dir = argv[2], name = argv[3];
    auto arg = [&](int i) -> u32 {
        if (argc <= 3 + i) {
            std::fprintf(stderr, "vipc_scale_peer: %s needs more arguments\n", role.c_str());
            std::exit(2);
        }
        return static_cast<u32>(std::strtoul(argv[3 + i], nullptr, 10));
    };
    if (role == "send") {
        const u32 count = arg(1), every = arg(2), messages = arg(3), tag = arg(4);
        std::vector<Connection> conns;
        conns.reserve(count);
        for (u32 i = 0; i < count; ++i)
            conns.push_back(connect_to(dir, name));
        std::byte payload[12];
        for (u32 seq = 0; seq < messages; ++seq) {
            for (u32 i = 0; i < count; i += every) {
                put_u32(payload, tag);
                put_u32(payload + 4, i);
                put_u32(payload + 8, seq);
                if (auto r = conns[i].send_sync(1, 0, payload, after_ms(10'000)); !r) {
                    die("send_sync", r.error());
                }
            }
        }
        say("DONE");
        wait_forever();
    }
    if (role == "bogus") {
        const u32 ms = arg(1);
        Connection c = connect_to(dir, name, MemfdDescriptors::Kept);  // it maps them itself
        using namespace veridian::ipc::posix::detail;
        const ConnectionDescriptors d = c.descriptors();
        void* state = mmap(nullptr, PAGE_BYTES, PROT_READ, MAP_SHARED, d.server_state, 0);
        void* ctl = mmap(nullptr, PAGE_BYTES, PROT_READ, MAP_SHARED, d.c2s_ctl, 0);
        if (state == MAP_FAILED || ctl == MAP_FAILED) die("mmap", IpcError::OutOfMemory);
        const u32 slots = static_cast<const ServerState*>(state)->ready_slots;
        const u32 own = static_cast<const RingCtl*>(ctl)->ready_slot;
        const usize bytes = doorbell_bytes(slots);
        void* bell = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, d.server_doorbell, 0);
        if (bell == MAP_FAILED) die("mmap doorbell", IpcError::OutOfMemory);
        const ReadyMap map = ReadyMap::over(bell, slots);
        auto& words = platform::ProcessSharedWords::instance();
        say("STARTED");
        const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (std::chrono::steady_clock::now() < end) {
            for (u32 w = 0; w < map.bits_words; ++w)
                map.bits[w].store(~u64{0}, std::memory_order_relaxed);
            for (u32 k = 0; k < map.summary_words; ++k)
                map.summary[k].store(~u64{0}, std::memory_order_relaxed);
            mark_ready(map, own);
            map.bell->fetch_add(1, std::memory_order_seq_cst);
            words.wake_all(map.bell);
        }
        say("DONE");
        wait_forever();
    }
    if (role == "churn") {
        const u32 rounds = arg(1), tag = arg(2);
        std::byte payload[12];
        for (u32 round = 0; round < rounds; ++round) {
            Connection c = connect_to(dir, name);
            put_u32(payload, tag);
            put_u32(payload + 4, round);
            put_u32(payload + 8, 0);
            if (auto r = c.send_sync(1, 0, payload, after_ms(10'000)); !r)
                die("send_sync", r.error());
            (void)c.close();
        }
        say("DONE");
        return 0;
    }
    std::fprintf(stderr, "vipc_scale_peer: unknown role %s\n", role.c_str());
    return 2;
}
