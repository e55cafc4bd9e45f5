// SPDX-License-Identifier: MIT OR Apache-2.0
// `vipc bench`: side-by-side IPC benchmarks between two processes.
//
// run_bench() is the whole command: it parses its own options, runs every case, prints the
// table and writes the requested files. The vipc tool calls it for `vipc bench`; the
// standalone `vipc-bench` executable calls it from main(). argv[0] is the command's name
// (used in messages only); options follow. Returns the process exit code: 0 when the run
// completed (transports that could not run are listed with their reason), 2 for a usage
// error, 1 when an output file could not be written.
#pragma once

namespace vipc::bench {

int run_bench(int argc, char** argv);

}  // namespace vipc::bench
