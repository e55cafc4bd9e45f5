// SPDX-License-Identifier: MIT OR Apache-2.0
// Results of a run and their presentations: terminal table, JSON, Markdown and SVG plots.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "harness.hpp"

namespace vipc::bench {

// A statistic across repetitions: median [min–max].
struct Spread {
    double median = 0;
    double min = 0;
    double max = 0;
};

Spread spread_of(std::vector<double> values);

// "48 B", "4 KiB", "1 MiB".
std::string size_label(std::size_t size);

// One transport at one placement and one message size, all repetitions.
struct CaseResult {
    Placement placement;
    std::size_t size = 0;
    std::vector<RepResult> reps;  // in run order, failed ones included
    std::string reason;           // set when no repetition succeeded: why there are no numbers
    std::string note;             // caveats: limits applied, repetitions that failed

    std::vector<const RepResult*> ok_reps() const;
    bool has_latency() const;
    bool has_stream() const;
    // Latency statistic (0 min, 1 p50, 2 p99, 3 p99.9, 4 max) across repetitions, in µs.
    Spread latency(int which) const;
    Spread msgs_per_second() const;
    Spread mib_per_second() const;
};

struct TransportResult {
    std::string name;
    std::string description;
    std::string group;  // floor, peer, veridian
    bool round_trips = true;
    bool streams = true;
    std::size_t max_message_size = 0;
    std::string reason;  // set when the transport could not run at all
    std::vector<CaseResult> cases;

    const CaseResult* find(const std::string& placement, std::size_t size) const;
};

struct RunInfo {
    std::string command;
    std::string started_utc;
    std::string machine;  // cpu model, cpu count, kernel
    bool quick = false;
    int reps = 3;
    std::size_t main_size = 48;
    std::vector<std::size_t> sweep_sizes;
    PhaseLimits main_limits;
    PhaseLimits sweep_limits;
    double seconds = 0;
    std::string load_at_start;  // /proc/loadavg's 1, 5 and 15 minute averages ("" if unknown)
    std::string load_at_end;
};

void print_terminal(std::FILE* out, const RunInfo& run,
                    const std::vector<TransportResult>& results);
bool write_json(const std::string& path, const RunInfo& run,
                const std::vector<TransportResult>& results, std::string* error);
bool write_markdown(const std::string& path, const RunInfo& run,
                    const std::vector<TransportResult>& results, std::string* error);
// Writes latency.svg, throughput.svg, sweep_latency.svg and sweep_throughput.svg into `dir`.
bool write_plots(const std::string& dir, const RunInfo& run,
                 const std::vector<TransportResult>& results, std::vector<std::string>* written,
                 std::string* error);

}  // namespace vipc::bench
