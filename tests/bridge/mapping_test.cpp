// SPDX-License-Identifier: MIT OR Apache-2.0
// The NATS mapping on its own: subjects, records, frames, credit, error replies.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "bridge/mapping.hpp"
#include "bridge/remote_error.hpp"

namespace veridian::ipc::bridge {
namespace {

TEST(BridgeMapping, NamesBecomeSubjectTokensOneToOne) {
    EXPECT_EQ(base_subject("vipc", "demo/echo"), "vipc.demo.echo");
    EXPECT_EQ(base_subject("site1.vipc", "a.b/c"), "site1.vipc.a~b.c");
    EXPECT_NE(base_subject("vipc", "a.b"), base_subject("vipc", "a/b"));
    EXPECT_EQ(stream_subject("vipc.x", "00ff"), "vipc.x.%s.00ff");
    EXPECT_EQ(probe_subject("vipc.x", "00ff"), "vipc.x.%p.00ff");
}

TEST(BridgeMapping, PrefixMustBeSubjectTokens) {
    EXPECT_TRUE(validate_prefix("vipc"));
    EXPECT_TRUE(validate_prefix("site-1.vipc_x"));
    for (const char* bad : {"", ".vipc", "vipc.", "a..b", "a b", "a*", "a>", "a/b"})
        EXPECT_FALSE(validate_prefix(bad)) << bad;
}

TEST(BridgeMapping, SmallAndLargeRecordsRoundTrip) {
    Message small = Message::small(0xABCDEF, 42);
    small.set_flags(0x10000 | MessageFlags::URGENT);
    small.small_message().data[0] = 1;
    small.small_message().data[3] = ~u64{0};
    LargeMessage l{};
    l.header.opcode = 7;
    l.header.capability = 99;
    l.header.checksum = 0x1234;
    l.header.total_size = 64;
    for (int i = 0; i < 64; ++i)
        l.inline_data[i] = static_cast<u8>(i * 3);
    const Message large(l);
    for (const Message& m : {small, large}) {
        std::string why;
        ASSERT_TRUE(check_crossable(m, &why));
        std::vector<u8> body;
        encode_record(m, body);
        ASSERT_EQ(body.size(), record_size(m));
        usize used = 0;
        Result<Message> back = decode_record(body, &used, &why);
        ASSERT_TRUE(back) << why;
        EXPECT_EQ(used, body.size());
        EXPECT_EQ(back->kind(), m.kind());
        EXPECT_EQ(back->opcode(), m.opcode());
        EXPECT_EQ(back->flags(), m.flags());
        EXPECT_EQ(back->capability(), m.capability());
        if (m.is_small()) {
            for (int i = 0; i < 4; ++i)
                EXPECT_EQ(back->small_message().data[i], m.small_message().data[i]);
        } else {
            EXPECT_EQ(back->large_message().header.total_size, 64u);
            EXPECT_EQ(back->large_message().header.checksum, 0x1234u);
            EXPECT_EQ(0, std::memcmp(back->large_message().inline_data, l.inline_data, 64));
        }
    }
}

TEST(BridgeMapping, MalformedRecordsAreRefused) {
    std::vector<u8> body;
    encode_record(Message::small(0, 1), body);
    std::string why;
    usize used = 0;
    for (usize cut = 0; cut < body.size(); ++cut) {
        EXPECT_FALSE(decode_record({body.data(), cut}, &used, &why)) << cut;
    }
    std::vector<u8> bad = body;
    bad[0] = 9;  // unknown kind
    EXPECT_EQ(decode_record(bad, &used, &why).error(), IpcError::InvalidMessage);
    bad = body;
    bad[2] = 1;  // padding
    EXPECT_EQ(decode_record(bad, &used, &why).error(), IpcError::InvalidMessage);
    bad = body;
    bad[24] = 33;  // a SmallMessage payload is 32 bytes
    EXPECT_FALSE(decode_record(bad, &used, &why));
    bad = body;
    bad[8] = static_cast<u8>(MessageFlags::HAS_CAPABILITY);
    EXPECT_EQ(decode_record(bad, &used, &why).error(), IpcError::InvalidCapability);
    LargeMessage l{};
    l.header.total_size = 10;
    std::vector<u8> large;
    encode_record(Message(l), large);
    large[24] = 65;  // more inline bytes than a LargeMessage has
    large.resize(32 + 65);
    EXPECT_EQ(decode_record(large, &used, &why).error(), IpcError::MessageTooLarge);
}

TEST(BridgeMapping, CapabilitiesAndRegionsCannotCross) {
    std::string why;
    Message cap = Message::small(0, 1);
    cap.set_flags(MessageFlags::HAS_CAPABILITY);
    EXPECT_EQ(check_crossable(cap, &why).error(), IpcError::InvalidCapability);
    LargeMessage l{};
    l.region.size = 4096;
    EXPECT_EQ(check_crossable(Message(l), &why).error(), IpcError::InvalidMemoryRegion);
    EXPECT_NE(why.find("region"), std::string::npos);
}

TEST(BridgeMapping, CallHeadIsADuration) {
    std::vector<u8> body;
    encode_call_head(600'000'000u, body);
    ASSERT_EQ(body.size(), CALL_HEAD_BYTES);
    EXPECT_EQ(decode_call_head(body), 600'000'000u);
    EXPECT_FALSE(decode_call_head({body.data(), 7}));
}

TEST(BridgeMapping, PayloadRecordsRoundTripAndAreBounded) {
    std::vector<u8> bytes(5000);
    for (usize i = 0; i < bytes.size(); ++i)
        bytes[i] = static_cast<u8>(i * 13);
    std::vector<u8> body;
    encode_payload_record(9, 0x20000, bytes, body);
    ASSERT_EQ(body.size(), RECORD_HEAD_BYTES + bytes.size());
    std::string why;
    usize used = 0;
    Result<Record> r = decode_any_record(body, &used, &why);
    ASSERT_TRUE(r) << why;
    EXPECT_EQ(r->kind, RecordKind::Payload);
    EXPECT_EQ(r->opcode, 9u);
    EXPECT_EQ(r->flags, 0x20000u);
    EXPECT_TRUE(std::equal(r->payload.begin(), r->payload.end(), bytes.begin(), bytes.end()));
    // A Message is expected where only Messages can go.
    EXPECT_EQ(decode_record(body, &used, &why).error(), IpcError::InvalidMessage);
    // Over the 64 KiB cap.
    std::vector<u8> big(MAX_PAYLOAD_BYTES + 1);
    body.clear();
    encode_payload_record(1, 0, big, body);
    EXPECT_EQ(decode_any_record(body, &used, &why).error(), IpcError::MessageTooLarge);
    // Empty is fine.
    body.clear();
    encode_payload_record(1, 0, {}, body);
    ASSERT_TRUE(decode_any_record(body, &used, &why));
    EXPECT_EQ(used, RECORD_HEAD_BYTES);
}

TEST(BridgeMapping, FramesAndCredit) {
    std::vector<u8> head;
    encode_frame_head(FrameHead{0x1122334455667788u, 1000, 17}, head);
    ASSERT_EQ(head.size(), FRAME_HEAD_BYTES);
    const auto back = decode_frame_head(head);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->stream_id, 0x1122334455667788u);
    EXPECT_EQ(back->first_seq, 1000u);
    EXPECT_EQ(back->count, 17u);
    EXPECT_FALSE(decode_frame_head({head.data(), head.size() - 1}));
    u8 credit[CREDIT_BYTES];
    encode_credit(Credit{5, 123456789}, credit);
    const auto c = decode_credit(credit);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->stream_id, 5u);
    EXPECT_EQ(c->delivered, 123456789u);
}

TEST(BridgeMapping, ErrorNamesAndNumbers) {
    EXPECT_EQ(error_from_name("Timeout"), IpcError::Timeout);
    EXPECT_EQ(error_from_name("PermissionDenied"), IpcError::PermissionDenied);
    EXPECT_FALSE(error_from_name("Nope"));
    EXPECT_EQ(parse_decimal("18446744073709551615"), ~u64{0});
    EXPECT_FALSE(parse_decimal("18446744073709551616"));
    EXPECT_FALSE(parse_decimal("-1"));
    EXPECT_FALSE(parse_decimal(""));
    EXPECT_EQ(parse_hex64(hex64(0xdeadbeef01234567u)), 0xdeadbeef01234567u);
    EXPECT_FALSE(parse_hex64("DEADBEEF01234567"));
}

TEST(BridgeRemoteError, ErrorRepliesCarryKindAndDetail) {
    const Message m = make_error_reply(IpcError::PermissionDenied, "remote: no RECEIVE right");
    IpcError e{};
    std::string detail;
    ASSERT_TRUE(decode_error_reply(m, &e, &detail));
    EXPECT_EQ(e, IpcError::PermissionDenied);
    EXPECT_EQ(detail, "remote: no RECEIVE right");
    Result<Message> r = check_reply(Result<Message>(m));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), IpcError::PermissionDenied);
    EXPECT_STREQ(remote_error_detail(), "remote: no RECEIVE right");
    // An ordinary reply, and an error passes through untouched.
    EXPECT_TRUE(check_reply(Result<Message>(Message::small(0, 1))));
    EXPECT_EQ(check_reply(Result<Message>(IpcError::Timeout)).error(), IpcError::Timeout);
    // A long detail is cut to 64 bytes, never inside a UTF-8 character.
    std::string longer(63, 'x');
    longer += "\xC3\xA9tail";
    ASSERT_TRUE(decode_error_reply(make_error_reply(IpcError::Timeout, longer), &e, &detail));
    EXPECT_EQ(detail, std::string(63, 'x'));
}

}  // namespace
}  // namespace veridian::ipc::bridge
