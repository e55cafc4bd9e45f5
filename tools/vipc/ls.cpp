// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc ls / stat: what is published in the runtime directory, as its servers report it.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.hpp"
#include "json_writer.hpp"
#include "veridian/ipc/posix/runtime.hpp"
#if defined(VIPC_HAVE_BRIDGE)
#include "bridge/marker.hpp"
#endif

namespace vipc {

namespace posix = veridian::ipc::posix;
using cli::Args;
using cli::EXIT_OK;
using cli::u64;
using veridian::ipc::Result;
namespace Rights = veridian::ipc::Rights;

namespace {

constexpr const char* kLsHelp =
    "usage: vipc ls [-v] [--json] [--runtime-dir DIR]\n"
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
    "                 connections, accepted, received, sent, broken, per_connection: [...]}]}\n"
    "                 (a pid in a pid namespace not visible from here is null, with\n"
    "                 \"pid_namespace\": \"other\"; a runtime_dir that is not UTF-8 also\n"
    "                 comes as runtime_dir_hex)\n"
    "  --runtime-dir DIR  the runtime directory to list\n";

constexpr const char* kStatHelp =
    "usage: vipc stat NAME [--json] [--runtime-dir DIR]\n"
    "\n"
    "Asks the server of NAME for its statistics: the endpoint's counters and one line per\n"
    "connection (client pid, rights, messages queued in each direction, counters).\n"
    "\n"
    "  --json   one object, as an element of 'vipc ls --json'\n";

// The server's pid as the kernel shows it to this process: SO_PEERCRED of a connection to its
// socket (0 when the server is in a pid namespace this one cannot see; -1 when unknown). The
// pid a server reports is its own view, which differs when it runs in another namespace.
long long pid_seen_here(const std::string& dir, const std::string& name) {
    std::string file = name;
    std::replace(file.begin(), file.end(), '/', ':');
    const std::string path = dir + "/" + file + ".sock";
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) return -1;
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    long long pid = -1;
    if (connect(s, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
        ucred cred{};
        socklen_t len = sizeof cred;
        if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) pid = cred.pid;
    }
    close(s);
    return pid;
}

// How the server's pid is shown: as this process sees it, with its own view beside it when
// the two differ (a server in another pid namespace).
struct ServerPid {
    cli::u64 here = 0;      // 0: not visible from here
    cli::u64 reported = 0;  // what the server says its pid is
    bool other_namespace = false;
};

ServerPid server_pid(const std::string& dir, const posix::EndpointInfo& e) {
    ServerPid p;
    p.reported = e.owner.value;
    const long long seen = pid_seen_here(dir, e.name);
    if (seen < 0) {
        p.here = p.reported;  // could not tell: take its word
    } else {
        p.here = static_cast<cli::u64>(seen);
        p.other_namespace = p.here != p.reported;
    }
    return p;
}

std::string server_pid_text(const ServerPid& p) {
    if (!p.other_namespace) return std::to_string(p.here);
    if (p.here == 0)
        return cli::format("? (another pid namespace; pid %llu there)",
                           static_cast<unsigned long long>(p.reported));
    return cli::format("%llu (pid %llu in its pid namespace)",
                       static_cast<unsigned long long>(p.here),
                       static_cast<unsigned long long>(p.reported));
}

std::string rights_text(cli::u16 rights) {
    std::string out;
    out += (rights & Rights::SEND) != 0 ? 'S' : '-';
    out += (rights & Rights::RECEIVE) != 0 ? 'R' : '-';
    return out;
}

void endpoint_json(cli::Json& j, const posix::EndpointInfo& e, const std::string& dir) {
    const ServerPid pid = server_pid(dir, e);
    j.begin_object();
    j.key("name").string(e.name);
    pid_json(j, "pid", pid.here);
    if (pid.other_namespace) {
        j.key("pid_namespace").string("other").key("pid_in_namespace").number(pid.reported);
    }
    j.key("uid").number(u64{e.owner_uid}).key("capacity").number(u64{e.capacity});
    j.key("connections").number(u64{e.connections}).key("accepted").number(e.accepted);
    j.key("received").number(e.received).key("sent").number(e.sent);
    j.key("broken").number(e.broken);
    j.key("per_connection").begin_array();
    for (const posix::ConnectionStats& c : e.per_connection) {
        j.begin_object();
        j.key("id").number(c.id);
        pid_json(j, "pid", c.peer.value);
        j.key("uid").number(u64{c.peer_uid}).key("rights").string(rights_text(c.rights));
        j.key("capacity").number(u64{c.capacity});
        j.key("queued").number(u64{c.queued});
        j.key("to_client_queued").number(u64{c.to_client_queued});
        j.key("server_pool_used").number(c.server_pool_used);
        j.key("client_pool_held").number(c.client_pool_held);
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
            "  conn %-4llu pid %-8s rights %s  queued c2s %u s2c %u  recv %llu  sent "
            "%llu  loans out %llu held %llu of %llu%s\n",
            static_cast<unsigned long long>(c.id), pid_text(c.peer.value).c_str(),
            rights_text(c.rights).c_str(), c.queued, c.to_client_queued,
            static_cast<unsigned long long>(c.received), static_cast<unsigned long long>(c.sent),
            static_cast<unsigned long long>(c.server_pool_used),
            static_cast<unsigned long long>(c.client_pool_held),
            static_cast<unsigned long long>(c.client_pool_bytes), c.alive ? "" : "  (gone)");
    }
}

// The names bridged over NATS from or to this runtime directory (see src/bridge/marker.hpp).
void print_bridges(const std::string& dir, cli::Json* json) {
#if defined(VIPC_HAVE_BRIDGE)
    const auto bridges = veridian::ipc::bridge::list_bridges(dir);
    if (json != nullptr) {
        json->key("bridges").begin_array();
        for (const auto& b : bridges) {
            json->begin_object().key("name").string(b.name).key("role").string(b.role);
            json->key("pid").number(b.pid).key("subject").string(b.subject);
            json->key("nats").string(b.nats_url).end_object();
        }
        json->end_array();
        return;
    }
    if (bridges.empty()) return;
    std::printf("bridged over NATS:\n");
    for (const auto& b : bridges) {
        std::printf("  %s  %s as %s via %s (bridge pid %llu)\n", b.name.c_str(),
                    b.role == "import" ? "imported" : "exported", b.subject.c_str(),
                    b.nats_url.c_str(), static_cast<unsigned long long>(b.pid));
    }
#else
    (void)dir;
    (void)json;
#endif
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
        j.begin_object().key("runtime_dir").string(dir);
        // A path is bytes: when they are not UTF-8, the exact ones are here.
        if (!vipc::json::is_valid_utf8(dir)) j.key("runtime_dir_hex").string(vipc::json::hex(dir));
        j.key("endpoints").begin_array();
        for (const posix::EndpointInfo& e : endpoints)
            endpoint_json(j, e, dir);
        j.end_array();
        print_bridges(dir, &j);
        j.end_object();
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
        std::printf("%-*s %8s %6u %6u %12llu %12llu %7llu\n", w, e.name.c_str(),
                    server_pid_text(server_pid(dir, e)).c_str(), e.connections, e.capacity,
                    static_cast<unsigned long long>(e.received),
                    static_cast<unsigned long long>(e.sent),
                    static_cast<unsigned long long>(e.broken));
        if (verbose) print_connections(e);
    }
    print_bridges(dir, nullptr);
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
                            name.c_str(), posix::runtime_directory().c_str(), name.c_str()),
                stat.error());
        }
        return cli::ipc_error(args.command(), stat.error(), name);
    }
    const posix::EndpointInfo& e = *stat;
    if (json) {
        cli::Json j;
        endpoint_json(j, e, posix::runtime_directory());
        std::printf("%s\n", j.text().c_str());
        return EXIT_OK;
    }
    std::printf("%s  pid %s  uid %u  depth %u\n", e.name.c_str(),
                server_pid_text(server_pid(posix::runtime_directory(), e)).c_str(), e.owner_uid,
                e.capacity);
    std::printf("  connections %u live, %llu accepted, %llu broken\n", e.connections,
                static_cast<unsigned long long>(e.accepted),
                static_cast<unsigned long long>(e.broken));
    std::printf("  messages    %llu received, %llu sent\n",
                static_cast<unsigned long long>(e.received),
                static_cast<unsigned long long>(e.sent));
    std::printf(
        "  memory      per connection: rings %llu KiB shared, server loan pool %llu KiB "
        "(+ the client's own pool); inline payloads up to %u bytes\n",
        static_cast<unsigned long long>(e.ring_bytes_per_connection / 1024),
        static_cast<unsigned long long>(e.server_pool_bytes / 1024), e.max_inline_payload);
    print_connections(e);
    return EXIT_OK;
}

}  // namespace vipc
