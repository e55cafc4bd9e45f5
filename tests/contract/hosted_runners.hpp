// SPDX-License-Identifier: MIT OR Apache-2.0
// The contract suite's hosted runners: parties as threads (ThreadsPlatform, and the posix
// runtime), or as the seeded sim's tasks.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core_adapter.hpp"
#include "veridian/ipc/platform/sim.hpp"
#include "veridian/ipc/platform/threads.hpp"

namespace veridian::ipc::contract {

inline u64 env_u64(const char* name, u64 fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

// Parties as threads of this process; wait_until polls the state every 100 µs for at most
// 10 s (a bound against hangs, never a timing assertion).
class ThreadParties {
public:
    template <typename... F>
    void run_parties(F&&... parties) {
        std::vector<std::thread> threads;
        (threads.emplace_back(static_cast<F&&>(parties)), ...);
        for (std::thread& t : threads)
            t.join();
    }
    template <typename Pred>
    bool wait_until(Pred pred) {
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!pred()) {
            if (std::chrono::steady_clock::now() > give_up) return false;
            usleep(100);
        }
        return true;
    }
    bool leak_on_exit() const { return false; }
};

class ThreadsRunner : public ThreadParties {
public:
    Platform& platform() { return platform_; }
    Allocator& allocator() { return allocator_; }

private:
    ThreadsPlatform platform_;
    HeapAllocator allocator_;
};

// Parties as tasks of the seeded sim (one interleaving per seed; run_parties once per test).
// wait_until yields until the state holds (at most 200,000 switch points).
class SimRunner {
public:
    explicit SimRunner(u64 seed) : seed_(seed), sim_(seed, options()) {}
    static SimPlatform::Options options() {
        SimPlatform::Options o;
        o.max_tick_ns = 200'000;  // deadlines also pass while other tasks run
        return o;
    }
    Platform& platform() { return sim_; }
    Allocator& allocator() { return allocator_; }
    template <typename... F>
    void run_parties(F&&... parties) {
        u64 pid = 10;
        (sim_.spawn(ProcessId{pid++}, std::function<void()>(static_cast<F&&>(parties))), ...);
        const SimPlatform::RunResult r = sim_.run();
        if (!r.ok) {
            leak_ = leak_ || r.deadlock;
            ADD_FAILURE() << "sim seed " << seed_ << ": " << r.failure
                          << " (replay: VIPC_CONTRACT_SIM_SEED=" << seed_ << ")";
        }
    }
    template <typename Pred>
    bool wait_until(Pred pred) {
        for (int i = 0; i < 200'000; ++i) {
            if (pred()) return true;
            sim_.yield();
        }
        return pred();
    }
    bool leak_on_exit() const { return leak_; }
    u64 seed() const { return seed_; }

private:
    u64 seed_;
    SimPlatform sim_;
    HeapAllocator allocator_;
    bool leak_ = false;
};

class CoreThreads : public CoreAdapter<ThreadsRunner> {
public:
    static constexpr const char* kName = "core-threads";
    explicit CoreThreads(ThreadsRunner& r) : CoreAdapter<ThreadsRunner>(r) {}
    template <typename Body>
    static void repeat(Body body) {
        ThreadsRunner runner;
        CoreThreads a(runner);
        body(a);
    }
};

// Each test runs VIPC_CONTRACT_SIM_SEEDS seeds (default 32), or the one VIPC_CONTRACT_SIM_SEED
// names; the first failing seed is printed and ends the test.
class CoreSim : public CoreAdapter<SimRunner> {
public:
    static constexpr const char* kName = "core-sim";
    explicit CoreSim(SimRunner& r) : CoreAdapter<SimRunner>(r) {}
    template <typename Body>
    static void repeat(Body body) {
        const u64 one = env_u64("VIPC_CONTRACT_SIM_SEED", 0);
        const u64 seeds = one != 0 ? 1 : env_u64("VIPC_CONTRACT_SIM_SEEDS", 32);
        for (u64 i = 0; i < seeds; ++i) {
            const u64 seed = one != 0 ? one : 0x5EED0000u + i;
            SimRunner runner(seed);
            {
                CoreSim a(runner);
                body(a);
            }
            if (::testing::Test::HasFailure()) {
                std::printf(
                    "contract (core-sim): failed at seed %llu; replay with "
                    "VIPC_CONTRACT_SIM_SEED=%llu\n",
                    static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
                return;
            }
        }
    }
};

}  // namespace veridian::ipc::contract
