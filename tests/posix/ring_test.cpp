// SPDX-License-Identifier: MIT OR Apache-2.0
// The rings and their checks, in one process (both halves mapped from the same memfds).
#include <gtest/gtest.h>

#include "posix/shm.hpp"

namespace veridian::ipc::posix::detail {
namespace {

struct RingPair {
    explicit RingPair(u32 depth) : geometry(*RingGeometry::for_depth(depth)) {
        data = std::move(*create_memfd("ring-test-data", geometry.data_bytes));
        ctl = std::move(*create_memfd("ring-test-ctl", geometry.ctl_bytes));
        header = new (data.map.get()) RingDataHeader{};
        control = new (ctl.map.get()) RingCtl{};
        producer = RingProducer(geometry, header, control);
        consumer = RingConsumer(geometry, header, control);
    }
    RingGeometry geometry;
    CreatedMemfd data, ctl;
    RingDataHeader* header;
    RingCtl* control;
    RingProducer producer;
    RingConsumer consumer;
};

Message numbered(u64 n) {
    Message m = Message::small(0, 9);
    m.small_message().data[0] = n;
    return m;
}

TEST(RingGeometry, AcceptsOnlyPowersOfTwoUpTo1024) {
    EXPECT_TRUE(RingGeometry::for_depth(1));
    EXPECT_TRUE(RingGeometry::for_depth(1024));
    EXPECT_FALSE(RingGeometry::for_depth(0));
    EXPECT_FALSE(RingGeometry::for_depth(3));
    EXPECT_FALSE(RingGeometry::for_depth(2048));
}

TEST(RingGeometry, NormalizeRoundsUpAndClamps) {
    EXPECT_EQ(normalize_depth(0), 1u);
    EXPECT_EQ(normalize_depth(5), 8u);
    EXPECT_EQ(normalize_depth(64), 64u);
    EXPECT_EQ(normalize_depth(5000), 1024u);
}

TEST(Ring, DeliversInFifoOrderAcrossWrapAround) {
    RingPair ring(4);
    for (u64 round = 0; round < 5; ++round) {
        for (u64 i = 0; i < 3; ++i)
            ASSERT_TRUE(ring.producer.try_push(numbered(round * 3 + i), 0));
        for (u64 i = 0; i < 3; ++i) {
            auto m = ring.consumer.try_pop();
            ASSERT_TRUE(m);
            EXPECT_EQ(m->small_message().data[0], round * 3 + i);
        }
    }
}

TEST(Ring, FullRingGivesChannelFullAndEmptyRingChannelEmpty) {
    RingPair ring(2);
    EXPECT_EQ(ring.consumer.try_pop().error(), IpcError::ChannelEmpty);
    ASSERT_TRUE(ring.producer.try_push(numbered(1), 0));
    ASSERT_TRUE(ring.producer.try_push(numbered(2), 0));
    EXPECT_EQ(ring.producer.try_push(numbered(3), 0).error(), IpcError::ChannelFull);
}

TEST(Ring, CarriesLargeMessagesAndTransactionIds) {
    RingPair ring(2);
    LargeMessage large{};
    large.header.opcode = 77;
    large.header.total_size = 64;
    for (usize i = 0; i < LARGE_MESSAGE_INLINE_BYTES; ++i)
        large.inline_data[i] = static_cast<u8>(i);
    ASSERT_TRUE(ring.producer.try_push(Message(large), 42));
    auto m = ring.consumer.try_pop();
    ASSERT_TRUE(m);
    ASSERT_TRUE(m->is_large());
    EXPECT_EQ(m->transaction_id(), 42u);
    EXPECT_EQ(std::memcmp(&m->large_message(), &large, sizeof large), 0);
}

TEST(Ring, ATailFarPastTheDepthIsInvalidMessage) {
    RingPair ring(4);
    ring.header->tail.store(1000);
    EXPECT_EQ(ring.consumer.try_pop().error(), IpcError::InvalidMessage);
}

TEST(Ring, ATailMovingBackwardsIsInvalidMessage) {
    RingPair ring(4);
    ASSERT_TRUE(ring.producer.try_push(numbered(1), 0));
    ASSERT_TRUE(ring.producer.try_push(numbered(2), 0));
    ASSERT_TRUE(ring.consumer.available());
    ring.header->tail.store(1);
    EXPECT_EQ(ring.consumer.available().error(), IpcError::InvalidMessage);
}

TEST(Ring, ASlotWithAnUnknownKindIsInvalidMessageAndNotConsumed) {
    RingPair ring(4);
    ASSERT_TRUE(ring.producer.try_push(numbered(1), 0));
    auto* slot = static_cast<u8*>(ring.data.map.get()) + RING_HEADER_BYTES;
    slot[0] = 7;
    EXPECT_EQ(ring.consumer.try_pop().error(), IpcError::InvalidMessage);
    EXPECT_EQ(ring.consumer.head(), 0u);
}

TEST(Ring, ASlotWithAWrongLengthIsInvalidMessage) {
    RingPair ring(4);
    ASSERT_TRUE(ring.producer.try_push(numbered(1), 0));
    auto* slot = static_cast<u8*>(ring.data.map.get()) + RING_HEADER_BYTES;
    const u32 bad_length = 4096;
    std::memcpy(slot + 4, &bad_length, sizeof bad_length);
    EXPECT_EQ(ring.consumer.try_pop().error(), IpcError::InvalidMessage);
}

TEST(Ring, AHeadMovingPastTheTailIsInvalidMessage) {
    RingPair ring(4);
    ASSERT_TRUE(ring.producer.try_push(numbered(1), 0));
    ring.control->head.store(3);
    EXPECT_EQ(ring.producer.free_slots().error(), IpcError::InvalidMessage);
}

TEST(Ring, ALargeMessageWithARegionCannotBeSent) {
    LargeMessage large{};
    large.region.size = 4096;
    EXPECT_EQ(check_sendable(Message(large)).error(), IpcError::InvalidMemoryRegion);
    LargeMessage too_big{};
    too_big.header.total_size = 65;
    EXPECT_EQ(check_sendable(Message(too_big)).error(), IpcError::MessageTooLarge);
}

}  // namespace
}  // namespace veridian::ipc::posix::detail
