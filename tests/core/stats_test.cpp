// SPDX-License-Identifier: MIT OR Apache-2.0
// EndpointStats: each counter, checked by making it move.
#include <thread>

#include "test_support.hpp"

namespace veridian::ipc {
namespace {

using test::CoreTest;
using test::kMillisecond;
using test::kOther;
using test::kOwner;
using test::tagged;

using Stats = CoreTest;

TEST_F(Stats, NewEndpointStartsWithZeroCountersAndItsCapacity) {
    const EndpointStats s = stats_of(make_endpoint(7));
    EXPECT_EQ(s.sent, 0u);
    EXPECT_EQ(s.received, 0u);
    EXPECT_EQ(s.fast_path_hits, 0u);
    EXPECT_EQ(s.slow_path, 0u);
    EXPECT_EQ(s.blocked, 0u);
    EXPECT_EQ(s.timed_out, 0u);
    EXPECT_EQ(s.full, 0u);
    EXPECT_EQ(s.discarded_on_close, 0u);
    EXPECT_EQ(s.queued, 0u);
    EXPECT_EQ(s.capacity, 7u);
    EXPECT_EQ(s.waiting_senders + s.waiting_receivers + s.waiting_callers, 0u);
    EXPECT_TRUE(s.active);
}

TEST_F(Stats, AReusedSlotStartsWithZeroCounters) {
    ThreadsPlatform p;
    HeapAllocator a;
    Registry one(p, a, 1);
    Endpoint first = *one.create_endpoint(kOwner, 2);
    ASSERT_IPC_OK(first.send_async(tagged(1)));
    ASSERT_IPC_OK(one.remove_endpoint(first.id(), kOwner));
    Endpoint second = *one.create_endpoint(kOwner, 2);
    const EndpointStats s = stats_of(second);
    EXPECT_EQ(s.sent, 0u);
    EXPECT_EQ(s.discarded_on_close, 0u);
    EXPECT_EQ(s.queued, 0u);
}

TEST_F(Stats, SentCountsEveryAcceptedMessageAndNoRefusedOne) {
    Endpoint e = make_endpoint(2);
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    ASSERT_IPC_OK(e.send_sync(tagged(2), bound()));
    EXPECT_IPC_ERROR(e.send_async(tagged(3)), IpcError::ChannelFull);
    EXPECT_EQ(stats_of(e).sent, 2u);
}

TEST_F(Stats, ReceivedCountsEveryTakenMessage) {
    Endpoint e = make_endpoint();
    for (u64 i = 0; i < 3; ++i)
        ASSERT_IPC_OK(e.send_async(tagged(i)));
    ASSERT_IPC_OK(e.try_receive());
    ASSERT_IPC_OK(e.receive_sync(bound()));
    EXPECT_EQ(stats_of(e).received, 2u);
    ASSERT_IPC_OK(e.try_receive());
    EXPECT_IPC_ERROR(e.try_receive(), IpcError::ChannelEmpty);
    EXPECT_EQ(stats_of(e).received, 3u);
}

TEST_F(Stats, QueuedFollowsTheQueue) {
    Endpoint e = make_endpoint();
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    ASSERT_IPC_OK(e.send_async(tagged(2)));
    EXPECT_EQ(stats_of(e).queued, 2u);
    ASSERT_IPC_OK(e.try_receive());
    EXPECT_EQ(stats_of(e).queued, 1u);
}

TEST_F(Stats, BlockedCountsOperationsThatHadToWait) {
    Endpoint e = make_endpoint(1);
    // A receive that finds a message does not block; one that finds none does.
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    ASSERT_IPC_OK(e.receive_sync(bound()));
    EXPECT_EQ(stats_of(e).blocked, 0u);
    EXPECT_IPC_ERROR(e.receive_sync(platform.after_ns(kMillisecond)), IpcError::Timeout);
    EXPECT_EQ(stats_of(e).blocked, 1u);
    // A send into a full queue blocks.
    ASSERT_IPC_OK(e.send_async(tagged(2)));
    EXPECT_IPC_ERROR(e.send_sync(tagged(3), platform.after_ns(kMillisecond)), IpcError::Timeout);
    EXPECT_EQ(stats_of(e).blocked, 2u);
}

TEST_F(Stats, TimedOutCountsBlockedOperationsEndingAtTheirDeadline) {
    Endpoint e = make_endpoint(1);
    EXPECT_IPC_ERROR(e.receive_sync(platform.after_ns(kMillisecond)), IpcError::Timeout);
    EXPECT_EQ(stats_of(e).timed_out, 1u);
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    EXPECT_IPC_ERROR(e.send_sync(tagged(2), Deadline::past()), IpcError::Timeout);
    EXPECT_EQ(stats_of(e).timed_out, 2u);
    ASSERT_IPC_OK(e.receive_sync(platform.after_ns(kMillisecond)));  // no timeout
    EXPECT_EQ(stats_of(e).timed_out, 2u);
}

TEST_F(Stats, FullCountsSendsThatFoundTheQueueFull) {
    Endpoint e = make_endpoint(1);
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    EXPECT_EQ(stats_of(e).full, 0u);
    EXPECT_IPC_ERROR(e.send_async(tagged(2)), IpcError::ChannelFull);
    EXPECT_EQ(stats_of(e).full, 1u);
    EXPECT_IPC_ERROR(e.send_sync(tagged(3), Deadline::past()), IpcError::Timeout);
    EXPECT_EQ(stats_of(e).full, 2u);
    SmallMessage fast{};
    fast.capability = e.capability().raw();
    EXPECT_IPC_ERROR(fast_ipc_send(owner_space(), fast), IpcError::ChannelFull);
    EXPECT_EQ(stats_of(e).full, 3u);
}

TEST_F(Stats, DiscardedOnCloseCountsTheQueueAtClose) {
    Endpoint e = make_endpoint(4);
    for (u64 i = 0; i < 3; ++i)
        ASSERT_IPC_OK(e.send_async(tagged(i)));
    ASSERT_IPC_OK(e.try_receive());
    ASSERT_IPC_OK(e.close());
    EXPECT_EQ(stats_of(e).discarded_on_close, 2u);
}

TEST_F(Stats, WaitingCountsShowWhoIsBlocked) {
    Endpoint e = make_endpoint(1);
    std::jthread receiver([&] { (void)e.receive_sync(bound()); });
    ASSERT_TRUE(wait_for_receivers(e, 1));
    EXPECT_EQ(stats_of(e).waiting_senders, 0u);
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    receiver.join();
    EXPECT_EQ(stats_of(e).waiting_receivers, 0u);

    ASSERT_IPC_OK(e.send_async(tagged(2)));
    std::jthread sender([&] { (void)e.send_sync(tagged(3), bound()); });
    ASSERT_TRUE(wait_for_senders(e, 1));
    EXPECT_EQ(stats_of(e).waiting_receivers, 0u);
    ASSERT_IPC_OK(e.try_receive());
    sender.join();
    EXPECT_EQ(stats_of(e).waiting_senders, 0u);
    EXPECT_EQ(stats_of(e).queued, 1u);
}

TEST_F(Stats, SentAndReceivedIncludeHandOffsAndBlockedSenders) {
    Endpoint e = make_endpoint(1);
    std::jthread receiver([&] { (void)e.receive_sync(bound()); });
    ASSERT_TRUE(wait_for_receivers(e, 1));
    ASSERT_IPC_OK(e.send_async(tagged(1)));  // handed off
    receiver.join();
    EXPECT_EQ(stats_of(e).sent, 1u);
    EXPECT_EQ(stats_of(e).received, 1u);

    ASSERT_IPC_OK(e.send_async(tagged(2)));
    std::jthread sender([&] { (void)e.send_sync(tagged(3), bound()); });
    ASSERT_TRUE(wait_for_senders(e, 1));
    EXPECT_EQ(stats_of(e).sent, 2u);  // the blocked message is not accepted yet
    ASSERT_IPC_OK(e.try_receive());
    sender.join();
    EXPECT_EQ(stats_of(e).sent, 3u);
    EXPECT_EQ(stats_of(e).received, 2u);
}

TEST_F(Stats, BlockedAndTimedOutCountACallThatWaitedForItsReply) {
    Endpoint e = make_endpoint();
    EXPECT_IPC_ERROR(e.call(tagged(1), platform.after_ns(kMillisecond)), IpcError::Timeout);
    const EndpointStats s = stats_of(e);
    EXPECT_EQ(s.blocked, 1u);
    EXPECT_EQ(s.timed_out, 1u);
}

TEST_F(Stats, ACallRoundTripCountsTheRequestAndTheReply) {
    Endpoint e = make_endpoint();
    std::jthread server([&] {
        Result<Message> request = e.receive_sync(bound());
        if (request) (void)e.reply(*request, tagged(2));
    });
    ASSERT_IPC_OK(e.call(tagged(1), bound()));
    server.join();
    const EndpointStats s = stats_of(e);
    EXPECT_EQ(s.sent, 2u);
    EXPECT_EQ(s.received, 2u);
}

}  // namespace
}  // namespace veridian::ipc
