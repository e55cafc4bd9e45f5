// SPDX-License-Identifier: MIT OR Apache-2.0
// Blocking between threads: send_sync on a full queue, receive_sync on an empty one,
// deadlines, and close waking every waiter. Each test learns that a thread is blocked by
// polling the endpoint's waiter counts, and every blocking call has a deadline.
#include <atomic>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace veridian::ipc {
namespace {

using test::CoreTest;
using test::kMillisecond;
using test::kOther;
using test::kOwner;
using test::outcome;
using test::tag_of;
using test::tagged;

using SendSync = CoreTest;
using ReceiveSync = CoreTest;
using CloseWakes = CoreTest;
using Handoff = CoreTest;

TEST_F(SendSync, BlockedSendersAreAdmittedInArrivalOrder) {
    Endpoint e = make_endpoint(1);
    ASSERT_IPC_OK(e.send_async(tagged(0)));
    std::vector<std::jthread> senders;
    std::vector<Result<void>> results(3, Result<void>(IpcError::NotInitialized));
    for (u64 i = 1; i <= 3; ++i) {
        senders.emplace_back([&, i] { results[i - 1] = e.send_sync(tagged(i), bound()); });
        ASSERT_TRUE(wait_for_senders(e, static_cast<u32>(i)));  // i-th sender is in line
    }
    for (u64 expected = 0; expected <= 3; ++expected) {
        Result<Message> m = e.receive_sync(bound());
        ASSERT_IPC_OK(m);
        EXPECT_EQ(tag_of(*m), expected);
    }
    for (std::jthread& t : senders)
        t.join();
    for (const Result<void>& r : results)
        EXPECT_IPC_OK(r);
}

TEST_F(SendSync, PastDeadlineOnAFullQueueGivesTimeoutAtOnce) {
    Endpoint e = make_endpoint(1);
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    EXPECT_IPC_ERROR(e.send_sync(tagged(2), Deadline::past()), IpcError::Timeout);
}

TEST_F(ReceiveSync, ReturnsAQueuedMessageWithoutBlocking) {
    Endpoint e = make_endpoint();
    ASSERT_IPC_OK(e.send_async(tagged(4)));
    Result<Message> m = e.receive_sync(Deadline::past());
    ASSERT_IPC_OK(m);
    EXPECT_EQ(tag_of(*m), 4u);
    EXPECT_EQ(stats_of(e).blocked, 0u);
}

TEST_F(ReceiveSync, PastDeadlineOnAnEmptyQueueGivesTimeoutNotWouldBlock) {
    Endpoint e = make_endpoint();
    EXPECT_IPC_ERROR(e.receive_sync(Deadline::past()), IpcError::Timeout);
}

// Many receivers wait while senders trickle messages in; every receive ends with a message
// (or, for the receivers left over at the end, with close), never with WouldBlock.
TEST_F(ReceiveSync, NeverReturnsWouldBlockSpuriously) {
    constexpr int kReceivers = 4;
    constexpr int kMessagesPerReceiver = 2000;
    Endpoint e = make_endpoint(4);
    std::atomic<int> would_block{0};
    std::atomic<int> other_errors{0};
    std::atomic<int> received{0};
    std::vector<std::jthread> receivers;
    for (int r = 0; r < kReceivers; ++r) {
        receivers.emplace_back([&] {
            for (int i = 0; i < kMessagesPerReceiver; ++i) {
                Result<Message> m = e.receive_sync(bound());
                if (m) {
                    received.fetch_add(1);
                } else if (m.error() == IpcError::WouldBlock) {
                    would_block.fetch_add(1);
                } else {
                    other_errors.fetch_add(1);
                }
            }
        });
    }
    for (int i = 0; i < kReceivers * kMessagesPerReceiver; ++i) {
        if (i % 64 == 0) {
            // Now and then, wait until every receiver is parked, so hand-offs to parked
            // receivers are exercised as well as queue hits.
            wait_for(e, [](const EndpointStats& s) { return s.waiting_receivers > 0; });
        }
        ASSERT_IPC_OK(e.send_sync(tagged(static_cast<u64>(i)), bound()));
    }
    for (std::jthread& t : receivers)
        t.join();
    EXPECT_EQ(would_block.load(), 0);
    EXPECT_EQ(other_errors.load(), 0);
    EXPECT_EQ(received.load(), kReceivers * kMessagesPerReceiver);
}

TEST_F(CloseWakes, EveryBlockedReceiverWithEndpointNotFound) {
    constexpr int kReceivers = 4;
    Endpoint e = make_endpoint();
    std::vector<Result<Message>> results(kReceivers, Result<Message>(IpcError::NotInitialized));
    std::vector<std::jthread> receivers;
    for (int i = 0; i < kReceivers; ++i) {
        receivers.emplace_back([&, i] { results[i] = e.receive_sync(bound()); });
    }
    ASSERT_TRUE(wait_for_receivers(e, kReceivers));
    ASSERT_IPC_OK(e.close());
    for (std::jthread& t : receivers)
        t.join();
    for (const Result<Message>& r : results)
        EXPECT_IPC_ERROR(r, IpcError::EndpointNotFound);
    EXPECT_EQ(stats_of(e).waiting_receivers, 0u);
}

TEST_F(CloseWakes, EveryBlockedSenderWithEndpointNotFoundAndCountsTheQueueAsDiscarded) {
    constexpr int kSenders = 3;
    constexpr u32 kCapacity = 2;
    Endpoint e = make_endpoint(kCapacity);
    for (u64 i = 0; i < kCapacity; ++i)
        ASSERT_IPC_OK(e.send_async(tagged(i)));
    std::vector<Result<void>> results(kSenders, Result<void>(IpcError::NotInitialized));
    std::vector<std::jthread> senders;
    for (int i = 0; i < kSenders; ++i) {
        senders.emplace_back([&, i] { results[i] = e.send_sync(tagged(100), bound()); });
    }
    ASSERT_TRUE(wait_for_senders(e, kSenders));
    ASSERT_IPC_OK(e.close());
    for (std::jthread& t : senders)
        t.join();
    for (const Result<void>& r : results)
        EXPECT_IPC_ERROR(r, IpcError::EndpointNotFound);
    const EndpointStats s = stats_of(e);
    EXPECT_EQ(s.discarded_on_close, kCapacity);  // the queued ones; blocked ones were refused
    EXPECT_EQ(s.sent, kCapacity);
    EXPECT_EQ(s.waiting_senders, 0u);
}

TEST_F(CloseWakes, ReceiversOnOneEndpointAndSendersOnAnotherAllAtOnce) {
    constexpr int kReceivers = 3;
    constexpr int kSenders = 3;
    Endpoint empty = make_endpoint(4);
    Endpoint full = make_endpoint(1);
    ASSERT_IPC_OK(full.send_async(tagged(0)));
    std::atomic<int> not_found{0};
    std::vector<std::jthread> threads;
    for (int i = 0; i < kReceivers; ++i) {
        threads.emplace_back([&] {
            Result<Message> r = empty.receive_sync(bound());
            if (!r && r.error() == IpcError::EndpointNotFound) not_found.fetch_add(1);
        });
    }
    for (int i = 0; i < kSenders; ++i) {
        threads.emplace_back([&] {
            Result<void> r = full.send_sync(tagged(1), bound());
            if (!r && r.error() == IpcError::EndpointNotFound) not_found.fetch_add(1);
        });
    }
    ASSERT_TRUE(wait_for_receivers(empty, kReceivers));
    ASSERT_TRUE(wait_for_senders(full, kSenders));
    ASSERT_IPC_OK(registry.remove_endpoint(empty.id(), kOwner));
    ASSERT_IPC_OK(full.close());
    for (std::jthread& t : threads)
        t.join();
    EXPECT_EQ(not_found.load(), kReceivers + kSenders);
    EXPECT_EQ(stats_of(full).discarded_on_close, 1u);
}

TEST_F(CloseWakes, ABlockedReceiverWhenTheEndpointIsRemoved) {
    Endpoint e = make_endpoint();
    Result<Message> got = IpcError::NotInitialized;
    std::jthread receiver([&] { got = e.receive_sync(bound()); });
    ASSERT_TRUE(wait_for_receivers(e, 1));
    ASSERT_IPC_OK(registry.remove_endpoint(e.id(), kOwner));
    receiver.join();
    EXPECT_IPC_ERROR(got, IpcError::EndpointNotFound);
}

TEST_F(Handoff, SendAsyncHandsAMessageStraightToABlockedReceiver) {
    Endpoint e = make_endpoint(1);
    Result<Message> got = IpcError::NotInitialized;
    std::jthread receiver([&] { got = e.receive_sync(bound()); });
    ASSERT_TRUE(wait_for_receivers(e, 1));
    ASSERT_IPC_OK(e.send_async(tagged(21)));
    // Handed over, not queued: the one-place queue is still free.
    EXPECT_EQ(stats_of(e).queued, 0u);
    EXPECT_IPC_OK(e.send_async(tagged(22)));
    receiver.join();
    ASSERT_IPC_OK(got);
    EXPECT_EQ(tag_of(*got), 21u);
}

TEST_F(Handoff, EachBlockedReceiverGetsExactlyOneMessage) {
    constexpr int kReceivers = 3;
    Endpoint e = make_endpoint();
    std::vector<Result<Message>> results(kReceivers, Result<Message>(IpcError::NotInitialized));
    std::vector<std::jthread> receivers;
    for (int i = 0; i < kReceivers; ++i) {
        receivers.emplace_back([&, i] { results[i] = e.receive_sync(bound()); });
    }
    ASSERT_TRUE(wait_for_receivers(e, kReceivers));
    for (u64 i = 0; i < kReceivers; ++i)
        ASSERT_IPC_OK(e.send_async(tagged(i)));
    for (std::jthread& t : receivers)
        t.join();
    u64 seen = 0;
    for (const Result<Message>& r : results) {
        ASSERT_IPC_OK(r);
        seen |= u64{1} << tag_of(*r);
    }
    EXPECT_EQ(seen, 0b111u);
    EXPECT_EQ(stats_of(e).queued, 0u);
}

}  // namespace
}  // namespace veridian::ipc
