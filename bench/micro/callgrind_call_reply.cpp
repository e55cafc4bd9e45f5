// SPDX-License-Identifier: MIT OR Apache-2.0
// A fixed number of in-process call/reply round trips for `valgrind --tool=callgrind`:
// instruction counts are repeatable where wall time is not. Waiting never spins here
// (spin 0), so the count is the work of the protocol, not of idle loops.
//
//   valgrind --tool=callgrind --toggle-collect='*Endpoint::call*' ...  (see run_callgrind.sh)
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "veridian/ipc.hpp"

using namespace veridian::ipc;

int main(int argc, char** argv) {
    const int round_trips = argc > 1 ? std::atoi(argv[1]) : 1000;
    ThreadsPlatform platform(0);
    HeapAllocator allocator;
    Registry registry(platform, allocator, 4);
    Endpoint server = *registry.create_endpoint(ProcessId{1}, 64);
    std::thread worker([&] {
        while (Result<Message> request = server.receive_sync()) {
            if (!server.reply(*request, *request)) break;
        }
    });
    int failures = 0;
    for (int i = 0; i < round_trips; ++i) {
        if (!server.call(Message::small(0, static_cast<u32>(i)))) ++failures;
    }
    (void)server.close();
    worker.join();
    std::printf("%d round trips, %d failures\n", round_trips, failures);
    return failures == 0 ? 0 : 1;
}
