// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc bridge export|import NAME: carry a named endpoint between hosts over NATS (see
// src/bridge/bridge.hpp and docs/BRIDGE.md).
//
//   host B:  vipc bridge export sensors/imu --nats-url nats://natshost:4222
//   host A:  vipc bridge import sensors/imu --nats-url nats://natshost:4222
//
// Prints one line saying what it bridges, then (with --stats-ms) its counters every so often
// and at the end; stops on SIGINT/SIGTERM (exit 0).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "bridge/bridge.hpp"
#include "bridge/mapping.hpp"
#include "commands.hpp"
#include "veridian/ipc/core/capability.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace vipc {

namespace bridge = veridian::ipc::bridge;
using cli::Args;
using cli::EXIT_OK;
using cli::EXIT_USAGE;
using cli::u32;
using cli::u64;
using veridian::ipc::usize;

namespace {

constexpr const char* kBridgeHelp =
    "usage: vipc bridge export|import NAME [OPTIONS]\n"
    "\n"
    "Carries the endpoint NAME between hosts over NATS (subject PREFIX.NAME with '/' as '.').\n"
    "  export NAME   on the host that serves NAME: takes its calls and one-way messages from\n"
    "                NATS and forwards them to the local endpoint (several exporters of one\n"
    "                name share the calls: a NATS queue group)\n"
    "  import NAME   on the host of the clients: publishes NAME locally and forwards every\n"
    "                call and message to NATS\n"
    "\n"
    "NATS (passed through to the NATS client library):\n"
    "  --nats-url URL[,URL...]  servers to connect to (default nats://127.0.0.1:4222; tls://\n"
    "                           for TLS; nats://user:pass@host:port works too)\n"
    "  --creds FILE             a credentials file (user JWT and nkey seed)\n"
    "  --nkey PUBLIC --nkey-seed FILE   nkey authentication\n"
    "  --user USER              user name; the password comes from --password or, to keep it\n"
    "                           off the command line, $VIPC_NATS_PASSWORD\n"
    "  --password PASSWORD      --token TOKEN\n"
    "  --tls                    require TLS; --tls-ca FILE  trusted CA certificates;\n"
    "  --tls-cert FILE --tls-key FILE  client certificate; --tls-hostname NAME\n"
    "\n"
    "Bridge:\n"
    "  --prefix PREFIX          subject prefix (default vipc)\n"
    "  --call-timeout MS        import: the longest time a forwarded call may take (the\n"
    "                           caller's remaining deadline, at most this; default 5000);\n"
    "                           export: the longest remote deadline honoured\n"
    "  --window N               import: one-way messages unconfirmed at once (default 1024)\n"
    "  --concurrency N          export: calls served at once (default 4)\n"
    "  --rights s|sr            export: what the bridge may do on the local endpoint (s: only\n"
    "                           one-way messages, calls get PermissionDenied; default sr)\n"
    "  --depth N                import: queue depth of the local endpoint (default 64)\n"
    "  --spin-ns NS             spin bound of the local side before sleeping (default 20000)\n"
    "  --stats-ms MS            print the counters every MS milliseconds (default: at exit)\n"
    "\n"
    "What cannot cross hosts: capabilities (InvalidCapability) and memory regions\n"
    "(InvalidMemoryRegion). Errors of remote calls come back as error replies; see\n"
    "docs/BRIDGE.md.\n";

void print_counters(const bridge::Bridge& b) {
    const bridge::BridgeCounters c = b.counters();
    std::printf(
        "counters: calls %llu errors %llu sends %llu refused %llu unconfirmed %llu credit-waits "
        "%llu streams %llu gaps %llu disconnects %llu reconnects %llu nats %s\n",
        static_cast<unsigned long long>(c.calls), static_cast<unsigned long long>(c.call_errors),
        static_cast<unsigned long long>(c.sends), static_cast<unsigned long long>(c.sends_refused),
        static_cast<unsigned long long>(c.sends_unconfirmed),
        static_cast<unsigned long long>(c.credit_waits),
        static_cast<unsigned long long>(c.streams_opened),
        static_cast<unsigned long long>(c.sequence_gaps),
        static_cast<unsigned long long>(c.disconnects),
        static_cast<unsigned long long>(c.reconnects),
        c.connected ? c.nats_server.c_str() : "(disconnected)");
    std::fflush(stdout);
}

void split_urls(const std::string& text, std::vector<std::string>& out) {
    usize start = 0;
    while (start <= text.size()) {
        const usize comma = text.find(',', start);
        const std::string one =
            text.substr(start, comma == std::string::npos ? comma : comma - start);
        if (!one.empty()) out.push_back(one);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
}

}  // namespace

int run_bridge(Args& args) {
    std::string mode;
    std::string name;
    bridge::BridgeOptions o;
    std::vector<std::string> urls;
    u64 stats_ms = 0;
    bool password_given = false;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(kBridgeHelp, stdout);
            return EXIT_OK;
        } else if (args.is("--nats-url")) {
            std::string v;
            if (!args.value(&v)) return EXIT_USAGE;
            split_urls(v, urls);
        } else if (args.is("--creds")) {
            if (!args.value(&o.nats.creds_file)) return EXIT_USAGE;
        } else if (args.is("--nkey")) {
            if (!args.value(&o.nats.nkey_public)) return EXIT_USAGE;
        } else if (args.is("--nkey-seed")) {
            if (!args.value(&o.nats.nkey_seed_file)) return EXIT_USAGE;
        } else if (args.is("--user")) {
            if (!args.value(&o.nats.user)) return EXIT_USAGE;
        } else if (args.is("--password")) {
            if (!args.value(&o.nats.password)) return EXIT_USAGE;
            password_given = true;
        } else if (args.is("--token")) {
            if (!args.value(&o.nats.token)) return EXIT_USAGE;
        } else if (args.is("--tls")) {
            o.nats.tls = true;
        } else if (args.is("--tls-ca")) {
            if (!args.value(&o.nats.tls_ca_file)) return EXIT_USAGE;
        } else if (args.is("--tls-cert")) {
            if (!args.value(&o.nats.tls_cert_file)) return EXIT_USAGE;
        } else if (args.is("--tls-key")) {
            if (!args.value(&o.nats.tls_key_file)) return EXIT_USAGE;
        } else if (args.is("--tls-hostname")) {
            if (!args.value(&o.nats.tls_hostname)) return EXIT_USAGE;
        } else if (args.is("--prefix")) {
            if (!args.value(&o.prefix)) return EXIT_USAGE;
        } else if (args.is("--call-timeout")) {
            if (!args.number(&o.call_timeout_ms, 1, 3'600'000)) return EXIT_USAGE;
        } else if (args.is("--window")) {
            if (!args.number(&o.credit_window, 1, 65536)) return EXIT_USAGE;
        } else if (args.is("--concurrency")) {
            if (!args.number(&o.concurrency, 1, 64)) return EXIT_USAGE;
        } else if (args.is("--depth")) {
            if (!args.number(&o.queue_depth, 1, 1024)) return EXIT_USAGE;
        } else if (args.is("--spin-ns")) {
            if (!args.number(&o.spin_ns, 0, 10'000'000)) return EXIT_USAGE;
        } else if (args.is("--stats-ms")) {
            if (!args.number(&stats_ms, 1, 3'600'000)) return EXIT_USAGE;
        } else if (args.is("--rights")) {
            std::string v;
            if (!args.value(&v)) return EXIT_USAGE;
            if (v == "s") {
                o.local_rights = veridian::ipc::Rights::SEND;
            } else if (v == "sr") {
                o.local_rights = veridian::ipc::Rights::SEND | veridian::ipc::Rights::RECEIVE;
            } else {
                return cli::usage_error(args.command(), "--rights must be s or sr");
            }
        } else if (args.is_positional()) {
            if (mode.empty()) {
                mode = args.current();
            } else if (name.empty()) {
                name = args.current();
            } else {
                return args.unknown();
            }
        } else {
            return args.unknown();
        }
    }
    if (mode != "export" && mode != "import") {
        return cli::usage_error(args.command(), "say 'export NAME' or 'import NAME'");
    }
    if (name.empty()) return cli::usage_error(args.command(), "missing the endpoint NAME");
    int rc = 0;
    if (!check_name(args.command(), name, &rc)) return rc;
    if (!urls.empty()) o.nats.urls = urls;
    if (!password_given) {
        if (const char* p = std::getenv("VIPC_NATS_PASSWORD")) o.nats.password = p;
    }
    if (!o.nats.user.empty() && o.nats.password.empty()) {
        return cli::usage_error(args.command(),
                                "--user needs a password: --password or $VIPC_NATS_PASSWORD");
    }

    install_stop_signals();
    const bridge::Role role = mode == "export" ? bridge::Role::Export : bridge::Role::Import;
    veridian::ipc::Result<bridge::Bridge> started = bridge::Bridge::start(role, name, o);
    if (!started) {
        return cli::runtime_error(args.command(), std::string(mode) + " " + name + ": " +
                                                      veridian::ipc::error_name(started.error()) +
                                                      ": " + bridge::last_error_detail());
    }
    bridge::Bridge& b = *started;
    std::printf("%s %s as NATS subject %s via %s (pid %d)\n",
                role == bridge::Role::Export ? "exporting" : "importing", name.c_str(),
                b.subject().c_str(), b.counters().nats_server.c_str(), static_cast<int>(getpid()));
    std::fflush(stdout);
    u64 since = 0;
    while (!stop_requested()) {
        usleep(50'000);
        since += 50;
        if (stats_ms != 0 && since >= stats_ms) {
            since = 0;
            print_counters(b);
        }
    }
    b.stop();
    print_counters(b);
    std::printf("stopped (signal %d)\n", stop_signal());
    return EXIT_OK;
}

}  // namespace vipc
