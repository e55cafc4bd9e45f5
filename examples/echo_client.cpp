// SPDX-License-Identifier: MIT OR Apache-2.0
// A small veridian-ipc client, meant to be copied: it connects to the echo server by name,
// makes a few calls (request → reply, timed), streams one-way messages, then asks the server
// how many arrived.
//
//   build/bin/vipc_example_echo_server &
//   build/bin/vipc_example_echo_client [NAME]      (default name: examples/echo)
#include <unistd.h>

#include <cstdio>

#include "veridian/ipc/posix/runtime.hpp"

using namespace veridian::ipc;

constexpr u32 kEcho = 1;        // call: the reply is the request
constexpr u32 kCountSoFar = 2;  // call: the reply's data[0] is how many one-way messages arrived
constexpr u64 kStreamLength = 1000;
// How long any one operation may take before we call the server stuck.
constexpr u64 kDeadlineMs = 5000;

namespace {
int fail(const char* what) {
    std::fprintf(stderr, "echo_client: %s: %s\n", what, posix::last_error_detail());
    return 1;
}
}  // namespace

int main(int argc, char** argv) {
    const char* name = argc > 1 ? argv[1] : "examples/echo";

    // Connect by name. The server may still be starting: retry for up to 10 s while the name
    // is not published yet (EndpointNotFound); any other error is final.
    Result<posix::Connection> connected = posix::Connection::connect(name);
    for (int tries = 0;
         !connected && connected.error() == IpcError::EndpointNotFound && tries < 500; ++tries) {
        usleep(20'000);
        connected = posix::Connection::connect(name);
    }
    if (!connected) return fail("connect");
    posix::Connection conn = std::move(*connected);
    std::printf("echo_client: connected to '%s' (server pid %llu)\n", name,
                static_cast<unsigned long long>(conn.server_pid().value));

    // Calls: every blocking operation takes a deadline; a server that does not answer
    // within it gives Timeout instead of a hang.
    for (u64 i = 1; i <= 3; ++i) {
        Message request = Message::small(/*capability=*/0, kEcho);
        request.small_message().data[0] = i;
        const u64 start = posix::now_ns();
        Result<Message> reply = conn.call(request, posix::after_ms(kDeadlineMs));
        if (!reply) return fail("call");
        std::printf("echo_client: call %llu -> reply data[0] = %llu in %.1f us\n",
                    static_cast<unsigned long long>(i),
                    static_cast<unsigned long long>(reply->small_message().data[0]),
                    static_cast<double>(posix::now_ns() - start) / 1000.0);
    }

    // A one-way stream: send_sync waits while the server's queue is full (backpressure).
    for (u64 i = 0; i < kStreamLength; ++i) {
        Message m = Message::small(0, /*opcode=*/3);
        m.small_message().data[0] = i;
        if (!conn.send_sync(m, posix::after_ms(kDeadlineMs))) return fail("send");
    }

    // Messages from one client arrive in order, so this call is answered after the server
    // has taken the whole stream.
    Result<Message> count = conn.call(Message::small(0, kCountSoFar), posix::after_ms(kDeadlineMs));
    if (!count) return fail("call");
    const u64 arrived = count->small_message().data[0];
    std::printf("echo_client: the server got %llu of %llu one-way messages\n",
                static_cast<unsigned long long>(arrived),
                static_cast<unsigned long long>(kStreamLength));
    return arrived >= kStreamLength ? 0 : 1;
}
