// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc: the commands, one function each, and what several of them share.
//
// Layer: tools (hosted). main.cpp dispatches on the first argument; each run_* gets the
// remaining arguments and returns the exit code (see cli.hpp).
#pragma once

#include <string>
#include <vector>

#include "cli.hpp"
#include "veridian/ipc/core/message.hpp"

namespace vipc {

// demo.cpp
int run_demo(cli::Args& args);
// The hidden server half of `vipc demo`, run in a separate process (see demo.cpp).
int run_demo_server(cli::Args& args);

// endpoint_cmds.cpp
int run_serve(cli::Args& args);
int run_recv(cli::Args& args);
int run_call(cli::Args& args);
int run_send(cli::Args& args);

// ls.cpp
int run_ls(cli::Args& args);
int run_stat(cli::Args& args);

// ---- Shared by the commands ------------------------------------------------------------------

// One line describing a message: "opcode 7 flags 0x8 5 bytes "hello" from pid 123" (a
// SmallMessage shows its words; the sender only when with_sender and the runtime named one).
// `payload` is what payload_of() gave (nullptr: not taken); bytes a peer sent are shown
// escaped, never raw.
std::string message_text(const veridian::ipc::Message& msg, const std::string* payload,
                         bool with_sender = true);
// The message's fields as members of the JSON object being written: kind ("small" or
// "bytes"), opcode, flags, capability, words (small) or size, hex and text (when the payload
// is valid UTF-8), from (the sender's pid; null and from_namespace "other" when it is in a pid
// namespace this process cannot see), txid.
void message_json(cli::Json& json, const veridian::ipc::Message& msg, const std::string* payload);
// `key`: pid, or null and `key`_namespace: "other" for a pid the kernel could not map (0).
void pid_json(cli::Json& json, std::string_view key, cli::u64 pid);
// "1234", or "? (another pid namespace)" for 0.
std::string pid_text(cli::u64 pid);

// Round-trip times, in microseconds.
struct LatencySummary {
    double min = 0, p50 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};
// Sorts `samples_ns` and summarizes it (all zero when it is empty).
LatencySummary summarize(std::vector<cli::u64>& samples_ns);
// Writes the summary as the members min, p50, p99, p99_9, max, mean of the current object.
void latency_json(cli::Json& json, const LatencySummary& s);

// Checks an endpoint name given on the command line; on a malformed one reports a usage
// error (*rc = EXIT_USAGE) and returns false.
bool check_name(const std::string& command, const std::string& name, int* rc);

// SIGINT and SIGTERM set a flag instead of killing the process, so a command can close its
// endpoint cleanly; stop_requested() reads it. Blocking loops wait in short slices.
void install_stop_signals();
bool stop_requested();
// The signal that set the flag (0 when none).
int stop_signal();

}  // namespace vipc
