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
// Every message is taken with receive_view, whatever way it travelled (see payload.hpp: a
// Message, a payload record, a loan, a region), and bytes are sent the way that fits their
// size.
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
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
    std::string out;     // --out: the payloads go to this file ("-": stdout)
    u32 threads = 1;     // serve: receiving threads
};

// One message taken by the server, whatever way it travelled.
struct Taken {
    Message message;  // as received, or described() for a payload or a loan
    u64 connection = 0;
    Via via = Via::Inline;
    std::string bytes;  // its payload (payload_of for a Message), when valid
    bool has_bytes = false;
};

// What a taken message's bytes are needed for beyond the echo (which reads them in place).
enum class BytesUse { EchoOnly, Kept };

// Takes what `in` holds: a Message's payload (its region taken; a message that names a bad
// one is shown without), or, when they are kept (printed, written), a copy of the payload
// record's or loan's bytes.
Taken take(const posix::Incoming& in, BytesUse use) {
    Taken t;
    t.connection = in.info.connection;
    if (in.kind == posix::Incoming::Kind::Small || in.kind == posix::Incoming::Kind::Large) {
        t.message = in.message;
        t.via = via_of(in.message);
        Result<std::string> payload = payload_of(in.message);
        if (payload) {
            t.bytes = static_cast<std::string&&>(*payload);
            t.has_bytes = true;
        }
        return t;
    }
    t.message = described(in.info);
    t.via = in.kind == posix::Incoming::Kind::Loan ? Via::Loan : Via::Payload;
    if (use == BytesUse::Kept) {
        t.bytes.assign(reinterpret_cast<const char*>(in.payload.data()), in.payload.size());
        t.has_bytes = true;
    }
    return t;
}

// Prints one received message as o asks. False when stdout can no longer be written (the
// reader went away): then there is no point in serving on.
bool print_received(const ServeOptions& o, const Taken& t) {
    const bool is_call = t.message.transaction_id() != 0;
    if (o.mode == PrintMode::Nothing) return true;
    if (is_call && o.mode != PrintMode::All) return true;
    const std::string* payload = t.has_bytes ? &t.bytes : nullptr;
    if (o.json) {
        cli::Json j;
        j.begin_object().key("event").string(is_call ? "call" : "message");
        j.key("connection").number(t.connection);
        message_json(j, t.message, payload);
        j.key("via").string(via_name(t.via));
        j.end_object();
        std::printf("%s\n", j.text().c_str());
    } else {
        std::printf("%s on connection %llu: %s via %s\n", is_call ? "call" : "message",
                    static_cast<unsigned long long>(t.connection),
                    message_text(t.message, payload).c_str(), via_name(t.via));
    }
    return std::fflush(stdout) == 0;
}

// Answers a call with a region holding `bytes` (a new one: the request's was moved to us).
void reply_with_region(posix::Server& server, const posix::Received& request,
                       std::string_view bytes) {
    Payload p;
    p.kind = Payload::Kind::Bytes;
    p.bytes = bytes;
    posix::Region region;
    Result<Message> out = outgoing_message(request.message.opcode(), p, &region);
    if (!out) return;
    if (region.valid()) {
        (void)server.reply(request, *out, region, posix::Transfer::Move);
    } else {
        (void)server.reply(request, *out);
    }
}

// Answers a call with its own request (an echo), the way that fits the bytes. A Message is
// answered as it came (a request whose payload came in a region with a new region holding
// the same bytes: a Message caller reads only a Message). A payload record or a loan is
// answered with a payload record up to max_inline_payload(), else with a loan from the
// server's pool for that client, else (no pool, or larger than it) with a region.
// None of these waits: a caller that gave up (ProcessNotFound), does not read its replies
// (ChannelFull, Timeout) or cannot receive is its own business, and the server keeps serving
// the others at once.
void echo(posix::Server& server, const posix::Incoming& in, const Taken& t) {
    const Deadline now = Deadline::past();
    posix::Received request;
    request.message = t.message;
    request.connection = t.connection;
    if (in.kind == posix::Incoming::Kind::Small || in.kind == posix::Incoming::Kind::Large) {
        if (t.via == Via::Region) {
            if (t.has_bytes) reply_with_region(server, request, t.bytes);
            return;
        }
        (void)server.reply(request, in.message);
        return;
    }
    const u32 opcode = in.info.opcode;
    const u32 flags = in.info.flags;
    if (in.payload.size() <= server.max_inline_payload()) {
        (void)server.reply(in, opcode, flags, in.payload, now);
        return;
    }
    Result<posix::Loan> loan = server.loan(t.connection, in.payload.size(), now);
    if (loan) {
        std::memcpy(loan->bytes.data(), in.payload.data(), in.payload.size());
        if (!server.reply_loan(in, *loan, in.payload.size(), opcode, flags, now)) {
            (void)server.cancel_loan(t.connection, *loan);
        }
        return;
    }
    if (loan.error() == IpcError::ResourceBusy || loan.error() == IpcError::MessageTooLarge) {
        reply_with_region(
            server, request,
            std::string_view(reinterpret_cast<const char*>(in.payload.data()), in.payload.size()));
    }
}

// Publishes o.name and takes messages until o.count have arrived, the deadline, or a stop
// signal. Returns the exit code.
// serve --threads N: N threads receive at once (the runtime hands each connection's messages
// out in order, and a view stays valid until that thread's next receive); printing and the
// --out file are serialized. Until a stop signal, or the first error.
int serve_threads(const std::string& command, const ServeOptions& o, posix::Server& server,
                  bool notices) {
    std::mutex print_mu;
    std::atomic<bool> failed{false};
    std::atomic<u64> taken{0};
    int rc = EXIT_OK;
    auto loop = [&] {
        while (!stop_requested() && !failed.load()) {
            Result<posix::Incoming> in = server.receive_view(posix::after_ms(kSliceMs));
            if (!in) {
                if (in.error() == IpcError::Timeout) continue;
                std::lock_guard<std::mutex> lock(print_mu);
                if (!failed.exchange(true)) rc = cli::ipc_error(command, in.error(), o.name);
                return;
            }
            taken.fetch_add(1, std::memory_order_relaxed);
            const Taken t =
                take(*in, o.mode == PrintMode::Nothing && o.out.empty() ? BytesUse::EchoOnly
                                                                        : BytesUse::Kept);
            if (t.message.transaction_id() != 0) echo(server, *in, t);
            if (in->kind == posix::Incoming::Kind::Loan) (void)server.release(*in);
            if (o.mode == PrintMode::Nothing && o.out.empty()) continue;
            std::lock_guard<std::mutex> lock(print_mu);
            std::string error;
            if (!o.out.empty() && !write_payload(o.out, t.bytes, true, &error)) {
                if (!failed.exchange(true)) rc = cli::runtime_error(command, error);
                return;
            }
            if (!print_received(o, t) && !failed.exchange(true)) {
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

int serve_loop(const std::string& command, ServeOptions o) {
    if (o.out == "-") o.mode = PrintMode::Nothing;  // stdout holds the payloads alone
    if (std::string error; !o.out.empty() && !write_payload(o.out, {}, false, &error)) {
        return cli::runtime_error(command, error);  // before anything is taken
    }
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
        Result<posix::Incoming> in = server.receive_view(slice);
        if (!in) {
            if (in.error() == IpcError::Timeout) continue;
            const IpcError e = in.error();
            (void)server.close();
            return cli::ipc_error(command, e, o.name);
        }
        ++taken;
        const Taken t = take(*in, o.mode == PrintMode::Nothing && o.out.empty() ? BytesUse::EchoOnly
                                                                                : BytesUse::Kept);
        if (t.message.transaction_id() != 0) echo(server, *in, t);
        // The bytes were copied: a loan goes back to its sender's pool at once.
        if (in->kind == posix::Incoming::Kind::Loan) (void)server.release(*in);
        if (!o.out.empty()) {
            std::string error;
            if (!write_payload(o.out, t.bytes, true, &error)) {
                (void)server.close();
                return cli::runtime_error(command, error);
            }
        }
        if (!print_received(o, t)) {
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
    } else if (args.is("--out")) {
        if (!args.value(&o->out)) *rc = EXIT_USAGE;
    } else if (args.is("--max-inline")) {
        if (!args.number(&o->server.max_inline_payload, 0, posix::MAX_INLINE_PAYLOAD_LIMIT))
            *rc = EXIT_USAGE;
    } else if (args.is("--pool-bytes")) {
        if (!args.number(&o->server.pool_bytes, 0, posix::MAX_POOL_BYTES)) *rc = EXIT_USAGE;
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

// How call/send send bytes: chosen by size, or as --via says.
enum class Chosen { BySize, Inline, Payload, Loan, Region };

struct ClientOptions {
    std::string name;
    u64 pool_bytes = posix::DEFAULT_POOL_BYTES;  // send --pool-bytes: this connection's pool
    std::string out;                             // call --out: the reply's payload goes here
    Chosen way = Chosen::BySize;                 // --via
    u32 opcode = 1;
    Payload payload;
    u64 count = 1;
    u64 timeout_ms = 5000;
    u64 wait_ms = 0;
    bool json = false;
};

// --via WAY; false (reported) when WAY is not one this command has.
bool parse_way(const std::string& command, const std::string& way, Chosen* out) {
    const bool send = command == "send";
    if (way == "auto") {
        *out = Chosen::BySize;
    } else if (way == "inline") {
        *out = Chosen::Inline;
    } else if (way == "payload") {
        *out = Chosen::Payload;
    } else if (way == "loan" && send) {
        *out = Chosen::Loan;
    } else if (way == "region") {
        *out = Chosen::Region;
    } else {
        (void)cli::usage_error(
            command,
            cli::format("--via is auto, inline, %s or region, not '%s'%s",
                        send ? "payload, loan" : "payload", way.c_str(),
                        way == "loan" ? " (a call's request cannot travel in a loan)" : ""));
        return false;
    }
    return true;
}

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
    } else if (args.is("--pool-bytes") && args.command() == "send") {
        good = args.number(&o->pool_bytes, 0, posix::MAX_POOL_BYTES);
    } else if (args.is("--out") && args.command() == "call") {
        good = args.value(&o->out);
    } else if (args.is("--via")) {
        std::string way;
        good = args.value(&way);
        if (good && !parse_way(args.command(), way, &o->way)) {
            *rc = EXIT_USAGE;
            return true;
        }
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
        posix::ConnectOptions options;
        options.pool_bytes = o.pool_bytes;
        Result<posix::Connection> c = posix::Connection::connect(o.name, options);
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

// A call's reply: the Message (or described() for a payload reply) and its payload.
// Its bytes are taken after the round trip was timed (take_reply_bytes).
struct Reply {
    enum class Source : unsigned char { None, Message, Buffer };
    Message message;
    Source source = Source::None;  // where the bytes are still to be taken from
    std::string bytes;
    bool has_bytes = false;
};

// Takes the reply's bytes: a Message's (its region mapped and closed), or a payload reply's
// from the call's buffer.
void take_reply_bytes(Reply* reply, const std::vector<std::byte>& buffer) {
    if (reply->source == Reply::Source::Message) {
        Result<std::string> bytes = payload_of(reply->message);
        reply->has_bytes = static_cast<bool>(bytes);
        if (bytes) reply->bytes = static_cast<std::string&&>(*bytes);
    } else if (reply->source == Reply::Source::Buffer) {
        reply->bytes.assign(reinterpret_cast<const char*>(buffer.data()), buffer.size());
        reply->has_bytes = true;
    }
    reply->source = Reply::Source::None;
}

// Sends a Message, with `region` when it is valid (moved to the server).
Result<void> send_message(posix::Connection& conn, const Message& msg, posix::Region& region,
                          Deadline d, Reply* reply) {
    if (reply == nullptr) {
        return region.valid() ? conn.send_sync(msg, region, posix::Transfer::Move, d)
                              : conn.send_sync(msg, d);
    }
    Result<Message> r =
        region.valid() ? conn.call(msg, region, posix::Transfer::Move, d) : conn.call(msg, d);
    if (!r) return r.error();
    reply->message = *r;
    reply->source = Reply::Source::Message;
    return veridian::ipc::ok();
}

// Sends one message (a call when `reply` is set) with the command's payload, the way that
// fits its size: --words as a SmallMessage; bytes as a payload record up to the connection's
// max_inline_payload(); a send up to the pool's size in a loan (waiting for pool space until
// the deadline; no pool or larger than it: a region); beyond, and a call over the inline
// maximum, in a region moved to the server. Returns how it travelled.
Result<Via> send_one(posix::Connection& conn, const ClientOptions& o, Reply* reply,
                     std::vector<std::byte>* reply_buffer) {
    const Deadline d = posix::after_ms(o.timeout_ms);
    const Payload& p = o.payload;
    const bool bytes = p.kind == Payload::Kind::Bytes;
    if (bytes && (o.way == Chosen::Payload ||
                  (o.way == Chosen::BySize && p.bytes.size() <= conn.max_inline_payload()))) {
        if (reply == nullptr) {
            VIPC_TRY(conn.send_sync(o.opcode, 0, as_bytes(p.bytes), d));
            return Via::Payload;
        }
        Result<posix::PayloadInfo> info =
            conn.call(o.opcode, 0, as_bytes(p.bytes), *reply_buffer, d);
        if (!info) return info.error();
        reply->message = described(*info);
        reply->source = Reply::Source::Buffer;
        return Via::Payload;
    }
    if (bytes && reply == nullptr && (o.way == Chosen::BySize || o.way == Chosen::Loan)) {
        Result<posix::Loan> loan = conn.loan(p.bytes.size(), d);
        if (loan) {
            std::memcpy(loan->bytes.data(), p.bytes.data(), p.bytes.size());
            if (Result<void> s = conn.send_loan(*loan, p.bytes.size(), o.opcode, 0, d); !s) {
                (void)conn.cancel_loan(*loan);
                return s.error();
            }
            return Via::Loan;
        }
        if (o.way == Chosen::Loan ||
            (loan.error() != IpcError::ResourceBusy && loan.error() != IpcError::MessageTooLarge)) {
            return loan.error();
        }
    }
    posix::Region region;
    Result<Message> msg =
        outgoing_message(o.opcode, p, &region, o.way == Chosen::Region ? Via::Region : Via::Inline);
    if (!msg) return msg.error();
    const Via via = region.valid() ? Via::Region : Via::Inline;
    VIPC_TRY(send_message(conn, *msg, region, d, reply));
    return via;
}

constexpr const char* kServeHelp =
    "usage: vipc serve NAME [--echo | --print] [--threads N] [--depth N] [--spin-ns N]\n"
    "                       [--max-connections N] [--max-inline N] [--pool-bytes N]\n"
    "                       [--out FILE] [--json]\n"
    "\n"
    "Publishes NAME in the runtime directory and serves it until SIGINT or SIGTERM, then\n"
    "closes it (every client sees the endpoint go away) and exits 0.\n"
    "Calls are answered with the request itself (an echo), sent the way that fits its size:\n"
    "inline up to --max-inline bytes, then a loan from the server's pool, then a region.\n"
    "One-way messages are printed, one line each, saying how each travelled (via inline,\n"
    "payload, loan or region). Messages of every size and kind are taken.\n"
    "\n"
    "  --echo        print nothing: only answer calls (fastest)\n"
    "  --print       print calls as well as one-way messages\n"
    "  --threads N   receive on N threads at once, 1..256 (default 1); each connection's\n"
    "                messages are still handed out in order\n"
    "  --max-connections N  clients served at once (default 4096)\n"
    "  --depth N     queue depth per direction and connection, 1..1024 (default 64)\n"
    "  --spin-ns N   how long a waiting receive spins before it sleeps (default 20000)\n"
    "  --max-inline N  the largest payload copied through the rings, both directions,\n"
    "                0..65536 (default 4096; learned by clients when they connect)\n"
    "  --pool-bytes N  the loan pool for replies, per connection (default 1048576; 0: none)\n"
    "  --out FILE    write every message's payload bytes to FILE, one after another\n"
    "                (- : to stdout, instead of the lines)\n"
    "  --json        one JSON object per line: event, connection, kind, opcode, flags,\n"
    "                capability, words or size/hex/text, from (the sender's pid), txid, via\n"
    "\n"
    "  --runtime-dir DIR   the runtime directory (default $VIPC_RUNTIME_DIR, ...)\n"
    "\n"
    "example:  vipc serve demo/echo &   vipc call demo/echo --data hello\n";

constexpr const char* kRecvHelp =
    "usage: vipc recv NAME [--count N] [--timeout-ms N] [--out FILE] [--depth N]\n"
    "                      [--spin-ns N] [--max-inline N] [--pool-bytes N] [--json]\n"
    "\n"
    "Publishes NAME, prints the next N messages sent to it (default 1), then closes it and\n"
    "exits 0: the receiving end of 'vipc send'. Calls count too and are answered with an\n"
    "echo. Exits 1 when the messages do not all arrive within --timeout-ms, or on SIGINT.\n"
    "\n"
    "  --count N        how many messages to take (default 1)\n"
    "  --timeout-ms N   give up after N ms (default: wait for ever)\n"
    "  --out FILE       write the messages' payload bytes to FILE, one after another\n"
    "                   (- : to stdout, instead of the lines)\n"
    "  --max-inline N   the largest payload copied through the rings (default 4096)\n"
    "  --pool-bytes N   the loan pool for replies, per connection (default 1048576)\n"
    "  --depth N        queue depth per direction and connection, 1..1024 (default 64)\n"
    "  --spin-ns N      how long a waiting receive spins before it sleeps (default 20000)\n"
    "  --json           one JSON object per message (as 'vipc serve --json', with via)\n"
    "  --runtime-dir DIR   the runtime directory (default $VIPC_RUNTIME_DIR, ...)\n"
    "\n"
    "example:  vipc recv jobs --count 3 &   vipc send jobs --count 3 --wait-ms 1000\n";

constexpr const char* kCallHelp =
    "usage: vipc call NAME [PAYLOAD] [--opcode N] [--count N] [--timeout-ms N] [--out FILE]\n"
    "                      [--wait-ms N] [--via WAY] [--json] [--runtime-dir DIR]\n"
    "\n"
    "Connects to the endpoint published as NAME, sends a call (a request tagged with a\n"
    "transaction id) and prints the reply and the round-trip time. With --count N it makes\n"
    "N calls and prints the round-trip distribution and the last reply.\n"
    "\n"
    "  --opcode N       the request's opcode (default 1)\n"
    "  PAYLOAD          --data TEXT, --data @FILE or @FILE, - or @- (stdin), --hex HEX,\n"
    "                   or --words A,B,C,D (a 48-byte SmallMessage; the default, all 0);\n"
    "                   any size: inline up to the endpoint's inline maximum (default\n"
    "                   4096 bytes, 'vipc stat NAME' shows it), then in a region\n"
    "  --count N        how many calls (default 1)\n"
    "  --timeout-ms N   how long to wait for each reply (default 5000)\n"
    "  --wait-ms N      if NAME is not published yet, keep trying for N ms (default 0)\n"
    "  --out FILE       write the reply's payload bytes to FILE (- : to stdout, alone)\n"
    "  --via WAY        how the request's bytes travel: auto (the default: by size, as\n"
    "                   above), inline (a LargeMessage, up to 64 bytes), payload (a\n"
    "                   payload record) or region; inline and region are what a server\n"
    "                   that reads only Messages (receive_sync) can take\n"
    "  --json           one JSON object: name, server_pid, calls, via (how the request\n"
    "                   travelled), reply{kind, opcode, words or size/hex/text, ...},\n"
    "                   rtt_us{min, p50, p99, p99_9, max, mean}; on failure {\"error\": {command, "
    "kind, code, message, exit}}\n"
    "  --runtime-dir DIR   the runtime directory (default $VIPC_RUNTIME_DIR, ...)\n"
    "\n"
    "examples:  vipc call demo/echo --data hello    vipc call demo/echo --hex 'de ad'\n"
    "           vipc call demo/echo @request.bin --json\n";

constexpr const char* kSendHelp =
    "usage: vipc send NAME [PAYLOAD] [--opcode N] [--count N] [--timeout-ms N]\n"
    "                      [--wait-ms N] [--pool-bytes N] [--via WAY] [--json]\n"
    "                      [--runtime-dir DIR]\n"
    "\n"
    "Connects to the endpoint published as NAME and sends N one-way messages (default 1).\n"
    "Each send waits while the server's queue is full (backpressure), up to --timeout-ms.\n"
    "Print them on the other side with 'vipc serve NAME' or 'vipc recv NAME'.\n"
    "\n"
    "  --opcode N       the messages' opcode (default 1)\n"
    "  PAYLOAD          --data TEXT, --data @FILE or @FILE, - or @- (stdin), --hex HEX,\n"
    "                   or --words A,B,C,D (a 48-byte SmallMessage; the default, all 0);\n"
    "                   any size: inline up to the endpoint's inline maximum (default\n"
    "                   4096 bytes), then a loan from this connection's pool (zero copy,\n"
    "                   up to --pool-bytes), then a region\n"
    "  --count N        how many messages (default 1)\n"
    "  --timeout-ms N   how long one send may wait for queue or pool space (default 5000)\n"
    "  --wait-ms N      if NAME is not published yet, keep trying for N ms (default 0)\n"
    "  --pool-bytes N   this connection's loan pool (default 1048576; 0: none)\n"
    "  --via WAY        how the bytes travel: auto (the default: by size, as above),\n"
    "                   inline (a LargeMessage, up to 64 bytes), payload, loan or region;\n"
    "                   inline and region are what a server that reads only Messages\n"
    "                   (receive_sync) can take\n"
    "  --json           one JSON object: name, server_pid, sent, via, seconds,\n"
    "                   msgs_per_second; on failure {\"error\": {command, kind, code,\n"
    "                   message, exit}}\n"
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
    if (o->payload.kind == Payload::Kind::Words && o->way != Chosen::BySize &&
        o->way != Chosen::Inline) {
        return cli::usage_error(args.command(),
                                "--words is a 48-byte SmallMessage: it travels inline; give "
                                "bytes (--data, --hex, @FILE, -) for another --via");
    }
    if (o->way == Chosen::Inline && o->payload.kind == Payload::Kind::Bytes &&
        o->payload.bytes.size() > veridian::ipc::LARGE_MESSAGE_INLINE_BYTES) {
        return cli::usage_error(
            args.command(),
            cli::format("--via inline carries up to %zu bytes in a LargeMessage, this payload "
                        "has %zu: use --via payload, region or auto",
                        static_cast<std::size_t>(veridian::ipc::LARGE_MESSAGE_INLINE_BYTES),
                        o->payload.bytes.size()));
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
    if (std::string error; !o.out.empty() && !write_payload(o.out, {}, false, &error)) {
        return cli::runtime_error(args.command(), error);  // before any call is made
    }
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
    Reply reply;
    std::vector<std::byte> reply_buffer;
    Via via = Via::Inline;
    for (u64 i = 0; i < o.count && !stop_requested(); ++i) {
        const u64 start = posix::now_ns();
        Result<Via> r = send_one(conn, o, &reply, &reply_buffer);
        const u64 end = posix::now_ns();
        if (!r) return transfer_error(args.command(), r.error(), o, conn, "a call to");
        via = *r;
        // A reply's region is taken at once (mapped, copied, closed), outside the timing.
        if (reply.source == Reply::Source::Message) take_reply_bytes(&reply, reply_buffer);
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
    take_reply_bytes(&reply, reply_buffer);
    const std::string* reply_bytes = reply.has_bytes ? &reply.bytes : nullptr;
    if (rtt_ns.empty()) return cli::runtime_error(args.command(), "interrupted before any call");
    const LatencySummary s = summarize(rtt_ns);
    (void)conn.close();
    if (!o.out.empty()) {
        std::string error;
        if (!write_payload(o.out, reply.bytes, false, &error)) {
            return cli::runtime_error(args.command(), error);
        }
        if (o.out == "-")
            return stop_requested() ? cli::runtime_error(args.command(), "interrupted") : EXIT_OK;
    }

    if (o.json) {
        cli::Json j;
        j.begin_object().key("name").string(o.name).key("server_pid").number(server_pid);
        j.key("calls").number(calls).key("via").string(via_name(via));
        j.key("reply").begin_object();
        message_json(j, reply.message, reply_bytes);
        j.end_object();
        j.key("rtt_us").begin_object();
        latency_json(j, s);
        j.end_object().end_object();
        std::printf("%s\n", j.text().c_str());
    } else if (calls == 1) {
        std::printf("reply from '%s' (pid %llu): %s — round trip %.1f µs\n", o.name.c_str(),
                    static_cast<unsigned long long>(server_pid),
                    message_text(reply.message, reply_bytes, false).c_str(), s.min);
    } else {
        std::printf(
            "%s calls to '%s' (pid %llu): round trip µs min %.1f p50 %.1f p99 %.1f "
            "max %.1f\n",
            cli::with_commas(calls).c_str(), o.name.c_str(),
            static_cast<unsigned long long>(server_pid), s.min, s.p50, s.p99, s.max);
        std::printf("last reply: %s\n", message_text(reply.message, reply_bytes, false).c_str());
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
    Via via = Via::Inline;
    while (sent < o.count && !stop_requested()) {
        Result<Via> r = send_one(conn, o, nullptr, nullptr);
        if (!r) return transfer_error(args.command(), r.error(), o, conn, "a send to");
        via = *r;
        ++sent;
    }
    const double seconds = static_cast<double>(posix::now_ns() - start) / 1e9;
    const double rate = seconds > 0 ? static_cast<double>(sent) / seconds : 0;
    (void)conn.close();

    if (o.json) {
        cli::Json j;
        j.begin_object().key("name").string(o.name).key("server_pid").number(server_pid);
        j.key("sent").number(sent).key("via").string(via_name(via));
        j.key("seconds").number(seconds, 6);
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
