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
#include <sched.h>
#include <sys/mman.h>
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

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: vipc_abuse_peer <role> <runtime-dir> <name> [args]\n");
        return 2;
    }
    if (nice(19) < 0) std::perror("vipc_abuse_peer: nice");
    const std::string role = argv[1];
    const std::string dir = argv[2];
    const std::string name = argv[3];
    const char* arg = argc > 4 ? argv[4] : nullptr;
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
