// SPDX-License-Identifier: MIT OR Apache-2.0
// Large messages: regions travel zero-copy between separate processes (moved, shared or
// copied), from 1 byte to 256 MiB, with their checksums; bad regions from a peer give a clear
// error and never a crash.
#include <fcntl.h>
#include <sys/mman.h>

#include <cstdio>

#include "posix/region_wire.hpp"
#include "test_support.hpp"

namespace veridian::ipc::posix::test {
namespace {

constexpr u64 KiB = 1024;
constexpr u64 MiB = 1024 * KiB;

Message region_request() {
    LargeMessage lm{};
    lm.header.opcode = OP_REGION;
    return Message(lm);
}

u64 error_report(IpcError e) {
    return static_cast<u64>(-error_code(e));
}

// A region-echo peer and a connection to it.
struct EchoPeer {
    RuntimeDir dir;
    Peer peer{"region-echo", dir.path(), "demo/regions"};
    Result<Connection> conn = IpcError::NotInitialized;
    EchoPeer() {
        if (peer.ready()) conn = Connection::connect("demo/regions", dir.connect_options());
    }
};

// ---- Region itself -------------------------------------------------------------------------

TEST(Region, CreateGivesAZeroFilledWritableRegionSealedAgainstResizing) {
    auto r = Region::create(3 * KiB);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->size(), 3 * KiB);
    EXPECT_TRUE(r->writable());
    EXPECT_EQ(r->data()[0], 0);
    r->data()[3 * KiB - 1] = 7;
    const int seals = fcntl(r->fd(), F_GET_SEALS);
    EXPECT_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW), F_SEAL_SHRINK | F_SEAL_GROW);
    EXPECT_NE(ftruncate(r->fd(), 0), 0);
}

TEST(Region, AnEmptyOrHugeRegionIsInvalidMemoryRegion) {
    EXPECT_EQ(Region::create(0).error(), IpcError::InvalidMemoryRegion);
    EXPECT_EQ(Region::create(MAX_REGION_BYTES + 1).error(), IpcError::InvalidMemoryRegion);
}

TEST(Region, AMessageWithoutARegionHasNoneToReceive) {
    EXPECT_EQ(Region::receive(region_request()).error(), IpcError::InvalidMemoryRegion);
    EXPECT_EQ(Region::receive(Message::small(0, 1)).error(), IpcError::InvalidMemoryRegion);
}

TEST(RegionPool, SteadyStateSendingReusesTheSameRegions) {
    RegionPool pool(2);
    for (int i = 0; i < 10; ++i) {
        auto r = pool.acquire(64 * KiB);
        ASSERT_TRUE(r);
        pool.release(static_cast<Region&&>(*r));
    }
    EXPECT_EQ(pool.created(), 1u);
    EXPECT_EQ(pool.cached(), 1u);
}

TEST(RegionPool, AMovedRegionDoesNotComeBack) {
    RegionPool pool;
    auto r = pool.acquire(4 * KiB);
    ASSERT_TRUE(r);
    ASSERT_TRUE(Region::Access::seal_for_move(*r));  // as a move does before sending
    pool.release(static_cast<Region&&>(*r));
    EXPECT_EQ(pool.cached(), 0u);
}

// ---- sharing, moving, copying between processes ------------------------------------------------

// The report region-echo sends back (see inspect_region in peer_main.cpp).
struct Report {
    u64 error;
    u64 size;
    u8 first;
    u8 last;
    bool writable;
    bool write_refused;
    u32 checksum;
};
Report report_of(const Message& reply) {
    const SmallMessage& m = reply.small_message();
    return Report{m.data[0],
                  m.data[1],
                  static_cast<u8>(m.data[2]),
                  static_cast<u8>(m.data[2] >> 8),
                  (m.data[2] & REPORT_WRITABLE) != 0,
                  (m.data[2] & REPORT_WRITE_REFUSED) != 0,
                  static_cast<u32>(m.data[3])};
}

TEST(RegionTransfer, SharedReadOnlyRegionsFrom1ByteTo256MiBArriveWithTheirBytes) {
    EchoPeer p;
    ASSERT_TRUE(p.conn);
    for (const u64 size : {u64{1}, 4 * KiB, 1 * MiB, 256 * MiB}) {
        auto r = Region::create(size);
        ASSERT_TRUE(r) << size;
        // memfd pages are allocated when touched: touch only the first and the last.
        r->data()[0] = 0xA1;
        r->data()[size - 1] = 0xB2;
        auto reply = p.conn->call(region_request(), *r, Transfer::ShareReadOnly, after_ms(10000));
        ASSERT_TRUE(reply) << size << ": " << last_error_detail();
        const Report got = report_of(*reply);
        EXPECT_EQ(got.error, 0u) << size;
        EXPECT_EQ(got.size, size);
        EXPECT_EQ(got.first, size == 1 ? 0xB2 : 0xA1) << size;
        EXPECT_EQ(got.last, 0xB2) << size;
        EXPECT_FALSE(got.writable) << size;
        EXPECT_TRUE(got.write_refused) << size;
        // Shared: the sender keeps its region and may still write it.
        ASSERT_TRUE(r->valid());
        r->data()[0] = 0xC3;
    }
}

TEST(RegionTransfer, ASharedReadWriteRegionIsWrittenByTheReceiverAndSeenByTheSender) {
    EchoPeer p;
    ASSERT_TRUE(p.conn);
    auto r = Region::create(64 * KiB);
    ASSERT_TRUE(r);
    auto reply = p.conn->call(region_request(), *r, Transfer::ShareReadWrite, after_ms(10000));
    ASSERT_TRUE(reply);
    const Report got = report_of(*reply);
    EXPECT_EQ(got.error, 0u);
    EXPECT_TRUE(got.writable);
    EXPECT_EQ(r->data()[0], 0xEE);  // written by the other process
}

TEST(RegionTransfer, AMovedRegionLeavesTheSenderAndNobodyCanWriteItAnyMore) {
    EchoPeer p;
    ASSERT_TRUE(p.conn);
    auto r = Region::create(1 * MiB);
    ASSERT_TRUE(r);
    r->data()[0] = 0x42;
    r->data()[MiB - 1] = 0x43;
    // A descriptor the sender keeps on the side: the seal binds it too.
    detail::Fd kept(dup(r->fd()));
    ASSERT_TRUE(kept.valid());
    auto reply = p.conn->call(region_request(), *r, Transfer::Move, after_ms(10000));
    ASSERT_TRUE(reply) << last_error_detail();
    EXPECT_FALSE(r->valid());  // the sender lost access
    const Report got = report_of(*reply);
    EXPECT_EQ(got.error, 0u);
    EXPECT_EQ(got.first, 0x42);
    EXPECT_EQ(got.last, 0x43);
    EXPECT_FALSE(got.writable);
    EXPECT_TRUE(got.write_refused);
    const u8 byte = 1;
    EXPECT_LT(pwrite(kept.get(), &byte, 1, 0), 0);
    EXPECT_EQ(mmap(nullptr, MiB, PROT_READ | PROT_WRITE, MAP_SHARED, kept.get(), 0), MAP_FAILED);
}

TEST(RegionTransfer, AMoveIsRefusedWhileAnotherWritableMappingExists) {
    auto r = Region::create(4 * KiB);
    ASSERT_TRUE(r);
    void* other = mmap(nullptr, 4 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd(), 0);
    ASSERT_NE(other, MAP_FAILED);
    EXPECT_EQ(Region::Access::seal_for_move(*r).error(), IpcError::ResourceBusy);
    EXPECT_TRUE(r->valid());  // still the sender's
    munmap(other, 4 * KiB);
}

TEST(RegionTransfer, ACopiedPayloadTravelsInTheSlotsInlineBytes) {
    EchoPeer p;
    ASSERT_TRUE(p.conn);
    auto r = Region::create(40);
    ASSERT_TRUE(r);
    for (u32 i = 0; i < 40; ++i)
        r->data()[i] = static_cast<u8>(i + 1);
    auto reply = p.conn->call(region_request(), *r, Transfer::Copy, after_ms(10000));
    ASSERT_TRUE(reply);
    const Report got = report_of(*reply);
    EXPECT_EQ(got.error, 0u);
    EXPECT_EQ(got.size, 40u);
    EXPECT_EQ(got.first, 1);
    EXPECT_EQ(got.last, 40);
    EXPECT_EQ(got.checksum, payload_checksum(r->data(), 40));
    EXPECT_TRUE(r->valid());
}

TEST(RegionTransfer, CopyingMoreThanTheInlineBytesIsMessageTooLarge) {
    EchoPeer p;
    ASSERT_TRUE(p.conn);
    auto r = Region::create(LARGE_MESSAGE_INLINE_BYTES + 1);
    ASSERT_TRUE(r);
    EXPECT_EQ(p.conn->send_sync(region_request(), *r, Transfer::Copy).error(),
              IpcError::MessageTooLarge);
}

TEST(RegionTransfer, ARegionNeedsALargeMessage) {
    EchoPeer p;
    ASSERT_TRUE(p.conn);
    auto r = Region::create(4 * KiB);
    ASSERT_TRUE(r);
    EXPECT_EQ(p.conn->send_sync(Message::small(0, OP_REGION), *r, Transfer::ShareReadOnly).error(),
              IpcError::InvalidMessage);
}

TEST(RegionTransfer, ARegionCannotBeSharedReadWriteOnceItWasSharedReadOnly) {
    EchoPeer p;
    ASSERT_TRUE(p.conn);
    auto r = Region::create(4 * KiB);
    ASSERT_TRUE(r);
    ASSERT_TRUE(p.conn->call(region_request(), *r, Transfer::ShareReadOnly, after_ms(10000)));
    EXPECT_EQ(p.conn->send_sync(region_request(), *r, Transfer::ShareReadWrite).error(),
              IpcError::PermissionDenied);
}

TEST(RegionTransfer, TheHeadersChecksumIsVerifiedWhenTheSenderSetsIt) {
    EchoPeer p;
    ASSERT_TRUE(p.conn);
    auto r = Region::create(256 * KiB);
    ASSERT_TRUE(r);
    for (u64 i = 0; i < 256 * KiB; i += 4096)
        r->data()[i] = static_cast<u8>(i >> 12);
    LargeMessage good{};
    good.header.opcode = OP_REGION;
    good.header.checksum = payload_checksum(r->data(), r->size());
    auto ok_reply = p.conn->call(Message(good), *r, Transfer::Move, after_ms(10000));
    ASSERT_TRUE(ok_reply);
    EXPECT_EQ(report_of(*ok_reply).error, 0u);
    EXPECT_EQ(report_of(*ok_reply).checksum, good.header.checksum);

    auto r2 = Region::create(256 * KiB);
    ASSERT_TRUE(r2);
    LargeMessage bad = good;
    bad.header.checksum = good.header.checksum ^ 1;
    auto bad_reply = p.conn->call(Message(bad), *r2, Transfer::Move, after_ms(10000));
    ASSERT_TRUE(bad_reply);
    EXPECT_EQ(report_of(*bad_reply).error, error_report(IpcError::InvalidMessage));
}

TEST(RegionTransfer, TheInlineBytesTravelWithTheRegion) {
    RuntimeDir dir;
    auto server = Server::publish("demo/inline", dir.server_options());
    ASSERT_TRUE(server);
    Peer sender("region-sender", dir.path(), "demo/inline", {"1", "share"});
    ASSERT_TRUE(sender.ready());
    auto got = server->receive_sync(after_ms(10000));
    ASSERT_TRUE(got);
    // region-sender leaves the inline bytes unused: total_size is the region's size.
    EXPECT_EQ(got->message.large_message().header.total_size, 64 * KiB);

    // In the other direction, with inline bytes used.
    auto c = Connection::connect("demo/inline", dir.connect_options());
    ASSERT_TRUE(c);
    auto r = Region::create(8 * KiB);
    ASSERT_TRUE(r);
    LargeMessage lm{};
    lm.header.total_size = 8 * KiB + 5;
    std::memcpy(lm.inline_data, "hello", 5);
    ASSERT_TRUE(c->send_sync(Message(lm), *r, Transfer::ShareReadOnly, after_ms(5000)));
    auto in = server->receive_sync(after_ms(5000));
    ASSERT_TRUE(in);
    EXPECT_EQ(in->message.large_message().header.total_size, 8 * KiB + 5);
    EXPECT_EQ(std::memcmp(in->message.large_message().inline_data, "hello", 5), 0);
    EXPECT_EQ(in->message.large_message().region.permissions, RegionPermissions::READ);
    auto mapped = Region::receive(in->message);
    ASSERT_TRUE(mapped);
    EXPECT_EQ(mapped->size(), 8 * KiB);
    // Taken once only.
    EXPECT_EQ(Region::receive(in->message).error(), IpcError::InvalidMemoryRegion);
}

TEST(RegionTransfer, AServerRepliesWithARegion) {
    EchoPeer p;
    ASSERT_TRUE(p.conn);
    Message ask = Message::small(0, OP_REGION_BACK);
    ask.small_message().data[0] = 3 * MiB;
    auto reply = p.conn->call(ask, after_ms(10000));
    ASSERT_TRUE(reply) << last_error_detail();
    auto r = Region::receive(*reply);
    ASSERT_TRUE(r) << last_error_detail();
    EXPECT_EQ(r->size(), 3 * MiB);
    EXPECT_EQ(r->data()[0], 0x11);
    EXPECT_EQ(r->data()[3 * MiB - 1], 0x22);
    EXPECT_FALSE(r->writable());  // it was moved: sealed against writes
}

TEST(RegionTransfer, ManyRegionsInFlightArriveInOrderWithTheirOwnDescriptors) {
    RuntimeDir dir;
    auto server = Server::publish("demo/many", dir.server_options(8));
    ASSERT_TRUE(server);
    // 40 regions through an 8-deep ring: the sender blocks on the full ring many times.
    Peer sender("region-sender", dir.path(), "demo/many", {"40", "move"});
    ASSERT_TRUE(sender.ready());
    for (int i = 0; i < 40; ++i) {
        auto in = server->receive_sync(after_ms(10000));
        ASSERT_TRUE(in) << i;
        auto r = Region::receive(in->message);
        ASSERT_TRUE(r) << i << ": " << last_error_detail();
        EXPECT_EQ(r->data()[0], static_cast<u8>(i));
    }
    EXPECT_TRUE(sender.wait_for_line("DONE"));
}

TEST(RegionTransfer, ThePlainSendStillRefusesAMessageThatNamesARegion) {
    EchoPeer p;
    ASSERT_TRUE(p.conn);
    LargeMessage lm{};
    lm.region.size = 4096;
    EXPECT_EQ(p.conn->send_sync(Message(lm)).error(), IpcError::InvalidMemoryRegion);
}

// ---- bad regions from a peer -----------------------------------------------------------------

// The server side of the bad-input tests: the bad message, then the peer's plain message
// (the connection survives a bad region).
struct BadRegionCase {
    RuntimeDir dir;
    Result<Server> server = Server::publish("demo/bad", dir.server_options());
    Result<Received> bad = IpcError::NotInitialized;
    Result<Received> after = IpcError::NotInitialized;
    explicit BadRegionCase(const char* what, Peer** out = nullptr) {
        peer = new Peer("bad-region", dir.path(), "demo/bad", {what});
        if (out != nullptr) *out = peer;
        if (!server || !peer->ready()) return;
        bad = server->receive_sync(after_ms(10000));
        after = server->receive_sync(after_ms(10000));
    }
    ~BadRegionCase() { delete peer; }
    Peer* peer = nullptr;
};

TEST(RegionBadInput, ARegionSmallerThanTheMessageClaimsIsInvalidMemoryRegion) {
    BadRegionCase c("small");
    ASSERT_TRUE(c.bad);
    EXPECT_EQ(Region::receive(c.bad->message).error(), IpcError::InvalidMemoryRegion);
    std::printf("[ detail ] %s\n", last_error_detail());
    ASSERT_TRUE(c.after);
    EXPECT_EQ(c.after->message.opcode(), OP_DATA);
}

TEST(RegionBadInput, ADescriptorThatIsNotAMemfdIsInvalidMemoryRegion) {
    BadRegionCase c("pipe");
    ASSERT_TRUE(c.bad);
    EXPECT_EQ(Region::receive(c.bad->message).error(), IpcError::InvalidMemoryRegion);
    std::printf("[ detail ] %s\n", last_error_detail());
    ASSERT_TRUE(c.after);
    EXPECT_EQ(c.after->message.opcode(), OP_DATA);
}

TEST(RegionBadInput, AnUnsealedRegionTheSenderTruncatesIsRefusedWithoutSigbus) {
    BadRegionCase c("unsealed");
    ASSERT_TRUE(c.bad);
    ASSERT_TRUE(c.after);  // by now the sender has truncated it
    EXPECT_EQ(Region::receive(c.bad->message).error(), IpcError::InvalidMemoryRegion);
    std::printf("[ detail ] %s\n", last_error_detail());
}

TEST(RegionBadInput, ASenderCannotTruncateASealedRegionAfterSendingIt) {
    Peer* peer = nullptr;
    BadRegionCase c("sealed", &peer);
    ASSERT_TRUE(c.bad);
    ASSERT_TRUE(c.after);  // the sender has tried to truncate it by now
    auto r = Region::receive(c.bad->message);
    ASSERT_TRUE(r) << last_error_detail();
    // Every page can be read: touching the last byte would SIGBUS had it been truncated.
    EXPECT_EQ(r->data()[r->size() - 1], 0x5A);
    EXPECT_TRUE(peer->wait_for_line("TRUNCATE-REFUSED"));
}

TEST(RegionBadInput, ARegionSlotWithoutItsDescriptorBreaksOnlyThatConnection) {
    RuntimeDir dir;
    auto server = Server::publish("demo/bad", dir.server_options());
    ASSERT_TRUE(server);
    Peer corrupt("client-corrupt", dir.path(), "demo/bad", {"region"});
    ASSERT_TRUE(corrupt.ready());
    auto c = Connection::connect("demo/bad", dir.connect_options());
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send_sync(small_message(OP_DATA, 9), after_ms(5000)));
    auto in = server->receive_sync(after_ms(5000));
    ASSERT_TRUE(in);
    EXPECT_EQ(in->message.small_message().data[0], 9u);
    EXPECT_EQ(server->info().broken, 1u);
}

}  // namespace
}  // namespace veridian::ipc::posix::test
