// vipc ls / stat: what is published in the runtime directory, as its servers report it.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace vipc {

namespace posix = veridian::ipc::posix;
using cli::Args;
using cli::EXIT_OK;
using cli::u64;
using veridian::ipc::Result;
namespace Rights = veridian::ipc::Rights;

namespace {

constexpr const char* kLsHelp =
    "usage: vipc ls [-v] [--json]\n"
    "\n"
    "Lists the endpoints published in the runtime directory ($VIPC_RUNTIME_DIR, else\n"
    "$XDG_RUNTIME_DIR/vipc, else /tmp/vipc-$UID), as their servers report them:\n"
    "  NAME    the endpoint's name          PID     the server's pid\n"
    "  CONNS   live connections             DEPTH   queue depth per direction\n"
    "  RECV    messages the server took     SENT    messages it sent (replies included)\n"
    "  BROKEN  connections dropped for breaking the protocol\n"
    "\n"
    "  -v, --verbose  one more row per connection: client pid, rights, messages queued in\n"
    "                 each direction, counters\n"
    "  --json         {\"runtime_dir\": ..., \"endpoints\": [{name, pid, uid, capacity,\n"
    "                 connections, accepted, received, sent, broken, per_connection: [...]}]}\n";

constexpr const char* kStatHelp =
    "usage: vipc stat NAME [--json]\n"
    "\n"
    "Asks the server of NAME for its statistics: the endpoint's counters and one line per\n"
    "connection (client pid, rights, messages queued in each direction, counters).\n"
    "\n"
    "  --json   one object, as an element of 'vipc ls --json'\n";

std::string rights_text(cli::u16 rights) {
    std::string out;
    out += (rights & Rights::SEND) != 0 ? 'S' : '-';
    out += (rights & Rights::RECEIVE) != 0 ? 'R' : '-';
    return out;
}

void endpoint_json(cli::Json& j, const posix::EndpointInfo& e) {
    j.begin_object();
    j.key("name").string(e.name).key("pid").number(e.owner.value);
    j.key("uid").number(u64{e.owner_uid}).key("capacity").number(u64{e.capacity});
    j.key("connections").number(u64{e.connections}).key("accepted").number(e.accepted);
    j.key("received").number(e.received).key("sent").number(e.sent);
    j.key("broken").number(e.broken);
    j.key("per_connection").begin_array();
    for (const posix::ConnectionStats& c : e.per_connection) {
        j.begin_object();
        j.key("id").number(c.id).key("pid").number(c.peer.value);
        j.key("uid").number(u64{c.peer_uid}).key("rights").string(rights_text(c.rights));
        j.key("capacity").number(u64{c.capacity});
        j.key("queued").number(u64{c.queued});
        j.key("to_client_queued").number(u64{c.to_client_queued});
        j.key("received").number(c.received).key("sent").number(c.sent);
        j.key("alive").boolean(c.alive);
        j.end_object();
    }
    j.end_array();
    j.end_object();
}

void print_connections(const posix::EndpointInfo& e) {
    for (const posix::ConnectionStats& c : e.per_connection) {
        std::printf(
            "  conn %-4llu pid %-8llu rights %s  queued c2s %u s2c %u  recv %llu  sent "
            "%llu%s\n",
            static_cast<unsigned long long>(c.id), static_cast<unsigned long long>(c.peer.value),
            rights_text(c.rights).c_str(), c.queued, c.to_client_queued,
            static_cast<unsigned long long>(c.received), static_cast<unsigned long long>(c.sent),
            c.alive ? "" : "  (gone)");
    }
}

}  // namespace

int run_ls(Args& args) {
    bool json = false;
    bool verbose = false;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(kLsHelp, stdout);
            return EXIT_OK;
        } else if (args.is("--json")) {
            json = true;
        } else if (args.is("--verbose") || args.current() == "-v") {
            verbose = true;
        } else {
            return args.unknown();
        }
    }
    const std::string dir = posix::runtime_directory();
    Result<std::vector<posix::EndpointInfo>> listed = posix::list_endpoints();
    if (!listed) return cli::ipc_error(args.command(), listed.error(), "");
    const std::vector<posix::EndpointInfo>& endpoints = *listed;

    if (json) {
        cli::Json j;
        j.begin_object().key("runtime_dir").string(dir).key("endpoints").begin_array();
        for (const posix::EndpointInfo& e : endpoints)
            endpoint_json(j, e);
        j.end_array().end_object();
        std::printf("%s\n", j.text().c_str());
        return EXIT_OK;
    }
    if (endpoints.empty()) {
        std::printf("no endpoints in %s\n", dir.c_str());
        return EXIT_OK;
    }
    std::size_t width = 4;
    for (const posix::EndpointInfo& e : endpoints)
        width = std::max(width, e.name.size());
    const int w = static_cast<int>(width);
    std::printf("%-*s %8s %6s %6s %12s %12s %7s\n", w, "NAME", "PID", "CONNS", "DEPTH", "RECV",
                "SENT", "BROKEN");
    for (const posix::EndpointInfo& e : endpoints) {
        std::printf("%-*s %8llu %6u %6u %12llu %12llu %7llu\n", w, e.name.c_str(),
                    static_cast<unsigned long long>(e.owner.value), e.connections, e.capacity,
                    static_cast<unsigned long long>(e.received),
                    static_cast<unsigned long long>(e.sent),
                    static_cast<unsigned long long>(e.broken));
        if (verbose) print_connections(e);
    }
    return EXIT_OK;
}

int run_stat(Args& args) {
    bool json = false;
    std::string name;
    while (args.next()) {
        if (args.is_help()) {
            std::fputs(kStatHelp, stdout);
            return EXIT_OK;
        } else if (args.is("--json")) {
            json = true;
        } else if (args.is_positional() && name.empty()) {
            int rc = EXIT_OK;
            if (!check_name(args.command(), args.current(), &rc)) return rc;
            name = args.current();
        } else {
            return args.unknown();
        }
    }
    if (name.empty())
        return cli::usage_error(args.command(), "which name? e.g. 'vipc stat demo/echo'");
    Result<posix::EndpointInfo> stat = posix::stat_endpoint(name);
    if (!stat) {
        if (stat.error() == veridian::ipc::IpcError::EndpointNotFound) {
            return cli::runtime_error(
                args.command(),
                cli::format("no endpoint named '%s' in %s — start one with 'vipc serve %s'",
                            name.c_str(), posix::runtime_directory().c_str(), name.c_str()));
        }
        return cli::ipc_error(args.command(), stat.error(), name);
    }
    const posix::EndpointInfo& e = *stat;
    if (json) {
        cli::Json j;
        endpoint_json(j, e);
        std::printf("%s\n", j.text().c_str());
        return EXIT_OK;
    }
    std::printf("%s  pid %llu  uid %u  depth %u\n", e.name.c_str(),
                static_cast<unsigned long long>(e.owner.value), e.owner_uid, e.capacity);
    std::printf("  connections %u live, %llu accepted, %llu broken\n", e.connections,
                static_cast<unsigned long long>(e.accepted),
                static_cast<unsigned long long>(e.broken));
    std::printf("  messages    %llu received, %llu sent\n",
                static_cast<unsigned long long>(e.received),
                static_cast<unsigned long long>(e.sent));
    print_connections(e);
    return EXIT_OK;
}

}  // namespace vipc
