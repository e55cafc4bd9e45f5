// SPDX-License-Identifier: MIT OR Apache-2.0
// Payload messages of every size class, between two real processes (vipc_test_peer) and, for
// the receive-side details, within one: empty, 1 B, 48 B, 64 B, 65 B, the endpoint's maximum
// and one byte over it.
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace veridian::ipc::posix::test {
namespace {

std::vector<std::byte> pattern(usize n, u8 seed) {
    std::vector<std::byte> v(n);
    for (usize i = 0; i < n; ++i)
        v[i] = static_cast<std::byte>(static_cast<u8>(i * 131 + seed));
    return v;
}

std::vector<std::byte> xored(std::vector<std::byte> v) {
    for (std::byte& b : v)
        b ^= std::byte{0x5A};
    return v;
}

std::vector<usize> size_classes(u32 max_inline) {
    return {0, 1, 48, 64, 65, max_inline};
}

TEST(Payload, CallsOfEverySizeClassRoundTripAcrossProcesses) {
    for (u32 max_inline : {DEFAULT_MAX_INLINE_PAYLOAD, MAX_INLINE_PAYLOAD_LIMIT, 100u}) {
        RuntimeDir dir;
        Peer server("payload-echo", dir.path(), "demo/payload", {std::to_string(max_inline)});
        ASSERT_TRUE(server.ready());
        auto c = Connection::connect("demo/payload", dir.connect_options());
        ASSERT_TRUE(c) << last_error_detail();
        EXPECT_EQ(c->max_inline_payload(), max_inline);
        std::vector<std::byte> reply;
        for (int round = 0; round < 3; ++round) {
            for (usize size : size_classes(max_inline)) {
                const auto request = pattern(size, static_cast<u8>(round));
                auto info = c->call(OP_CALL, 0x20000, request, reply, after_ms(5000));
                ASSERT_TRUE(info) << size << ": " << last_error_detail();
                EXPECT_EQ(info->opcode, OP_CALL);
                EXPECT_EQ(info->flags & 0x20000u, 0x20000u);
                ASSERT_EQ(info->length, size);
                EXPECT_EQ(reply, xored(request)) << size;
            }
        }
        ASSERT_TRUE(c->send_sync(Message::small(0, OP_EXIT), after_ms(5000)));
        EXPECT_EQ(server.wait_exit(), 0);
    }
}

TEST(Payload, OneByteOverTheMaximumIsMessageTooLargeAndNamesTheLimit) {
    RuntimeDir dir;
    Peer server("payload-echo", dir.path(), "demo/payload", {"4096"});
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/payload", dir.connect_options());
    ASSERT_TRUE(c);
    const auto big = pattern(4097, 1);
    std::vector<std::byte> reply;
    EXPECT_EQ(c->send_async(OP_DATA, 0, big).error(), IpcError::MessageTooLarge);
    EXPECT_NE(std::string(last_error_detail()).find("4096-byte inline limit"), std::string::npos)
        << last_error_detail();
    EXPECT_EQ(c->send_sync(OP_DATA, 0, big, after_ms(100)).error(), IpcError::MessageTooLarge);
    EXPECT_EQ(c->call(OP_CALL, 0, big, reply, after_ms(100)).error(), IpcError::MessageTooLarge);
    // The connection is fine: the maximum itself goes through.
    auto info =
        c->call(OP_CALL, 0, std::span<const std::byte>(big.data(), 4096), reply, after_ms(5000));
    ASSERT_TRUE(info) << last_error_detail();
    EXPECT_EQ(info->length, 4096u);
}

TEST(Payload, AStreamOfMixedSizesArrivesCompleteAndInOrder) {
    RuntimeDir dir;
    auto server = Server::publish("demo/stream", dir.server_options(16));
    ASSERT_TRUE(server);
    Peer sender("payload-sender", dir.path(), "demo/stream", {"3000"});
    ASSERT_TRUE(sender.ready());
    for (u32 i = 0; i < 3000; ++i) {
        auto in = server->receive_view(after_ms(5000));
        ASSERT_TRUE(in) << i << ": " << last_error_detail();
        ASSERT_EQ(in->kind, Incoming::Kind::Payload);
        ASSERT_EQ(in->info.flags, i << 16);
        const usize size = static_cast<usize>(i * 997) % (DEFAULT_MAX_INLINE_PAYLOAD + 1);
        ASSERT_EQ(in->payload.size(), size);
        for (usize k = 0; k < size; ++k)
            ASSERT_EQ(in->payload[k], static_cast<std::byte>((i + k) & 0xFF)) << i << " " << k;
    }
    EXPECT_EQ(server->try_receive_view().error(), IpcError::ChannelEmpty);
}

// One process: the server and the client side by side.
struct Pair {
    explicit Pair(const RuntimeDir& dir, u32 max_inline = DEFAULT_MAX_INLINE_PAYLOAD) {
        ServerOptions o = dir.server_options();
        o.max_inline_payload = max_inline;
        server = std::make_unique<Server>(*Server::publish("demo/pair", o));
        client =
            std::make_unique<Connection>(*Connection::connect("demo/pair", dir.connect_options()));
        id = server->connections().at(0);
    }
    std::unique_ptr<Server> server;
    std::unique_ptr<Connection> client;
    ConnectionId id = 0;
};

TEST(Payload, ReceiveIntoAShortBufferSaysTheSizeAndLeavesTheMessageQueued) {
    RuntimeDir dir;
    Pair p(dir);
    const auto sent = pattern(1000, 7);
    ASSERT_TRUE(p.client->send_sync(OP_DATA, 3, sent, after_ms(1000)));
    std::vector<std::byte> small(999);
    usize needed = 0;
    EXPECT_EQ(p.server->receive_into(small, &needed, after_ms(1000)).error(),
              IpcError::MessageTooLarge);
    EXPECT_EQ(needed, 1000u);
    std::vector<std::byte> right(1000);
    auto info = p.server->receive_into(right, &needed, after_ms(1000));
    ASSERT_TRUE(info);
    EXPECT_EQ(info->length, 1000u);
    EXPECT_EQ(info->flags, 3u);
    EXPECT_EQ(right, sent);
    // The same on the client side, for a message the server sends.
    ASSERT_TRUE(p.server->send_sync(p.id, OP_DATA, 4, sent, after_ms(1000)));
    EXPECT_EQ(p.client->receive_into(small, &needed, after_ms(1000)).error(),
              IpcError::MessageTooLarge);
    EXPECT_EQ(needed, 1000u);
    info = p.client->receive_into(right, &needed, after_ms(1000));
    ASSERT_TRUE(info);
    EXPECT_EQ(info->flags, 4u);
    EXPECT_EQ(right, sent);
}

TEST(Payload, TheMessageApiTakesAShortPayloadAsALargeMessageAndLeavesALongOneQueued) {
    RuntimeDir dir;
    Pair p(dir);
    const auto p64 = pattern(64, 1);
    const auto p65 = pattern(65, 2);
    ASSERT_TRUE(p.client->send_sync(OP_DATA, 0, p64, after_ms(1000)));
    ASSERT_TRUE(p.client->send_sync(OP_DATA, 0, p65, after_ms(1000)));
    auto r = p.server->receive_sync(after_ms(1000));
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->message.is_large());
    EXPECT_EQ(r->message.large_message().header.total_size, 64u);
    EXPECT_EQ(std::memcmp(r->message.large_message().inline_data, p64.data(), 64), 0);
    EXPECT_EQ(p.server->receive_sync(after_ms(1000)).error(), IpcError::MessageTooLarge);
    auto v = p.server->receive_view(after_ms(1000));
    ASSERT_TRUE(v);
    EXPECT_EQ(std::vector<std::byte>(v->payload.begin(), v->payload.end()), p65);
    // Client side: the same.
    ASSERT_TRUE(p.server->send_sync(p.id, OP_DATA, 0, p65, after_ms(1000)));
    EXPECT_EQ(p.client->receive_sync(after_ms(1000)).error(), IpcError::MessageTooLarge);
    auto cv = p.client->receive_view(after_ms(1000));
    ASSERT_TRUE(cv);
    EXPECT_EQ(cv->payload.size(), 65u);
}

TEST(Payload, AViewStaysValidUntilTheNextReceive) {
    RuntimeDir dir;
    Pair p(dir);
    const auto a = pattern(3000, 1);
    const auto b = pattern(3000, 2);
    ASSERT_TRUE(p.client->send_sync(OP_DATA, 1, a, after_ms(1000)));
    ASSERT_TRUE(p.client->send_sync(OP_DATA, 2, b, after_ms(1000)));
    auto first = p.server->receive_view(after_ms(1000));
    ASSERT_TRUE(first);
    // The client keeps sending (the ring has room for more): the view is not overwritten.
    for (int i = 0; i < 3; ++i)
        (void)p.client->send_async(OP_DATA, 9, pattern(1000, 9));
    EXPECT_EQ(std::vector<std::byte>(first->payload.begin(), first->payload.end()), a);
    auto second = p.server->receive_view(after_ms(1000));
    ASSERT_TRUE(second);
    EXPECT_EQ(second->info.flags, 2u);
    EXPECT_EQ(std::vector<std::byte>(second->payload.begin(), second->payload.end()), b);
}

TEST(Payload, AServerViewReleasedEndsAtOnceAndTheNextMessageGoesToAnyThread) {
    RuntimeDir dir;
    Pair p(dir);
    ASSERT_TRUE(p.client->send_sync(OP_DATA, 1, pattern(3000, 1), after_ms(1000)));
    ASSERT_TRUE(p.client->send_sync(OP_DATA, 2, pattern(3000, 2), after_ms(1000)));
    auto first = p.server->receive_view(after_ms(1000));
    ASSERT_TRUE(first);
    // While this thread holds the view, the connection's next message waits for it (order
    // per connection): another thread gets nothing.
    std::thread([&] {
        EXPECT_EQ(p.server->try_receive_view().error(), IpcError::ChannelEmpty);
    }).join();
    ASSERT_TRUE(p.server->release(*first));
    EXPECT_EQ(p.server->release(*first).error(), IpcError::InvalidCapability);  // ended already
    std::thread([&] {
        auto second = p.server->receive_view(after_ms(1000));
        ASSERT_TRUE(second) << error_name(second.error());
        EXPECT_EQ(second->info.flags, 2u);
        EXPECT_EQ(std::vector<std::byte>(second->payload.begin(), second->payload.end()),
                  pattern(3000, 2));
    }).join();
}

TEST(Payload, AReplyWithAPayloadReachesAMessageCallerAsALargeMessage) {
    RuntimeDir dir;
    Pair p(dir);
    std::thread server([&] {
        auto r = p.server->receive_sync(after_ms(5000));
        ASSERT_TRUE(r);
        const auto bytes = pattern(40, 3);
        ASSERT_TRUE(p.server->reply(*r, 77, 0, bytes, after_ms(1000)));
    });
    auto m = p.client->call(Message::small(0, OP_CALL), after_ms(5000));
    server.join();
    ASSERT_TRUE(m) << last_error_detail();
    ASSERT_TRUE(m->is_large());
    EXPECT_EQ(m->opcode(), 77u);
    EXPECT_EQ(m->large_message().header.total_size, 40u);
}

}  // namespace
}  // namespace veridian::ipc::posix::test
