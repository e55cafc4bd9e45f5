// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc_test_peer: the other process of the posix runtime's multi-process tests.
//
// Usage: vipc_test_peer <role> <runtime-dir> <name> [arguments...]
// Every role prints "READY" on stdout once it is set up, then does its part; errors go to
// stderr and give exit status 2. Roles:
//   echo [depth] [spin_ns]  publish; answer every call with the request, data[0] + 1; a plain
//                       message with OP_SEND_BACK is sent back to its connection; OP_EXIT
//                       exits 0; OP_HOLD requests are taken and never answered
//   echo-limited <msgs/s> <burst msgs> <bytes/s> <burst bytes>  echo, with that
//                       ServerOptions::client_rate_limit
//   idle [depth]        publish and never receive
//   hold                publish and wait (to hold the name)
//   client-idle [rights]  connect (rights: "s", "r" or "sr") and wait, reading nothing
//   client-receive      connect and block in receive_sync (10 s); exit 0 if it ends with
//                       EndpointNotFound, 1 otherwise
//   client-close-after <ms>  connect, wait ms, close the connection, then wait
//   client-as-user <uid>  drop to that uid (and gid), then try to connect; exit 0 if it is
//                       refused with PermissionDenied, 1 otherwise (needs root to start)
//   client-send <count>   connect and send_sync count messages (data[0] = 0..count-1)
//   client-call <count>   connect and call count times, checking each answer
//   client-corrupt <what> connect, then corrupt its own client→server ring ("seq": a bad
//                         sequence word; "slot": a record of no known kind; "length": a
//                         payload over the inline limit; "lines": a record past the ring's
//                         end; "padding": padding short of the end; "region": a region with
//                         no socket record), mark its ready slot and ring the
//                         server's bell; then wait
//   payload-echo [max]  publish with max_inline_payload = max (default 4096); answer payload
//                       calls with the payload XOR 0x5A; OP_SEND_BACK payload messages are sent
//                       back so; OP_EXIT exits 0
//   deadline-caller <ms> <rounds>  connect; each round makes five calls, each carrying the
//                       absolute deadline it was made with (u64 ns, ~0 for none) in its first
//                       8 bytes: a payload call and a LargeMessage call with a deadline ms from
//                       now, the same two without a deadline, a SmallMessage call with one
//                       (data[0]); every answer must come; exit 0
//   payload-sender <count>  connect; send_async count payload messages (sizes cycling over
//                       0..the limit, flags = i << 16, byte k = (i + k) & 0xFF); print DONE, wait
//   loan-echo           publish (4 MiB loan pools); answer every loan with a loan of the bytes
//                       XOR 0x5A (send_loan), releasing the one received; OP_EXIT exits 0
//   loan-holder         publish; keep every loan received until an OP_SEND_BACK message
//                       (releases them all) or OP_EXIT; OP_COUNT payload calls get the number
//                       held (u64)
//   bench-client <count> <warmup>  call round trips; prints "RTT p50 p99 min (ns)"
//   region-echo         publish; answer OP_REGION calls with a report on the region (or the
//                       inline bytes) they carry (see inspect_region); OP_REGION_BACK calls
//                       with a new region of data[0] bytes (first byte 0x11, last 0x22), moved;
//                       OP_EXIT exits 0
//   region-sender <count> <mode>  connect, send_sync count regions of 64 KiB whose first byte
//                       is 0..count-1 ("share": read-only, "move"), print DONE, then wait
//   client-flood        connect, then write OP_DATA messages straight into its client→server
//                       ring until it is full (ignoring any rate limit), mark its ready slot
//                       and ring the server's bell; print READY; then wait
//   cap-owner           publish; mint a capability (SEND|RECEIVE|GRANT); answer OP_GIVE_CAP
//                       calls with a reply carrying it, OP_REVOKE calls by revoking it (the
//                       reply's data[0] is CLOCK_MONOTONIC just before the revoke), OP_COUNT
//                       calls with the number of OP_DATA messages received, OP_CALL as echo
//   cap-user            publish; wait for a message carrying a capability, connect through
//                       it, print CONNECTED, then send_sync OP_DATA every 2 ms until an error:
//                       print "ERROR <error name> <CLOCK_MONOTONIC ns>" and exit 0
//   cap-count           publish; for each message carrying capabilities, note data[0] = how
//                       many, data[1] = their rights (16 bits each, first lowest), data[2] =
//                       how many it could connect through (sending one OP_DATA through each
//                       with SEND); answer each call with the last such note
//   bad-region <what>   connect, send an OP_REGION message whose region is bad, then a small
//                       OP_DATA message, print SENT, then wait. what: "small" (a 4 KiB memfd
//                       claimed as 1 MiB), "pipe" (a pipe, not a memfd), "unsealed" (a memfd
//                       without F_SEAL_SHRINK, truncated to 0 after sending), "sealed" (a good
//                       1 MiB region whose last byte is 0x5A; the sender then tries to truncate
//                       it and prints TRUNCATE-REFUSED when the kernel refuses)
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "posix/record_ring.hpp"
#include "posix/region_wire.hpp"
#include "posix/server_pages.hpp"
#include "test_ops.hpp"
#include "veridian/ipc/posix/runtime.hpp"

using namespace veridian::ipc;
using namespace veridian::ipc::posix;

namespace {

[[noreturn]] void die(const char* what, IpcError e) {
    std::fprintf(stderr, "vipc_test_peer: %s: %s (%s)\n", what, error_name(e), last_error_detail());
    std::exit(2);
}

void ready() {
    std::printf("READY\n");
    std::fflush(stdout);
}

[[noreturn]] void wait_forever() {
    for (;;)
        pause();
}

int serve(const std::string& dir, const std::string& name, u32 depth, bool idle,
          u32 spin_ns = DEFAULT_SPIN_NS, RateLimit limit = {}) {
    ServerOptions options;
    options.client_rate_limit = limit;
    options.runtime_dir = dir;
    options.capacity = depth;
    options.spin_ns = spin_ns;
    auto server = Server::publish(name, options);
    if (!server) die("publish", server.error());
    ready();
    if (idle) wait_forever();
    for (;;) {
        auto r = server->receive_sync();
        if (!r) die("receive", r.error());
        Message m = r->message;
        const u32 op = m.opcode();
        if (op == test::OP_EXIT) return 0;
        if (op == test::OP_HOLD) continue;
        if (m.transaction_id() != 0) {
            if (m.is_small()) m.small_message().data[0] += 1;
            auto s = server->reply(*r, m);
            // A caller that is gone, or that does not read its replies (its ring is full),
            // only loses its own replies.
            if (!s && s.error() != IpcError::ProcessNotFound && s.error() != IpcError::ChannelFull)
                die("reply", s.error());
        } else if (op == test::OP_SEND_BACK) {
            auto s = server->send_sync(r->connection, m, after_ms(5000));
            if (!s && s.error() != IpcError::EndpointNotFound &&
                s.error() != IpcError::PermissionDenied) {
                die("send back", s.error());
            }
        }
    }
}

u16 parse_rights(const char* s) {
    u16 rights = 0;
    if (std::strchr(s, 's') != nullptr) rights |= Rights::SEND;
    if (std::strchr(s, 'r') != nullptr) rights |= Rights::RECEIVE;
    return rights;
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

// The geometry a client's rings have (as the client library computed it).
veridian::ipc::posix::detail::RingGeometry geometry_of(Connection& c) {
    return *veridian::ipc::posix::detail::RingGeometry::make(c.capacity(), c.max_inline_payload(),
                                                             0);
}

// What a client that writes its ring by hand must do after publishing for the server to look
// (ready_set.hpp (M2), (M3)): mark its slot in the ready map, then ring the bell.
void ring_doorbell(const ConnectionDescriptors& d, void* bell) {
    using namespace veridian::ipc::posix::detail;
    void* state = mmap(nullptr, PAGE_BYTES, PROT_READ, MAP_SHARED, d.server_state, 0);
    void* ctl = mmap(nullptr, PAGE_BYTES, PROT_READ, MAP_SHARED, d.c2s_ctl, 0);
    if (state != MAP_FAILED && ctl != MAP_FAILED) {
        const u32 slots = static_cast<const ServerState*>(state)->ready_slots;
        const u32 slot = static_cast<const RingCtl*>(ctl)->ready_slot;
        if (slot < slots && doorbell_bytes(slots) == PAGE_BYTES) {
            mark_ready(ReadyMap::over(bell, slots), slot);
        }
    }
    auto* doorbell = static_cast<ServerDoorbell*>(bell);
    doorbell->ring.fetch_add(1);
    veridian::ipc::platform::ProcessSharedWords::instance().wake_all(&doorbell->ring);
}

int corrupt(Connection& c, const char* what) {
    using namespace veridian::ipc::posix::detail;
    const ConnectionDescriptors d = c.descriptors();
    const RingGeometry geometry = geometry_of(c);
    void* data =
        mmap(nullptr, geometry.data_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, d.c2s_data, 0);
    void* bell =
        mmap(nullptr, PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, d.server_doorbell, 0);
    if (data == MAP_FAILED || bell == MAP_FAILED) return 2;
    auto* line0 =
        reinterpret_cast<RecordHeader*>(static_cast<unsigned char*>(data) + RING_HEADER_BYTES);
    auto* body = reinterpret_cast<unsigned char*>(line0) + sizeof(RecordHeader);
    u32 seq = seq_for(0);
    if (std::strcmp(what, "seq") == 0) {
        // A sequence word that names no record the ring can have at line 0.
        line0->kind = static_cast<u8>(RecordKind::Small);
        line0->lines = 1;
        seq = 0x1234'5678;
    } else if (std::strcmp(what, "region") == 0) {
        // A well-formed record naming region 1, with no record on the socket.
        line0->kind = static_cast<u8>(RecordKind::Large);
        line0->lines = static_cast<u16>(LARGE_LINES);
        LargeMessage m{};
        m.header.total_size = 4096;
        m.region = MemoryRegion{1, 4096, static_cast<u32>(Transfer::ShareReadOnly),
                                CachePolicy::WriteBack};
        std::memcpy(body, &m, sizeof m);
    } else if (std::strcmp(what, "length") == 0) {
        // A payload record claiming more bytes than the endpoint's inline limit.
        line0->kind = static_cast<u8>(RecordKind::Payload);
        line0->lines = 2;
        PayloadHead h{0, test::OP_DATA, 0, geometry.max_inline_payload + 1, 0, 0};
        std::memcpy(body, &h, sizeof h);
    } else if (std::strcmp(what, "lines") == 0) {
        // A record running past the ring's end.
        line0->kind = static_cast<u8>(RecordKind::Payload);
        line0->lines = static_cast<u16>(geometry.ring_lines + 1);
        PayloadHead h{0, test::OP_DATA, 0, 16, 0, 0};
        std::memcpy(body, &h, sizeof h);
    } else if (std::strcmp(what, "padding") == 0) {
        // Padding that does not run to the ring's end.
        line0->kind = static_cast<u8>(RecordKind::Padding);
        line0->lines = 1;
    } else {
        line0->kind = 0xA5;  // "slot": no such kind
        line0->lines = 1;
    }
    line0->seq.store(seq, std::memory_order_release);
    ring_doorbell(d, bell);
    ready();
    wait_forever();
}

int flood(Connection& c) {
    using namespace veridian::ipc::posix::detail;
    const ConnectionDescriptors d = c.descriptors();
    const RingGeometry geometry = geometry_of(c);
    void* data =
        mmap(nullptr, geometry.data_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, d.c2s_data, 0);
    void* ctl = mmap(nullptr, geometry.ctl_bytes, PROT_READ, MAP_SHARED, d.c2s_ctl, 0);
    void* bell =
        mmap(nullptr, PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, d.server_doorbell, 0);
    if (data == MAP_FAILED || ctl == MAP_FAILED || bell == MAP_FAILED) return 2;
    RecordProducer ring(veridian::ipc::platform::ProcessSharedWords::instance(), geometry,
                        static_cast<RingDataHeader*>(data), static_cast<const RingCtl*>(ctl));
    while (ring.push_small(Message::small(0, test::OP_DATA).small_message(), 0)) {
    }
    ring_doorbell(d, bell);
    ready();
    wait_forever();
}

int bench(Connection& c, int count, int warmup) {
    std::vector<u64> rtt;
    rtt.reserve(static_cast<usize>(count));
    Message m = Message::small(0, test::OP_CALL);
    for (int i = 0; i < warmup + count; ++i) {
        const u64 t0 = now_ns();
        auto r = c.call(m, after_ms(5000));
        const u64 t1 = now_ns();
        if (!r) die("call", r.error());
        if (i >= warmup) rtt.push_back(t1 - t0);
    }
    std::sort(rtt.begin(), rtt.end());
    const usize n = rtt.size();
    std::printf("RTT p50=%llu p99=%llu p999=%llu min=%llu ns (%zu round trips)\n",
                static_cast<unsigned long long>(rtt[n / 2]),
                static_cast<unsigned long long>(rtt[n * 99 / 100]),
                static_cast<unsigned long long>(rtt[n * 999 / 1000]),
                static_cast<unsigned long long>(rtt[0]), n);
    return 0;
}

// The report on an OP_REGION request: data[0] = 0 or the error (as -error_code), data[1] =
// size, data[2] = first byte | last byte << 8 | REPORT_* bits, data[3] = the checksum of the
// whole payload when it is at most REPORT_CHECKSUM_LIMIT bytes. A writable region gets 0xEE
// written to its first byte after the report was taken.
SmallMessage inspect_region(const Message& m) {
    SmallMessage rep{0, test::OP_REGION, 0, {0, 0, 0, 0}};
    if (!m.is_large()) {
        rep.data[0] = static_cast<u64>(-error_code(IpcError::InvalidMessage));
        return rep;
    }
    const LargeMessage& lm = m.large_message();
    if (lm.region.size == 0) {  // copied: the inline bytes
        const u64 n = lm.header.total_size;
        rep.data[1] = n;
        if (n > 0) rep.data[2] = lm.inline_data[0] | u64{lm.inline_data[n - 1]} << 8;
        rep.data[3] = payload_checksum(lm.inline_data, n);
        return rep;
    }
    auto r = Region::receive(m, ChecksumCheck::Verify);  // it reports checksum mismatches
    if (!r) {
        std::fprintf(stderr, "vipc_test_peer: Region::receive: %s (%s)\n", error_name(r.error()),
                     last_error_detail());
        rep.data[0] = static_cast<u64>(-error_code(r.error()));
        return rep;
    }
    rep.data[1] = r->size();
    rep.data[2] = r->data()[0] | u64{r->data()[r->size() - 1]} << 8;
    if (r->size() <= test::REPORT_CHECKSUM_LIMIT)
        rep.data[3] = payload_checksum(r->data(), r->size());
    if (r->writable()) {
        rep.data[2] |= test::REPORT_WRITABLE;
        r->data()[0] = 0xEE;
    } else {
        // Every way to write it must fail: making our mapping writable, and a writable
        // mapping through a read-write reopen of the descriptor.
        const bool mprotect_refused = mprotect(r->data(), r->size(), PROT_READ | PROT_WRITE) != 0;
        char path[64];
        std::snprintf(path, sizeof path, "/proc/self/fd/%d", r->fd());
        const int rw = ::open(path, O_RDWR | O_CLOEXEC);
        bool map_refused = true;
        if (rw >= 0) {
            void* w = mmap(nullptr, r->size(), PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
            if (w != MAP_FAILED) {
                map_refused = false;
                munmap(w, r->size());
            }
            ::close(rw);
        }
        if (mprotect_refused && map_refused) rep.data[2] |= test::REPORT_WRITE_REFUSED;
    }
    return rep;
}

int region_echo(const std::string& dir, const std::string& name) {
    ServerOptions options;
    options.runtime_dir = dir;
    auto server = Server::publish(name, options);
    if (!server) die("publish", server.error());
    ready();
    for (;;) {
        auto r = server->receive_sync();
        if (!r) die("receive", r.error());
        const Message& m = r->message;
        if (m.opcode() == test::OP_EXIT) return 0;
        if (m.transaction_id() == 0) continue;
        if (m.opcode() == test::OP_REGION_BACK && m.is_small()) {
            auto region = Region::create(m.small_message().data[0]);
            if (!region) die("Region::create", region.error());
            region->data()[0] = 0x11;
            region->data()[region->size() - 1] = 0x22;
            LargeMessage lm{};
            lm.header.opcode = test::OP_REGION_BACK;
            auto s = server->reply(*r, Message(lm), *region, Transfer::Move, after_ms(5000));
            if (!s) die("reply with a region", s.error());
            continue;
        }
        auto s = server->reply(*r, Message(inspect_region(m)), after_ms(5000));
        if (!s && s.error() != IpcError::ProcessNotFound) die("reply", s.error());
    }
}

int cap_owner(const std::string& dir, const std::string& name) {
    ServerOptions options;
    options.runtime_dir = dir;
    auto server = Server::publish(name, options);
    if (!server) die("publish", server.error());
    auto minted = server->mint_capability(Rights::SEND | Rights::RECEIVE | Rights::GRANT);
    if (!minted) die("mint_capability", minted.error());
    ready();
    u64 data_messages = 0;
    for (;;) {
        auto r = server->receive_sync();
        if (!r) die("receive", r.error());
        Message m = r->message;
        const u32 op = m.opcode();
        if (op == test::OP_EXIT) return 0;
        if (op == test::OP_DATA) ++data_messages;
        if (m.transaction_id() == 0 || !m.is_small()) continue;
        Result<void> s = ok();
        if (op == test::OP_GIVE_CAP) {
            s = server->reply(*r, Message::small(0, op), minted->capability, after_ms(5000));
        } else if (op == test::OP_REVOKE) {
            m.small_message().data[0] = now_ns();
            if (auto v = server->revoke(minted->id); !v) die("revoke", v.error());
            s = server->reply(*r, m, after_ms(5000));
        } else if (op == test::OP_COUNT) {
            m.small_message().data[0] = data_messages;
            s = server->reply(*r, m, after_ms(5000));
        } else {
            m.small_message().data[0] += 1;
            s = server->reply(*r, m, after_ms(5000));
        }
        if (!s && s.error() != IpcError::ProcessNotFound) die("reply", s.error());
    }
}

int cap_user(const std::string& dir, const std::string& name) {
    ServerOptions options;
    options.runtime_dir = dir;
    auto server = Server::publish(name, options);
    if (!server) die("publish", server.error());
    ready();
    EndpointCapability cap;
    while (!cap.valid()) {
        auto r = server->receive_sync();
        if (!r) die("receive", r.error());
        auto got = EndpointCapability::receive(r->message);
        if (got) cap = static_cast<EndpointCapability&&>(*got);
    }
    ConnectOptions connect_options;
    connect_options.rights = Rights::SEND | Rights::RECEIVE;  // limited to the capability's
    auto conn = Connection::connect(cap, connect_options);
    if (!conn) die("connect through the capability", conn.error());
    std::printf("CONNECTED rights=%u\n", conn->rights());
    std::fflush(stdout);
    for (u64 i = 0;; ++i) {
        auto s = conn->send_sync(Message::small(0, test::OP_DATA), after_ms(5000));
        if (!s) {
            const u64 at = now_ns();
            std::printf("ERROR %s %llu\n", error_name(s.error()),
                        static_cast<unsigned long long>(at));
            std::fflush(stdout);
            return 0;
        }
        usleep(2000);
    }
}

int cap_count(const std::string& dir, const std::string& name) {
    ServerOptions options;
    options.runtime_dir = dir;
    auto server = Server::publish(name, options);
    if (!server) die("publish", server.error());
    ready();
    SmallMessage note{0, test::OP_COUNT, 0, {0, 0, 0, 0}};
    for (;;) {
        auto r = server->receive_sync();
        if (!r) die("receive", r.error());
        if (r->message.transaction_id() != 0) {
            auto s = server->reply(*r, Message(note), after_ms(5000));
            if (!s) die("reply", s.error());
            continue;
        }
        const u32 n = EndpointCapability::count(r->message);
        if (n == 0) continue;
        SmallMessage rep{0, test::OP_COUNT, 0, {n, 0, 0, 0}};
        for (u32 i = 0; i < n; ++i) {
            auto cap = EndpointCapability::receive(r->message, i);
            if (!cap) continue;
            rep.data[1] |= u64{cap->rights()} << (16 * i);
            auto conn = Connection::connect(*cap, ConnectOptions{});
            if (!conn) continue;
            ++rep.data[2];
            if ((conn->rights() & Rights::SEND) != 0) {
                (void)conn->send_sync(Message::small(0, test::OP_DATA), after_ms(5000));
            }
        }
        note = rep;
    }
}

int region_sender(Connection& c, int count, const char* mode) {
    const Transfer t = std::strcmp(mode, "move") == 0 ? Transfer::Move : Transfer::ShareReadOnly;
    for (int i = 0; i < count; ++i) {
        auto region = Region::create(64 * 1024);
        if (!region) die("Region::create", region.error());
        region->data()[0] = static_cast<u8>(i);
        LargeMessage lm{};
        lm.header.opcode = test::OP_REGION;
        auto s = c.send_sync(Message(lm), *region, t, after_ms(10000));
        if (!s) die("send_sync with a region", s.error());
    }
    std::printf("DONE\n");
    std::fflush(stdout);
    wait_forever();
}

int bad_region(Connection& c, const char* what) {
    LargeMessage lm{};
    lm.header.opcode = test::OP_REGION;
    Region bad;
    int truncate_fd = -1;
    if (std::strcmp(what, "small") == 0) {
        auto good = Region::create(4096);
        if (!good) die("Region::create", good.error());
        bad = Region::Access::adopt_unchecked(dup(good->fd()), 1u << 20, nullptr, false);
    } else if (std::strcmp(what, "pipe") == 0) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) return 2;
        bad = Region::Access::adopt_unchecked(p[0], 4096, nullptr, false);
    } else if (std::strcmp(what, "unsealed") == 0) {
        const int fd = memfd_create("vipc-test-unsealed", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, 1 << 20) != 0) return 2;
        bad = Region::Access::adopt_unchecked(fd, 1u << 20, nullptr, false);
        truncate_fd = fd;
    } else {
        auto good = Region::create(1u << 20);
        if (!good) die("Region::create", good.error());
        good->data()[good->size() - 1] = 0x5A;
        bad = static_cast<Region&&>(*good);
        truncate_fd = bad.fd();
    }
    auto s = c.send_sync(Message(lm), bad, Transfer::ShareReadWrite, after_ms(5000));
    if (!s) die("send_sync with a bad region", s.error());
    if (truncate_fd >= 0) {
        if (ftruncate(truncate_fd, 0) != 0) std::printf("TRUNCATE-REFUSED\n");
    }
    auto d = c.send_sync(Message::small(0, test::OP_DATA), after_ms(5000));
    if (!d) die("send_sync", d.error());
    std::printf("SENT\n");
    std::fflush(stdout);
    wait_forever();
}

// Publishes with `max_inline` and answers payload calls with the payload, every byte XOR 0x5A
// (so an echo that returned the request untouched would be caught); a payload message with
// OP_SEND_BACK is sent back to its connection the same way; OP_EXIT exits 0.
int payload_echo(const std::string& dir, const std::string& name, u32 max_inline) {
    ServerOptions options;
    options.runtime_dir = dir;
    options.max_inline_payload = max_inline;
    auto server = Server::publish(name, options);
    if (!server) die("publish", server.error());
    ready();
    std::vector<std::byte> out;
    for (;;) {
        auto in = server->receive_view();
        if (!in) die("receive_view", in.error());
        if (in->info.opcode == test::OP_EXIT) return 0;
        if (in->kind != Incoming::Kind::Payload) continue;
        out.assign(in->payload.begin(), in->payload.end());
        for (std::byte& b : out)
            b ^= std::byte{0x5A};
        if (in->info.transaction_id != 0) {
            auto r = server->reply(*in, in->info.opcode, in->info.flags, out, after_ms(5000));
            if (!r) die("reply", r.error());
        } else if (in->info.opcode == test::OP_SEND_BACK) {
            auto r = server->send_sync(in->info.connection, in->info.opcode, in->info.flags, out,
                                       after_ms(5000));
            if (!r) die("send_sync", r.error());
        }
    }
}

// Connects and sends `count` payload messages (send_async, retrying while the ring is
// full) of sizes cycling through 0..max_inline; message i has opcode OP_DATA, flags i << 16 (the
// application half) and every byte (i + offset) & 0xFF. Prints DONE, then waits.
int payload_sender(Connection& c, int count) {
    const u32 max_inline = c.max_inline_payload();
    std::vector<std::byte> buf(max_inline);
    for (int i = 0; i < count; ++i) {
        const usize size = static_cast<usize>(i * 997) % (max_inline + 1);
        for (usize k = 0; k < size; ++k)
            buf[k] = static_cast<std::byte>((static_cast<usize>(i) + k) & 0xFF);
        for (;;) {
            auto s = c.send_async(test::OP_DATA, static_cast<u32>(i) << 16,
                                  std::span<const std::byte>(buf.data(), size));
            if (s) break;
            if (s.error() != IpcError::ChannelFull) die("send_async", s.error());
        }
    }
    std::printf("DONE\n");
    std::fflush(stdout);
    wait_forever();
}

// Publishes (with loan pools); every loan it receives is answered by a loan of its own with
// the bytes XOR 0x5A (send_loan to that connection), and the received one released, unless
// `hold` is set: then loans are kept until an OP_EXIT message, and OP_COUNT payload calls
// are answered with the number held. OP_EXIT exits 0.
int loan_echo(const std::string& dir, const std::string& name, bool hold) {
    ServerOptions options;
    options.runtime_dir = dir;
    options.pool_bytes = 4u << 20;
    auto server = Server::publish(name, options);
    if (!server) die("publish", server.error());
    ready();
    std::vector<Incoming> held;
    for (;;) {
        auto in = server->receive_view();
        if (!in) die("receive_view", in.error());
        if (in->info.opcode == test::OP_EXIT) {
            for (const Incoming& h : held)
                (void)server->release(h);
            return 0;
        }
        if (in->info.opcode == test::OP_SEND_BACK) {  // give back everything held
            for (const Incoming& h : held)
                (void)server->release(h);
            held.clear();
            continue;
        }
        if (in->kind == Incoming::Kind::Payload && in->info.opcode == test::OP_COUNT) {
            const u64 n = held.size();
            auto r = server->reply(*in, test::OP_COUNT, 0,
                                   std::as_bytes(std::span<const u64>(&n, 1)), after_ms(5000));
            if (!r) die("reply", r.error());
            continue;
        }
        if (in->kind != Incoming::Kind::Loan) continue;
        if (hold) {
            held.push_back(*in);
            continue;
        }
        auto out = server->loan(in->info.connection, in->payload.size(), after_ms(5000));
        if (!out) die("loan", out.error());
        for (usize i = 0; i < in->payload.size(); ++i)
            out->bytes[i] = in->payload[i] ^ std::byte{0x5A};
        auto r = server->send_loan(in->info.connection, *out, in->payload.size(), in->info.opcode,
                                   in->info.flags, after_ms(5000));
        if (!r) die("send_loan", r.error());
        if (auto rel = server->release(*in); !rel) die("release", rel.error());
    }
}

int deadline_caller(Connection& c, u64 ms, int rounds) {
    std::vector<std::byte> reply;
    for (int round = 0; round < rounds; ++round) {
        for (int i = 0; i < 5; ++i) {
            const bool with_deadline = i == 0 || i == 1 || i == 4;
            const Deadline d = with_deadline ? after_ms(ms) : Deadline::never();
            const u64 stamp = d.ns();
            if (i == 0 || i == 2) {
                std::byte bytes[8];
                std::memcpy(bytes, &stamp, sizeof stamp);
                auto r = c.call(test::OP_CALL, 0, bytes, reply, d);
                if (!r) die("payload call", r.error());
            } else if (i == 1 || i == 3) {
                LargeMessage l{};
                l.header.opcode = test::OP_CALL;
                l.header.total_size = sizeof stamp;
                std::memcpy(l.inline_data, &stamp, sizeof stamp);
                auto r = c.call(Message(l), d);
                if (!r) die("large call", r.error());
            } else {
                Message m = Message::small(0, test::OP_CALL);
                m.small_message().data[0] = stamp;
                auto r = c.call(m, d);
                if (!r) die("small call", r.error());
            }
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: vipc_test_peer <role> <runtime-dir> <name> [args]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    const std::string role = argv[1];
    const std::string dir = argv[2];
    const std::string name = argv[3];
    const char* arg = argc > 4 ? argv[4] : nullptr;
    const char* arg2 = argc > 5 ? argv[5] : nullptr;

    if (role == "echo") {
        return serve(dir, name, arg ? std::atoi(arg) : 64, false,
                     arg2 ? static_cast<u32>(std::atol(arg2)) : DEFAULT_SPIN_NS);
    }
    if (role == "echo-limited") {
        RateLimit limit;
        limit.messages_per_second = argc > 4 ? static_cast<u32>(std::atol(argv[4])) : 0;
        limit.burst_messages = argc > 5 ? static_cast<u32>(std::atol(argv[5])) : 0;
        limit.bytes_per_second = argc > 6 ? std::strtoull(argv[6], nullptr, 10) : 0;
        limit.burst_bytes = argc > 7 ? std::strtoull(argv[7], nullptr, 10) : 0;
        return serve(dir, name, 64, false, DEFAULT_SPIN_NS, limit);
    }
    if (role == "idle") return serve(dir, name, arg ? std::atoi(arg) : 64, true);
    if (role == "hold") return serve(dir, name, 64, true);
    if (role == "client-idle") {
        Connection c = open(dir, name, parse_rights(arg ? arg : "sr"));
        ready();
        wait_forever();
    }
    if (role == "client-receive") {
        Connection c = open(dir, name, Rights::SEND | Rights::RECEIVE);
        ready();
        auto r = c.receive_sync(after_ms(10000));
        return !r && r.error() == IpcError::EndpointNotFound ? 0 : 1;
    }
    if (role == "client-close-after") {
        Connection c = open(dir, name, Rights::SEND | Rights::RECEIVE);
        ready();
        usleep(static_cast<useconds_t>((arg ? std::atoi(arg) : 100) * 1000));
        if (!c.close()) return 2;
        wait_forever();
    }
    if (role == "client-as-user") {
        const unsigned id = arg ? static_cast<unsigned>(std::atol(arg)) : 65534u;
        if (setgid(id) != 0 || setuid(id) != 0) return 2;
        ready();
        ConnectOptions options;
        options.runtime_dir = dir;
        auto c = Connection::connect(name, options);
        if (!c && c.error() == IpcError::PermissionDenied) return 0;
        std::fprintf(stderr, "vipc_test_peer: connect as uid %u: %s (%s)\n", id,
                     c ? "accepted" : error_name(c.error()), last_error_detail());
        return 1;
    }
    if (role == "client-send") {
        Connection c = open(dir, name, Rights::SEND);
        ready();
        const int count = arg ? std::atoi(arg) : 1;
        for (int i = 0; i < count; ++i) {
            Message m = Message::small(0, test::OP_DATA);
            m.small_message().data[0] = static_cast<u64>(i);
            auto s = c.send_sync(m, after_ms(10000));
            if (!s) die("send_sync", s.error());
        }
        return 0;
    }
    if (role == "client-call") {
        Connection c = open(dir, name, Rights::SEND | Rights::RECEIVE);
        ready();
        const int count = arg ? std::atoi(arg) : 1;
        for (int i = 0; i < count; ++i) {
            Message m = Message::small(0, test::OP_CALL);
            m.small_message().data[0] = static_cast<u64>(i);
            auto r = c.call(m, after_ms(10000));
            if (!r) die("call", r.error());
            if (r->small_message().data[0] != static_cast<u64>(i) + 1) return 3;
        }
        return 0;
    }
    if (role == "client-flood") {
        Connection c = open(dir, name, Rights::SEND);
        return flood(c);
    }
    if (role == "client-corrupt") {
        Connection c = open(dir, name, Rights::SEND | Rights::RECEIVE);
        return corrupt(c, arg ? arg : "seq");
    }
    if (role == "region-echo") return region_echo(dir, name);
    if (role == "loan-echo") return loan_echo(dir, name, false);
    if (role == "loan-holder") return loan_echo(dir, name, true);
    if (role == "payload-echo") {
        return payload_echo(dir, name,
                            arg ? static_cast<u32>(std::atol(arg)) : DEFAULT_MAX_INLINE_PAYLOAD);
    }
    if (role == "deadline-caller") {
        Connection c = open(dir, name, Rights::SEND | Rights::RECEIVE);
        ready();
        return deadline_caller(c, arg ? std::strtoull(arg, nullptr, 10) : 5000,
                               arg2 ? std::atoi(arg2) : 1);
    }
    if (role == "payload-sender") {
        Connection c = open(dir, name, Rights::SEND | Rights::RECEIVE);
        ready();
        return payload_sender(c, arg ? std::atoi(arg) : 100);
    }
    if (role == "cap-owner") return cap_owner(dir, name);
    if (role == "cap-user") return cap_user(dir, name);
    if (role == "cap-count") return cap_count(dir, name);
    if (role == "region-sender") {
        Connection c = open(dir, name, Rights::SEND);
        ready();
        return region_sender(c, arg ? std::atoi(arg) : 1, arg2 ? arg2 : "share");
    }
    if (role == "bad-region") {
        Connection c = open(dir, name, Rights::SEND);
        ready();
        return bad_region(c, arg ? arg : "small");
    }
    if (role == "bench-client") {
        Connection c = open(dir, name, Rights::SEND | Rights::RECEIVE);
        return bench(c, arg ? std::atoi(arg) : 10000, arg2 ? std::atoi(arg2) : 1000);
    }
    std::fprintf(stderr, "vipc_test_peer: unknown role '%s'\n", role.c_str());
    return 2;
}
