// The IPC contract between two processes: send_sync with backpressure, receive_sync,
// send_async, try_receive, fast_send, call/reply from several threads, close, fairness and the
// pollable descriptor. The other side is vipc_test_peer, a separate process.
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

TEST(Contract, SendSyncBlocksOnAFullRingUntilTheServerReceives) {
    RuntimeDir dir;
    auto server = Server::publish("demo/bp", dir.server_options(4));
    ASSERT_TRUE(server);
    Peer client("client-send", dir.path(), "demo/bp", {"20"});
    ASSERT_TRUE(client.ready());
    ASSERT_TRUE(eventually([&] { return server->connections().size() == 1; }));
    const ConnectionId id = server->connections()[0];
    // The client filled the 4 slots and is blocked in its fifth send_sync.
    ASSERT_TRUE(eventually([&] { return queued_from(*server, id) == 4; }));
    for (u64 i = 0; i < 20; ++i) {
        auto r = server->receive_sync(after_ms(5000));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->message.small_message().data[0], i);
    }
    EXPECT_EQ(client.wait_exit(), 0);
}

TEST(Contract, SendSyncTimesOutWhileTheRingStaysFull) {
    RuntimeDir dir;
    Peer server("idle", dir.path(), "demo/idle", {"2"});
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/idle", dir.connect_options());
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send_sync(small_message(OP_DATA), after_ms(1000)));
    ASSERT_TRUE(c->send_sync(small_message(OP_DATA), after_ms(1000)));
    EXPECT_EQ(c->send_sync(small_message(OP_DATA), after_ms(30)).error(), IpcError::Timeout);
}

TEST(Contract, SendAsyncOnAFullRingIsChannelFull) {
    RuntimeDir dir;
    Peer server("idle", dir.path(), "demo/idle", {"2"});
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/idle", dir.connect_options());
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send_async(small_message(OP_DATA)));
    ASSERT_TRUE(c->send_async(small_message(OP_DATA)));
    EXPECT_EQ(c->send_async(small_message(OP_DATA)).error(), IpcError::ChannelFull);
    EXPECT_EQ(c->fast_send(small_message(OP_DATA).small_message()).error(), IpcError::ChannelFull);
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
        EXPECT_EQ(c->send_sync(small_message(OP_DATA)).error(), IpcError::InvalidCapability);
    });
    usleep(50'000);
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
    usleep(50'000);
    EXPECT_EQ(server->try_receive().error(), IpcError::ChannelEmpty);
    ASSERT_TRUE(server->close());
    blocked.join();
}

TEST(Contract, TryReceiveOnAnEmptyRingIsChannelEmpty) {
    RuntimeDir dir;
    Peer server("idle", dir.path(), "demo/idle");
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/idle", dir.connect_options());
    ASSERT_TRUE(c);
    EXPECT_EQ(c->try_receive().error(), IpcError::ChannelEmpty);
}

TEST(Contract, ServerTryReceiveWithNothingQueuedIsChannelEmpty) {
    RuntimeDir dir;
    auto server = Server::publish("demo/empty", dir.server_options());
    ASSERT_TRUE(server);
    Peer client("client-idle", dir.path(), "demo/empty");
    ASSERT_TRUE(client.ready());
    EXPECT_EQ(server->try_receive().error(), IpcError::ChannelEmpty);
}

TEST(Contract, ReceiveSyncGetsWhatTheServerSends) {
    RuntimeDir dir;
    Peer server("echo", dir.path(), "demo/echo");
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/echo", dir.connect_options());
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send_sync(small_message(OP_SEND_BACK, 31), after_ms(5000)));
    auto m = c->receive_sync(after_ms(5000));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->small_message().data[0], 31u);
    EXPECT_EQ(m->sender().value, static_cast<u64>(server.pid()));
    EXPECT_EQ(m->flags() & MessageFlags::IS_REPLY, 0u);
}

TEST(Contract, ReceiveSyncTimesOutWhenNothingComes) {
    RuntimeDir dir;
    Peer server("idle", dir.path(), "demo/idle");
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/idle", dir.connect_options());
    ASSERT_TRUE(c);
    EXPECT_EQ(c->receive_sync(after_ms(30)).error(), IpcError::Timeout);
}

TEST(Contract, TryReceiveTakesAMessageTheServerSent) {
    RuntimeDir dir;
    Peer server("echo", dir.path(), "demo/echo");
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/echo", dir.connect_options());
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send_sync(small_message(OP_SEND_BACK, 5), after_ms(5000)));
    Result<Message> m = IpcError::ChannelEmpty;
    ASSERT_TRUE(eventually([&] { return (m = c->try_receive()).has_value(); }));
    EXPECT_EQ(m->small_message().data[0], 5u);
}

TEST(Contract, CallGetsTheMatchingReply) {
    RuntimeDir dir;
    Peer server("echo", dir.path(), "demo/echo");
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/echo", dir.connect_options());
    ASSERT_TRUE(c);
    auto r = c->call(small_message(OP_CALL, 41), after_ms(5000));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->small_message().data[0], 42u);
    EXPECT_NE(r->flags() & MessageFlags::IS_REPLY, 0u);
    EXPECT_NE(r->transaction_id(), 0u);
}

TEST(Contract, CallsFromSeveralThreadsThroughOneConnectionGetTheirOwnReplies) {
    RuntimeDir dir;
    Peer server("echo", dir.path(), "demo/echo", {"8"});
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/echo", dir.connect_options());
    ASSERT_TRUE(c);
    constexpr int kThreads = 4;
    constexpr int kCalls = 300;
    std::atomic<int> mismatches{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kCalls; ++i) {
                const u64 tag = static_cast<u64>(t) * 1'000'000 + static_cast<u64>(i);
                auto r = c->call(small_message(OP_CALL, tag), after_ms(10000));
                if (!r) {
                    failures.fetch_add(1);
                } else if (r->small_message().data[0] != tag + 1) {
                    mismatches.fetch_add(1);
                }
            }
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(mismatches.load(), 0);
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

TEST(Contract, FastSendDeliversASmallMessage) {
    RuntimeDir dir;
    auto server = Server::publish("demo/fast", dir.server_options());
    ASSERT_TRUE(server);
    auto c = Connection::connect("demo/fast", dir.connect_options());
    ASSERT_TRUE(c);
    SmallMessage m{7, 99, MessageFlags::URGENT, {1, 2, 3, 4}};
    ASSERT_TRUE(c->fast_send(m));
    auto r = server->receive_sync(after_ms(5000));
    ASSERT_TRUE(r);
    EXPECT_EQ(std::memcmp(&r->message.small_message(), &m, sizeof m), 0);
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

TEST(Contract, ServerCloseWakesAClientBlockedInReceiveWithEndpointNotFound) {
    RuntimeDir dir;
    auto server = Server::publish("demo/close", dir.server_options());
    ASSERT_TRUE(server);
    Peer client("client-receive", dir.path(), "demo/close");
    ASSERT_TRUE(client.ready());
    usleep(50'000);  // let it block
    ASSERT_TRUE(server->close());
    EXPECT_EQ(client.wait_exit(5000), 0);
}

TEST(Contract, ClientCloseWakesTheServerBlockedSendingToIt) {
    RuntimeDir dir;
    auto server = Server::publish("demo/close", dir.server_options(2));
    ASSERT_TRUE(server);
    Peer client("client-close-after", dir.path(), "demo/close", {"200"});
    ASSERT_TRUE(client.ready());
    ASSERT_TRUE(eventually([&] { return server->connections().size() == 1; }));
    const ConnectionId id = server->connections()[0];
    ASSERT_TRUE(server->send_sync(id, small_message(OP_DATA), after_ms(1000)));
    ASSERT_TRUE(server->send_sync(id, small_message(OP_DATA), after_ms(1000)));
    EXPECT_EQ(server->send_sync(id, small_message(OP_DATA), after_ms(10000)).error(),
              IpcError::EndpointNotFound);
}

TEST(Contract, CloseWakesALocalThreadBlockedInReceive) {
    RuntimeDir dir;
    auto server = Server::publish("demo/local", dir.server_options());
    ASSERT_TRUE(server);
    std::thread closer([&] {
        usleep(50'000);
        (void)server->close();
    });
    EXPECT_EQ(server->receive_sync(after_ms(10000)).error(), IpcError::EndpointNotFound);
    closer.join();
}

TEST(Contract, OperationsOnAClosedConnectionAreInvalidCapability) {
    RuntimeDir dir;
    Peer server("echo", dir.path(), "demo/echo");
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/echo", dir.connect_options());
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->close());
    ASSERT_TRUE(c->close());  // idempotent
    EXPECT_EQ(c->send_async(small_message(OP_DATA)).error(), IpcError::InvalidCapability);
    EXPECT_EQ(c->receive_sync(after_ms(10)).error(), IpcError::InvalidCapability);
    EXPECT_EQ(c->call(small_message(OP_CALL), after_ms(10)).error(), IpcError::InvalidCapability);
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
