// SPDX-License-Identifier: MIT OR Apache-2.0
// Rate limits per connection (messages per second, bytes per second), set by the server for
// every client or by a client for itself: over the limit send_async and fast_send give
// RateLimitExceeded, send_sync waits (or gives Timeout when its deadline comes first).
#include <cstdio>

#include "test_support.hpp"

namespace veridian::ipc::posix::test {
namespace {

// A server in another process whose clients may send `limit`.
struct LimitedPeer {
    RuntimeDir dir;
    Peer peer;
    Result<Connection> conn = IpcError::NotInitialized;
    LimitedPeer(const std::string& mps, const std::string& burst, const std::string& bps = "0",
                const std::string& burst_bytes = "0")
        : peer("echo-limited", dir.path(), "demo/limited", {mps, burst, bps, burst_bytes}) {
        if (peer.ready()) conn = Connection::connect("demo/limited", dir.connect_options());
    }
};

TEST(RateLimit, SendAsyncOverTheServersMessageLimitIsRateLimitExceeded) {
    LimitedPeer p("1", "3");  // one message a second, bursts of three
    ASSERT_TRUE(p.conn);
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(p.conn->send_async(small_message(OP_DATA, i))) << i;
    EXPECT_EQ(p.conn->send_async(small_message(OP_DATA)).error(), IpcError::RateLimitExceeded);
    std::printf("[ detail ] %s\n", last_error_detail());
}

TEST(RateLimit, FastSendHonoursTheLimitToo) {
    LimitedPeer p("1", "2");
    ASSERT_TRUE(p.conn);
    const SmallMessage m = small_message(OP_DATA).small_message();
    ASSERT_TRUE(p.conn->fast_send(m));
    ASSERT_TRUE(p.conn->fast_send(m));
    EXPECT_EQ(p.conn->fast_send(m).error(), IpcError::RateLimitExceeded);
}

TEST(RateLimit, SendSyncWaitsForTheLimitInsteadOfFailing) {
    RuntimeDir dir;
    Peer server("echo", dir.path(), "demo/echo");
    ASSERT_TRUE(server.ready());
    ConnectOptions options = dir.connect_options();
    options.rate_limit.messages_per_second = 20;  // the client's own limit
    options.rate_limit.burst_messages = 1;
    auto c = Connection::connect("demo/echo", options);
    ASSERT_TRUE(c);
    const u64 start = now_ns();
    for (int i = 0; i < 4; ++i)
        ASSERT_TRUE(c->send_sync(small_message(OP_DATA, i), after_ms(5000))) << i;
    std::printf("[ measured ] 4 send_sync at 20 messages/s took %.1f ms\n",
                (now_ns() - start) / 1e6);
    EXPECT_EQ(c->send_async(small_message(OP_DATA)).error(), IpcError::RateLimitExceeded);
}

TEST(RateLimit, SendSyncWhoseDeadlineComesBeforeTheLimitAllowsIsTimeout) {
    LimitedPeer p("1", "1");
    ASSERT_TRUE(p.conn);
    ASSERT_TRUE(p.conn->send_sync(small_message(OP_DATA), after_ms(5000)));
    EXPECT_EQ(p.conn->send_sync(small_message(OP_DATA), after_ms(50)).error(), IpcError::Timeout);
}

TEST(RateLimit, CallWaitsForTheLimitAndStillGetsItsReply) {
    LimitedPeer p("50", "1");
    ASSERT_TRUE(p.conn);
    for (u64 i = 0; i < 3; ++i) {
        auto r = p.conn->call(small_message(OP_CALL, i), after_ms(5000));
        ASSERT_TRUE(r) << i;
        EXPECT_EQ(r->small_message().data[0], i + 1);
    }
}

TEST(RateLimit, TheByteLimitCountsARegionsWholeSize) {
    LimitedPeer p("0", "0", std::to_string(1 << 20), std::to_string(1 << 20));  // 1 MiB/s
    ASSERT_TRUE(p.conn);
    auto big = Region::create(1 << 20);
    auto small = Region::create(4096);
    ASSERT_TRUE(big && small);
    LargeMessage lm{};
    lm.header.opcode = OP_DATA;
    ASSERT_TRUE(p.conn->send_async(Message(lm), *big, Transfer::ShareReadOnly));
    EXPECT_EQ(p.conn->send_async(Message(lm), *small, Transfer::ShareReadOnly).error(),
              IpcError::RateLimitExceeded);
    // A refused send passed nothing: the region is still the sender's.
    EXPECT_TRUE(small->valid());
}

TEST(RateLimit, NoLimitByDefault) {
    LimitedPeer p("0", "0");
    ASSERT_TRUE(p.conn);
    for (int i = 0; i < 32; ++i)
        ASSERT_TRUE(p.conn->send_async(small_message(OP_DATA, i))) << i;
}

}  // namespace
}  // namespace veridian::ipc::posix::test

namespace veridian::ipc::posix::test {
namespace {

TEST(RateLimit, AClientThatBypassesTheLibraryIsThrottledByTheServer) {
    RuntimeDir dir;
    ServerOptions options = dir.server_options(64);
    options.client_rate_limit.messages_per_second = 1;
    options.client_rate_limit.burst_messages = 4;  // the server allows twice that at once
    auto server = Server::publish("demo/throttle", options);
    ASSERT_TRUE(server);
    Peer flood("client-flood", dir.path(), "demo/throttle");
    ASSERT_TRUE(flood.ready());  // its ring is full: 64 messages
    int taken = 0;
    while (server->try_receive())
        ++taken;
    std::printf("[ measured ] the server took %d of 64 flooded messages at once\n", taken);
    EXPECT_GE(taken, 8);
    EXPECT_LE(taken, 9);  // 8, or 9 if a second passed meanwhile
    // The rest wait in the client's ring: the server reads it no faster than the limit.
    const EndpointInfo info = server->info();
    ASSERT_EQ(info.per_connection.size(), 1u);
    EXPECT_EQ(info.per_connection[0].queued, static_cast<u32>(64 - taken));
}

}  // namespace
}  // namespace veridian::ipc::posix::test
