// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc: the veridian-ipc command line. Dispatches on the first argument.
//
//   vipc demo                 a server and a client as two processes, with a summary
//   vipc ls / stat NAME       what is published in the runtime directory
//   vipc serve/recv NAME      publish NAME (serve: until stopped; recv: for N messages)
//   vipc call/send NAME       talk to a published NAME
//   vipc bench ...            the benchmarks (when built)
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "commands.hpp"

#if defined(VIPC_HAVE_BENCH)
#include "bench.hpp"
#endif
#if defined(VIPC_HAVE_BRIDGE)
namespace vipc {
int run_bridge(cli::Args& args);  // bridge_cmd.cpp
}
#endif

namespace vipc {
namespace {

constexpr const char* kUsage =
    "usage: vipc COMMAND [OPTIONS]\n"
    "\n"
    "Microkernel-style IPC between processes: named endpoints over shared memory.\n"
    "\n"
    "commands:\n"
    "  demo            run a server and a client as two processes: call/reply round trips\n"
    "                  and a one-way stream, then print latency and throughput\n"
    "  ls              list the endpoints published in the runtime directory\n"
    "  stat NAME       statistics of one endpoint, per connection\n"
    "  serve NAME      publish NAME: echo calls, print one-way messages, until Ctrl-C\n"
    "  recv NAME       publish NAME, print the next messages that arrive, then exit\n"
    "  call NAME       send a call to NAME and print the reply and its round-trip time\n"
    "  send NAME       send one-way messages to NAME\n"
    "  bench ...       the benchmarks against other transports (when built)\n"
    "  bridge ...      carry an endpoint between hosts over NATS (export/import NAME)\n"
    "\n"
    "Run 'vipc COMMAND --help' for a command's options.\n"
    "\n"
    "Every command takes:\n"
    "  --runtime-dir DIR  the runtime directory, instead of $VIPC_RUNTIME_DIR, else\n"
    "                     $XDG_RUNTIME_DIR/vipc, else /tmp/vipc-$UID\n"
    "  --json             results as JSON on stdout; a failure as one JSON object\n"
    "                     {\"error\": {command, kind, code, message, exit}} (bench: --json-out\n"
    "                     FILE writes its results to a file)\n"
    "Exit codes: 0 success, 1 the operation failed, 2 bad command line.\n";

// The options every command takes, handled here and removed from the arguments:
// --runtime-dir DIR sets VIPC_RUNTIME_DIR (so it also reaches the processes a command
// starts); --json also turns on JSON error objects. Returns false after a usage error.
bool global_options(const std::string& command, std::vector<std::string>* args, int* rc) {
    std::vector<std::string> kept;
    for (std::size_t i = 0; i < args->size(); ++i) {
        const std::string& a = (*args)[i];
        if (a == "--") {
            kept.insert(kept.end(), args->begin() + static_cast<std::ptrdiff_t>(i), args->end());
            break;
        }
        if (a == "--json") cli::set_json_errors(true);
        if (a == "--runtime-dir" || a.rfind("--runtime-dir=", 0) == 0) {
            std::string dir;
            if (a == "--runtime-dir") {
                if (i + 1 >= args->size()) {
                    *rc = cli::usage_error(command, "--runtime-dir needs a directory");
                    return false;
                }
                dir = (*args)[++i];
            } else {
                dir = a.substr(std::strlen("--runtime-dir="));
            }
            if (dir.empty()) {
                *rc = cli::usage_error(command, "--runtime-dir needs a directory, not ''");
                return false;
            }
            setenv("VIPC_RUNTIME_DIR", dir.c_str(), 1);
            continue;
        }
        kept.push_back(a);
    }
    *args = std::move(kept);
    return true;
}

int forward_bench(std::vector<std::string> args) {
#if defined(VIPC_HAVE_BENCH)
    // args[0] is "bench": the benchmark driver sees itself as a command of its own.
    std::vector<char*> argv;
    for (std::string& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    return vipc::bench::run_bench(static_cast<int>(args.size()), argv.data());
#else
    (void)args;
    std::fputs("vipc bench: not built (bench/ is missing)\n", stderr);
    return cli::EXIT_USAGE;
#endif
}

}  // namespace
}  // namespace vipc

int main(int argc, char** argv) {
    using namespace vipc;
    // A reader of our output that goes away (`vipc serve x | head`) ends us quietly through
    // the failed write, not through SIGPIPE in the middle of closing an endpoint.
    std::signal(SIGPIPE, SIG_IGN);

    if (argc < 2) {
        std::fputs(kUsage, stderr);
        return cli::EXIT_USAGE;
    }
    const std::string_view command = argv[1];
    if (command == "--help" || command == "-h" || command == "help") {
        if (command == "help" && argc > 2) {
            // `vipc help call` is `vipc call --help`.
            std::vector<std::string> rest{"--help"};
            cli::Args args(argv[2], rest);
            const std::string_view sub = argv[2];
            if (sub == "demo") return run_demo(args);
            if (sub == "ls") return run_ls(args);
            if (sub == "stat") return run_stat(args);
            if (sub == "serve") return run_serve(args);
            if (sub == "recv") return run_recv(args);
            if (sub == "call") return run_call(args);
            if (sub == "send") return run_send(args);
        }
        std::fputs(kUsage, stdout);
        return cli::EXIT_OK;
    }
    if (command == "--version") {
        std::puts("vipc 0.1.0");
        return cli::EXIT_OK;
    }
    std::vector<std::string> rest(argv + 2, argv + argc);
    int rc = cli::EXIT_OK;
    if (!global_options(std::string(command), &rest, &rc)) return rc;
    if (command == "bench") {
        rest.insert(rest.begin(), "bench");
        return forward_bench(std::move(rest));
    }

    cli::Args args(std::string(command), std::move(rest));
    if (command == "demo") return run_demo(args);
    if (command == "__demo-server") return run_demo_server(args);
    if (command == "ls") return run_ls(args);
    if (command == "stat") return run_stat(args);
    if (command == "serve") return run_serve(args);
    if (command == "recv") return run_recv(args);
    if (command == "call") return run_call(args);
    if (command == "send") return run_send(args);
#if defined(VIPC_HAVE_BRIDGE)
    if (command == "bridge") return run_bridge(args);
#endif

    std::fprintf(stderr, "vipc: unknown command '%s' — run 'vipc --help'\n", argv[1]);
    return cli::EXIT_USAGE;
}
