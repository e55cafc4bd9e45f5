// Capability tokens: the bit layout, derive, and how the registry rejects tokens that are
// null, forged, stale or under-privileged.
#include "test_support.hpp"

namespace veridian::ipc {
namespace {

using test::CoreTest;
using test::kOwner;
using test::tagged;

using CapabilityCheck = CoreTest;
using Revoke = CoreTest;
using NullHandle = CoreTest;

TEST(Capability, PacksIndexGenerationAndRightsIntoTheDocumentedBits) {
    const Capability c = Capability::make(0x89ABCDEFu, 0x1357, Rights::SEND | Rights::REVOKE);
    EXPECT_EQ(c.raw(),
              0x89ABCDEFull | (0x1357ull << 32) | (u64{Rights::SEND | Rights::REVOKE} << 48));
    EXPECT_EQ(c.index(), 0x89ABCDEFu);
    EXPECT_EQ(c.generation(), 0x1357u);
    EXPECT_EQ(c.rights(), Rights::SEND | Rights::REVOKE);
    EXPECT_TRUE(c.has_rights(Rights::SEND));
    EXPECT_FALSE(c.has_rights(Rights::SEND | Rights::RECEIVE));
    EXPECT_FALSE(c.is_null());
    EXPECT_TRUE(Capability().is_null());
}

TEST(Capability, RightsAreFourDistinctBits) {
    EXPECT_EQ(Rights::SEND | Rights::RECEIVE | Rights::GRANT | Rights::REVOKE, Rights::ALL);
    EXPECT_EQ(Rights::SEND & Rights::RECEIVE, 0);
    EXPECT_EQ(Rights::GRANT & Rights::REVOKE, 0);
    EXPECT_EQ((Rights::SEND | Rights::RECEIVE) & (Rights::GRANT | Rights::REVOKE), 0);
}

TEST(Capability, DeriveCanOnlyDropRights) {
    const Capability send_only = Capability::make(3, 5, Rights::SEND);
    const Capability widened = send_only.derive(Rights::ALL);
    EXPECT_EQ(widened.rights(), Rights::SEND);
    EXPECT_EQ(widened.index(), 3u);
    EXPECT_EQ(widened.generation(), 5u);
    EXPECT_EQ(Capability::make(3, 5, Rights::ALL).derive(Rights::RECEIVE).rights(),
              Rights::RECEIVE);
    EXPECT_EQ(send_only.derive(Rights::RECEIVE).rights(), 0);
}

TEST_F(CapabilityCheck, DerivedHandleCannotRegainRights) {
    Endpoint full = make_endpoint();
    Endpoint send_only = full.derive(Rights::SEND);
    Endpoint regained = send_only.derive(Rights::ALL);
    EXPECT_EQ(regained.capability().rights(), Rights::SEND);
    EXPECT_IPC_OK(regained.send_async(tagged(1)));
    EXPECT_IPC_ERROR(regained.try_receive(), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(regained.close(), IpcError::PermissionDenied);
}

TEST_F(CapabilityCheck, ZeroTokenIsNeverValid) {
    make_endpoint();  // slot 0 is live, so only the token's own value can reject it
    EXPECT_IPC_ERROR(registry.validate_capability(Capability(0), 0), IpcError::InvalidCapability);
    SmallMessage m{};
    m.capability = 0;
    EXPECT_IPC_ERROR(fast_ipc_send(registry, m), IpcError::InvalidCapability);
}

TEST_F(CapabilityCheck, ForgedGenerationIsRejected) {
    Endpoint e = make_endpoint();
    const Capability real = e.capability();
    const Capability forged =
        Capability::make(real.index(), static_cast<u16>(real.generation() + 1), Rights::ALL);
    EXPECT_IPC_ERROR(registry.validate_capability(forged, Rights::SEND),
                     IpcError::InvalidCapability);
}

TEST_F(CapabilityCheck, GenerationZeroIsRejected) {
    Endpoint e = make_endpoint();
    const Capability forged = Capability::make(e.capability().index(), 0, Rights::ALL);
    EXPECT_IPC_ERROR(registry.validate_capability(forged, 0), IpcError::InvalidCapability);
}

TEST_F(CapabilityCheck, IndexOutsideTheTableIsRejected) {
    Endpoint e = make_endpoint();
    const Capability forged =
        Capability::make(Registry::DEFAULT_MAX_ENDPOINTS, e.capability().generation(), Rights::ALL);
    EXPECT_IPC_ERROR(registry.validate_capability(forged, 0), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(registry.validate_capability(Capability::make(0xFFFFFFFFu, 1, Rights::ALL), 0),
                     IpcError::InvalidCapability);
}

TEST_F(CapabilityCheck, TokenForAnUnusedSlotIsRejected) {
    Endpoint e = make_endpoint();
    const Capability forged =
        Capability::make(e.capability().index() + 1, e.capability().generation(), Rights::ALL);
    EXPECT_IPC_ERROR(registry.validate_capability(forged, 0), IpcError::InvalidCapability);
}

TEST_F(CapabilityCheck, MissingRightGivesPermissionDenied) {
    Endpoint e = make_endpoint();
    EXPECT_IPC_ERROR(
        registry.validate_capability(e.capability().derive(Rights::RECEIVE), Rights::SEND),
        IpcError::PermissionDenied);
    EXPECT_IPC_OK(registry.validate_capability(e.capability().derive(Rights::SEND), Rights::SEND));
}

TEST_F(CapabilityCheck, SendingNeedsTheSendRight) {
    Endpoint e = make_endpoint();
    Endpoint receive_only = e.derive(Rights::RECEIVE | Rights::GRANT | Rights::REVOKE);
    EXPECT_IPC_ERROR(receive_only.send_async(tagged(1)), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(receive_only.send_sync(tagged(1), kOwner, bound()),
                     IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(receive_only.call(tagged(1), kOwner, bound()), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(call_reply(registry, tagged(1), receive_only.capability(), bound()),
                     IpcError::PermissionDenied);
    EXPECT_EQ(stats_of(e).sent, 0u);
}

TEST_F(CapabilityCheck, ReceivingAndReplyingNeedTheReceiveRight) {
    Endpoint e = make_endpoint();
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    Endpoint send_only = e.derive(Rights::SEND | Rights::GRANT | Rights::REVOKE);
    EXPECT_IPC_ERROR(send_only.try_receive(), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(send_only.receive_sync(kOwner, bound()), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(send_only.reply(tagged(1), tagged(2)), IpcError::PermissionDenied);
    EXPECT_EQ(stats_of(e).queued, 1u);
}

TEST_F(CapabilityCheck, ClosingAndRevokingNeedTheRevokeRight) {
    Endpoint e = make_endpoint();
    Endpoint no_revoke = e.derive(Rights::SEND | Rights::RECEIVE | Rights::GRANT);
    EXPECT_IPC_ERROR(no_revoke.close(), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(no_revoke.revoke(), IpcError::PermissionDenied);
    EXPECT_TRUE(e.is_active());
    EXPECT_IPC_OK(e.send_async(tagged(1)));  // the generation did not move
}

TEST_F(Revoke, InvalidatesEveryOutstandingTokenIncludingDerivedOnes) {
    Endpoint e = make_endpoint();
    Endpoint sender = e.derive(Rights::SEND);
    Endpoint receiver = e.derive(Rights::RECEIVE);
    Result<Endpoint> fresh = e.revoke();
    ASSERT_IPC_OK(fresh);
    EXPECT_IPC_ERROR(e.send_async(tagged(1)), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(sender.send_async(tagged(1)), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(receiver.try_receive(), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(e.revoke(), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(e.stats(), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(registry.validate_capability(sender.capability(), Rights::SEND),
                     IpcError::InvalidCapability);
    SmallMessage m{};
    m.capability = sender.capability().raw();
    EXPECT_IPC_ERROR(fast_ipc_send(registry, m), IpcError::InvalidCapability);
    EXPECT_FALSE(sender.is_active());
}

TEST_F(Revoke, ReturnsAWorkingFreshHandleWithAllRights) {
    Endpoint e = make_endpoint();
    Result<Endpoint> fresh = e.revoke();
    ASSERT_IPC_OK(fresh);
    EXPECT_EQ(fresh->id(), e.id());
    EXPECT_EQ(fresh->owner(), e.owner());
    EXPECT_EQ(fresh->capability().rights(), Rights::ALL);
    EXPECT_NE(fresh->capability().generation(), e.capability().generation());
    ASSERT_IPC_OK(fresh->send_async(tagged(9)));
    Result<Message> m = fresh->try_receive();
    ASSERT_IPC_OK(m);
    EXPECT_EQ(test::tag_of(*m), 9u);
    EXPECT_IPC_OK(fresh->revoke());
}

TEST_F(Revoke, KeepsTheEndpointAndItsQueuedMessages) {
    Endpoint e = make_endpoint();
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    ASSERT_IPC_OK(e.send_async(tagged(2)));
    Result<Endpoint> fresh = e.revoke();
    ASSERT_IPC_OK(fresh);
    EXPECT_TRUE(fresh->is_active());
    EXPECT_EQ(test::tag_of(fresh->try_receive().value_or(Message())), 1u);
    EXPECT_EQ(test::tag_of(fresh->try_receive().value_or(Message())), 2u);
}

TEST_F(Revoke, GivesResourceBusyWhenTheGenerationsAreUsedUpAndTheSlotIsRetired) {
    ThreadsPlatform p;
    HeapAllocator a;
    Registry one(p, a, 1);
    Result<Endpoint> e = one.create_endpoint(kOwner, 1);
    ASSERT_IPC_OK(e);
    Endpoint handle = *e;
    int revokes = 0;
    for (;;) {
        Result<Endpoint> next = handle.revoke();
        if (!next) {
            EXPECT_EQ(next.error(), IpcError::ResourceBusy);
            break;
        }
        handle = *next;
        ASSERT_LT(++revokes, 0x10000) << "revoke never ran out of generations";
    }
    EXPECT_EQ(handle.capability().generation(), 0xFFFFu);
    EXPECT_IPC_OK(handle.send_async(tagged(1)));  // the last handle still works
    ASSERT_IPC_OK(one.remove_endpoint(handle.id(), kOwner));
    EXPECT_EQ(one.stats().retired_slots, 1u);
    // The only slot is retired, never reused: no old token can come back to life.
    EXPECT_IPC_ERROR(one.create_endpoint(kOwner, 1), IpcError::OutOfMemory);
}

TEST_F(CapabilityCheck, RemovedEndpointsTokensAreInvalid) {
    Endpoint e = make_endpoint();
    Endpoint sender = e.derive(Rights::SEND);
    ASSERT_IPC_OK(registry.remove_endpoint(e.id(), kOwner));
    EXPECT_IPC_ERROR(e.send_async(tagged(1)), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(sender.send_async(tagged(1)), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(e.stats(), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(e.close(), IpcError::InvalidCapability);
}

TEST_F(CapabilityCheck, StaleTokenDoesNotReachTheEndpointThatReusedItsSlot) {
    ThreadsPlatform p;
    HeapAllocator a;
    Registry one(p, a, 1);
    Endpoint old = *one.create_endpoint(kOwner, 4);
    ASSERT_IPC_OK(one.remove_endpoint(old.id(), kOwner));
    Result<Endpoint> reused = one.create_endpoint(kOwner, 4);
    ASSERT_IPC_OK(reused);
    ASSERT_EQ(reused->capability().index(), old.capability().index());
    EXPECT_IPC_ERROR(old.send_async(tagged(1)), IpcError::InvalidCapability);
    EXPECT_EQ(reused->stats().value_or(EndpointStats{}).queued, 0u);
    EXPECT_IPC_OK(reused->send_async(tagged(2)));
}

TEST_F(NullHandle, EveryOperationGivesInvalidCapability) {
    Endpoint null;
    EXPECT_TRUE(null.capability().is_null());
    EXPECT_FALSE(null.is_active());
    EXPECT_IPC_ERROR(null.bind(kOwner), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.send_async(tagged(1)), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.send_sync(tagged(1), kOwner, bound()), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.try_receive(), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.receive_sync(kOwner, bound()), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.call(tagged(1), kOwner, bound()), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.reply(tagged(1), tagged(2)), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.close(), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.revoke(), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.stats(), IpcError::InvalidCapability);
}

}  // namespace
}  // namespace veridian::ipc
