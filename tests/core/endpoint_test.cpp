// SPDX-License-Identifier: MIT OR Apache-2.0
// Endpoint operations from one thread: the seed's unit tests, ids, the queue, bind, close,
// and the routing the core fills into every message.
#include <vector>

#include "test_support.hpp"

namespace veridian::ipc {
namespace {

using test::CoreTest;
using test::kOther;
using test::kOwner;
using test::tag_of;
using test::tagged;

using SeedPort = CoreTest;
using EndpointIds = CoreTest;
using SendAsync = CoreTest;
using TryReceive = CoreTest;
using Close = CoreTest;
using Bind = CoreTest;
using Routing = CoreTest;
using EndpointCapacity = CoreTest;

// The seed's test_endpoint_creation.
TEST_F(SeedPort, EndpointCreationSetsOwnerAndActive) {
    Result<Endpoint> endpoint = registry.create_endpoint(ProcessId{1});
    ASSERT_IPC_OK(endpoint);
    EXPECT_EQ(endpoint->owner(), ProcessId{1});
    EXPECT_TRUE(endpoint->is_active());
}

// The seed's test_channel_creation.
TEST_F(SeedPort, ChannelCreationGivesDistinctSendAndReceiveIds) {
    Result<Channel> channel = registry.create_channel(ProcessId{1}, 100);
    ASSERT_IPC_OK(channel);
    EXPECT_NE(channel->send_id(), channel->receive_id());
}

// The seed's test_async_send_receive.
TEST_F(SeedPort, AsyncSendThenTryReceiveRoundTripsTheCapability) {
    Result<Endpoint> endpoint = registry.create_endpoint(ProcessId{1});
    ASSERT_IPC_OK(endpoint);
    const Message msg = Message::small(0x1234, 42);
    EXPECT_IPC_OK(endpoint->send_async(msg));
    Result<Message> received = endpoint->try_receive();
    ASSERT_IPC_OK(received);
    EXPECT_EQ(received->capability(), 0x1234u);
    EXPECT_EQ(received->opcode(), 42u);
}

TEST_F(EndpointIds, StartAtOneOrMoreAndStrictlyIncrease) {
    EndpointId previous = 0;
    for (int i = 0; i < 10; ++i) {
        Endpoint e = make_endpoint(1);
        EXPECT_GE(e.id(), 1u);
        EXPECT_GT(e.id(), previous);
        previous = e.id();
    }
}

TEST_F(EndpointIds, AreNeverReusedAfterRemovalEvenWhenTheSlotIs) {
    ThreadsPlatform p;
    HeapAllocator a;
    Registry one(p, a, 1);
    std::vector<EndpointId> ids;
    for (int i = 0; i < 5; ++i) {
        Result<Endpoint> e = one.create_endpoint(kOwner, 1);
        ASSERT_IPC_OK(e);
        if (!ids.empty()) {
            EXPECT_GT(e->id(), ids.back());
        }
        ids.push_back(e->id());
        ASSERT_IPC_OK(one.remove_endpoint(e->id(), kOwner));
    }
}

TEST_F(EndpointIds, AreUniqueAcrossRegistries) {
    ThreadsPlatform p;
    HeapAllocator a;
    Registry other(p, a, 4);
    Endpoint first = make_endpoint(1);
    Result<Endpoint> second = other.create_endpoint(kOwner, 1);
    ASSERT_IPC_OK(second);
    Endpoint third = make_endpoint(1);
    EXPECT_GT(second->id(), first.id());
    EXPECT_GT(third.id(), second->id());
}

TEST_F(SendAsync, FullQueueGivesChannelFullAndKeepsWhatIsQueued) {
    Endpoint e = make_endpoint(2);
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    ASSERT_IPC_OK(e.send_async(tagged(2)));
    EXPECT_IPC_ERROR(e.send_async(tagged(3)), IpcError::ChannelFull);
    EXPECT_EQ(tag_of(e.try_receive().value_or(Message())), 1u);
    EXPECT_EQ(tag_of(e.try_receive().value_or(Message())), 2u);
    EXPECT_IPC_ERROR(e.try_receive(), IpcError::ChannelEmpty);
}

TEST_F(SendAsync, CarriesTheWholeSmallMessage) {
    Endpoint e = make_endpoint();
    Message m = Message::small(0xABCDEF, 77);
    m.set_flags(MessageFlags::URGENT | 0xBEEF0000u);
    for (u64 i = 0; i < 4; ++i)
        m.small_message().data[i] = 0x1111111111111111ull * (i + 1);
    ASSERT_IPC_OK(e.send_async(m));
    Result<Message> r = e.try_receive();
    ASSERT_IPC_OK(r);
    EXPECT_EQ(r->capability(), 0xABCDEFu);
    EXPECT_EQ(r->opcode(), 77u);
    EXPECT_EQ(r->flags(), MessageFlags::URGENT | 0xBEEF0000u);
    for (u64 i = 0; i < 4; ++i)
        EXPECT_EQ(r->small_message().data[i], m.small_message().data[i]);
}

TEST_F(SendAsync, CarriesALargeMessage) {
    Endpoint e = make_endpoint();
    LargeMessage large{};
    large.header.opcode = 5;
    large.header.total_size = 64;
    for (usize i = 0; i < LARGE_MESSAGE_INLINE_BYTES; ++i)
        large.inline_data[i] = static_cast<u8>(i);
    large.header.checksum = payload_checksum(large.inline_data, LARGE_MESSAGE_INLINE_BYTES);
    ASSERT_IPC_OK(e.send_async(Message(large)));
    Result<Message> r = e.try_receive();
    ASSERT_IPC_OK(r);
    ASSERT_TRUE(r->is_large());
    EXPECT_EQ(r->large_message().header.checksum,
              payload_checksum(r->large_message().inline_data, LARGE_MESSAGE_INLINE_BYTES));
    EXPECT_EQ(r->large_message().inline_data[63], 63);
}

TEST_F(EndpointCapacity, IsClampedToAtLeastOne) {
    Endpoint e = make_endpoint(0);
    EXPECT_EQ(stats_of(e).capacity, 1u);
    EXPECT_IPC_OK(e.send_async(tagged(1)));
    EXPECT_IPC_ERROR(e.send_async(tagged(2)), IpcError::ChannelFull);
}

TEST_F(EndpointCapacity, IsClampedToAtMostMaxChannelQueueSize) {
    EXPECT_EQ(MAX_CHANNEL_QUEUE_SIZE, 1024u);
    Endpoint e = make_endpoint(100000);
    EXPECT_EQ(stats_of(e).capacity, MAX_CHANNEL_QUEUE_SIZE);
    for (u32 i = 0; i < MAX_CHANNEL_QUEUE_SIZE; ++i)
        ASSERT_IPC_OK(e.send_async(tagged(i)));
    EXPECT_IPC_ERROR(e.send_async(tagged(0)), IpcError::ChannelFull);
}

TEST_F(EndpointCapacity, DefaultsToMaxChannelQueueSize) {
    Result<Endpoint> e = registry.create_endpoint(kOwner);
    ASSERT_IPC_OK(e);
    EXPECT_EQ(stats_of(*e).capacity, MAX_CHANNEL_QUEUE_SIZE);
}

TEST_F(Close, DiscardsBufferedMessagesAndCountsThem) {
    Endpoint e = make_endpoint(8);
    for (u64 i = 0; i < 5; ++i)
        ASSERT_IPC_OK(e.send_async(tagged(i)));
    ASSERT_IPC_OK(e.close());
    const EndpointStats s = stats_of(e);
    EXPECT_EQ(s.discarded_on_close, 5u);
    EXPECT_EQ(s.queued, 0u);
    EXPECT_IPC_ERROR(e.try_receive(), IpcError::EndpointNotFound);
    ASSERT_IPC_OK(e.close());
    EXPECT_EQ(stats_of(e).discarded_on_close, 5u);  // a second close discards nothing more
}

TEST_F(Close, LeavesStatsReadableAndInactive) {
    Endpoint e = make_endpoint();
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    ASSERT_IPC_OK(e.close());
    Result<EndpointStats> s = e.stats();
    ASSERT_IPC_OK(s);
    EXPECT_FALSE(s->active);
    EXPECT_EQ(s->sent, 1u);
}

TEST_F(Close, DoesNotRemoveTheEndpointFromTheRegistry) {
    Endpoint e = make_endpoint();
    ASSERT_IPC_OK(e.close());
    EXPECT_IPC_OK(registry.lookup(e.id()));
    EXPECT_EQ(registry.stats().live, 1u);
    EXPECT_IPC_OK(registry.remove_endpoint(e.id(), kOwner));
}

TEST_F(Bind, FirstBindSucceedsASecondGivesEndpointBusy) {
    Endpoint e = make_endpoint();
    EXPECT_IPC_OK(e.bind(kOther));
    EXPECT_IPC_ERROR(e.bind(kOther), IpcError::EndpointBusy);
    EXPECT_IPC_ERROR(e.bind(ProcessId{3}), IpcError::EndpointBusy);
}

TEST_F(Bind, EachEndpointIsBoundSeparately) {
    Endpoint a = make_endpoint();
    Endpoint b = make_endpoint();
    EXPECT_IPC_OK(a.bind(kOther));
    EXPECT_IPC_OK(b.bind(kOther));
}

TEST_F(Bind, CloseUnbindsSoAClosedEndpointIsNotBusyButGone) {
    Endpoint e = make_endpoint();
    ASSERT_IPC_OK(e.bind(kOther));
    ASSERT_IPC_OK(e.close());
    EXPECT_IPC_ERROR(e.bind(kOther), IpcError::EndpointNotFound);
}

TEST_F(Bind, StatsShowTheBoundProcessUntilClose) {
    Endpoint e = make_endpoint();
    EXPECT_FALSE(e.stats()->bound);
    ASSERT_IPC_OK(e.bind(kOther));
    EXPECT_TRUE(e.stats()->bound);
    EXPECT_EQ(e.stats()->bound_to, kOther);
    ASSERT_IPC_OK(e.close());
    EXPECT_FALSE(e.stats()->bound);
}

TEST_F(Bind, ASlotReusedAfterRemovalStartsUnbound) {
    ThreadsPlatform p;
    HeapAllocator a;
    Registry one(p, a, 1);
    Endpoint first = *one.create_endpoint(kOwner, 1);
    ASSERT_IPC_OK(first.bind(kOther));
    ASSERT_IPC_OK(one.remove_endpoint(first.id(), kOwner));
    Result<Endpoint> second = one.create_endpoint(kOwner, 1);
    ASSERT_IPC_OK(second);
    EXPECT_IPC_OK(second->bind(kOther));
}

TEST_F(Routing, SendSyncStampsTheHolderOfTheSendingSpace) {
    Endpoint e = make_endpoint();
    ASSERT_IPC_OK(give(e, ProcessId{42}, Rights::SEND).send_sync(tagged(1), bound()));
    Result<Message> m = e.try_receive();
    ASSERT_IPC_OK(m);
    EXPECT_EQ(m->sender(), ProcessId{42});
}

TEST_F(Routing, SendAsyncStampsTheHolderNotTheCurrentProcess) {
    Endpoint e = make_endpoint();
    Endpoint client = give(e, ProcessId{31}, Rights::SEND);
    ThreadsPlatform::set_current_process(ProcessId{32});
    ASSERT_IPC_OK(client.send_async(tagged(1)));
    ThreadsPlatform::set_current_process(ProcessId{});
    Result<Message> m = e.try_receive();
    ASSERT_IPC_OK(m);
    EXPECT_EQ(m->sender(), ProcessId{31});
}

TEST_F(Routing, PlainSendsCannotForgeATransactionIdOrSender) {
    Endpoint e = make_endpoint();
    Message forged = tagged(1);
    forged.set_transaction_id(99);
    forged.set_sender(ProcessId{666});
    forged.set_badge(0xBAD);
    ASSERT_IPC_OK(e.send_async(forged));
    ASSERT_IPC_OK(give(e, ProcessId{5}, Rights::SEND).send_sync(forged, bound()));
    Result<Message> a = e.try_receive();
    Result<Message> b = e.try_receive();
    ASSERT_IPC_OK(a);
    ASSERT_IPC_OK(b);
    EXPECT_EQ(a->transaction_id(), 0u);
    EXPECT_EQ(b->transaction_id(), 0u);
    EXPECT_EQ(a->sender(), kOwner);
    EXPECT_EQ(b->sender(), ProcessId{5});
    EXPECT_EQ(a->badge(), 0u);
    EXPECT_EQ(b->badge(), 0u);
}

}  // namespace
}  // namespace veridian::ipc
