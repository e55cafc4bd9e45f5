// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc in one process: the core's endpoints between two threads.
//
// The same core runs inside a kernel, between threads, and (through the posix runtime)
// between processes. Here a server thread answers calls on an endpoint in a Registry, and
// the main thread calls it. Nothing crosses a process boundary, so no name is published.
#include <cstdio>
#include <thread>

#include "veridian/ipc/core/registry.hpp"
#include "veridian/ipc/platform/threads.hpp"

using namespace veridian::ipc;

constexpr u32 kSquare = 1;  // call: the reply's data[0] is the request's data[0] squared
constexpr u32 kStop = 2;    // call: the server answers and returns

int main() {
    // The platform is how the core blocks and wakes (futexes here); the allocator is where the
    // registry's table and the queues come from. Nothing else is allocated.
    ThreadsPlatform platform;
    HeapAllocator allocator;
    Registry registry(platform, allocator);

    // An endpoint owned by "process" 1, with a queue of 16 messages. The guard closes and
    // removes it when it goes out of scope.
    Result<EndpointWithGuard> created = registry.create_endpoint_with_guard(ProcessId{1}, 16);
    if (!created) {
        std::fprintf(stderr, "in_process: %s\n", error_text(created.error()));
        return 1;
    }
    Endpoint server = created->endpoint;
    // The client (process 2) gets an entry of its own capability space that may only send
    // (and call): rights can only be dropped, and the core stamps its messages with its id.
    Endpoint client = server.transfer(ProcessId{2}, TransferMode::Copy, Rights::SEND).value();

    std::thread server_thread([&] {
        for (;;) {
            Result<Message> request = server.receive_sync();
            if (!request) return;  // the endpoint was closed
            Message reply = *request;
            if (request->opcode() == kSquare) {
                const u64 x = request->small_message().data[0];
                reply.small_message().data[0] = x * x;
            }
            (void)server.reply(*request, reply);
            if (request->opcode() == kStop) return;
        }
    });

    int status = 0;
    for (u64 x = 1; x <= 5; ++x) {
        Message request = Message::small(client.capability().raw(), kSquare);
        request.small_message().data[0] = x;
        // call() blocks until the reply with this call's transaction id, or the deadline.
        Result<Message> reply = client.call(request, platform.after_ns(1'000'000'000));
        if (!reply) {
            std::fprintf(stderr, "in_process: call: %s\n", error_text(reply.error()));
            status = 1;
            break;
        }
        std::printf("%llu squared is %llu\n", static_cast<unsigned long long>(x),
                    static_cast<unsigned long long>(reply->small_message().data[0]));
    }
    (void)client.call(Message::small(client.capability().raw(), kStop),
                      platform.after_ns(1'000'000'000));
    server_thread.join();
    return status;
}
