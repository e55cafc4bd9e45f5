// SPDX-License-Identifier: MIT OR Apache-2.0
// contract_peer: the other process of the contract suite.
//
// Usage:
//   contract_peer server <runtime-dir> <name> <capacity>
//       publishes <name> and runs the commands read from stdin, one a line, each on its own
//       thread: "<id> <command> <args>". Answers "<id> OK <fields>" or "<id> ERR <code>" on
//       stdout. Commands (deadlines are nanoseconds from now, -1 = never; a message is
//       "<opcode> <flags> <d0> <d1> <d2> <d3>"):
//         ready                          -> OK
//         receive_sync <deadline>        -> OK <token> <opcode> <flags> <d0..d3> <txid> <sender>
//         try_receive                    -> the same
//         reply <token> <message>        -> OK
//         send_sync <connection> <deadline> <message>, send_async <connection> <message>
//         close                          -> OK
//         give_capability <connection>   mints a SEND|RECEIVE|GRANT capability and sends it to
//                                        that connection in a message -> OK <capability id>
//         revoke <capability id>         -> OK
//         stats                          -> OK <queued> <capacity> <waiting_receivers>
//                                           <waiting_senders> <received> <sent> <active>
//         close answers "OK <CLOCK_MONOTONIC ns just before the close>"
//   contract_peer client <runtime-dir> <name>
//       connects to <name> (SEND|RECEIVE), reads nothing, and runs the commands "ready" and
//       "close" (answered as above); the other side of the server-side tests of
//       blocked_test.cpp.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "veridian/ipc/posix/runtime.hpp"

using namespace veridian::ipc;
using namespace veridian::ipc::posix;

namespace {

std::mutex g_out;

void answer(u64 id, const std::string& text) {
    std::lock_guard<std::mutex> lock(g_out);
    std::printf("%llu %s\n", static_cast<unsigned long long>(id), text.c_str());
    std::fflush(stdout);
}

template <typename R>
bool failed(u64 id, const R& r) {
    if (r) return false;
    answer(id, "ERR " + std::to_string(error_code(r.error())));
    return true;
}

Deadline read_deadline(std::istream& in) {
    long long ns = -1;
    in >> ns;
    return ns < 0 ? Deadline::never() : after_ns(static_cast<u64>(ns));
}

Message read_message(std::istream& in) {
    u32 opcode = 0, flags = 0;
    in >> opcode >> flags;
    Message m = Message::small(0, opcode);
    m.set_flags(flags);
    for (u64& d : m.small_message().data)
        in >> d;
    return m;
}

std::string message_fields(const Message& m) {
    std::string t = std::to_string(m.opcode()) + " " + std::to_string(m.flags());
    for (int i = 0; i < 4; ++i)
        t += " " + std::to_string(m.is_small() ? m.small_message().data[i] : 0);
    t += " " + std::to_string(m.transaction_id()) + " " + std::to_string(m.sender().value);
    return t;
}

int run_server(const char* dir, const char* name, u32 capacity) {
    ServerOptions o;
    o.runtime_dir = dir;
    o.capacity = capacity;
    auto published = Server::publish(name, o);
    if (!published) {
        std::fprintf(stderr, "contract_peer: publish: %s\n", last_error_detail());
        return 2;
    }
    Server server = static_cast<Server&&>(*published);
    std::mutex requests_mu;
    std::map<u64, Received> requests;
    u64 next_token = 1;
    std::vector<std::thread> threads;
    auto store = [&](const Received& r) {
        std::lock_guard<std::mutex> lock(requests_mu);
        requests[next_token] = r;
        return next_token++;
    };
    for (std::string line; std::getline(std::cin, line);) {
        threads.emplace_back([&, line] {
            std::istringstream in(line);
            u64 id = 0;
            std::string command;
            in >> id >> command;
            if (command == "ready") {
                answer(id, "OK");
            } else if (command == "receive_sync" || command == "try_receive") {
                auto r = command == "try_receive" ? server.try_receive()
                                                  : server.receive_sync(read_deadline(in));
                if (failed(id, r)) return;
                const u64 token = store(*r);
                answer(id, "OK " + std::to_string(token) + " " + message_fields(r->message));
            } else if (command == "reply") {
                u64 token = 0;
                in >> token;
                const Message m = read_message(in);
                std::optional<Received> request;
                {
                    std::lock_guard<std::mutex> lock(requests_mu);
                    auto it = requests.find(token);
                    if (it != requests.end()) request = it->second;
                }
                if (!request) {
                    answer(id, "ERR " + std::to_string(error_code(IpcError::InvalidMessage)));
                    return;
                }
                auto r = server.reply(*request, m, after_ms(2000));  // bounds a bug only
                if (failed(id, r)) return;
                answer(id, "OK");
            } else if (command == "send_sync" || command == "send_async") {
                ConnectionId to = 0;
                in >> to;
                const Deadline d = command == "send_sync" ? read_deadline(in) : Deadline::past();
                const Message m = read_message(in);
                auto r =
                    command == "send_sync" ? server.send_sync(to, m, d) : server.send_async(to, m);
                if (failed(id, r)) return;
                answer(id, "OK");
            } else if (command == "give_capability") {
                ConnectionId to = 0;
                in >> to;
                auto minted =
                    server.mint_capability(Rights::SEND | Rights::RECEIVE | Rights::GRANT);
                if (failed(id, minted)) return;
                auto r =
                    server.send_sync(to, Message::small(0, 0), minted->capability, after_ms(5000));
                if (failed(id, r)) return;
                answer(id, "OK " + std::to_string(minted->id));
            } else if (command == "revoke") {
                CapabilityId cap = 0;
                in >> cap;
                auto r = server.revoke(cap);
                if (failed(id, r)) return;
                answer(id, "OK");
            } else if (command == "close") {
                const u64 at = now_ns();
                auto r = server.close();
                if (failed(id, r)) return;
                answer(id, "OK " + std::to_string(at));
            } else if (command == "stats") {
                auto s = server.stats();
                if (failed(id, s)) return;
                answer(id, "OK " + std::to_string(s->queued) + " " + std::to_string(s->capacity) +
                               " " + std::to_string(s->waiting_receivers) + " " +
                               std::to_string(s->waiting_senders) + " " +
                               std::to_string(s->received) + " " + std::to_string(s->sent) + " " +
                               std::to_string(s->active ? 1 : 0));
            } else {
                answer(id, "ERR " + std::to_string(error_code(IpcError::InvalidMessage)));
            }
        });
    }
    // stdin closed: the test is done with us.
    (void)server.close();
    for (std::thread& t : threads)
        t.join();
    return 0;
}

int run_client(const char* dir, const char* name) {
    ConnectOptions o;
    o.runtime_dir = dir;
    auto connected = Connection::connect(name, o);
    if (!connected) {
        std::fprintf(stderr, "contract_peer: connect: %s\n", last_error_detail());
        return 2;
    }
    Connection connection = static_cast<Connection&&>(*connected);
    for (std::string line; std::getline(std::cin, line);) {
        std::istringstream in(line);
        u64 id = 0;
        std::string command;
        in >> id >> command;
        if (command == "ready") {
            answer(id, "OK " + std::to_string(connection.id()));
        } else if (command == "close") {
            const u64 at = now_ns();
            auto r = connection.close();
            if (failed(id, r)) continue;
            answer(id, "OK " + std::to_string(at));
        } else {
            answer(id, "ERR " + std::to_string(error_code(IpcError::InvalidMessage)));
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 5 && std::strcmp(argv[1], "server") == 0) {
        return run_server(argv[2], argv[3], static_cast<u32>(std::atoi(argv[4])));
    }
    if (argc >= 4 && std::strcmp(argv[1], "client") == 0) return run_client(argv[2], argv[3]);
    std::fprintf(stderr, "usage: contract_peer server DIR NAME CAPACITY | client DIR NAME\n");
    return 2;
}
