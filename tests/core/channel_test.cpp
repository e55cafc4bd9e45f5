// SPDX-License-Identifier: MIT OR Apache-2.0
// Channel: two endpoints owned together, capacity clamped to 1..1024 and enforced.
#include "test_support.hpp"

namespace veridian::ipc::channel_spec {
namespace {

using test::CoreTest;
using test::kOwner;
using test::tag_of;
using test::tagged;

// The suite is named for the type; inside this namespace `Channel` is the fixture, and the
// type is spelled ipc::Channel.
using Channel = CoreTest;

TEST_F(Channel, CapacityBelowOneIsClampedToOne) {
    Result<ipc::Channel> c = registry.create_channel(kOwner, 0);
    ASSERT_IPC_OK(c);
    EXPECT_EQ(c->capacity(), 1u);
    EXPECT_EQ(stats_of(c->receive_endpoint()).capacity, 1u);
    EXPECT_EQ(stats_of(c->send_endpoint()).capacity, 1u);
}

TEST_F(Channel, CapacityAbove1024IsClampedTo1024) {
    Result<ipc::Channel> c = registry.create_channel(kOwner, 5000);
    ASSERT_IPC_OK(c);
    EXPECT_EQ(c->capacity(), 1024u);
    EXPECT_EQ(stats_of(c->receive_endpoint()).capacity, 1024u);
}

TEST_F(Channel, SendBeyondCapacityGivesChannelFull) {
    Result<ipc::Channel> c = registry.create_channel(kOwner, 3);
    ASSERT_IPC_OK(c);
    for (u64 i = 0; i < 3; ++i)
        ASSERT_IPC_OK(c->send(tagged(i)));
    EXPECT_IPC_ERROR(c->send(tagged(3)), IpcError::ChannelFull);
    ASSERT_IPC_OK(c->receive());
    EXPECT_IPC_OK(c->send(tagged(3)));  // one place freed, one more accepted
    EXPECT_IPC_ERROR(c->send(tagged(4)), IpcError::ChannelFull);
}

TEST_F(Channel, MaximumCapacityIsEnforcedToo) {
    Result<ipc::Channel> c = registry.create_channel(kOwner, 1024);
    ASSERT_IPC_OK(c);
    for (u64 i = 0; i < 1024; ++i)
        ASSERT_IPC_OK(c->send(tagged(i)));
    EXPECT_IPC_ERROR(c->send(tagged(1024)), IpcError::ChannelFull);
}

TEST_F(Channel, SendAndReceiveGoThroughTheReceiveEndpointInOrder) {
    Result<ipc::Channel> c = registry.create_channel(kOwner, 4);
    ASSERT_IPC_OK(c);
    ASSERT_IPC_OK(c->send(tagged(1)));
    ASSERT_IPC_OK(c->send(tagged(2)));
    EXPECT_EQ(stats_of(c->receive_endpoint()).queued, 2u);
    EXPECT_EQ(stats_of(c->send_endpoint()).queued, 0u);
    EXPECT_EQ(tag_of(c->receive().value_or(Message())), 1u);
    EXPECT_EQ(tag_of(c->receive().value_or(Message())), 2u);
    EXPECT_IPC_ERROR(c->receive(), IpcError::ChannelEmpty);
}

TEST_F(Channel, BothEndpointsBelongToTheOwner) {
    Result<ipc::Channel> c = registry.create_channel(ProcessId{9}, 4);
    ASSERT_IPC_OK(c);
    EXPECT_EQ(c->send_endpoint().owner(), ProcessId{9});
    EXPECT_EQ(c->receive_endpoint().owner(), ProcessId{9});
    EXPECT_EQ(c->send_endpoint().id(), c->send_id());
    EXPECT_EQ(c->receive_endpoint().id(), c->receive_id());
}

TEST_F(Channel, CloseRemovesBothEndpoints) {
    Result<ipc::Channel> c = registry.create_channel(kOwner, 4);
    ASSERT_IPC_OK(c);
    const Endpoint send = c->send_endpoint();
    const Endpoint receive = c->receive_endpoint();
    c->close();
    EXPECT_IPC_ERROR(registry.lookup(send.id()), IpcError::EndpointNotFound);
    EXPECT_IPC_ERROR(registry.lookup(receive.id()), IpcError::EndpointNotFound);
    EXPECT_FALSE(send.is_active());
    EXPECT_FALSE(receive.is_active());
    EXPECT_IPC_ERROR(c->send(tagged(1)), IpcError::InvalidCapability);
    c->close();  // idempotent
    EXPECT_EQ(registry.stats().live, 0u);
}

TEST_F(Channel, DestructorRemovesBothEndpoints) {
    {
        Result<ipc::Channel> c = registry.create_channel(kOwner, 4);
        ASSERT_IPC_OK(c);
        EXPECT_EQ(registry.stats().live, 2u);
    }
    EXPECT_EQ(registry.stats().live, 0u);
}

TEST_F(Channel, MoveTransfersOwnershipOfBothEndpoints) {
    Result<ipc::Channel> made = registry.create_channel(kOwner, 4);
    ASSERT_IPC_OK(made);
    const EndpointId receive_id = made->receive_id();
    ipc::Channel moved = static_cast<ipc::Channel&&>(*made);
    EXPECT_EQ(made->receive_id(), 0u);
    made->close();  // the moved-from channel owns nothing
    EXPECT_EQ(registry.stats().live, 2u);
    EXPECT_EQ(moved.receive_id(), receive_id);
    EXPECT_IPC_OK(moved.send(tagged(1)));
    EXPECT_IPC_OK(moved.receive());
}

TEST_F(Channel, CreationThatRunsOutOfSlotsHalfwayLeavesNothingBehind) {
    ThreadsPlatform p;
    HeapAllocator a;
    ipc::Registry one(p, a, 1);
    EXPECT_IPC_ERROR(one.create_channel(kOwner, 4), IpcError::OutOfMemory);
    EXPECT_EQ(one.stats().live, 0u);
    EXPECT_IPC_OK(one.create_endpoint(kOwner, 4));  // the slot was given back
}

}  // namespace
}  // namespace veridian::ipc::channel_spec
