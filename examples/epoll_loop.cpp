// SPDX-License-Identifier: MIT OR Apache-2.0
// A server and a client driven from one epoll loop, in one thread: nothing blocks.
//
// The client keeps up to 8 calls in flight (Connection::begin_call); the server answers
// each from its pollable descriptor and, every 10th call, also sends the client a one-way
// message. The client takes replies (take_reply) and messages (try_receive) from its own
// pollable descriptor. Both descriptors are level-triggered: drain until ChannelEmpty, then
// wait again.
//
//   vipc_example_epoll_loop [CALLS]      (default 1000; exits 0 when all were answered)
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "veridian/ipc/posix/runtime.hpp"

using namespace veridian::ipc;

namespace {

int fail(const char* what, IpcError e) {
    std::fprintf(stderr, "epoll loop: %s: %s: %s\n", what, error_name(e),
                 posix::last_error_detail());
    return 1;
}

constexpr u64 SERVER_TAG = 1;
constexpr u64 CLIENT_TAG = 2;
constexpr usize IN_FLIGHT = 8;

}  // namespace

int main(int argc, char** argv) {
    const u64 calls = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000;
    // Our own runtime directory, unless the caller chose one.
    char tmpl[] = "/tmp/vipc-epoll-XXXXXX";
    posix::ServerOptions server_options;
    posix::ConnectOptions connect_options;
    const bool own_dir = getenv("VIPC_RUNTIME_DIR") == nullptr;
    if (own_dir) {
        if (mkdtemp(tmpl) == nullptr) return 1;
        server_options.runtime_dir = connect_options.runtime_dir = tmpl;
    }

    auto server = posix::Server::publish("examples/epoll", server_options);
    if (!server) return fail("publish", server.error());
    auto client = posix::Connection::connect("examples/epoll", connect_options);
    if (!client) return fail("connect", client.error());

    const int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = SERVER_TAG;
    epoll_ctl(ep, EPOLL_CTL_ADD, server->pollable_fd(), &ev);
    ev.data.u64 = CLIENT_TAG;
    epoll_ctl(ep, EPOLL_CTL_ADD, client->pollable_fd(), &ev);

    std::vector<TransactionId> in_flight;
    u64 begun = 0, answered = 0, requests = 0, one_way = 0;
    int rc = 0;
    while (answered < calls && rc == 0) {
        // Keep the pipeline full.
        while (in_flight.size() < IN_FLIGHT && begun < calls) {
            Message request = Message::small(0, 1);
            request.small_message().data[0] = begun;
            auto txid = client->begin_call(request, posix::after_ms(1000));
            if (!txid) return fail("begin_call", txid.error());
            in_flight.push_back(*txid);
            ++begun;
        }
        epoll_event ready[2];
        const int n = epoll_wait(ep, ready, 2, 5000);
        if (n <= 0) {
            std::fprintf(stderr, "epoll loop: nothing became readable in 5 s\n");
            rc = 1;
            break;
        }
        for (int i = 0; i < n; ++i) {
            if (ready[i].data.u64 == SERVER_TAG) {
                for (;;) {  // drain: every request, then ChannelEmpty
                    auto req = server->try_receive();
                    if (!req) {
                        if (req.error() != IpcError::ChannelEmpty)
                            rc = fail("receive", req.error());
                        break;
                    }
                    // Every 10th request, a one-way message first (it arrives before the
                    // reply: the ring keeps order).
                    if (++requests % 10 == 0) {
                        auto s = server->send_async(req->connection, Message::small(0, 3));
                        if (!s) rc = fail("send", s.error());
                    }
                    Message response = Message::small(0, 2);
                    response.small_message().data[0] = req->message.small_message().data[0] * 2;
                    if (auto r = server->reply(*req, response, posix::after_ms(1000)); !r)
                        rc = fail("reply", r.error());
                }
            } else {
                for (usize k = 0; k < in_flight.size();) {  // replies
                    auto reply = client->take_reply(in_flight[k]);
                    if (!reply) {
                        if (reply.error() != IpcError::ChannelEmpty) {
                            rc = fail("take_reply", reply.error());
                            break;
                        }
                        ++k;
                        continue;
                    }
                    ++answered;
                    in_flight[k] = in_flight.back();
                    in_flight.pop_back();
                }
                for (;;) {  // one-way messages
                    auto m = client->try_receive();
                    if (!m) {
                        if (m.error() != IpcError::ChannelEmpty)
                            rc = fail("try_receive", m.error());
                        break;
                    }
                    ++one_way;
                }
            }
        }
    }
    close(ep);
    (void)server->close();
    if (own_dir) rmdir(tmpl);
    if (rc != 0) return rc;
    std::printf("epoll loop: %llu calls answered, %llu one-way messages, one thread\n",
                static_cast<unsigned long long>(answered),
                static_cast<unsigned long long>(one_way));
    return answered == calls && one_way == calls / 10 ? 0 : 1;
}
