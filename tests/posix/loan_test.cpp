// SPDX-License-Identifier: MIT OR Apache-2.0
// Zero-copy loans: the pool's bookkeeping and its checks in one process, then loan, send,
// receive, release, exhaustion (with and without a deadline) and peer death across two.
#include <sys/mman.h>

#include <cstring>
#include <thread>
#include <vector>

#include "posix/loan_pool.hpp"
#include "test_support.hpp"

namespace veridian::ipc::posix {
namespace {

using namespace test;

// ---- one process: the pool and the holdings over one ctl page -------------------------------

struct PoolPair {
    explicit PoolPair(u64 bytes) : memory(bytes), ctl_page(4096) {
        ctl = new (ctl_page.data()) detail::RingCtl{};
        data = new (data_page) detail::RingDataHeader{};
        pool.attach(words(), memory.data(), bytes, detail::LOAN_SLOTS, ctl);
        holdings.attach(words(), memory.data(), bytes, detail::LOAN_SLOTS, ctl, data);
    }
    static platform::SharedWords& words() { return platform::ProcessSharedWords::instance(); }
    // Sends a lent chunk: what the ring would carry.
    detail::LoanDescriptor send(const Loan& l, usize length) {
        detail::LoanDescriptor d = *pool.describe(l.id, length);
        pool.mark_sent(l.id);
        return d;
    }
    std::vector<u8> memory;
    std::vector<u8> ctl_page;
    alignas(64) u8 data_page[128] = {};
    detail::RingCtl* ctl;
    detail::RingDataHeader* data;
    detail::LoanPool pool;
    detail::LoanHoldings holdings;
};

TEST(LoanPool, ChunksComeBackWhenReleasedAndThePoolCoalesces) {
    PoolPair p(1 << 16);
    std::vector<Loan> loans;
    for (int i = 0; i < 4; ++i)
        loans.push_back(*p.pool.take(1 << 14));
    EXPECT_EQ(p.pool.take(1).error(), IpcError::ResourceBusy);
    for (const Loan& l : loans) {
        const auto d = p.send(l, l.bytes.size());
        ASSERT_TRUE(p.holdings.accept(d));
        ASSERT_TRUE(p.holdings.release(detail::loan_id(d.slot, d.generation)));
    }
    // All four back, coalesced: the whole pool in one chunk.
    auto whole = p.pool.take(1 << 16);
    ASSERT_TRUE(whole);
    EXPECT_EQ(p.pool.chunks_out(), 1u);
}

TEST(LoanPool, ALoanLargerThanThePoolIsMessageTooLarge) {
    PoolPair p(1 << 16);
    EXPECT_EQ(p.pool.take((1 << 16) + 1).error(), IpcError::MessageTooLarge);
}

TEST(LoanPool, CancelGivesAChunkBackAndASecondCancelIsInvalidCapability) {
    PoolPair p(1 << 12);
    Loan l = *p.pool.take(1 << 12);
    ASSERT_TRUE(p.pool.cancel(l.id));
    EXPECT_EQ(p.pool.cancel(l.id).error(), IpcError::InvalidCapability);
    EXPECT_TRUE(p.pool.take(1 << 12));
}

TEST(LoanHoldings, ADescriptorOutsideThePoolIsInvalidMessage) {
    PoolPair p(1 << 16);
    detail::LoanDescriptor d{};
    d.offset = 1 << 16;
    d.length = 1;
    EXPECT_EQ(p.holdings.accept(d).error(), IpcError::InvalidMessage);
    d.offset = (1 << 16) - 64;
    d.length = 65;
    EXPECT_EQ(p.holdings.accept(d).error(), IpcError::InvalidMessage);
    d.offset = 3;  // not a chunk boundary
    d.length = 1;
    EXPECT_EQ(p.holdings.accept(d).error(), IpcError::InvalidMessage);
    d.offset = 0;
    d.slot = detail::LOAN_SLOTS;
    EXPECT_EQ(p.holdings.accept(d).error(), IpcError::InvalidMessage);
}

TEST(LoanHoldings, AChunkSentAgainWhileHeldIsInvalidMessage) {
    PoolPair p(1 << 16);
    const Loan l = *p.pool.take(64);
    const auto d = p.send(l, 64);
    ASSERT_TRUE(p.holdings.accept(d));
    EXPECT_EQ(p.holdings.accept(d).error(), IpcError::InvalidMessage);
}

TEST(LoanHoldings, ReleasingTwiceOrWhatWasNeverReceivedIsInvalidCapability) {
    PoolPair p(1 << 16);
    const Loan l = *p.pool.take(64);
    const auto d = p.send(l, 64);
    ASSERT_TRUE(p.holdings.accept(d));
    const LoanId id = detail::loan_id(d.slot, d.generation);
    ASSERT_TRUE(p.holdings.release(id));
    EXPECT_EQ(p.holdings.release(id).error(), IpcError::InvalidCapability);
    EXPECT_EQ(p.holdings.release(detail::loan_id(7, 1)).error(), IpcError::InvalidCapability);
}

TEST(LoanPool, AReturnOfAStaleGenerationOrOfAChunkNeverSentIsInvalidMessage) {
    PoolPair p(1 << 16);
    const Loan l = *p.pool.take(64);
    const auto d = p.send(l, 64);
    // A forged return: the right slot, an older generation.
    auto* returns = reinterpret_cast<u64*>(p.ctl_page.data() + detail::RING_HEADER_BYTES);
    returns[0] = detail::loan_id(d.slot, d.generation - 1);
    p.ctl->released.store(1);
    EXPECT_EQ(p.pool.take(64).error(), IpcError::InvalidMessage);
}

TEST(LoanPool, MoreReturnsThanChunksIsInvalidMessage) {
    PoolPair p(1 << 16);
    p.ctl->released.store(detail::LOAN_SLOTS + 1);
    EXPECT_EQ(p.pool.take(64).error(), IpcError::InvalidMessage);
}

// ---- two processes ----------------------------------------------------------------------------

template <typename Pred>
bool eventually(Pred pred) {
    const u64 give_up = now_ns() + 5'000'000'000u;
    while (now_ns() < give_up) {
        if (pred()) return true;
        usleep(1000);
    }
    return pred();
}

std::vector<std::byte> pattern(usize n, u8 seed) {
    std::vector<std::byte> v(n);
    for (usize i = 0; i < n; ++i)
        v[i] = static_cast<std::byte>(static_cast<u8>(i * 29 + seed));
    return v;
}

ConnectOptions with_pool(const RuntimeDir& dir, u64 bytes) {
    ConnectOptions o = dir.connect_options();
    o.pool_bytes = bytes;
    return o;
}

TEST(Loans, LoanSendReceiveReleaseRoundTripsAcrossProcesses) {
    RuntimeDir dir;
    Peer server("loan-echo", dir.path(), "demo/loans");
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/loans", with_pool(dir, 4u << 20));
    ASSERT_TRUE(c) << last_error_detail();
    for (usize size : {usize{1}, usize{64}, usize{4096}, usize{1} << 20, usize{3} << 20}) {
        for (int round = 0; round < 3; ++round) {
            auto l = c->loan(size, after_ms(5000));
            ASSERT_TRUE(l) << size << ": " << last_error_detail();
            const auto bytes = pattern(size, static_cast<u8>(round));
            std::memcpy(l->bytes.data(), bytes.data(), size);
            ASSERT_TRUE(c->send_loan(*l, size, OP_DATA, 1u << 16, after_ms(5000)));
            EXPECT_EQ(l->id, 0u);  // sent: the Loan is empty
            auto in = c->receive_view(after_ms(5000));
            ASSERT_TRUE(in) << last_error_detail();
            ASSERT_EQ(in->kind, Incoming::Kind::Loan);
            ASSERT_EQ(in->payload.size(), size);
            EXPECT_EQ(in->info.flags, 1u << 16);
            bool same = true;
            for (usize i = 0; i < size && same; ++i)
                same = in->payload[i] == (bytes[i] ^ std::byte{0x5A});
            EXPECT_TRUE(same) << size;
            // Read-only here: the chunk is in the server's pool.
            EXPECT_GT(c->pool_use()->receive_pool_held, 0u);
            ASSERT_TRUE(c->release(*in));
            EXPECT_EQ(c->release(*in).error(), IpcError::InvalidCapability);
        }
    }
    // Every chunk came back to us (the server released each one after answering).
    ASSERT_TRUE(eventually([&] { return c->loan(4u << 20).has_value(); }));
    ASSERT_TRUE(c->send_sync(Message::small(0, OP_EXIT), after_ms(5000)));
    EXPECT_EQ(server.wait_exit(), 0);
}

TEST(Loans, AFullPoolIsResourceBusyAtOnceOrAWaitUntilTheDeadline) {
    RuntimeDir dir;
    Peer server("loan-holder", dir.path(), "demo/hold");
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/hold", with_pool(dir, 64 * 1024));
    ASSERT_TRUE(c);
    auto l = c->loan(64 * 1024);
    ASSERT_TRUE(l);
    ASSERT_TRUE(c->send_loan(*l, 10, OP_DATA, 0, after_ms(5000)));
    std::vector<std::byte> reply;
    ASSERT_TRUE(eventually([&] {
        auto n = c->call(OP_COUNT, 0, {}, reply, after_ms(5000));
        return n && reply.size() == 8 && reply[0] == std::byte{1};
    }));
    // The server holds the whole pool.
    EXPECT_EQ(c->loan(1).error(), IpcError::ResourceBusy);
    EXPECT_NE(std::string(last_error_detail()).find("pool is full"), std::string::npos);
    const u64 t0 = now_ns();
    EXPECT_EQ(c->loan(1, after_ms(50)).error(), IpcError::Timeout);
    EXPECT_GE(now_ns() - t0, 50'000'000u);
    EXPECT_EQ(c->pool_use()->send_pool_used, 64u * 1024);
    // The server releases everything: the chunk comes back to a waiting loan.
    ASSERT_TRUE(c->send_sync(Message::small(0, OP_SEND_BACK), after_ms(5000)));
    auto again = c->loan(64 * 1024, after_ms(5000));
    EXPECT_TRUE(again) << last_error_detail();
    ASSERT_TRUE(c->send_sync(Message::small(0, OP_EXIT), after_ms(5000)));
    EXPECT_EQ(server.wait_exit(), 0);
}

TEST(Loans, AWaitingLoanWakesWhenTheReceiverReleases) {
    RuntimeDir dir;
    ServerOptions so = dir.server_options();
    auto server = Server::publish("demo/wake", so);
    ASSERT_TRUE(server);
    auto c = Connection::connect("demo/wake", with_pool(dir, 4096));
    ASSERT_TRUE(c);
    auto l = c->loan(4096);
    ASSERT_TRUE(l);
    ASSERT_TRUE(c->send_loan(*l, 4096, OP_DATA, 0));
    auto in = server->receive_view(after_ms(1000));
    ASSERT_TRUE(in);
    ASSERT_EQ(in->kind, Incoming::Kind::Loan);
    std::thread waiter([&] { EXPECT_TRUE(c->loan(4096, after_ms(10000))); });
    // Blocked means blocked: wait until the loan is parked.
    ASSERT_TRUE(eventually([&] { return c->stats()->waiting_senders == 1; }));
    ASSERT_TRUE(server->release(*in));
    waiter.join();
}

TEST(Loans, PeerDeathWithChunksOutOnBothSides) {
    RuntimeDir dir;
    auto c_opts = with_pool(dir, 1u << 20);
    // The server holds our loans; we hold the server's (it answers loans with loans only in
    // loan-echo, so hold ours there and get theirs from a second, echoing server).
    Peer holder("loan-holder", dir.path(), "demo/holder");
    Peer echo("loan-echo", dir.path(), "demo/echo");
    ASSERT_TRUE(holder.ready());
    ASSERT_TRUE(echo.ready());
    auto to_holder = Connection::connect("demo/holder", c_opts);
    auto to_echo = Connection::connect("demo/echo", c_opts);
    ASSERT_TRUE(to_holder && to_echo);
    for (int i = 0; i < 3; ++i) {
        auto l = to_holder->loan(1000);
        ASSERT_TRUE(l);
        ASSERT_TRUE(to_holder->send_loan(*l, 1000, OP_DATA, 0, after_ms(5000)));
    }
    auto mine = to_echo->loan(5000);
    ASSERT_TRUE(mine);
    const auto bytes = pattern(5000, 9);
    std::memcpy(mine->bytes.data(), bytes.data(), 5000);
    ASSERT_TRUE(to_echo->send_loan(*mine, 5000, OP_DATA, 0, after_ms(5000)));
    auto theirs = to_echo->receive_view(after_ms(5000));
    ASSERT_TRUE(theirs);
    ASSERT_EQ(theirs->kind, Incoming::Kind::Loan);
    // Both servers die with chunks out: ours held by one, theirs held by us.
    holder.kill_now();
    echo.kill_now();
    ASSERT_TRUE(
        eventually([&] { return !to_holder->stats()->active && !to_echo->stats()->active; }));
    // What we hold stays readable until we release it; releasing after the death is fine.
    bool same = true;
    for (usize i = 0; i < 5000 && same; ++i)
        same = theirs->payload[i] == (bytes[i] ^ std::byte{0x5A});
    EXPECT_TRUE(same);
    EXPECT_TRUE(to_echo->release(*theirs));
    // Ours never come back from the dead holder: the connection (and its pool) is gone.
    EXPECT_EQ(to_holder->pool_use()->send_pool_used, 3u * 1024);
    EXPECT_EQ(to_holder->loan(1).error(), IpcError::EndpointNotFound);
}

TEST(Loans, AServerKeepsAGoneClientsLoansReadableUntilItReleasesThem) {
    RuntimeDir dir;
    auto server = Server::publish("demo/gone", dir.server_options());
    ASSERT_TRUE(server);
    Incoming in;
    ConnectionId id = 0;
    {
        auto c = Connection::connect("demo/gone", with_pool(dir, 1u << 16));
        ASSERT_TRUE(c);
        id = c->id();
        auto l = c->loan(100);
        ASSERT_TRUE(l.has_value()) << last_error_detail();
        std::memset(l->bytes.data(), 0x42, 100);
        ASSERT_TRUE(c->send_loan(*l, 100, OP_DATA, 0));
        auto got = server->receive_view(after_ms(1000));
        ASSERT_TRUE(got);
        in = *got;
    }  // the client closes
    // The server notices, and forgets the connection...
    ASSERT_TRUE(eventually([&] {
        (void)server->try_receive_view();
        return server->connections().empty() && !server->pool_use(id).has_value();
    }));
    // ...but the loan it holds is still mapped and readable.
    for (std::byte b : in.payload)
        ASSERT_EQ(b, std::byte{0x42});
    EXPECT_TRUE(server->release(in));
    EXPECT_EQ(server->release(in).error(), IpcError::InvalidCapability);
}

TEST(Loans, WithoutAPoolALoanIsResourceBusyAndSaysWhy) {
    RuntimeDir dir;
    auto server = Server::publish("demo/nopool", dir.server_options());
    ASSERT_TRUE(server);
    auto c = Connection::connect("demo/nopool", with_pool(dir, 0));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->loan(1).error(), IpcError::ResourceBusy);
    EXPECT_NE(std::string(last_error_detail()).find("pool_bytes"), std::string::npos);
}

}  // namespace
}  // namespace veridian::ipc::posix
