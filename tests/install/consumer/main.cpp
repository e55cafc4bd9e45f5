// SPDX-License-Identifier: MIT OR Apache-2.0
// Uses the installed headers and library: one message through an endpoint.
#include <veridian/ipc.hpp>

#include <cstdio>

int main() {
    using namespace veridian::ipc;
    ThreadsPlatform platform;
    HeapAllocator allocator;
    Registry registry(platform, allocator);
    Result<Endpoint> endpoint = registry.create_endpoint(ProcessId{1});
    if (!endpoint || !endpoint->send_async(Message::small(7, 42))) return 1;
    Result<Message> got = endpoint->try_receive();
    if (!got || got->opcode() != 42) return 2;
    std::puts("consumer: installed veridian-ipc works");
    return 0;
}
