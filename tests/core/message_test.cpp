// SPDX-License-Identifier: MIT OR Apache-2.0
// Messages: the 48-byte SmallMessage layout, Message::small, large messages, flags and the
// payload checksum.
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "test_support.hpp"

namespace veridian::ipc {
namespace {

TEST(SmallMessage, Is48BytesWithTheDocumentedOffsets) {
    EXPECT_EQ(sizeof(SmallMessage), 48u);
    EXPECT_EQ(alignof(SmallMessage), 8u);
    EXPECT_EQ(offsetof(SmallMessage, capability), 0u);
    EXPECT_EQ(offsetof(SmallMessage, opcode), 8u);
    EXPECT_EQ(offsetof(SmallMessage, flags), 12u);
    EXPECT_EQ(offsetof(SmallMessage, data), 16u);
    EXPECT_EQ(sizeof(SmallMessage::data), 4 * sizeof(u64));
    EXPECT_TRUE(std::is_standard_layout_v<SmallMessage>);
    EXPECT_TRUE(std::is_trivially_copyable_v<SmallMessage>);
}

TEST(SmallMessage, FieldsLandOnTheirBytesInCLayout) {
    SmallMessage m{};
    m.capability = 0x0102030405060708ull;
    m.opcode = 0x11223344u;
    m.flags = 0x55667788u;
    for (u64 i = 0; i < 4; ++i)
        m.data[i] = 0xA0A0A0A0A0A0A0A0ull + i;
    unsigned char bytes[48];
    std::memcpy(bytes, &m, sizeof(bytes));
    u64 capability;
    u32 opcode;
    u32 flags;
    u64 data3;
    std::memcpy(&capability, bytes + 0, 8);
    std::memcpy(&opcode, bytes + 8, 4);
    std::memcpy(&flags, bytes + 12, 4);
    std::memcpy(&data3, bytes + 16 + 3 * 8, 8);
    EXPECT_EQ(capability, m.capability);
    EXPECT_EQ(opcode, m.opcode);
    EXPECT_EQ(flags, m.flags);
    EXPECT_EQ(data3, m.data[3]);
}

TEST(LargeMessage, HeaderRegionAndInlineBytesHaveTheDocumentedSizes) {
    EXPECT_EQ(sizeof(MessageHeader), 32u);
    EXPECT_EQ(sizeof(MemoryRegion), 24u);
    EXPECT_EQ(LARGE_MESSAGE_INLINE_BYTES, 64u);
    EXPECT_EQ(sizeof(LargeMessage::inline_data), 64u);
    EXPECT_EQ(offsetof(MessageHeader, capability), 0u);
    EXPECT_EQ(offsetof(MessageHeader, opcode), 8u);
    EXPECT_EQ(offsetof(MessageHeader, flags), 12u);
    EXPECT_EQ(offsetof(MessageHeader, total_size), 16u);
    EXPECT_EQ(offsetof(MessageHeader, checksum), 24u);
    EXPECT_EQ(offsetof(LargeMessage, header), 0u);
    EXPECT_EQ(offsetof(LargeMessage, region), 32u);
    EXPECT_EQ(offsetof(LargeMessage, inline_data), 56u);
}

TEST(Message, SmallSetsCapabilityAndOpcodeAndZeroesEverythingElse) {
    const Message m = Message::small(0x1234, 42);
    ASSERT_TRUE(m.is_small());
    EXPECT_FALSE(m.is_large());
    EXPECT_EQ(m.kind(), MessageKind::Small);
    EXPECT_EQ(m.capability(), 0x1234u);
    EXPECT_EQ(m.opcode(), 42u);
    EXPECT_EQ(m.flags(), 0u);
    for (u64 word : m.small_message().data)
        EXPECT_EQ(word, 0u);
    EXPECT_EQ(m.sender(), ProcessId{});
    EXPECT_EQ(m.transaction_id(), 0u);
}

TEST(Message, DefaultIsAnEmptySmallMessage) {
    const Message m;
    ASSERT_TRUE(m.is_small());
    EXPECT_EQ(m.capability(), 0u);
    EXPECT_EQ(m.opcode(), 0u);
    EXPECT_EQ(m.flags(), 0u);
    EXPECT_EQ(m.transaction_id(), 0u);
}

TEST(Message, LargeMessageAnswersFromItsHeader) {
    LargeMessage large{};
    large.header.capability = 0xCAFE;
    large.header.opcode = 9;
    large.header.flags = MessageFlags::NEEDS_ACK;
    large.region = MemoryRegion{0x1000, 4096, RegionPermissions::READ, CachePolicy::Uncached};
    large.inline_data[63] = 0x5A;
    Message m(large);
    ASSERT_TRUE(m.is_large());
    EXPECT_EQ(m.kind(), MessageKind::Large);
    EXPECT_EQ(m.capability(), 0xCAFEu);
    EXPECT_EQ(m.opcode(), 9u);
    EXPECT_EQ(m.flags(), MessageFlags::NEEDS_ACK);
    EXPECT_EQ(m.large_message().region.size, 4096u);
    EXPECT_EQ(m.large_message().region.cache_policy, CachePolicy::Uncached);
    EXPECT_EQ(m.large_message().inline_data[63], 0x5A);
}

TEST(Message, SetFlagsWritesTheBodyThatIsHeld) {
    Message small = Message::small(1, 2);
    small.set_flags(MessageFlags::URGENT | 0x10000u);
    EXPECT_EQ(small.small_message().flags, MessageFlags::URGENT | 0x10000u);

    Message large{LargeMessage{}};
    large.set_flags(MessageFlags::HAS_CAPABILITY);
    EXPECT_EQ(large.large_message().header.flags, MessageFlags::HAS_CAPABILITY);
    EXPECT_EQ(large.flags(), MessageFlags::HAS_CAPABILITY);
}

TEST(Message, RoutingFieldsAreSetIndependentlyOfTheBody) {
    Message m = Message::small(3, 4);
    m.set_sender(ProcessId{77});
    m.set_transaction_id(123);
    EXPECT_EQ(m.sender(), ProcessId{77});
    EXPECT_EQ(m.transaction_id(), 123u);
    EXPECT_EQ(m.capability(), 3u);
    EXPECT_EQ(m.opcode(), 4u);
}

TEST(Message, IsTriviallyCopyable) {
    EXPECT_TRUE(std::is_trivially_copyable_v<Message>);
    EXPECT_TRUE(std::is_trivially_copyable_v<LargeMessage>);
}

TEST(MessageFlags, AreDistinctBitsInsideTheCoreMask) {
    const u32 flags[] = {MessageFlags::URGENT, MessageFlags::UNORDERED, MessageFlags::NEEDS_ACK,
                         MessageFlags::IS_REPLY, MessageFlags::HAS_CAPABILITY};
    u32 seen = 0;
    for (u32 f : flags) {
        EXPECT_EQ(f & (f - 1), 0u) << "not a single bit: " << f;
        EXPECT_EQ(f & ~MessageFlags::CORE_MASK, 0u);
        EXPECT_EQ(seen & f, 0u) << "overlapping flag: " << f;
        seen |= f;
    }
    EXPECT_EQ(MessageFlags::CORE_MASK, 0xFFFFu);
}

TEST(PayloadChecksum, IsFnv1aOfThePayloadBytes) {
    // Published FNV-1a (32-bit) test vectors.
    EXPECT_EQ(payload_checksum("", 0), 0x811c9dc5u);
    EXPECT_EQ(payload_checksum("a", 1), 0xe40c292cu);
    EXPECT_EQ(payload_checksum("foobar", 6), 0xbf9cf968u);
}

}  // namespace
}  // namespace veridian::ipc
