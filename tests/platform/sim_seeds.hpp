// SPDX-License-Identifier: MIT OR Apache-2.0
// The seed loop every seeded simulator test shares: seeds 1..N, N = $VIPC_SIM_SEEDS (or the
// test's default), VIPC_SIM_SEED=<n> replays one; the first failing seed ends the run with its
// description and the command that replays it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc::sim_test {

inline u64 env_u64(const char* name, u64 fallback, bool* present = nullptr) {
    const char* text = std::getenv(name);
    if (present != nullptr) *present = text != nullptr && *text != '\0';
    if (text == nullptr || *text == '\0') return fallback;
    return std::strtoull(text, nullptr, 10);
}

// The casts' random choices: splitmix64 from the seed; `salt` keeps each test's sequences
// apart (and as they were).
class Rng {
public:
    Rng(u64 seed, u64 salt) : state_(seed * 0x2545F4914F6CDD1Dull + salt) {}
    u64 next() {
        state_ += 0x9E3779B97F4A7C15ull;
        u64 z = state_;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // In [lo, hi].
    u64 between(u64 lo, u64 hi) { return lo + next() % (hi - lo + 1); }

private:
    u64 state_;
};

// The outcome of one seed: empty `failure` when every check held.
struct SeedOutcome {
    std::string cast;     // what the seed chose (for the report)
    std::string failure;  // what went wrong
};

// Runs `run(seed)` for each seed; `what` names the scenarios in the summary line, `replay`
// is the command (without the variable) that replays a seed.
template <typename Run>
void run_seeds(u64 default_count, const char* what, const std::string& replay, Run&& run) {
    bool one = false;
    const u64 only_seed = env_u64("VIPC_SIM_SEED", 0, &one);
    const u64 count = one ? 1 : env_u64("VIPC_SIM_SEEDS", default_count);
    if (count == 0) {
        GTEST_SKIP() << "VIPC_SIM_SEEDS=0: no interleavings run";
    }
    const auto start = std::chrono::steady_clock::now();
    u64 ran = 0;
    for (u64 i = 0; i < count; ++i) {
        const u64 seed = one ? only_seed : i + 1;
        const SeedOutcome outcome = run(seed);
        ++ran;
        if (!outcome.failure.empty()) {
            ADD_FAILURE() << "seed " << seed << "\n  cast: " << outcome.cast
                          << "\n  what went wrong:" << outcome.failure
                          << "\n  replay: VIPC_SIM_SEED=" << seed << " " << replay;
            break;
        }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("[   sim    ] %s: %llu seeds in %.2f s\n", what,
                static_cast<unsigned long long>(ran), seconds);
    ::testing::Test::RecordProperty("seeds", std::to_string(ran));
}

}  // namespace veridian::ipc::sim_test
