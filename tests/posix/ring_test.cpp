// SPDX-License-Identifier: MIT OR Apache-2.0
// The record ring and its checks, in one process (both halves mapped from the same memfds).
#include <gtest/gtest.h>

#include <vector>

#include "posix/outbox.hpp"
#include "posix/record_ring.hpp"

namespace veridian::ipc::posix::detail {
namespace {

platform::SharedWords& words() {
    return platform::ProcessSharedWords::instance();
}

struct RingPair {
    explicit RingPair(u32 depth, u32 max_inline = DEFAULT_MAX_INLINE_PAYLOAD)
        : geometry(*RingGeometry::make(depth, max_inline, 0)) {
        data = std::move(*create_memfd("ring-test-data", geometry.data_bytes));
        ctl = std::move(*create_memfd("ring-test-ctl", geometry.ctl_bytes));
        header = new (data.map.get()) RingDataHeader{};
        control = new (ctl.map.get()) RingCtl{};
        producer = RecordProducer(words(), geometry, header, control);
        consumer = RecordConsumer(words(), geometry, header, control);
    }
    // Takes one record as a Message and finishes it.
    Result<Message> pop() {
        const RecordView r = VIPC_TRY(consumer.peek());
        Message m = VIPC_TRY(RecordConsumer::to_message(r));
        consumer.finish(r);
        return m;
    }
    RecordHeader* line(u32 i) {
        return reinterpret_cast<RecordHeader*>(static_cast<u8*>(data.map.get()) +
                                               RING_HEADER_BYTES + usize{i} * LINE_BYTES);
    }
    RingGeometry geometry;
    CreatedMemfd data, ctl;
    RingDataHeader* header;
    RingCtl* control;
    RecordProducer producer;
    RecordConsumer consumer;
};

SmallMessage numbered(u64 n) {
    SmallMessage m = Message::small(0, 9).small_message();
    m.data[0] = n;
    return m;
}

std::vector<std::byte> pattern(usize n, u8 seed) {
    std::vector<std::byte> v(n);
    for (usize i = 0; i < n; ++i)
        v[i] = static_cast<std::byte>(static_cast<u8>(i * 31 + seed));
    return v;
}

TEST(RingGeometry, AcceptsOnlyPowersOfTwoUpTo1024AndInlineUpToTheCap) {
    EXPECT_TRUE(RingGeometry::make(1, 0, 0));
    EXPECT_TRUE(RingGeometry::make(1024, MAX_INLINE_PAYLOAD_LIMIT, 0));
    EXPECT_FALSE(RingGeometry::make(0, 0, 0));
    EXPECT_FALSE(RingGeometry::make(3, 0, 0));
    EXPECT_FALSE(RingGeometry::make(2048, 0, 0));
    EXPECT_FALSE(RingGeometry::make(64, MAX_INLINE_PAYLOAD_LIMIT + 1, 0));
}

TEST(RingGeometry, TheLargestRecordFitsTwiceAndEveryDepthOfSmallMessagesFits) {
    for (u32 depth : {1u, 64u, 1024u}) {
        for (u32 max_inline : {0u, 100u, 4096u, MAX_INLINE_PAYLOAD_LIMIT}) {
            const RingGeometry g = *RingGeometry::make(depth, max_inline, 0);
            EXPECT_GE(g.ring_lines, depth + 1);
            EXPECT_GE(g.ring_lines, 2 * lines_for_payload(max_inline) + 1);
            EXPECT_EQ(g.ring_lines & (g.ring_lines - 1), 0u);
        }
    }
    // The default: 64 records, 4 KiB inline: 256 lines = 16 KiB of records per direction.
    const RingGeometry g = *RingGeometry::make(64, DEFAULT_MAX_INLINE_PAYLOAD, 0);
    EXPECT_EQ(g.ring_lines, 256u);
    EXPECT_EQ(g.data_bytes, 20480u);
}

TEST(RingGeometry, NormalizeRoundsUpAndClamps) {
    EXPECT_EQ(normalize_depth(0), 1u);
    EXPECT_EQ(normalize_depth(5), 8u);
    EXPECT_EQ(normalize_depth(64), 64u);
    EXPECT_EQ(normalize_depth(5000), 1024u);
}

TEST(Ring, ASmallMessageWithItsHeaderIsExactlyOneLine) {
    RingPair ring(4);
    ASSERT_TRUE(ring.producer.push_small(numbered(5), 7));
    const RecordView r = *ring.consumer.peek();
    EXPECT_EQ(r.lines, 1u);
    EXPECT_EQ(r.kind, RecordKind::Small);
    EXPECT_EQ(reinterpret_cast<const u8*>(r.body) - reinterpret_cast<const u8*>(ring.line(0)), 16);
}

TEST(Ring, DeliversInFifoOrderAcrossWrapAround) {
    RingPair ring(4);
    for (u64 round = 0; round < 50; ++round) {
        for (u64 i = 0; i < 3; ++i)
            ASSERT_TRUE(ring.producer.push_small(numbered(round * 3 + i), 0));
        for (u64 i = 0; i < 3; ++i) {
            auto m = ring.pop();
            ASSERT_TRUE(m);
            EXPECT_EQ(m->small_message().data[0], round * 3 + i);
        }
    }
}

TEST(Ring, PayloadsOfEverySizeClassRoundTripAcrossWrapAround) {
    RingPair ring(8, 4096);
    const usize sizes[] = {0, 1, 15, 16, 17, 48, 64, 65, 1000, 4095, 4096};
    for (int lap = 0; lap < 20; ++lap) {
        for (usize size : sizes) {
            const auto sent = pattern(size, static_cast<u8>(lap));
            ASSERT_TRUE(ring.producer.push_payload(3, 11, 0x10000, sent, 99)) << size;
            auto r = ring.consumer.peek();
            ASSERT_TRUE(r) << size;
            ASSERT_EQ(r->kind, RecordKind::Payload);
            EXPECT_EQ(r->payload_head.opcode, 11u);
            EXPECT_EQ(r->payload_head.flags, 0x10000u);
            EXPECT_EQ(r->txid, 99u);
            ASSERT_EQ(r->payload_head.length, size);
            EXPECT_TRUE(size == 0 || std::memcmp(r->payload, sent.data(), size) == 0) << size;
            ring.consumer.finish(*r);
        }
    }
}

TEST(Ring, FullByRecordsGivesChannelFullAndEmptyRingChannelEmpty) {
    RingPair ring(2);
    EXPECT_EQ(ring.consumer.peek().error(), IpcError::ChannelEmpty);
    ASSERT_TRUE(ring.producer.push_small(numbered(1), 0));
    ASSERT_TRUE(ring.producer.push_small(numbered(2), 0));
    EXPECT_EQ(ring.producer.push_small(numbered(3), 0).error(), IpcError::ChannelFull);
    ASSERT_TRUE(ring.pop());
    EXPECT_TRUE(ring.producer.push_small(numbered(3), 0));
}

TEST(Ring, FullByBytesGivesChannelFullUntilTheConsumerFinishes) {
    RingPair ring(64, 4096);
    const auto big = pattern(4096, 1);
    ASSERT_TRUE(ring.producer.push_payload(0, 1, 0, big, 0));
    ASSERT_TRUE(ring.producer.push_payload(0, 1, 0, big, 0));
    // 256 lines: two records of 65 lines, and the next would need padding past the end.
    u32 pushed = 2;
    while (ring.producer.push_payload(0, 1, 0, big, 0))
        ++pushed;
    EXPECT_LT(pushed, 4u);
    // Views hold their lines: still full until finish(). The next record wraps (padding to
    // the end first), so it needs the first two records' lines back.
    for (int i = 0; i < 2; ++i) {
        auto r = ring.consumer.peek();
        ASSERT_TRUE(r);
        EXPECT_EQ(ring.producer.push_payload(0, 1, 0, big, 0).error(), IpcError::ChannelFull);
        ring.consumer.finish(*r);
    }
    EXPECT_TRUE(ring.producer.push_payload(0, 1, 0, big, 0));
    for (u32 i = 0; i < pushed - 2; ++i) {
        auto r = ring.consumer.peek();
        ASSERT_TRUE(r);
        ring.consumer.finish(*r);
    }
    auto wrapped = ring.consumer.peek();  // after the padding, at line 0
    ASSERT_TRUE(wrapped);
    EXPECT_EQ(wrapped->payload_head.length, 4096u);
    EXPECT_EQ(std::memcmp(wrapped->payload, big.data(), big.size()), 0);
}

TEST(Ring, CarriesLargeMessagesAndTransactionIds) {
    RingPair ring(2);
    LargeMessage large{};
    large.header.opcode = 77;
    large.header.total_size = 64;
    for (usize i = 0; i < LARGE_MESSAGE_INLINE_BYTES; ++i)
        large.inline_data[i] = static_cast<u8>(i);
    ASSERT_TRUE(ring.producer.push_large(large, 42));
    auto m = ring.pop();
    ASSERT_TRUE(m);
    ASSERT_TRUE(m->is_large());
    EXPECT_EQ(m->transaction_id(), 42u);
    EXPECT_EQ(std::memcmp(&m->large_message(), &large, sizeof large), 0);
}

TEST(Ring, CallRecordsCarryTheRemainingTimeAndEveryOtherRecordNone) {
    // Over several laps, so that a record without a deadline lands where one with a deadline
    // was: its spare bytes are written too (0), never left from the older lap.
    RingPair ring(4);
    LargeMessage large{};
    large.header.opcode = 5;
    const auto bytes = pattern(100, 7);
    for (u64 i = 0; i < 40; ++i) {
        const u64 remaining = i % 2 == 0 ? 1'000'000'000u + i : 0;
        ASSERT_TRUE(ring.producer.push_large(large, i + 1, Attachment::None, remaining)) << i;
        ASSERT_TRUE(ring.producer.push_payload(0, 6, 0, bytes, i + 1, remaining)) << i;
        ASSERT_TRUE(ring.producer.push_small(numbered(i), i + 1)) << i;
        for (const RecordKind kind : {RecordKind::Large, RecordKind::Payload, RecordKind::Small}) {
            auto r = ring.consumer.peek();
            ASSERT_TRUE(r) << i;
            EXPECT_EQ(r->kind, kind);
            EXPECT_EQ(r->remaining_ns, kind == RecordKind::Small ? 0 : remaining) << i;
            ring.consumer.finish(*r);
        }
    }
    EXPECT_EQ(remaining_ns_for(Deadline::never(), 100), 0u);
    EXPECT_EQ(remaining_ns_for(Deadline::at(150), 100), 50u);
    EXPECT_EQ(remaining_ns_for(Deadline::at(100), 100), 1u);  // due already: not "none"
    EXPECT_EQ(remaining_ns_for(Deadline::past(), 100), 1u);
}

TEST(Ring, AShortPayloadReadsAsALargeMessageAndALongOneIsMessageTooLarge) {
    RingPair ring(4);
    const auto p64 = pattern(64, 3);
    ASSERT_TRUE(ring.producer.push_payload(0, 5, 0, p64, 0));
    auto m = ring.pop();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->large_message().header.total_size, 64u);
    EXPECT_EQ(std::memcmp(m->large_message().inline_data, p64.data(), 64), 0);
    ASSERT_TRUE(ring.producer.push_payload(0, 5, 0, pattern(65, 3), 0));
    const RecordView r = *ring.consumer.peek();
    EXPECT_EQ(RecordConsumer::to_message(r).error(), IpcError::MessageTooLarge);
}

TEST(Ring, AWrongSequenceWordIsInvalidMessage) {
    RingPair ring(4);
    ring.line(0)->seq.store(seq_for(0) + 1);
    EXPECT_EQ(ring.consumer.peek().error(), IpcError::InvalidMessage);
    EXPECT_EQ(ring.consumer.ready().error(), IpcError::InvalidMessage);
}

TEST(Ring, ARecordOfUnknownKindIsInvalidMessageAndNotConsumed) {
    RingPair ring(4);
    ASSERT_TRUE(ring.producer.push_small(numbered(1), 0));
    ring.line(0)->kind = 7;
    EXPECT_EQ(ring.consumer.peek().error(), IpcError::InvalidMessage);
    EXPECT_EQ(ring.control->head.load(), 0u);
}

TEST(Ring, APayloadLengthNotMatchingItsLinesIsInvalidMessage) {
    RingPair ring(4);
    ASSERT_TRUE(ring.producer.push_payload(0, 1, 0, pattern(100, 1), 0));
    auto* head = reinterpret_cast<PayloadHead*>(reinterpret_cast<u8*>(ring.line(0)) + 16);
    head->length = 4000;  // within the limit, but the record has 3 lines
    EXPECT_EQ(ring.consumer.peek().error(), IpcError::InvalidMessage);
    head->length = DEFAULT_MAX_INLINE_PAYLOAD + 1;
    EXPECT_EQ(ring.consumer.peek().error(), IpcError::InvalidMessage);
}

TEST(Ring, ARecordCrossingTheRingsEndIsInvalidMessage) {
    RingPair ring(4);
    ASSERT_TRUE(ring.producer.push_small(numbered(1), 0));
    ring.line(0)->lines = static_cast<u16>(ring.geometry.ring_lines + 1);
    EXPECT_EQ(ring.consumer.peek().error(), IpcError::InvalidMessage);
}

TEST(Ring, PaddingThatStopsShortOfTheEndIsInvalidMessage) {
    RingPair ring(4);
    ring.line(0)->kind = static_cast<u8>(RecordKind::Padding);
    ring.line(0)->lines = 1;
    ring.line(0)->seq.store(seq_for(0));
    EXPECT_EQ(ring.consumer.peek().error(), IpcError::InvalidMessage);
}

TEST(Ring, AHeadMovingPastTheTailIsInvalidMessage) {
    RingPair ring(2);
    ASSERT_TRUE(ring.producer.push_small(numbered(1), 0));
    ASSERT_TRUE(ring.producer.push_small(numbered(2), 0));
    ring.control->head.store(30);
    EXPECT_EQ(ring.producer.push_small(numbered(3), 0).error(), IpcError::InvalidMessage);
}

TEST(Ring, TheTailIsPublishedForASleepingConsumerOnly) {
    RingPair ring(64);
    ASSERT_TRUE(ring.producer.push_small(numbered(1), 0));
    EXPECT_EQ(ring.header->tail.load(), 0u);  // lazily: nobody sleeps
    ring.control->waiting_for_data.store(1);
    ASSERT_TRUE(ring.producer.push_small(numbered(2), 0));
    EXPECT_EQ(ring.header->tail.load(), 2u);
}

TEST(Ring, ALargeMessageWithARegionCannotBeSentInline) {
    LargeMessage large{};
    large.region.size = 4096;
    EXPECT_EQ(check_sendable(Message(large)).error(), IpcError::InvalidMemoryRegion);
    LargeMessage too_big{};
    too_big.header.total_size = 65;
    EXPECT_EQ(check_sendable(Message(too_big)).error(), IpcError::MessageTooLarge);
}

}  // namespace
}  // namespace veridian::ipc::posix::detail

namespace veridian::ipc::posix::detail {
namespace {

TEST(Ring, MixedSizesInterleavedWithPopsStayInOrder) {
    RingPair ring(16, 4096);
    u32 next_push = 0;
    u32 next_pop = 0;
    u64 rng = 12345;
    auto rnd = [&] {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        return static_cast<u32>(rng >> 33);
    };
    while (next_pop < 5000) {
        if (rnd() % 2 == 0) {
            const usize size = (next_push * 997u) % 4097u;
            const auto p = pattern(size, static_cast<u8>(next_push));
            if (ring.producer.push_payload(0, 1, next_push, p, 0)) ++next_push;
        } else {
            auto r = ring.consumer.peek();
            if (!r) {
                ASSERT_EQ(r.error(), IpcError::ChannelEmpty);
                continue;
            }
            ASSERT_EQ(r->payload_head.flags, next_pop);
            const usize size = (next_pop * 997u) % 4097u;
            ASSERT_EQ(r->payload_head.length, size);
            const auto p = pattern(size, static_cast<u8>(next_pop));
            ASSERT_TRUE(size == 0 || std::memcmp(r->payload, p.data(), size) == 0);
            ring.consumer.finish(*r);
            ++next_pop;
        }
    }
}

}  // namespace
}  // namespace veridian::ipc::posix::detail
