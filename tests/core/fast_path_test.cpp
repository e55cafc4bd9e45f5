// SPDX-License-Identifier: MIT OR Apache-2.0
// fast_ipc_send: the register-sized fast path. A full O(1) capability check, then a direct
// hand-off into a blocked receiver's parking slot, or the slow path (the queue).
#include <thread>

#include "test_support.hpp"

namespace veridian::ipc {
namespace {

using test::CoreTest;
using test::kOwner;
using test::tagged;

using FastPath = CoreTest;

SmallMessage fast_message(const Endpoint& target, u32 opcode) {
    SmallMessage m{};
    m.capability = target.capability().raw();
    m.opcode = opcode;
    m.flags = MessageFlags::URGENT;
    m.data[0] = 0x0101010101010101ull;
    m.data[1] = 0x2020202020202020ull;
    m.data[2] = 0x0303030303030303ull;
    m.data[3] = 0x4040404040404040ull;
    return m;
}

TEST_F(FastPath, HandsOffDirectlyToABlockedReceiver) {
    Endpoint e = make_endpoint(1);
    Result<Message> got = IpcError::NotInitialized;
    std::jthread receiver([&] { got = e.receive_sync(bound()); });
    ASSERT_TRUE(wait_for_receivers(e, 1));
    const SmallMessage sent = fast_message(e, 77);
    ASSERT_IPC_OK(fast_ipc_send(owner_space(), sent));
    receiver.join();

    const EndpointStats s = stats_of(e);
    EXPECT_EQ(s.fast_path_hits, 1u);
    EXPECT_EQ(s.slow_path, 0u);
    EXPECT_EQ(s.queued, 0u);
    ASSERT_IPC_OK(got);
    ASSERT_TRUE(got->is_small());
    const SmallMessage& m = got->small_message();  // all 48 bytes arrived
    EXPECT_EQ(m.capability, sent.capability);
    EXPECT_EQ(m.opcode, 77u);
    EXPECT_EQ(m.flags, MessageFlags::URGENT);
    for (int i = 0; i < 4; ++i)
        EXPECT_EQ(m.data[i], sent.data[i]);
}

TEST_F(FastPath, FallsBackToTheQueueWhenNoReceiverIsBlocked) {
    Endpoint e = make_endpoint(4);
    ASSERT_IPC_OK(fast_ipc_send(owner_space(), fast_message(e, 5)));
    const EndpointStats s = stats_of(e);
    EXPECT_EQ(s.fast_path_hits, 0u);
    EXPECT_EQ(s.slow_path, 1u);
    EXPECT_EQ(s.queued, 1u);
    Result<Message> m = e.try_receive();
    ASSERT_IPC_OK(m);
    EXPECT_EQ(m->opcode(), 5u);
    EXPECT_EQ(m->small_message().data[3], 0x4040404040404040ull);
}

TEST_F(FastPath, NeverBlocksOnAFullQueue) {
    Endpoint e = make_endpoint(1);
    ASSERT_IPC_OK(fast_ipc_send(owner_space(), fast_message(e, 1)));
    EXPECT_IPC_ERROR(fast_ipc_send(owner_space(), fast_message(e, 2)), IpcError::ChannelFull);
    EXPECT_EQ(stats_of(e).blocked, 0u);
    EXPECT_EQ(stats_of(e).queued, 1u);
}

TEST_F(FastPath, RejectsCapabilityZero) {
    Endpoint e = make_endpoint();
    SmallMessage m = fast_message(e, 1);
    m.capability = 0;
    EXPECT_IPC_ERROR(fast_ipc_send(owner_space(), m), IpcError::InvalidCapability);
    EXPECT_EQ(stats_of(e).sent, 0u);
}

TEST_F(FastPath, RejectsAForgedToken) {
    Endpoint e = make_endpoint();
    SmallMessage m = fast_message(e, 1);
    const Capability real = e.capability();
    m.capability = Capability::make(real.index(), real.check() + 7).raw();
    EXPECT_IPC_ERROR(fast_ipc_send(owner_space(), m), IpcError::InvalidCapability);
    m.capability = Capability::make(real.index() + 500, real.check()).raw();
    EXPECT_IPC_ERROR(fast_ipc_send(owner_space(), m), IpcError::InvalidCapability);
    EXPECT_EQ(stats_of(e).sent, 0u);
}

TEST_F(FastPath, RejectsARevokedToken) {
    Endpoint e = make_endpoint();
    const SmallMessage stale = fast_message(e, 1);
    Result<Endpoint> fresh = e.revoke_all();
    ASSERT_IPC_OK(fresh);
    EXPECT_IPC_ERROR(fast_ipc_send(owner_space(), stale), IpcError::InvalidCapability);
    EXPECT_IPC_OK(fast_ipc_send(owner_space(), fast_message(*fresh, 2)));
}

TEST_F(FastPath, RejectsATokenWithoutTheSendRight) {
    Endpoint e = make_endpoint();
    const SmallMessage m = fast_message(e.derive(Rights::RECEIVE | Rights::REVOKE).value(), 1);
    EXPECT_IPC_ERROR(fast_ipc_send(owner_space(), m), IpcError::PermissionDenied);
    EXPECT_IPC_OK(fast_ipc_send(owner_space(), fast_message(e.derive(Rights::SEND).value(), 1)));
}

TEST_F(FastPath, StampsTheHolderOfTheSendingSpaceAndItsBadgeAsSender) {
    Endpoint e = make_endpoint();
    const Endpoint client = give(e, ProcessId{44}, Rights::SEND, /*badge=*/0xB0B);
    ThreadsPlatform::set_current_process(ProcessId{45});  // not what the core stamps
    ASSERT_IPC_OK(fast_ipc_send(space_of(ProcessId{44}), fast_message(client, 1)));
    ThreadsPlatform::set_current_process(ProcessId{});
    Result<Message> m = e.try_receive();
    ASSERT_IPC_OK(m);
    EXPECT_EQ(m->sender(), ProcessId{44});
    EXPECT_EQ(m->badge(), 0xB0Bu);
    EXPECT_EQ(m->transaction_id(), 0u);
}

TEST_F(FastPath, RefusesToCarryACapability) {
    Endpoint e = make_endpoint();
    SmallMessage m = fast_message(e, 1);
    m.flags = MessageFlags::HAS_CAPABILITY;
    m.data[0] = e.capability().raw();
    EXPECT_IPC_ERROR(fast_ipc_send(owner_space(), m), IpcError::InvalidMessage);
    EXPECT_EQ(stats_of(e).sent, 0u);
}

TEST_F(FastPath, EveryHitOrFallbackIsCountedOnce) {
    Endpoint e = make_endpoint(8);
    constexpr int kRounds = 20;
    for (int i = 0; i < kRounds; ++i) {
        Result<Message> got = IpcError::NotInitialized;
        std::jthread receiver([&] { got = e.receive_sync(bound()); });
        ASSERT_TRUE(wait_for_receivers(e, 1));
        ASSERT_IPC_OK(fast_ipc_send(owner_space(), fast_message(e, 1)));  // hit
        receiver.join();
        ASSERT_IPC_OK(got);
        ASSERT_IPC_OK(fast_ipc_send(owner_space(), fast_message(e, 2)));  // fallback
        ASSERT_IPC_OK(e.try_receive());
    }
    const EndpointStats s = stats_of(e);
    EXPECT_EQ(s.fast_path_hits, u64{kRounds});
    EXPECT_EQ(s.slow_path, u64{kRounds});
    EXPECT_EQ(s.sent, u64{2 * kRounds});
}

}  // namespace
}  // namespace veridian::ipc
