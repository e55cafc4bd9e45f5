// SPDX-License-Identifier: MIT OR Apache-2.0
// Micro-benchmarks of the core's operations between threads of one process (Google
// Benchmark): enqueue/dequeue, capability validation, the fast-path hand-off to a blocked
// receiver, and an in-process call/reply round trip.
//
//   build/bench/micro/vipc-micro --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <atomic>
#include <thread>

#include "veridian/ipc.hpp"

using namespace veridian::ipc;

namespace {

struct Fixture {
    ThreadsPlatform platform;
    HeapAllocator allocator;
    Registry registry{platform, allocator, 16};
};

void BM_EnqueueDequeue(benchmark::State& state) {
    Fixture f;
    Endpoint ep = *f.registry.create_endpoint(ProcessId{1}, 1024);
    const Message msg = Message::small(1, 2);
    for (auto _ : state) {
        Result<void> sent = ep.send_async(msg);
        Result<Message> got = ep.try_receive();
        benchmark::DoNotOptimize(sent);
        benchmark::DoNotOptimize(got);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EnqueueDequeue);

void BM_CapabilityValidation(benchmark::State& state) {
    Fixture f;
    Endpoint ep = *f.registry.create_endpoint(ProcessId{1}, 1);
    const Capability cap = ep.derive(Rights::SEND).value().capability();
    for (auto _ : state) {
        Result<Endpoint> checked = f.registry.validate_capability(*ep.space(), cap, Rights::SEND);
        benchmark::DoNotOptimize(checked);
    }
}
BENCHMARK(BM_CapabilityValidation);

void BM_ForgedCapabilityRejection(benchmark::State& state) {
    Fixture f;
    Endpoint ep = *f.registry.create_endpoint(ProcessId{1}, 1);
    // The live handle with its check bits changed: what a holder forging a handle writes.
    const Capability forged =
        Capability::make(ep.capability().index(), ep.capability().check() ^ 0x5A5A);
    for (auto _ : state) {
        Result<Endpoint> checked =
            f.registry.validate_capability(*ep.space(), forged, Rights::SEND);
        benchmark::DoNotOptimize(checked);
    }
}
BENCHMARK(BM_ForgedCapabilityRejection);

// Round trip: the main thread fast-path-sends to an echo thread blocked in receive_sync,
// which answers on a second endpoint the main thread is blocked on.
void BM_FastPathRoundTrip(benchmark::State& state) {
    Fixture f;
    Endpoint to_echo = *f.registry.create_endpoint(ProcessId{1}, 64);
    Endpoint to_main = *f.registry.create_endpoint(ProcessId{2}, 64);
    // Each side sends through a SEND entry of its own space.
    const Endpoint echo_to_main = *to_main.transfer(ProcessId{1}, TransferMode::Copy, Rights::SEND);
    const Endpoint main_to_echo = *to_echo.transfer(ProcessId{2}, TransferMode::Copy, Rights::SEND);
    std::thread echo([&] {
        SmallMessage back{echo_to_main.capability().raw(), 0, 0, {0, 0, 0, 0}};
        while (Result<Message> m = to_echo.receive_sync()) {
            back.opcode = m->opcode();
            if (!fast_ipc_send(*echo_to_main.space(), back)) break;
        }
    });
    SmallMessage msg{main_to_echo.capability().raw(), 0, 0, {0, 0, 0, 0}};
    for (auto _ : state) {
        ++msg.opcode;
        if (!fast_ipc_send(*main_to_echo.space(), msg) || !to_main.receive_sync()) {
            state.SkipWithError("fast path round trip failed");
            break;
        }
    }
    (void)to_echo.close();
    echo.join();
    const EndpointStats s = *to_echo.stats();
    state.counters["hand_off_ratio"] =
        static_cast<double>(s.fast_path_hits) /
        static_cast<double>(s.fast_path_hits + s.slow_path == 0 ? 1
                                                                : s.fast_path_hits + s.slow_path);
}
BENCHMARK(BM_FastPathRoundTrip)->UseRealTime();

void BM_CallReplyRoundTrip(benchmark::State& state) {
    Fixture f;
    Endpoint server = *f.registry.create_endpoint(ProcessId{1}, 64);
    std::thread worker([&] {
        while (Result<Message> request = server.receive_sync()) {
            if (!server.reply(*request, *request)) break;
        }
    });
    const Message request = Message::small(0, 1);
    for (auto _ : state) {
        Result<Message> reply = server.call(request);
        if (!reply) {
            state.SkipWithError("call failed");
            break;
        }
    }
    (void)server.close();
    worker.join();
}
BENCHMARK(BM_CallReplyRoundTrip)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
