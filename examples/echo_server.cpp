// SPDX-License-Identifier: MIT OR Apache-2.0
// A small veridian-ipc server, meant to be copied: it publishes a name, answers every call
// with the request itself (an echo), counts one-way messages, and stops cleanly on Ctrl-C.
//
//   build/bin/vipc_example_echo_server [NAME]      (default name: examples/echo)
//   build/bin/vipc_example_echo_client [NAME]      in another terminal
//
// Build it against an installed veridian-ipc with CMake:
//   find_package(veridian_ipc REQUIRED)
//   target_link_libraries(echo_server PRIVATE veridian::veridian_ipc)
#include <csignal>
#include <cstdio>

#include "veridian/ipc/posix/runtime.hpp"

using namespace veridian::ipc;

// The example's own protocol: which opcode means what.
constexpr u32 kEcho = 1;        // call: the reply is the request
constexpr u32 kCountSoFar = 2;  // call: the reply's data[0] is how many one-way messages arrived

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) {
    g_stop = 1;
}
}  // namespace

int main(int argc, char** argv) {
    const char* name = argc > 1 ? argv[1] : "examples/echo";
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    // Publish the name. Clients find it in the runtime directory ($VIPC_RUNTIME_DIR, else
    // $XDG_RUNTIME_DIR/vipc, else /tmp/vipc-$UID). Errors are values, never exceptions.
    Result<posix::Server> published = posix::Server::publish(name);
    if (!published) {
        std::fprintf(stderr, "echo_server: %s\n", posix::last_error_detail());
        return 1;
    }
    posix::Server server = std::move(*published);
    std::printf("echo_server: serving '%s'; stop with Ctrl-C\n", name);
    std::fflush(stdout);

    u64 one_way = 0;
    while (g_stop == 0) {
        // Wait at most 100 ms, so that the loop notices a stop signal.
        Result<posix::Received> r = server.receive_sync(posix::after_ms(100));
        if (!r) {
            if (r.error() == IpcError::Timeout) continue;
            std::fprintf(stderr, "echo_server: %s\n", posix::last_error_detail());
            return 1;
        }
        const Message& request = r->message;
        if (request.transaction_id() == 0) {  // a one-way message (send_sync / send_async)
            ++one_way;
            continue;
        }
        // A call: the reply goes back to the caller waiting in Connection::call().
        Message reply = request;
        switch (request.opcode()) {
            case kCountSoFar:
                if (reply.is_small()) reply.small_message().data[0] = one_way;
                break;
            case kEcho:  // the reply is the request itself
            default:     // and so it is for requests we do not know
                break;
        }
        // A caller that gave up meanwhile (ProcessNotFound) is not our problem.
        (void)server.reply(*r, reply);  // never waits: a client that does not read loses it
    }
    // close() unpublishes the name and wakes every client still waiting on us.
    (void)server.close();
    std::printf("echo_server: stopped after %llu one-way messages\n",
                static_cast<unsigned long long>(one_way));
    return 0;
}
