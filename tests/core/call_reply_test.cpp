// SPDX-License-Identifier: MIT OR Apache-2.0
// call_reply: a request tagged with a fresh transaction id, and the caller blocked until the
// reply with that id, its deadline, or close. Many callers may wait on one endpoint.
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
using test::tag_of;
using test::tagged;

using CallReply = CoreTest;

// Serves `count` requests on `server`: each reply carries the request's tag plus 1000.
void serve(Endpoint server, int count, Deadline deadline, std::atomic<int>* failures) {
    for (int i = 0; i < count; ++i) {
        Result<Message> request = server.receive_sync(deadline);
        if (!request) {
            failures->fetch_add(1);
            return;
        }
        if (!server.reply(*request, tagged(tag_of(*request) + 1000, request->opcode()))) {
            failures->fetch_add(1);
        }
    }
}

TEST_F(CallReply, RequestCarriesTheCallerAndAFreshTransactionId) {
    Endpoint e = make_endpoint();
    std::vector<Message> requests;
    std::jthread server([&] {
        for (int i = 0; i < 2; ++i) {
            Result<Message> r = e.receive_sync(bound());
            if (!r) return;
            requests.push_back(*r);
            (void)e.reply(*r, tagged(0));
        }
    });
    Message request = tagged(1);
    request.set_flags(MessageFlags::IS_REPLY);  // a caller cannot pass a request off as a reply
    ASSERT_IPC_OK(give(e, ProcessId{21}, Rights::SEND).call(request, bound()));
    ASSERT_IPC_OK(give(e, ProcessId{22}, Rights::SEND).call(tagged(2), bound()));
    server.join();
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[0].sender(), ProcessId{21});
    EXPECT_EQ(requests[1].sender(), ProcessId{22});
    EXPECT_NE(requests[0].transaction_id(), 0u);
    EXPECT_NE(requests[1].transaction_id(), 0u);
    EXPECT_NE(requests[0].transaction_id(), requests[1].transaction_id());
    EXPECT_EQ(requests[0].flags() & MessageFlags::IS_REPLY, 0u);
}

TEST_F(CallReply, RepliesInAnyOrderReachTheirOwnCallers) {
    constexpr int kCallers = 4;
    Endpoint e = make_endpoint();
    std::vector<Result<Message>> replies(kCallers, Result<Message>(IpcError::NotInitialized));
    std::vector<Message> requests;
    {
        std::vector<std::jthread> callers;
        for (int c = 0; c < kCallers; ++c) {
            callers.emplace_back(
                [&, c] { replies[c] = e.call(tagged(static_cast<u64>(c)), bound()); });
        }
        for (int c = 0; c < kCallers; ++c) {
            Result<Message> r = e.receive_sync(bound());
            ASSERT_IPC_OK(r);
            requests.push_back(*r);
        }
        ASSERT_TRUE(wait_for_callers(e, kCallers));
        for (auto it = requests.rbegin(); it != requests.rend(); ++it) {  // last first
            ASSERT_IPC_OK(e.reply(*it, tagged(tag_of(*it) + 1000)));
        }
    }
    for (int c = 0; c < kCallers; ++c) {
        ASSERT_IPC_OK(replies[c]);
        EXPECT_EQ(tag_of(*replies[c]), static_cast<u64>(c) + 1000);
    }
}

TEST_F(CallReply, ReplyToAnUnknownTransactionGivesProcessNotFound) {
    Endpoint e = make_endpoint();
    Message made_up = tagged(1);
    made_up.set_transaction_id(987654);
    EXPECT_IPC_ERROR(e.reply(made_up, tagged(2)), IpcError::ProcessNotFound);
}

TEST_F(CallReply, ASecondReplyToTheSameRequestGivesProcessNotFound) {
    Endpoint e = make_endpoint();
    Result<Message> first = IpcError::NotInitialized;
    std::jthread caller([&] { first = e.call(tagged(1), bound()); });
    Result<Message> request = e.receive_sync(bound());
    ASSERT_IPC_OK(request);
    ASSERT_TRUE(wait_for_callers(e, 1));
    ASSERT_IPC_OK(e.reply(*request, tagged(2)));
    EXPECT_IPC_ERROR(e.reply(*request, tagged(3)), IpcError::ProcessNotFound);
    caller.join();
    ASSERT_IPC_OK(first);
    EXPECT_EQ(tag_of(*first), 2u);
}

TEST_F(CallReply, CallerBlockedSendingIntoAFullQueueWakesOnClose) {
    Endpoint e = make_endpoint(1);
    ASSERT_IPC_OK(e.send_async(tagged(0)));
    Result<Message> reply = IpcError::NotInitialized;
    std::jthread caller([&] { reply = e.call(tagged(1), bound()); });
    ASSERT_TRUE(wait_for_senders(e, 1));
    ASSERT_IPC_OK(e.close());
    caller.join();
    EXPECT_IPC_ERROR(reply, IpcError::EndpointNotFound);
    const EndpointStats s = stats_of(e);
    EXPECT_EQ(s.waiting_callers, 0u);
    EXPECT_EQ(s.waiting_senders, 0u);
}

TEST_F(CallReply, FullQueueUntilTheDeadlineGivesTimeoutAndLeavesNoCallerBehind) {
    Endpoint e = make_endpoint(1);
    ASSERT_IPC_OK(e.send_async(tagged(0)));
    EXPECT_IPC_ERROR(e.call(tagged(1), platform.after_ns(kMillisecond)), IpcError::Timeout);
    const EndpointStats s = stats_of(e);
    EXPECT_EQ(s.waiting_callers, 0u);
    EXPECT_EQ(s.waiting_senders, 0u);
    EXPECT_EQ(s.queued, 1u);
}

TEST_F(CallReply, FreeFunctionCallsTheEndpointTheCapabilityNames) {
    Endpoint e = make_endpoint();
    std::atomic<int> failures{0};
    std::jthread server([&] { serve(e, 1, bound(), &failures); });
    ThreadsPlatform::set_current_process(ProcessId{55});
    Result<Message> reply =
        call_reply(owner_space(), tagged(8), e.derive(Rights::SEND).value().capability(), bound());
    ThreadsPlatform::set_current_process(ProcessId{});
    server.join();
    ASSERT_IPC_OK(reply);
    EXPECT_EQ(tag_of(*reply), 1008u);
    EXPECT_EQ(failures.load(), 0);
}

TEST_F(CallReply, FreeFunctionStampsTheHolderOfTheCallingSpaceAsCaller) {
    Endpoint e = make_endpoint();
    ProcessId seen{};
    std::jthread server([&] {
        Result<Message> r = e.receive_sync(bound());
        if (!r) return;
        seen = r->sender();
        (void)e.reply(*r, tagged(0));
    });
    const Endpoint client = give(e, ProcessId{56}, Rights::SEND);
    ThreadsPlatform::set_current_process(ProcessId{57});  // not what the core stamps
    ASSERT_IPC_OK(call_reply(space_of(ProcessId{56}), tagged(1), client.capability(), bound()));
    ThreadsPlatform::set_current_process(ProcessId{});
    server.join();
    EXPECT_EQ(seen, ProcessId{56});
}

TEST_F(CallReply, FreeFunctionRejectsNullForgedAndUnprivilegedTargets) {
    Endpoint e = make_endpoint();
    EXPECT_IPC_ERROR(call_reply(owner_space(), tagged(1), Capability(), bound()),
                     IpcError::InvalidCapability);
    const Capability forged = Capability::make(e.capability().index(), e.capability().check() + 1);
    EXPECT_IPC_ERROR(call_reply(owner_space(), tagged(1), forged, bound()),
                     IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(call_reply(owner_space(), tagged(1),
                                e.derive(Rights::RECEIVE).value().capability(), bound()),
                     IpcError::PermissionDenied);
    EXPECT_EQ(stats_of(e).sent, 0u);
}

}  // namespace
}  // namespace veridian::ipc
