// SPDX-License-Identifier: MIT OR Apache-2.0
// Runs one case (one transport, placement, size, repetition) in two forked processes and
// returns what the client measured. See transport.hpp for the sequence of calls.
#pragma once

#include <cstdint>
#include <string>

#include "transport.hpp"

namespace vipc::bench {

// Bounds of one case. Every loop stops at its count or its time, whichever comes first; the
// parent kills both children when the whole case exceeds `case_timeout_seconds`.
struct PhaseLimits {
    std::uint64_t warmup_rtts = 200;
    double warmup_seconds = 0.05;
    std::uint64_t rtts = 2000;
    double latency_seconds = 0.25;
    std::uint64_t stream_msgs = 200000;
    double stream_seconds = 0.25;
    double case_timeout_seconds = 30;
};

// What one repetition produced. Latencies in microseconds.
struct RepResult {
    bool ok = false;
    std::string reason;      // why it failed, when !ok
    std::uint64_t rtts = 0;  // measured round trips (0: latency phase not run)
    double min = 0, p50 = 0, p99 = 0, p999 = 0, max = 0;
    std::uint64_t stream_msgs = 0;  // messages in the stream phase (0: not run)
    double stream_seconds = 0;
    double wall_seconds = 0;  // the whole case: fork, open, both phases, exit
};

struct Placement {
    std::string name;  // "cross-core" or "same-core"
    int client_cpu = 0;
    int server_cpu = 0;
};

RepResult run_case(const TransportInfo& info, Transport& transport, const CaseParams& params,
                   const Placement& placement, const PhaseLimits& limits,
                   const std::string& child_log);

}  // namespace vipc::bench
