// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc serve / recv / call / send: a published endpoint from the shell.
//
// The two sides, and which command plays which:
//   serve NAME   publishes NAME; answers every call with its request (an echo) and prints
//                each one-way message, until SIGINT/SIGTERM (then exit 0).
//   recv NAME    publishes NAME like serve, prints the next --count messages (calls are
//                echoed too), then exits: the receiving end of `vipc send`, for scripts.
//   call NAME    connects to NAME, sends call(s), prints the reply and the round-trip time.
//   send NAME    connects to NAME and sends one-way messages (send_sync: it waits while the
//                server's queue is full).
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "payload.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace vipc {

namespace posix = veridian::ipc::posix;
using cli::Args;
using cli::EXIT_FAILURE_RUNTIME;
using cli::EXIT_OK;
using cli::EXIT_USAGE;
using cli::u32;
using cli::u64;
using veridian::ipc::Deadline;
using veridian::ipc::IpcError;
using veridian::ipc::Message;
using veridian::ipc::Result;

namespace {

// How long one blocking wait lasts before a command looks at its stop flag again.
constexpr u64 kSliceMs = 100;

// ---- The server side: serve and recv ----------------------------------------------------

enum class PrintMode {
    Messages,  // print one-way messages, echo calls quietly (serve's default)
    Nothing,   // --echo: print nothing, only answer calls
    All,       // serve --print, and recv: print one-way messages and calls
};

struct ServeOptions {
    std::string name;
    PrintMode mode = PrintMode::Messages;
    bool json = false;
    posix::ServerOptions server;
    u64 count = 0;       // stop after this many messages; 0 = until a stop signal
    u64 timeout_ms = 0;  // recv: give up after this long; 0 = never
    u32 threads = 1;     // serve: receiving threads
};

// Prints one received message as o asks. False when stdout can no longer be written (the
// reader went away): then there is no point in serving on.
bool print_received(const ServeOptions& o, const posix::Received& r, const std::string* payload) {
    const bool is_call = r.message.transaction_id() != 0;
    if (o.mode == PrintMode::Nothing) return true;
    if (is_call && o.mode != PrintMode::All) return true;
    if (o.json) {
        cli::Json j;
        j.begin_object().key("event").string(is_call ? "call" : "message");
        j.key("connection").number(r.connection);
        message_json(j, r.message, payload);
        j.end_object();
        std::printf("%s\n", j.text().c_str());
    } else {
        std::printf("%s on connection %llu: %s\n", is_call ? "call" : "message",
                    static_cast<unsigned long long>(r.connection),
                    message_text(r.message, payload).c_str());
    }
    return std::fflush(stdout) == 0;
}

// Answers a call with its own request (an echo). A request whose payload came in a region
// is answered with a new region holding the same bytes.
void echo(posix::Server& server, const posix::Received& r, const std::string* payload) {
    const Message& m = r.message;
    if (m.is_large() && m.large_message().region.size != 0 && payload != nullptr) {
        Payload p;
        p.kind = Payload::Kind::Bytes;
        p.bytes = *payload;
        posix::Region region;
        Result<Message> out = outgoing_message(m.opcode(), p, &region);
        if (!out) return;
        if (region.valid()) {
            (void)server.reply(r, *out, region, posix::Transfer::Move);
        } else {
            (void)server.reply(r, *out);
        }
        return;
    }
    (void)server.reply(r, m);  // never waits (see serve_loop)
}

// Publishes o.name and takes messages until o.count have arrived, the deadline, or a stop
// signal. Returns the exit code.
// serve --threads N: N threads receive at once (the runtime hands each connection's messages
// out in order); printing is serialized. Until a stop signal, or the first error.
int serve_threads(const std::string& command, const ServeOptions& o, posix::Server& server,
                  bool notices) {
    std::mutex print_mu;
    std::atomic<bool> failed{false};
    std::atomic<u64> taken{0};
    int rc = EXIT_OK;
    auto loop = [&] {
        while (!stop_requested() && !failed.load()) {
            Result<posix::Received> r = server.receive_sync(posix::after_ms(kSliceMs));
            if (!r) {
                if (r.error() == IpcError::Timeout) continue;
                std::lock_guard<std::mutex> lock(print_mu);
                if (!failed.exchange(true)) rc = cli::ipc_error(command, r.error(), o.name);
                return;
            }
            taken.fetch_add(1, std::memory_order_relaxed);
            Result<std::string> payload = payload_of(r->message);
            const std::string* bytes = payload ? &*payload : nullptr;
            if (r->message.transaction_id() != 0) echo(server, *r, bytes);
            if (o.mode == PrintMode::Nothing) continue;
            std::lock_guard<std::mutex> lock(print_mu);
            if (!print_received(o, *r, bytes) && !failed.exchange(true)) {
                rc = cli::runtime_error(command, cli::format("cannot write to stdout (%s); '%s' "
                                                             "is closed",
                                                             std::strerror(errno), o.name.c_str()));
                return;
            }
        }
    };
    std::vector<std::thread> threads;
    for (u32 i = 1; i < o.threads; ++i)
        threads.emplace_back(loop);
    loop();
    for (auto& t : threads)
        t.join();
    (void)server.close();
    if (stop_requested() && notices && rc == EXIT_OK) {
        std::fprintf(stderr, "vipc %s: stopped by %s after %llu messages (%u threads)\n",
                     command.c_str(), stop_signal() == SIGINT ? "SIGINT" : "SIGTERM",
                     static_cast<unsigned long long>(taken.load()), o.threads);
    }
    return rc;
}

int serve_loop(const std::string& command, const ServeOptions& o) {
    install_stop_signals();
    Result<posix::Server> published = posix::Server::publish(o.name, o.server);
    if (!published) return cli::ipc_error(command, published.error(), o.name);
    posix::Server server = std::move(*published);

    const std::string dir =
        o.server.runtime_dir.empty() ? posix::runtime_directory() : o.server.runtime_dir;
    // Notices are for a person at a terminal; scripts get data on stdout and errors only.
    const bool notices = isatty(STDERR_FILENO) != 0;
    if (notices) {
        std::fprintf(stderr, "vipc %s: '%s' published in %s (pid %d); stop with Ctrl-C\n",
                     command.c_str(), o.name.c_str(), dir.c_str(), static_cast<int>(getpid()));
    }

    if (o.threads > 1) return serve_threads(command, o, server, notices);
    const Deadline give_up = o.timeout_ms == 0 ? Deadline::never() : posix::after_ms(o.timeout_ms);
    u64 taken = 0;
    while (!stop_requested() && (o.count == 0 || taken < o.count)) {
        const u64 now = posix::now_ns();
        if (give_up.expired(now)) {
            (void)server.close();
            return cli::runtime_error(
                command, cli::format("got %llu of %llu messages on '%s' within %llu ms — is "
                                     "anything sending to it?",
                                     static_cast<unsigned long long>(taken),
                                     static_cast<unsigned long long>(o.count), o.name.c_str(),
                                     static_cast<unsigned long long>(o.timeout_ms)));
        }
        Deadline slice = posix::after_ms(kSliceMs);
        if (!give_up.is_never() && give_up.ns() < slice.ns()) slice = give_up;
        Result<posix::Received> r = server.receive_sync(slice);
        if (!r) {
            if (r.error() == IpcError::Timeout) continue;
            const IpcError e = r.error();
            (void)server.close();
            return cli::ipc_error(command, e, o.name);
        }
        ++taken;
        // The payload, its region taken (a message that names a bad one is shown without).
        Result<std::string> payload = payload_of(r->message);
        const std::string* bytes = payload ? &*payload : nullptr;
        if (r->message.transaction_id() != 0) {
            // An echo. reply never waits: a caller that gave up (ProcessNotFound), does not
            // read its replies (ChannelFull) or cannot receive is its own business, and the
            // server keeps serving the others at once.
            echo(server, *r, bytes);
        }
        if (!print_received(o, *r, bytes)) {
            const int err = errno;
            (void)server.close();
            return cli::runtime_error(command,
                                      cli::format("cannot write to stdout (%s); '%s' is closed",
                                                  std::strerror(err), o.name.c_str()));
        }
    }
    (void)server.close();
    if (stop_requested()) {
        if (notices && (o.count == 0 || taken >= o.count)) {
            std::fprintf(stderr, "vipc %s: stopped by %s after %llu messages\n", command.c_str(),
                         stop_signal() == SIGINT ? "SIGINT" : "SIGTERM",
                         static_cast<unsigned long long>(taken));
        }
        if (o.count != 0 && taken < o.count) {
            return cli::runtime_error(command,
                                      cli::format("interrupted after %llu of %llu messages",
                                                  static_cast<unsigned long long>(taken),
                                                  static_cast<unsigned long long>(o.count)));
        }
    }
    return EXIT_OK;
}

// Flags serve and recv share. Returns true when the current argument was one of them;
// *rc is set to EXIT_USAGE when its value was bad.
bool server_flag(Args& args, ServeOptions* o, int* rc) {
    if (args.is("--json")) {
        o->json = true;
    } else if (args.is("--depth")) {
        if (!args.number(&o->server.capacity, 1, 1024)) *rc = EXIT_USAGE;
    } else if (args.is("--spin-ns")) {
        if (!args.number(&o->server.spin_ns, 0, 1'000'000'000)) *rc = EXIT_USAGE;
    } else if (args.is("--max-connections")) {
        if (!args.number(&o->server.max_connections, 1, 1'000'000)) *rc = EXIT_USAGE;
    } else {
        return false;
    }
    return true;
}

bool take_name(Args& args, std::string* name, int* rc) {
    if (!args.is_positional()) return false;
    if (!name->empty()) {
        *rc = args.unknown();
    } else if (!check_name(args.command(), args.current(), rc)) {
        return true;
    } else {
        *name = args.current();
    }
    return true;
}

// ---- The client side: call and send ---------------------------------------------------

struct ClientOptions {
    std::string name;
    u32 opcode = 1;
    Payload payload;
    u64 count = 1;
    u64 timeout_ms = 5000;
    u64 wait_ms = 0;
    bool json = false;
};

bool client_flag(Args& args, ClientOptions* o, int* rc) {
    bool good = true;
    if (payload_argument(args, &o->payload, rc)) {
        return true;
    } else if (args.is("--json")) {
        o->json = true;
    } else if (args.is("--opcode")) {
        good = args.number(&o->opcode);
    } else if (args.is("--count")) {
        good = args.number(&o->count, 1, 1'000'000'000);
    } else if (args.is("--timeout-ms")) {
        good = args.number(&o->timeout_ms, 1, 3'600'000);
    } else if (args.is("--wait-ms")) {
        good = args.number(&o->wait_ms, 0, 3'600'000);
    } else {
        return false;
    }
    if (!good) *rc = EXIT_USAGE;
    return true;
}

// Connects to o.name; while it is not published yet, retries for up to o.wait_ms.
Result<posix::Connection> connect_waiting(const ClientOptions& o) {
    const Deadline until = posix::after_ms(o.wait_ms);
    for (;;) {
        Result<posix::Connection> c = posix::Connection::connect(o.name);
        if (c || c.error() != IpcError::EndpointNotFound || until.expired(posix::now_ns()) ||
            stop_requested()) {
            return c;
        }
        usleep(20'000);
    }
}

int connect_error(const std::string& command, IpcError e, const std::string& name) {
    if (e == IpcError::EndpointNotFound) {
        return cli::runtime_error(
            command,
            cli::format("no endpoint named '%s' in %s — start one with 'vipc serve %s'",
                        name.c_str(), posix::runtime_directory().c_str(), name.c_str()),
            e);
    }
    return cli::ipc_error(command, e, name);
}

// An error in the middle of a call or send, after a successful connect.
int transfer_error(const std::string& command, IpcError e, const ClientOptions& o,
                   const posix::Connection& conn, const char* what) {
    const auto pid = static_cast<unsigned long long>(conn.server_pid().value);
    if (e == IpcError::Timeout) {
        return cli::runtime_error(
            command,
            cli::format("%s '%s' (pid %llu) timed out after %llu ms — is the server "
                        "stuck? see 'vipc stat %s', or raise --timeout-ms",
                        what, o.name.c_str(), pid, static_cast<unsigned long long>(o.timeout_ms),
                        o.name.c_str()),
            e);
    }
    if (e == IpcError::EndpointNotFound) {
        return cli::runtime_error(
            command,
            cli::format("the server of '%s' (pid %llu) closed or exited — restart it "
                        "with 'vipc serve %s'",
                        o.name.c_str(), pid, o.name.c_str()),
            e);
    }
    return cli::ipc_error(command, e, o.name);
}

// Sends one message (a call when `reply` is set) with the command's payload: over the
// inline maximum, in a region moved to the server.
Result<void> send_one(posix::Connection& conn, const ClientOptions& o, Message* reply) {
    posix::Region region;
    Result<Message> msg = outgoing_message(o.opcode, o.payload, &region);
    if (!msg) return msg.error();
    const Deadline d = posix::after_ms(o.timeout_ms);
    if (reply == nullptr) {
        return region.valid() ? conn.send_sync(*msg, region, posix::Transfer::Move, d)
                              : conn.send_sync(*msg, d);
    }
    Result<Message> r =
        region.valid() ? conn.call(*msg, region, posix::Transfer::Move, d) : conn.call(*msg, d);
    if (!r) return r.error();
    *reply = *r;
    return veridian::ipc::ok();
}

constexpr const char* kServeHelp =
    "usage: vipc serve NAME [--echo | --print] [--threads N] [--depth N] [--spin-ns N]\n"
    "                       [--max-connections N] [--json]\n"
    "\n"
    "Publishes NAME in the runtime directory and serves it until SIGINT or SIGTERM, then\n"
    "closes it (every client sees the endpoint go away) and exits 0.\n"
    "Calls are answered with the request itself (an echo). One-way messages are printed,\n"
    "one line each.\n"
    "\n"
    "  --echo        print nothing: only answer calls (fastest)\n"
    "  --print       print calls as well as one-way messages\n"
    "  --threads N   receive on N threads at once, 1..256 (default 1); each connection's\n"
    "                messages are still handed out in order\n"
    "  --max-connections N  clients served at once (default 4096)\n"
    "  --depth N     queue depth per direction and connection, 1..1024 (default 64)\n"
    "  --spin-ns N   how long a waiting receive spins before it sleeps (default 20000)\n"
    "  --json        one JSON object per line: event, connection, kind, opcode, flags,\n"
    "                capability, data, from (the sender's pid), txid\n"
    "\n"
    "  --runtime-dir DIR   the runtime directory (default $VIPC_RUNTIME_DIR, ...)\n"
    "\n"
    "example:  vipc serve demo/echo &   vipc call demo/echo --data hello\n";

constexpr const char* kRecvHelp =
    "usage: vipc recv NAME [--count N] [--timeout-ms N] [--depth N] [--spin-ns N] [--json]\n"
    "\n"
    "Publishes NAME, prints the next N messages sent to it (default 1), then closes it and\n"
    "exits 0: the receiving end of 'vipc send'. Calls count too and are answered with an\n"
    "echo. Exits 1 when the messages do not all arrive within --timeout-ms, or on SIGINT.\n"
    "\n"
    "  --count N        how many messages to take (default 1)\n"
    "  --timeout-ms N   give up after N ms (default: wait for ever)\n"
    "  --depth N        queue depth per direction and connection, 1..1024 (default 64)\n"
    "  --spin-ns N      how long a waiting receive spins before it sleeps (default 20000)\n"
    "  --json           one JSON object per message (as 'vipc serve --json')\n"
    "  --runtime-dir DIR   the runtime directory (default $VIPC_RUNTIME_DIR, ...)\n"
    "\n"
    "example:  vipc recv jobs --count 3 &   vipc send jobs --count 3 --wait-ms 1000\n";

constexpr const char* kCallHelp =
    "usage: vipc call NAME [PAYLOAD] [--opcode N] [--count N] [--timeout-ms N]\n"
    "                      [--wait-ms N] [--json] [--runtime-dir DIR]\n"
    "\n"
    "Connects to the endpoint published as NAME, sends a call (a request tagged with a\n"
    "transaction id) and prints the reply and the round-trip time. With --count N it makes\n"
    "N calls and prints the round-trip distribution and the last reply.\n"
    "\n"
    "  --opcode N       the request's opcode (default 1)\n"
    "  PAYLOAD          --data TEXT, --data @FILE or @FILE, - or @- (stdin), --hex HEX,\n"
    "                   or --words A,B,C,D (a 48-byte SmallMessage; the default, all 0);\n"
    "                   any size (over 64 bytes it travels in a region)\n"
    "  --count N        how many calls (default 1)\n"
    "  --timeout-ms N   how long to wait for each reply (default 5000)\n"
    "  --wait-ms N      if NAME is not published yet, keep trying for N ms (default 0)\n"
    "  --json           one JSON object: name, server_pid, calls, reply{kind, opcode,\n"
    "                   words or size/hex/text, ...}, rtt_us{min, p50, p99, p99_9, max,\n"
    "                   mean}; on failure {\"error\": {command, kind, code, message, exit}}\n"
    "  --runtime-dir DIR   the runtime directory (default $VIPC_RUNTIME_DIR, ...)\n"
    "\n"
    "examples:  vipc call demo/echo --data hello    vipc call demo/echo --hex 'de ad'\n"
    "           vipc call demo/echo @request.bin --json\n";

constexpr const char* kSendHelp =
    "usage: vipc send NAME [PAYLOAD] [--opcode N] [--count N] [--timeout-ms N]\n"
    "                      [--wait-ms N] [--json] [--runtime-dir DIR]\n"
    "\n"
    "Connects to the endpoint published as NAME and sends N one-way messages (default 1).\n"
    "Each send waits while the server's queue is full (backpressure), up to --timeout-ms.\n"
    "Print them on the other side with 'vipc serve NAME' or 'vipc recv NAME'.\n"
    "\n"
    "  --opcode N       the messages' opcode (default 1)\n"
    "  PAYLOAD          --data TEXT, --data @FILE or @FILE, - or @- (stdin), --hex HEX,\n"
    "                   or --words A,B,C,D (a 48-byte SmallMessage; the default, all 0);\n"
    "                   any size (over 64 bytes it travels in a region)\n"
    "  --count N        how many messages (default 1)\n"
    "  --timeout-ms N   how long one send may wait for queue space (default 5000)\n"
    "  --wait-ms N      if NAME is not published yet, keep trying for N ms (default 0)\n"
    "  --json           one JSON object: name, server_pid, sent, seconds, msgs_per_second;\n"
    "                   on failure {\"error\": {command, kind, code, message, exit}}\n"
    "  --runtime-dir DIR   the runtime directory (default $VIPC_RUNTIME_DIR, ...)\n"
    "\n"
    "examples:  vipc send jobs @frame.bin    cat frame.bin | vipc send jobs -\n";

// Reads the flags and the name of a client command (call, send). Returns kGoOn to go on,
// or the exit code to end the command with (EXIT_OK after --help).
constexpr int kGoOn = -1;
int parse_client_command(Args& args, const char* help, const char* example, ClientOptions* o) {
    int rc = EXIT_OK;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(help, stdout);
            return EXIT_OK;
        } else if (client_flag(args, o, &rc) || take_name(args, &o->name, &rc)) {
            if (rc != EXIT_OK) return rc;
        } else {
            return args.unknown();
        }
    }
    if (o->name.empty()) {
        return cli::usage_error(args.command(), std::string("which name? e.g. '") + example + "'");
    }
    install_stop_signals();
    return kGoOn;
}

}  // namespace

int run_serve(Args& args) {
    ServeOptions o;
    int rc = EXIT_OK;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(kServeHelp, stdout);
            return EXIT_OK;
        } else if (args.is("--echo")) {
            o.mode = PrintMode::Nothing;
        } else if (args.is("--print")) {
            o.mode = PrintMode::All;
        } else if (args.is("--threads")) {
            if (!args.number(&o.threads, 1, 256)) return EXIT_USAGE;
        } else if (server_flag(args, &o, &rc) || take_name(args, &o.name, &rc)) {
            if (rc != EXIT_OK) return rc;
        } else {
            return args.unknown();
        }
    }
    if (o.name.empty())
        return cli::usage_error(args.command(), "which name? e.g. 'vipc serve demo/echo'");
    return serve_loop(args.command(), o);
}

int run_recv(Args& args) {
    ServeOptions o;
    o.count = 1;
    o.mode = PrintMode::All;  // every message counts, so every message is printed
    int rc = EXIT_OK;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(kRecvHelp, stdout);
            return EXIT_OK;
        } else if (args.is("--count")) {
            if (!args.number(&o.count, 1, 1'000'000'000)) return EXIT_USAGE;
        } else if (args.is("--timeout-ms")) {
            if (!args.number(&o.timeout_ms, 1, 3'600'000)) return EXIT_USAGE;
        } else if (server_flag(args, &o, &rc) || take_name(args, &o.name, &rc)) {
            if (rc != EXIT_OK) return rc;
        } else {
            return args.unknown();
        }
    }
    if (o.name.empty())
        return cli::usage_error(args.command(), "which name? e.g. 'vipc recv jobs'");
    return serve_loop(args.command(), o);
}

int run_call(Args& args) {
    ClientOptions o;
    if (const int rc = parse_client_command(args, kCallHelp, "vipc call demo/echo", &o);
        rc != kGoOn)
        return rc;
    Result<posix::Connection> connected = connect_waiting(o);
    if (!connected) return connect_error(args.command(), connected.error(), o.name);
    posix::Connection conn = std::move(*connected);
    const u64 server_pid = conn.server_pid().value;

    // Memory stays bounded whatever --count says: past kMaxRttSamples calls, the distribution
    // is that of a uniform sample of that many (reservoir sampling), the call count exact.
    constexpr u64 kMaxRttSamples = u64{1} << 20;
    std::vector<u64> rtt_ns;
    rtt_ns.reserve(o.count < kMaxRttSamples ? o.count : kMaxRttSamples);
    u64 calls = 0;
    u64 random = 0x9E3779B97F4A7C15ull;
    Message reply;
    for (u64 i = 0; i < o.count && !stop_requested(); ++i) {
        const u64 start = posix::now_ns();
        Result<void> r = send_one(conn, o, &reply);
        const u64 end = posix::now_ns();
        if (!r) return transfer_error(args.command(), r.error(), o, conn, "a call to");
        ++calls;
        if (rtt_ns.size() < kMaxRttSamples) {
            rtt_ns.push_back(end - start);
        } else {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            if (const u64 k = random % calls; k < kMaxRttSamples) rtt_ns[k] = end - start;
        }
    }
    Result<std::string> reply_payload = payload_of(reply);
    const std::string* reply_bytes = reply_payload ? &*reply_payload : nullptr;
    if (rtt_ns.empty()) return cli::runtime_error(args.command(), "interrupted before any call");
    const LatencySummary s = summarize(rtt_ns);
    (void)conn.close();

    if (o.json) {
        cli::Json j;
        j.begin_object().key("name").string(o.name).key("server_pid").number(server_pid);
        j.key("calls").number(calls);
        j.key("reply").begin_object();
        message_json(j, reply, reply_bytes);
        j.end_object();
        j.key("rtt_us").begin_object();
        latency_json(j, s);
        j.end_object().end_object();
        std::printf("%s\n", j.text().c_str());
    } else if (calls == 1) {
        std::printf("reply from '%s' (pid %llu): %s — round trip %.1f µs\n", o.name.c_str(),
                    static_cast<unsigned long long>(server_pid),
                    message_text(reply, reply_bytes, false).c_str(), s.min);
    } else {
        std::printf(
            "%s calls to '%s' (pid %llu): round trip µs min %.1f p50 %.1f p99 %.1f "
            "max %.1f\n",
            cli::with_commas(calls).c_str(), o.name.c_str(),
            static_cast<unsigned long long>(server_pid), s.min, s.p50, s.p99, s.max);
        std::printf("last reply: %s\n", message_text(reply, reply_bytes, false).c_str());
    }
    if (stop_requested()) return cli::runtime_error(args.command(), "interrupted");
    return EXIT_OK;
}

int run_send(Args& args) {
    ClientOptions o;
    if (const int rc = parse_client_command(args, kSendHelp, "vipc send jobs", &o); rc != kGoOn)
        return rc;
    Result<posix::Connection> connected = connect_waiting(o);
    if (!connected) return connect_error(args.command(), connected.error(), o.name);
    posix::Connection conn = std::move(*connected);
    const u64 server_pid = conn.server_pid().value;

    const u64 start = posix::now_ns();
    u64 sent = 0;
    while (sent < o.count && !stop_requested()) {
        Result<void> r = send_one(conn, o, nullptr);
        if (!r) return transfer_error(args.command(), r.error(), o, conn, "a send to");
        ++sent;
    }
    const double seconds = static_cast<double>(posix::now_ns() - start) / 1e9;
    const double rate = seconds > 0 ? static_cast<double>(sent) / seconds : 0;
    (void)conn.close();

    if (o.json) {
        cli::Json j;
        j.begin_object().key("name").string(o.name).key("server_pid").number(server_pid);
        j.key("sent").number(sent).key("seconds").number(seconds, 6);
        j.key("msgs_per_second").number(rate).end_object();
        std::printf("%s\n", j.text().c_str());
    } else {
        std::printf("sent %s message%s to '%s' (pid %llu) in %.3f ms (%s msgs/s)\n",
                    cli::with_commas(sent).c_str(), sent == 1 ? "" : "s", o.name.c_str(),
                    static_cast<unsigned long long>(server_pid), seconds * 1e3,
                    cli::with_commas(static_cast<u64>(rate)).c_str());
    }
    if (stop_requested()) return cli::runtime_error(args.command(), "interrupted");
    return EXIT_OK;
}

}  // namespace vipc
