// SPDX-License-Identifier: MIT OR Apache-2.0
// The posix runtime's own side of the contract between two processes: the sender's pid,
// non-blocking operations beside a thread blocked on the same ring side, spinning disabled,
// a client that exited, several clients (doorbell, fairness), disconnect, large messages and
// the pollable descriptor. The other side is vipc_test_peer, a separate process. What every
// runtime does alike is tested once, in tests/contract.
#include <sys/epoll.h>

#include <atomic>
#include <set>
#include <thread>

#include "test_support.hpp"

namespace veridian::ipc::posix::test {
namespace {

// Polls `pred` every millisecond for at most 5 s (setting up the other process, not a timing
// assertion).
template <typename Pred>
bool eventually(Pred pred) {
    const u64 give_up = now_ns() + 5'000'000'000u;
    while (now_ns() < give_up) {
        if (pred()) return true;
        usleep(1000);
    }
    return pred();
}

u32 queued_from(const Server& server, ConnectionId id) {
    for (const ConnectionStats& s : server.info().per_connection) {
        if (s.id == id) return s.queued;
    }
    return 0;
}

TEST(Contract, SendSyncDeliversInOrderWithTheSendersPid) {
    RuntimeDir dir;
    auto server = Server::publish("demo/in", dir.server_options());
    ASSERT_TRUE(server);
    Peer client("client-send", dir.path(), "demo/in", {"100"});
    for (u64 i = 0; i < 100; ++i) {
        auto r = server->receive_sync(after_ms(5000));
        ASSERT_TRUE(r) << error_name(r.error());
        EXPECT_EQ(r->message.small_message().data[0], i);
        EXPECT_EQ(r->message.sender().value, static_cast<u64>(client.pid()));
        EXPECT_EQ(r->message.transaction_id(), 0u);
    }
    EXPECT_EQ(client.wait_exit(), 0);
}

TEST(Contract, SendAsyncDoesNotWaitForAThreadBlockedOnTheSameFullRing) {
    RuntimeDir dir;
    Peer server("idle", dir.path(), "demo/idle", {"2"});
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/idle", dir.connect_options());
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send_async(small_message(OP_DATA)));
    ASSERT_TRUE(c->send_async(small_message(OP_DATA)));
    std::thread blocked([&] {
        // Blocks (no deadline) until close() below.
        EXPECT_EQ(c->send_sync(small_message(OP_DATA)).error(), IpcError::EndpointNotFound);
    });
    ASSERT_TRUE(eventually([&] { return c->stats()->waiting_senders == 1; }));
    EXPECT_EQ(c->send_async(small_message(OP_DATA)).error(), IpcError::ChannelFull);
    EXPECT_EQ(c->fast_send(small_message(OP_DATA).small_message()).error(), IpcError::ChannelFull);
    ASSERT_TRUE(c->close());
    blocked.join();
}

TEST(Contract, ServerTryReceiveDoesNotWaitForAThreadBlockedInReceive) {
    RuntimeDir dir;
    auto server = Server::publish("demo/rx", dir.server_options());
    ASSERT_TRUE(server);
    std::thread blocked([&] {
        // Blocks (no deadline) until close() below.
        EXPECT_EQ(server->receive_sync().error(), IpcError::EndpointNotFound);
    });
    ASSERT_TRUE(eventually([&] { return server->stats()->waiting_receivers == 1; }));
    EXPECT_EQ(server->try_receive().error(), IpcError::ChannelEmpty);
    ASSERT_TRUE(server->close());
    blocked.join();
}

TEST(Contract, CallsWorkWithSpinningDisabledOnBothSides) {
    RuntimeDir dir;
    Peer server("echo", dir.path(), "demo/nospin", {"64", "0"});
    ASSERT_TRUE(server.ready());
    ConnectOptions options = dir.connect_options();
    options.spin_ns = 0;  // always sleep on the futex
    auto c = Connection::connect("demo/nospin", options);
    ASSERT_TRUE(c);
    for (u64 i = 0; i < 200; ++i) {
        auto r = c->call(small_message(OP_CALL, i), after_ms(5000));
        ASSERT_TRUE(r) << error_name(r.error());
        EXPECT_EQ(r->small_message().data[0], i + 1);
    }
}

TEST(Contract, MessagesQueuedByAClientThatExitedAreStillDelivered) {
    RuntimeDir dir;
    auto server = Server::publish("demo/late", dir.server_options(16));
    ASSERT_TRUE(server);
    Peer client("client-send", dir.path(), "demo/late", {"10"});
    ASSERT_EQ(client.wait_exit(), 0);
    for (u64 i = 0; i < 10; ++i) {
        auto r = server->receive_sync(after_ms(5000));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->message.small_message().data[0], i);
    }
    EXPECT_EQ(server->try_receive().error(), IpcError::ChannelEmpty);
    EXPECT_TRUE(server->connections().empty());
}

TEST(Contract, AServerAsleepInReceiveIsWokenByAnyOfItsClients) {
    RuntimeDir dir;
    ServerOptions o = dir.server_options();
    o.spin_ns = 0;  // sleep on the doorbell at once
    auto server = Server::publish("demo/bell", o);
    ASSERT_TRUE(server);
    Peer a("client-send", dir.path(), "demo/bell", {"1"});
    Peer b("client-send", dir.path(), "demo/bell", {"1"});
    std::set<u64> senders;
    for (int i = 0; i < 2; ++i) {
        auto r = server->receive_sync(after_ms(5000));
        ASSERT_TRUE(r);
        senders.insert(r->message.sender().value);
    }
    EXPECT_EQ(senders, (std::set<u64>{static_cast<u64>(a.pid()), static_cast<u64>(b.pid())}));
}

TEST(Contract, DisconnectEndsTheClientsBlockedReceive) {
    RuntimeDir dir;
    auto server = Server::publish("demo/drop", dir.server_options());
    ASSERT_TRUE(server);
    Peer client("client-receive", dir.path(), "demo/drop");
    ASSERT_TRUE(client.ready());
    ASSERT_TRUE(eventually([&] { return server->connections().size() == 1; }));
    ASSERT_TRUE(server->disconnect(server->connections()[0]));
    EXPECT_EQ(client.wait_exit(5000), 0);
}

TEST(Contract, ALargeMessageMakesARoundTrip) {
    RuntimeDir dir;
    Peer server("echo", dir.path(), "demo/echo");
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/echo", dir.connect_options());
    ASSERT_TRUE(c);
    LargeMessage large{};
    large.header.opcode = OP_CALL;
    large.header.total_size = LARGE_MESSAGE_INLINE_BYTES;
    for (usize i = 0; i < LARGE_MESSAGE_INLINE_BYTES; ++i)
        large.inline_data[i] = static_cast<u8>(i * 3);
    auto r = c->call(Message(large), after_ms(5000));
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->is_large());
    EXPECT_EQ(
        std::memcmp(r->large_message().inline_data, large.inline_data, LARGE_MESSAGE_INLINE_BYTES),
        0);
}

TEST(Contract, TheServerServesBusyClientsInTurn) {
    RuntimeDir dir;
    auto server = Server::publish("demo/fair", dir.server_options(16));
    ASSERT_TRUE(server);
    Peer a("client-send", dir.path(), "demo/fair", {"40"});
    Peer b("client-send", dir.path(), "demo/fair", {"40"});
    ASSERT_TRUE(a.ready());
    ASSERT_TRUE(b.ready());
    ASSERT_TRUE(eventually([&] { return server->connections().size() == 2; }));
    const auto ids = server->connections();
    ASSERT_TRUE(eventually(
        [&] { return queued_from(*server, ids[0]) == 16 && queued_from(*server, ids[1]) == 16; }));
    // Both rings are full: the server alternates between them.
    ConnectionId previous = 0;
    for (int i = 0; i < 20; ++i) {
        auto r = server->receive_sync(after_ms(5000));
        ASSERT_TRUE(r);
        EXPECT_NE(r->connection, previous) << "message " << i;
        previous = r->connection;
    }
    for (int i = 0; i < 60; ++i)
        ASSERT_TRUE(server->receive_sync(after_ms(5000)));
    EXPECT_EQ(a.wait_exit(), 0);
    EXPECT_EQ(b.wait_exit(), 0);
}

TEST(Contract, ThePollableDescriptorSignalsMessagesToEpoll) {
    RuntimeDir dir;
    auto server = Server::publish("demo/poll", dir.server_options());
    ASSERT_TRUE(server);
    const int fd = server->pollable_fd();
    ASSERT_GE(fd, 0);
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
    Peer client("client-send", dir.path(), "demo/poll", {"5"});
    int got = 0;
    while (got < 5) {
        // Every message must make the descriptor readable (no missed notification).
        epoll_event out{};
        ASSERT_EQ(epoll_wait(ep, &out, 1, 5000), 1) << "after " << got << " messages";
        for (;;) {
            auto r = server->try_receive();
            if (!r) {
                EXPECT_EQ(r.error(), IpcError::ChannelEmpty);
                break;
            }
            EXPECT_EQ(r->message.small_message().data[0], static_cast<u64>(got));
            ++got;
        }
    }
    close(ep);
    EXPECT_EQ(got, 5);
}

}  // namespace
}  // namespace veridian::ipc::posix::test
