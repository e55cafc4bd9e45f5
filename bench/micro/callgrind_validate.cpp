// SPDX-License-Identifier: MIT OR Apache-2.0
// A fixed number of capability validations (the O(1) resolve: holder's table -> entry ->
// endpoint slot -> generation -> rights) for `valgrind --tool=callgrind`, so that the
// instructions of one resolve are counted repeatably (see run_callgrind.sh).
#include <cstdio>
#include <cstdlib>

#include "veridian/ipc.hpp"

using namespace veridian::ipc;

int main(int argc, char** argv) {
    const int validations = argc > 1 ? std::atoi(argv[1]) : 1000;
    ThreadsPlatform platform(0);
    HeapAllocator allocator;
    Registry registry(platform, allocator, 4);
    Endpoint server = *registry.create_endpoint(ProcessId{1}, 64);
    const Capability cap = server.derive(Rights::SEND).value().capability();
    int failures = 0;
    for (int i = 0; i < validations; ++i) {
        if (!registry.validate_capability(*server.space(), cap, Rights::SEND)) ++failures;
    }
    std::printf("%d validations, %d failures\n", validations, failures);
    return failures == 0 ? 0 : 1;
}
