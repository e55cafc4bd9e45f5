// SPDX-License-Identifier: MIT OR Apache-2.0
// A server and a client driven by one asio io_context (standalone asio, Debian's
// libasio-dev), in one thread: each side's pollable descriptor is wrapped in an
// asio::posix::stream_descriptor and waited for with async_wait(wait_read).
//
// The client makes CALLS calls one after the other without blocking (begin_call, then
// take_reply when its descriptor is readable); the server answers from its descriptor.
//
//   vipc_example_asio_loop [CALLS]      (default 1000; exits 0 when all were answered)
#include <stdlib.h>
#include <unistd.h>

#include <asio.hpp>
#include <cstdio>
#include <functional>

#include "veridian/ipc/posix/runtime.hpp"

using namespace veridian::ipc;

namespace {

int report(const char* what, IpcError e) {
    std::fprintf(stderr, "asio loop: %s: %s: %s\n", what, error_name(e),
                 posix::last_error_detail());
    return 1;
}

// The descriptors belong to the Server and the Connection: asio must not close them.
asio::posix::stream_descriptor watch(asio::io_context& io, int fd) {
    return asio::posix::stream_descriptor(io, fcntl(fd, F_DUPFD_CLOEXEC, 0));
}

}  // namespace

int main(int argc, char** argv) {
    const u64 calls = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000;
    char tmpl[] = "/tmp/vipc-asio-XXXXXX";
    posix::ServerOptions server_options;
    posix::ConnectOptions connect_options;
    const bool own_dir = getenv("VIPC_RUNTIME_DIR") == nullptr;
    if (own_dir) {
        if (mkdtemp(tmpl) == nullptr) return 1;
        server_options.runtime_dir = connect_options.runtime_dir = tmpl;
    }
    auto server = posix::Server::publish("examples/asio", server_options);
    if (!server) return report("publish", server.error());
    auto client = posix::Connection::connect("examples/asio", connect_options);
    if (!client) return report("connect", client.error());

    asio::io_context io;
    // A dup() of each descriptor: the same open file (its readiness), closed by asio alone.
    asio::posix::stream_descriptor server_fd = watch(io, server->pollable_fd());
    asio::posix::stream_descriptor client_fd = watch(io, client->pollable_fd());
    int rc = 0;
    u64 answered = 0;
    TransactionId pending = 0;

    auto stop = [&](int code) {
        rc = code;
        io.stop();
    };
    auto begin_next = [&] {
        Message request = Message::small(0, 1);
        request.small_message().data[0] = answered;
        auto txid = client->begin_call(request, posix::after_ms(1000));
        if (!txid) return stop(report("begin_call", txid.error()));
        pending = *txid;
    };

    std::function<void()> serve = [&] {
        server_fd.async_wait(asio::posix::stream_descriptor::wait_read, [&](asio::error_code ec) {
            if (ec) return;
            for (;;) {
                auto req = server->try_receive();
                if (!req) {
                    if (req.error() != IpcError::ChannelEmpty)
                        return stop(report("receive", req.error()));
                    break;
                }
                Message response = Message::small(0, 2);
                response.small_message().data[0] = req->message.small_message().data[0] + 1;
                if (auto r = server->reply(*req, response, posix::after_ms(1000)); !r)
                    return stop(report("reply", r.error()));
            }
            serve();
        });
    };
    std::function<void()> take = [&] {
        client_fd.async_wait(asio::posix::stream_descriptor::wait_read, [&](asio::error_code ec) {
            if (ec) return;
            for (;;) {
                auto reply = client->take_reply(pending);
                if (!reply) {
                    if (reply.error() != IpcError::ChannelEmpty)
                        return stop(report("take_reply", reply.error()));
                    break;
                }
                if (reply->small_message().data[0] != answered + 1) {
                    std::fprintf(stderr, "asio loop: reply %llu carries a wrong value\n",
                                 static_cast<unsigned long long>(answered));
                    return stop(1);
                }
                if (++answered == calls) return stop(0);
                begin_next();
            }
            take();
        });
    };

    asio::steady_timer watchdog(io, std::chrono::seconds(30));
    watchdog.async_wait([&](asio::error_code ec) {
        if (!ec) {
            std::fprintf(stderr, "asio loop: only %llu of %llu calls answered in 30 s\n",
                         static_cast<unsigned long long>(answered),
                         static_cast<unsigned long long>(calls));
            stop(1);
        }
    });
    begin_next();
    serve();
    take();
    io.run();
    (void)server->close();
    if (own_dir) rmdir(tmpl);
    if (rc == 0) {
        std::printf("asio loop: %llu calls answered, one io_context, one thread\n",
                    static_cast<unsigned long long>(answered));
    }
    return rc;
}
