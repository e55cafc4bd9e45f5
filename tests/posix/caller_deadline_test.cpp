// SPDX-License-Identifier: MIT OR Apache-2.0
// The caller's deadline on a received call, between two real processes (vipc_test_peer
// "deadline-caller" makes the calls, this process serves them): payload and LargeMessage
// calls carry it, calls without one and SmallMessage calls show Deadline::never(); through
// receive_sync (Received), receive_view (Incoming) and receive_into (PayloadInfo).
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace veridian::ipc::posix::test {
namespace {

enum class Taken : u8 { Sync, View, Into };

// What the server saw of one call.
struct Seen {
    Taken how = Taken::Sync;
    int index = 0;  // in its round: 0 payload + deadline, 1 large + deadline, 2 payload,
                    // 3 large, 4 small + deadline
    u64 stamp = 0;  // the deadline the caller made the call with (~0: none)
    Deadline caller_deadline = Deadline::never();
    u64 taken_ns = 0;  // our clock right after the receive returned
    bool small = false;
    bool payload = false;
};

constexpr u64 kDeadlineMs = 5000;
constexpr int kRounds = 3;  // one per way of taking

u64 stamp_of(const Message& m) {
    u64 v = 0;
    if (m.is_small()) return m.small_message().data[0];
    std::memcpy(&v, m.large_message().inline_data, sizeof v);
    return v;
}

// Serves kRounds rounds of five calls, each round taken another way.
std::vector<Seen> serve(Server& server) {
    std::vector<Seen> seen;
    std::byte buffer[256];
    for (int n = 0; n < kRounds * 5; ++n) {
        Seen s;
        s.how = static_cast<Taken>(n / 5);
        s.index = n % 5;
        const bool payload_call = s.index == 0 || s.index == 2;
        Received request;
        std::vector<std::byte> bytes;
        if (s.how == Taken::Sync) {
            auto r = server.receive_sync(after_ms(10'000));
            if (!r) {
                ADD_FAILURE() << "receive_sync: " << error_name(r.error());
                return seen;
            }
            s.taken_ns = now_ns();
            request = *r;
            s.caller_deadline = r->caller_deadline;
            s.stamp = stamp_of(r->message);  // an 8-byte payload reads as a LargeMessage
            s.small = r->message.is_small();
        } else if (s.how == Taken::View) {
            auto in = server.receive_view(after_ms(10'000));
            if (!in) {
                ADD_FAILURE() << "receive_view: " << error_name(in.error());
                return seen;
            }
            s.taken_ns = now_ns();
            s.caller_deadline = in->info.caller_deadline;
            s.payload = in->kind == Incoming::Kind::Payload;
            s.small = in->kind == Incoming::Kind::Small;
            if (s.payload) {
                std::memcpy(&s.stamp, in->payload.data(), sizeof s.stamp);
                bytes.assign(in->payload.begin(), in->payload.end());
            } else {
                s.stamp = stamp_of(in->message);
            }
            request.message = in->message;
            request.message.set_transaction_id(in->info.transaction_id);
            request.connection = in->info.connection;
        } else {
            usize needed = 0;
            auto info = server.receive_into(buffer, &needed, after_ms(10'000));
            if (!info) {
                ADD_FAILURE() << "receive_into: " << error_name(info.error());
                return seen;
            }
            s.taken_ns = now_ns();
            s.caller_deadline = info->caller_deadline;
            if (payload_call) {
                std::memcpy(&s.stamp, buffer, sizeof s.stamp);
                bytes.assign(buffer, buffer + info->length);
                s.payload = true;
            } else if (info->length == sizeof(SmallMessage)) {
                SmallMessage m;
                std::memcpy(&m, buffer, sizeof m);
                request.message = Message(m);
                s.stamp = m.data[0];
                s.small = true;
            } else {
                LargeMessage m;
                std::memcpy(&m, buffer, sizeof m);
                request.message = Message(m);
                s.stamp = stamp_of(request.message);
            }
            request.message.set_transaction_id(info->transaction_id);
            request.connection = info->connection;
        }
        if (payload_call) {
            if (bytes.empty()) bytes.resize(8);
            EXPECT_TRUE(server.reply(request, OP_CALL, 0, bytes)) << last_error_detail();
        } else {
            EXPECT_TRUE(server.reply(request, request.message)) << last_error_detail();
        }
        seen.push_back(s);
    }
    return seen;
}

TEST(CallerDeadline, ReceivedCallsShowTheCallersDeadlineOnTheServersClock) {
    RuntimeDir dir;
    auto server = Server::publish("demo/deadline", dir.server_options());
    ASSERT_TRUE(server) << last_error_detail();
    Peer caller("deadline-caller", dir.path(), "demo/deadline",
                {std::to_string(kDeadlineMs), std::to_string(kRounds)});
    ASSERT_TRUE(caller.ready());
    const std::vector<Seen> seen = serve(*server);
    ASSERT_EQ(seen.size(), static_cast<usize>(kRounds * 5));
    EXPECT_EQ(caller.wait_exit(), 0);

    // The server's deadline is the caller's D plus the time the request took to reach it
    // (a duration travels, measured when the record was written, added at receipt): within
    // [D, D + a generous bound], and never more than kDeadlineMs after the receipt.
    constexpr u64 kBoundNs = 2'000'000'000;
    for (const Seen& s : seen) {
        SCOPED_TRACE(::testing::Message()
                     << "taken " << static_cast<int>(s.how) << ", call " << s.index);
        if (s.index == 0 || s.index == 1) {
            ASSERT_NE(s.stamp, ~u64{0});
            ASSERT_FALSE(s.caller_deadline.is_never()) << "a deadline was sent, none seen";
            EXPECT_GE(s.caller_deadline.ns(), s.stamp);
            EXPECT_LE(s.caller_deadline.ns(), s.stamp + kBoundNs);
            EXPECT_LE(s.caller_deadline.ns(), s.taken_ns + kDeadlineMs * 1'000'000);
        } else if (s.index == 4) {
            // A SmallMessage call has a deadline but its one-line record carries none.
            EXPECT_NE(s.stamp, ~u64{0});
            EXPECT_TRUE(s.small);
            EXPECT_TRUE(s.caller_deadline.is_never());
        } else {
            EXPECT_EQ(s.stamp, ~u64{0});
            EXPECT_TRUE(s.caller_deadline.is_never());
        }
        if (s.how == Taken::View) {
            EXPECT_EQ(s.payload, s.index == 0 || s.index == 2);
        }
    }
}

// A one-way message is not a call: no deadline, whatever it is sent with.
TEST(CallerDeadline, OneWayMessagesShowNone) {
    RuntimeDir dir;
    auto server = Server::publish("demo/deadline", dir.server_options());
    ASSERT_TRUE(server) << last_error_detail();
    auto c = Connection::connect("demo/deadline", dir.connect_options());
    ASSERT_TRUE(c) << last_error_detail();
    LargeMessage l{};
    l.header.opcode = OP_DATA;
    ASSERT_TRUE(c->send_sync(Message(l), after_ms(5000)));
    const std::byte bytes[100]{};
    ASSERT_TRUE(c->send_sync(OP_DATA, 0, bytes, after_ms(5000)));
    auto r = server->receive_sync(after_ms(5000));
    ASSERT_TRUE(r) << last_error_detail();
    EXPECT_TRUE(r->caller_deadline.is_never());
    auto in = server->receive_view(after_ms(5000));
    ASSERT_TRUE(in) << last_error_detail();
    EXPECT_EQ(in->kind, Incoming::Kind::Payload);
    EXPECT_TRUE(in->info.caller_deadline.is_never());
}

}  // namespace
}  // namespace veridian::ipc::posix::test
