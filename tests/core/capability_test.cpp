// SPDX-License-Identifier: MIT OR Apache-2.0
// Capabilities: handles name entries of the holder's own capability space; rights, badge and
// generation live in the entry. Every handle value a holder can write is checked here, and
// derive, transfer, revoke, badges and process death.
#include <random>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace veridian::ipc {
namespace {

using test::CoreTest;
using test::kOther;
using test::kOwner;
using test::tagged;

TEST(Capability, PacksIndexAndCheckBitsIntoTheDocumentedBits) {
    const Capability c = Capability::make(0x00ABCDEFu, 0x12'3456'789Aull);
    EXPECT_EQ(c.raw(), 0x00ABCDEFull | (0x12'3456'789Aull << 24));
    EXPECT_EQ(c.index(), 0x00ABCDEFu);
    EXPECT_EQ(c.check(), 0x12'3456'789Aull);
    EXPECT_EQ(c.raw() >> 63, 0u);  // bit 63 is never part of a handle made by the core
    EXPECT_TRUE(Capability().is_null());
}

TEST(Capability, RightsAreFourDistinctBits) {
    EXPECT_EQ(Rights::ALL, Rights::SEND | Rights::RECEIVE | Rights::GRANT | Rights::REVOKE);
    EXPECT_EQ(Rights::SEND & Rights::RECEIVE, 0);
    EXPECT_EQ(Rights::GRANT & Rights::REVOKE, 0);
}

using CapabilityCheck = CoreTest;

// Every way a holder can use a handle must fail with `expected`.
void expect_rejected_everywhere(CapabilitySpace& space, Capability h, IpcError expected) {
    SCOPED_TRACE(::testing::Message() << "handle " << std::hex << h.raw());
    Registry& registry = space.registry();
    EXPECT_IPC_ERROR(registry.validate_capability(space, h, 0), expected);
    EXPECT_IPC_ERROR(space.endpoint(h, Rights::SEND), expected);
    EXPECT_IPC_ERROR(space.inspect(h), expected);
    SmallMessage m{h.raw(), 1, 0, {0, 0, 0, 0}};
    EXPECT_IPC_ERROR(fast_ipc_send(space, m), expected);
    EXPECT_IPC_ERROR(call_reply(space, tagged(1), h, Deadline::past()), expected);
    EXPECT_IPC_ERROR(space.revoke(h), expected);
    EXPECT_IPC_ERROR(space.release(h), expected);
}

TEST_F(CapabilityCheck, HandleZeroIsNeverValid) {
    Endpoint e = make_endpoint();
    expect_rejected_everywhere(owner_space(), Capability(0), IpcError::InvalidCapability);
    EXPECT_EQ(stats_of(e).sent, 0u);
}

TEST_F(CapabilityCheck, AnIndexPastTheTableIsRejected) {
    Endpoint e = make_endpoint();
    const u32 past = owner_space().stats().capacity;
    for (u32 index : {past, past + 1, Capability::MAX_INDEX}) {
        expect_rejected_everywhere(owner_space(), Capability::make(index, e.capability().check()),
                                   IpcError::InvalidCapability);
    }
}

TEST_F(CapabilityCheck, AFreedIndexIsRejected) {
    Endpoint e = make_endpoint();
    Endpoint copy = e.derive(Rights::SEND).value();
    const Capability freed = copy.capability();
    ASSERT_IPC_OK(copy.release());
    expect_rejected_everywhere(owner_space(), freed, IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(copy.send_async(tagged(1)), IpcError::InvalidCapability);
    EXPECT_IPC_OK(e.send_async(tagged(2)));  // the original is untouched
}

TEST_F(CapabilityCheck, AReusedIndexWithTheOldCheckBitsIsRejected) {
    ThreadsPlatform p;
    HeapAllocator a;
    Registry small(p, a, 8, 4);
    CapabilitySpace& space = *small.create_space(kOwner, 2).value();
    Endpoint e = small.create_endpoint(space, 4).value();
    // The one other entry of the table, freed and filled again many times.
    std::vector<Capability> old;
    for (int i = 0; i < 200; ++i) {
        Endpoint d = e.derive(Rights::SEND).value();
        for (const Capability& stale : old) {
            ASSERT_EQ(stale.index(), d.capability().index());
            ASSERT_NE(stale, d.capability());
        }
        old.push_back(d.capability());
        ASSERT_IPC_OK(d.release());
    }
    Endpoint live = e.derive(Rights::SEND).value();
    for (const Capability& stale : old) {
        expect_rejected_everywhere(space, stale, IpcError::InvalidCapability);
    }
    EXPECT_IPC_OK(live.send_async(tagged(1)));
}

TEST_F(CapabilityCheck, AnotherHoldersHandleNamesNothingInThisSpace) {
    Endpoint mine = make_endpoint(4, kOwner);
    Endpoint theirs = make_endpoint(4, kOther);
    // The other holder's handle, used from this space (and the other way round).
    expect_rejected_everywhere(owner_space(), theirs.capability(), IpcError::InvalidCapability);
    expect_rejected_everywhere(space_of(kOther), mine.capability(), IpcError::InvalidCapability);
    EXPECT_EQ(stats_of(theirs).sent, 0u);
    EXPECT_EQ(stats_of(mine).sent, 0u);
}

TEST_F(CapabilityCheck, AMissingRightGivesPermissionDenied) {
    Endpoint e = make_endpoint();
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    Endpoint receive_only = e.derive(Rights::RECEIVE).value();
    Endpoint send_only = e.derive(Rights::SEND).value();
    EXPECT_IPC_ERROR(receive_only.send_async(tagged(1)), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(receive_only.send_sync(tagged(1), bound()), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(receive_only.call(tagged(1), bound()), IpcError::PermissionDenied);
    SmallMessage m{receive_only.capability().raw(), 1, 0, {0, 0, 0, 0}};
    EXPECT_IPC_ERROR(fast_ipc_send(owner_space(), m), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(send_only.try_receive(), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(send_only.receive_sync(bound()), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(send_only.reply(tagged(1), tagged(2)), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(send_only.close(), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(send_only.revoke_all(), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(send_only.transfer(kOther, TransferMode::Copy), IpcError::PermissionDenied);
    EXPECT_EQ(stats_of(e).queued, 1u);
    EXPECT_EQ(stats_of(e).sent, 1u);
}

TEST_F(CapabilityCheck, DeriveCanOnlyDropRights) {
    Endpoint e = make_endpoint();
    Endpoint send = e.derive(Rights::SEND).value();
    Endpoint again = send.derive(Rights::ALL).value();  // asks for everything
    EXPECT_EQ(again.info()->rights, Rights::SEND);
    EXPECT_IPC_ERROR(again.try_receive(), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(again.close(), IpcError::PermissionDenied);
    EXPECT_EQ(e.derive(0).value().info()->rights, 0);
}

// Reproduction: a holder of a SEND-only handle sets the bits where the old token kept its
// rights. The result is another handle value, which names nothing; the entry still says SEND.
TEST_F(CapabilityCheck, ReproSettingRightsBitsDoesNotRaiseRights) {
    Endpoint e = make_endpoint();
    ASSERT_IPC_OK(e.send_async(tagged(7)));
    Endpoint send = e.derive(Rights::SEND).value();
    const Capability forged(send.capability().raw() | (u64{Rights::ALL} << 48));
    if (forged != send.capability()) {
        EXPECT_IPC_ERROR(registry.validate_capability(owner_space(), forged, Rights::REVOKE),
                         IpcError::InvalidCapability);
        expect_rejected_everywhere(owner_space(), forged, IpcError::InvalidCapability);
    }  // else those four check bits were set already: the same handle, checked below
    // Flipping those bits instead always makes another value.
    const Capability flipped(send.capability().raw() ^ (u64{Rights::ALL} << 48));
    expect_rejected_everywhere(owner_space(), flipped, IpcError::InvalidCapability);
    // And through the handle's own entry, REVOKE and RECEIVE stay out of reach.
    EXPECT_IPC_ERROR(registry.validate_capability(owner_space(), send.capability(), Rights::REVOKE),
                     IpcError::PermissionDenied);
    EXPECT_EQ(stats_of(e).queued, 1u);  // the owner's message is still there
    EXPECT_TRUE(e.is_active());
}

// Reproduction: after revoke, adding one to the old value (or to its check bits) does not
// bring it back.
TEST_F(CapabilityCheck, ReproRevokedHandlePlusOneStaysDead) {
    Endpoint e = make_endpoint();
    Endpoint old = e.derive(Rights::SEND).value();
    const Capability h = old.capability();
    Result<Endpoint> fresh = e.revoke_all();
    ASSERT_IPC_OK(fresh);
    for (const Capability& c :
         {h, Capability(h.raw() + 1), Capability::make(h.index(), h.check() + 1),
          Capability::make(h.index(), h.check() - 1), Capability(h.raw() + (u64{1} << 32)),
          e.capability()}) {
        expect_rejected_everywhere(owner_space(), c, IpcError::InvalidCapability);
    }
    EXPECT_IPC_OK(fresh->send_async(tagged(1)));
}

TEST_F(CapabilityCheck, RemovedEndpointsHandlesAreInvalidEverywhere) {
    Endpoint e = make_endpoint();
    Endpoint elsewhere = give(e, kOther, Rights::SEND);
    ASSERT_IPC_OK(registry.remove_endpoint(e.id(), kOwner));
    EXPECT_IPC_ERROR(e.send_async(tagged(1)), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(elsewhere.send_async(tagged(1)), IpcError::InvalidCapability);
    // The slot reused by a new endpoint: the old handles do not reach it.
    Endpoint reused = make_endpoint();
    EXPECT_IPC_ERROR(e.send_async(tagged(1)), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(elsewhere.send_async(tagged(1)), IpcError::InvalidCapability);
    EXPECT_EQ(stats_of(reused).queued, 0u);
}

using NullHandle = CoreTest;

TEST_F(NullHandle, EveryOperationGivesInvalidCapability) {
    Endpoint null;
    EXPECT_TRUE(null.capability().is_null());
    EXPECT_FALSE(null.is_active());
    EXPECT_EQ(null.registry(), nullptr);
    EXPECT_IPC_ERROR(null.bind(kOwner), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.send_async(tagged(1)), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.send_sync(tagged(1), bound()), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.try_receive(), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.receive_sync(bound()), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.call(tagged(1), bound()), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.reply(tagged(1), tagged(2)), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.close(), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.revoke(), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.release(), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.revoke_all(), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.derive(Rights::SEND), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.transfer(kOther, TransferMode::Copy), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.info(), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(null.stats(), IpcError::InvalidCapability);
}

// ---- transfer ----

using Transfer = CoreTest;

TEST_F(Transfer, CopyInstallsAnEntryInTheOtherSpaceAndKeepsTheSource) {
    Endpoint e = make_endpoint();
    Endpoint grant = e.derive(Rights::SEND | Rights::GRANT).value();
    Result<Endpoint> theirs = grant.transfer(kOther, TransferMode::Copy, Rights::SEND);
    ASSERT_IPC_OK(theirs);
    EXPECT_EQ(theirs->space(), &space_of(kOther));
    EXPECT_EQ(theirs->info()->rights, Rights::SEND);
    ASSERT_IPC_OK(theirs->send_async(tagged(1)));
    ASSERT_IPC_OK(grant.send_async(tagged(2)));
    Result<Message> m = e.try_receive();
    ASSERT_IPC_OK(m);
    EXPECT_EQ(m->sender(), kOther);  // stamped from the space it was sent through
    EXPECT_EQ(e.try_receive()->sender(), kOwner);
}

TEST_F(Transfer, MoveRemovesTheSourceAndKeepsItsChildren) {
    Endpoint e = make_endpoint();
    Endpoint grant = e.derive(Rights::SEND | Rights::GRANT).value();
    Endpoint child = grant.derive(Rights::SEND).value();
    Result<Endpoint> moved = grant.transfer(kOther, TransferMode::Move);
    ASSERT_IPC_OK(moved);
    EXPECT_IPC_ERROR(grant.send_async(tagged(1)), IpcError::InvalidCapability);
    EXPECT_IPC_OK(child.send_async(tagged(2)));
    EXPECT_EQ(moved->info()->rights, Rights::SEND | Rights::GRANT);
    // The moved entry took the source's place: revoking it still ends the child.
    ASSERT_IPC_OK(moved->revoke());
    EXPECT_IPC_ERROR(child.send_async(tagged(3)), IpcError::InvalidCapability);
    EXPECT_IPC_OK(e.send_async(tagged(4)));
}

TEST_F(Transfer, WithoutGrantIsPermissionDeniedAndInstallsNothing) {
    Endpoint e = make_endpoint();
    Endpoint send = e.derive(Rights::SEND | Rights::RECEIVE).value();
    const u32 before = space_of(kOther).stats().live;
    EXPECT_IPC_ERROR(send.transfer(kOther, TransferMode::Copy), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(send.transfer(kOther, TransferMode::Move), IpcError::PermissionDenied);
    EXPECT_EQ(space_of(kOther).stats().live, before);
    EXPECT_IPC_OK(send.send_async(tagged(1)));  // a refused move leaves the source
}

TEST_F(Transfer, AFullTableGivesOutOfMemoryAndLeavesTheSource) {
    CapabilitySpace& tiny = *registry.create_space(ProcessId{77}, 1).value();
    Endpoint e = make_endpoint();
    ASSERT_IPC_OK(e.transfer(tiny, TransferMode::Copy, Rights::SEND));
    EXPECT_IPC_ERROR(e.transfer(tiny, TransferMode::Move, Rights::SEND), IpcError::OutOfMemory);
    EXPECT_IPC_OK(e.send_async(tagged(1)));
}

TEST_F(Transfer, InAMessageNeedsGrantAndArrivesAsTheReceiversOwnHandle) {
    Endpoint service = make_endpoint(4, kOther);  // the capability to pass on
    Endpoint mailbox = make_endpoint(4, kOwner);  // where it is sent
    Endpoint sender_mailbox = give(mailbox, ProcessId{3}, Rights::SEND);
    Endpoint no_grant = give(service, ProcessId{3}, Rights::SEND);
    Endpoint with_grant = give(service, ProcessId{3}, Rights::SEND | Rights::GRANT);

    Message m = tagged(no_grant.capability().raw());
    m.set_flags(MessageFlags::HAS_CAPABILITY);
    EXPECT_IPC_ERROR(sender_mailbox.send_async(m), IpcError::PermissionDenied);
    EXPECT_EQ(stats_of(mailbox).queued, 0u);

    m = tagged(with_grant.capability().raw());
    m.set_flags(MessageFlags::HAS_CAPABILITY);
    ASSERT_IPC_OK(sender_mailbox.send_async(m));
    Result<Message> got = mailbox.try_receive();
    ASSERT_IPC_OK(got);
    EXPECT_EQ(got->flags() & MessageFlags::HAS_CAPABILITY, MessageFlags::HAS_CAPABILITY);
    const Capability installed(test::tag_of(*got));
    EXPECT_NE(installed, with_grant.capability());
    Result<Endpoint> usable = owner_space().endpoint(installed, Rights::SEND);
    ASSERT_IPC_OK(usable);
    EXPECT_EQ(usable->id(), service.id());
    ASSERT_IPC_OK(usable->send_async(tagged(5)));
    EXPECT_EQ(service.try_receive()->sender(), kOwner);
    EXPECT_IPC_OK(with_grant.send_async(tagged(6)));  // a copy: the sender keeps its own
}

TEST_F(Transfer, InAMessageWithMoveTakesItFromTheSender) {
    Endpoint service = make_endpoint(4, kOther);
    Endpoint mailbox = make_endpoint(4, kOwner);
    Endpoint sender_mailbox = give(mailbox, ProcessId{3}, Rights::SEND);
    Endpoint passed = give(service, ProcessId{3}, Rights::SEND | Rights::GRANT);
    Message m = tagged(passed.capability().raw());
    m.set_flags(MessageFlags::HAS_CAPABILITY | MessageFlags::MOVE_CAPABILITY);
    ASSERT_IPC_OK(sender_mailbox.send_async(m));
    Result<Message> got = mailbox.try_receive();
    ASSERT_IPC_OK(got);
    EXPECT_IPC_OK(owner_space().endpoint(Capability(test::tag_of(*got)), Rights::SEND));
    EXPECT_IPC_ERROR(passed.send_async(tagged(1)), IpcError::InvalidCapability);
}

TEST_F(Transfer, RevokedBeforeDeliveryArrivesAsNothing) {
    Endpoint service = make_endpoint(4, kOther);
    Endpoint mailbox = make_endpoint(4, kOwner);
    Endpoint sender_mailbox = give(mailbox, ProcessId{3}, Rights::SEND);
    Endpoint passed = give(service, ProcessId{3}, Rights::SEND | Rights::GRANT);
    Message m = tagged(passed.capability().raw());
    m.set_flags(MessageFlags::HAS_CAPABILITY);
    ASSERT_IPC_OK(sender_mailbox.send_async(m));
    ASSERT_IPC_OK(passed.revoke());
    Result<Message> got = mailbox.try_receive();
    ASSERT_IPC_OK(got);
    EXPECT_EQ(test::tag_of(*got), 0u);
    EXPECT_EQ(got->flags() & MessageFlags::HAS_CAPABILITY, 0u);
}

TEST_F(Transfer, AFlagTheCoreDidNotStampPassesNoHandleOn) {
    // A message claiming a capability it never carried (HAS_CAPABILITY set by a sender on a
    // reply, say, or a value the receiver would misread as its own handle) arrives as 0.
    Endpoint e = make_endpoint();
    Message m = tagged(e.capability().raw());
    m.set_flags(MessageFlags::MOVE_CAPABILITY);  // without HAS_CAPABILITY: not a transfer
    ASSERT_IPC_OK(e.send_async(m));
    Result<Message> got = e.try_receive();
    ASSERT_IPC_OK(got);
    EXPECT_EQ(got->flags() & (MessageFlags::HAS_CAPABILITY | MessageFlags::MOVE_CAPABILITY), 0u);
    EXPECT_EQ(test::tag_of(*got), e.capability().raw());  // plain data stays plain data
}

// ---- badges ----

using Badges = CoreTest;

TEST_F(Badges, EveryMessageCarriesTheBadgeOfTheEntryItWasSentThrough) {
    Endpoint server = make_endpoint();
    Endpoint alice = give(server, ProcessId{10}, Rights::SEND, 0xA11CE);
    Endpoint bob = give(server, ProcessId{11}, Rights::SEND, 0xB0B);
    Message lie = tagged(1);
    lie.set_badge(0xB0B);           // what alice writes is overwritten
    lie.set_sender(ProcessId{11});  // and so is this
    ASSERT_IPC_OK(alice.send_async(lie));
    ASSERT_IPC_OK(bob.send_async(tagged(2)));
    ASSERT_IPC_OK(server.send_async(tagged(3)));
    Result<Message> a = server.try_receive();
    Result<Message> b = server.try_receive();
    Result<Message> own = server.try_receive();
    EXPECT_EQ(a->badge(), 0xA11CEu);
    EXPECT_EQ(a->sender(), ProcessId{10});
    EXPECT_EQ(b->badge(), 0xB0Bu);
    EXPECT_EQ(b->sender(), ProcessId{11});
    EXPECT_EQ(own->badge(), 0u);
}

TEST_F(Badges, ABadgedEntryCannotBeRebadgedAndItsChildrenKeepTheBadge) {
    Endpoint server = make_endpoint();
    Endpoint badged = server.derive(Rights::SEND | Rights::GRANT, 0x42).value();
    EXPECT_IPC_ERROR(badged.derive(Rights::SEND, 0x43), IpcError::PermissionDenied);
    EXPECT_IPC_ERROR(badged.transfer(kOther, TransferMode::Copy, Rights::SEND, 0x43),
                     IpcError::PermissionDenied);
    Endpoint child = badged.transfer(kOther, TransferMode::Copy, Rights::SEND).value();
    EXPECT_EQ(child.info()->badge, 0x42u);
    // The call times out at once, but its request was queued, stamped with the badge.
    EXPECT_IPC_ERROR(child.call(tagged(1), Deadline::past()), IpcError::Timeout);
    Result<Message> m = server.try_receive();
    ASSERT_IPC_OK(m);
    EXPECT_EQ(m->badge(), 0x42u);
}

// ---- revoke: an entry and everything derived from it ----

using RevokeEntry = CoreTest;

TEST_F(RevokeEntry, RemovesTheEntryAndItsWholeSubtreeInEverySpace) {
    Endpoint e = make_endpoint();
    Endpoint a = e.derive(Rights::SEND | Rights::GRANT).value();
    Endpoint a1 = a.transfer(ProcessId{20}, TransferMode::Copy).value();
    Endpoint a11 = a1.transfer(ProcessId{21}, TransferMode::Copy, Rights::SEND).value();
    Endpoint a2 = a.derive(Rights::SEND).value();
    Endpoint b = e.derive(Rights::SEND).value();  // a sibling of a: not derived from it
    ASSERT_IPC_OK(a.revoke());
    for (Endpoint* dead : {&a, &a1, &a11, &a2}) {
        EXPECT_IPC_ERROR(dead->send_async(tagged(1)), IpcError::InvalidCapability);
    }
    EXPECT_IPC_OK(b.send_async(tagged(2)));
    EXPECT_IPC_OK(e.send_async(tagged(3)));
}

TEST_F(RevokeEntry, ReleaseKeepsTheChildrenReachableFromTheParent) {
    Endpoint e = make_endpoint();
    Endpoint a = e.derive(Rights::SEND | Rights::GRANT).value();
    Endpoint a1 = a.derive(Rights::SEND).value();
    ASSERT_IPC_OK(a.release());
    EXPECT_IPC_ERROR(a.send_async(tagged(1)), IpcError::InvalidCapability);
    EXPECT_IPC_OK(a1.send_async(tagged(2)));
    Endpoint root_child = e.derive(Rights::SEND).value();
    ASSERT_IPC_OK(e.revoke());  // e's subtree: a1 was re-parented to e
    EXPECT_IPC_ERROR(a1.send_async(tagged(3)), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(root_child.send_async(tagged(3)), IpcError::InvalidCapability);
}

TEST_F(RevokeEntry, RevokeAllEndsEveryEntryAndReturnsAFreshRoot) {
    Endpoint e = make_endpoint();
    Endpoint other = give(e, kOther, Rights::SEND);
    Endpoint lookalike = registry.lookup(e.id()).value();  // another root
    ASSERT_IPC_OK(e.send_async(tagged(9)));
    Result<Endpoint> fresh = e.revoke_all();
    ASSERT_IPC_OK(fresh);
    for (Endpoint* dead : {&e, &other, &lookalike}) {
        EXPECT_IPC_ERROR(dead->send_async(tagged(1)), IpcError::InvalidCapability);
    }
    EXPECT_EQ(fresh->info()->rights, Rights::ALL);
    Result<Message> queued = fresh->try_receive();  // the queue survives
    ASSERT_IPC_OK(queued);
    EXPECT_EQ(test::tag_of(*queued), 9u);
}

TEST_F(RevokeEntry, SweptEntriesAreReusedWithoutReviving) {
    ThreadsPlatform p;
    HeapAllocator a;
    Registry small(p, a, 4, 2);
    CapabilitySpace& space = *small.create_space(kOwner, 4).value();
    Endpoint e = small.create_endpoint(space, 2).value();
    for (int round = 0; round < 100; ++round) {
        Endpoint a1 = e.derive(Rights::SEND).value();
        Endpoint a2 = a1.derive(Rights::SEND).value();
        Endpoint a3 = a2.derive(Rights::SEND).value();
        ASSERT_IPC_OK(a1.revoke());  // three DEAD entries, swept when the table runs out
        EXPECT_IPC_ERROR(a3.send_async(tagged(1)), IpcError::InvalidCapability);
    }
    EXPECT_EQ(space.stats().live, 1u);
}

// Reproduction: a sender blocked on a full queue (and a caller in its send phase) through
// a copy that is then revoked wakes with InvalidCapability, and its message is not delivered.
TEST_F(RevokeEntry, ReproBlockedSenderAndCallerWakeAndDeliverNothing) {
    Endpoint e = make_endpoint(1);
    Endpoint copy = give(e, kOther, Rights::SEND | Rights::GRANT);
    Endpoint sender = copy.derive(Rights::SEND).value();
    ASSERT_IPC_OK(e.send_async(tagged(1)));  // the queue is full
    Result<void> sent = IpcError::NotInitialized;
    Result<Message> called = IpcError::NotInitialized;
    std::jthread s([&] { sent = sender.send_sync(tagged(2), bound()); });
    std::jthread c([&] { called = copy.call(tagged(3), bound()); });
    ASSERT_TRUE(wait_for_senders(e, 2)) << "the sender and the caller never blocked";
    ASSERT_IPC_OK(copy.revoke());
    s.join();
    c.join();
    EXPECT_IPC_ERROR(sent, IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(called, IpcError::InvalidCapability);
    const EndpointStats st = stats_of(e);
    EXPECT_EQ(st.waiting_senders, 0u);
    EXPECT_EQ(st.waiting_callers, 0u);
    EXPECT_EQ(test::tag_of(*e.try_receive()), 1u);
    EXPECT_IPC_ERROR(e.try_receive(), IpcError::ChannelEmpty);  // neither 2 nor 3 arrived
}

TEST_F(RevokeEntry, BlockedReceiverAndCallerInReplyPhaseWake) {
    Endpoint e = make_endpoint(4);
    Endpoint receiver = give(e, kOther, Rights::RECEIVE);
    Endpoint caller = give(e, ProcessId{3}, Rights::SEND);
    Result<Message> received = IpcError::NotInitialized;
    std::jthread r([&] { received = receiver.receive_sync(bound()); });
    ASSERT_TRUE(wait_for_receivers(e, 1));
    ASSERT_IPC_OK(receiver.revoke());
    r.join();
    EXPECT_IPC_ERROR(received, IpcError::InvalidCapability);

    Result<Message> called = IpcError::NotInitialized;
    std::jthread c([&] { called = caller.call(tagged(1), bound()); });
    ASSERT_TRUE(wait_for_callers(e, 1));
    Result<Message> request = e.try_receive();  // the request arrived: reply phase
    ASSERT_IPC_OK(request);
    ASSERT_IPC_OK(caller.revoke());
    c.join();
    EXPECT_IPC_ERROR(called, IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(e.reply(*request, tagged(2)), IpcError::ProcessNotFound);
    EXPECT_EQ(stats_of(e).waiting_callers, 0u);
}

TEST_F(RevokeEntry, OnlyOperationsThroughTheRevokedEntryWake) {
    Endpoint e = make_endpoint(4);
    Endpoint doomed = give(e, kOther, Rights::RECEIVE);
    Endpoint kept = give(e, ProcessId{3}, Rights::RECEIVE);
    Result<Message> r1 = IpcError::NotInitialized;
    Result<Message> r2 = IpcError::NotInitialized;
    std::jthread t1([&] { r1 = doomed.receive_sync(bound()); });
    std::jthread t2([&] { r2 = kept.receive_sync(bound()); });
    ASSERT_TRUE(wait_for_receivers(e, 2));
    ASSERT_IPC_OK(doomed.revoke());
    t1.join();
    EXPECT_IPC_ERROR(r1, IpcError::InvalidCapability);
    EXPECT_EQ(stats_of(e).waiting_receivers, 1u);
    ASSERT_IPC_OK(e.send_async(tagged(5)));
    t2.join();
    ASSERT_IPC_OK(r2);
    EXPECT_EQ(test::tag_of(*r2), 5u);
}

// ---- process death ----

using Death = CoreTest;

TEST_F(Death, RemoveProcessClosesItsEndpointsAndTearsDownItsSpace) {
    Endpoint theirs = make_endpoint(4, kOther);
    Endpoint mine = make_endpoint(4, kOwner);
    Endpoint client_of_theirs = give(theirs, kOwner, Rights::SEND);
    Endpoint their_copy_of_mine = give(mine, kOther, Rights::SEND | Rights::GRANT);
    Endpoint passed_on = their_copy_of_mine.transfer(ProcessId{3}, TransferMode::Copy).value();
    Result<Message> blocked = IpcError::NotInitialized;
    Endpoint receiver = give(theirs, ProcessId{4}, Rights::RECEIVE);
    std::jthread t([&] { blocked = receiver.receive_sync(bound()); });
    ASSERT_TRUE(wait_for_receivers(theirs, 1));

    const RemovedProcess removed = registry.remove_process(kOther);
    t.join();
    EXPECT_EQ(removed.endpoints, 1u);
    EXPECT_EQ(removed.entries, 1u);  // its copy of `mine` (its own root died with `theirs`)
    EXPECT_IPC_ERROR(blocked, IpcError::EndpointNotFound);  // its endpoint closed
    EXPECT_IPC_ERROR(client_of_theirs.send_async(tagged(1)), IpcError::InvalidCapability);
    EXPECT_EQ(registry.find_space(kOther), nullptr);
    EXPECT_IPC_ERROR(their_copy_of_mine.send_async(tagged(1)), IpcError::InvalidCapability);
    // The rule: what the dead holder passed on is kept, re-parented to the dead entry's parent.
    ASSERT_IPC_OK(passed_on.send_async(tagged(2)));
    ASSERT_IPC_OK(mine.revoke());  // passed_on now hangs below `mine`, so it goes too
    EXPECT_IPC_ERROR(passed_on.send_async(tagged(3)), IpcError::InvalidCapability);
}

TEST_F(Death, OperationsBlockedThroughADeadSpacesEntriesWake) {
    Endpoint e = make_endpoint(1);
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    CapabilitySpace& dying = *registry.create_space(ProcessId{30}).value();
    Endpoint sender = e.transfer(dying, TransferMode::Copy, Rights::SEND).value();
    Result<void> sent = IpcError::NotInitialized;
    std::jthread t([&] { sent = sender.send_sync(tagged(2), bound()); });
    ASSERT_TRUE(wait_for_senders(e, 1));
    EXPECT_EQ(registry.destroy_space(dying), 1u);
    t.join();
    EXPECT_IPC_ERROR(sent, IpcError::InvalidCapability);
    EXPECT_EQ(stats_of(e).waiting_senders, 0u);
    EXPECT_IPC_ERROR(sender.send_async(tagged(3)), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(e.transfer(dying, TransferMode::Copy), IpcError::ProcessNotFound);
}

TEST_F(Death, ASpaceSlotReusedForAnotherHolderDoesNotResolveOldHandles) {
    CapabilitySpace& first = *registry.create_space(ProcessId{40}).value();
    Endpoint e = make_endpoint();
    const Capability h = e.transfer(first, TransferMode::Copy, Rights::SEND)->capability();
    registry.destroy_space(first);
    CapabilitySpace& second = *registry.create_space(ProcessId{41}).value();
    Endpoint other = e.transfer(second, TransferMode::Copy, Rights::SEND).value();
    (void)other;
    expect_rejected_everywhere(second, h, IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(registry.create_space(ProcessId{41}), IpcError::EndpointBusy);
}

// ---- property: random and mutated handle values through every operation ----

// Feeds `n` handle values (a mix of uniformly random words, live handles with random bits
// flipped, and stale handles of freed, revoked and other-space entries) through every
// operation of one space, and counts the values accepted that name no entry of the holder
// with the right. The set of values the holder may use is known exactly (`valid`).
TEST_F(CapabilityCheck, PropertyNoForgedHandleIsEverAccepted) {
    const u64 kValues = 1'000'000;
    Endpoint e = make_endpoint(2);
    Endpoint theirs = make_endpoint(2, kOther);
    CapabilitySpace& space = owner_space();
    std::vector<Capability> valid = {e.capability()};
    std::vector<Capability> stale;
    for (int i = 0; i < 40; ++i) {
        Endpoint d = e.derive(i % 2 == 0 ? Rights::SEND : Rights::RECEIVE).value();
        if (i % 3 == 0) {
            stale.push_back(d.capability());
            ASSERT_IPC_OK(i % 2 == 0 ? d.revoke() : d.release());
        } else {
            valid.push_back(d.capability());
        }
    }
    stale.push_back(theirs.capability());
    stale.push_back(give(theirs, ProcessId{5}, Rights::ALL).capability());
    auto carrying = [](Capability c) {
        Message m = tagged(c.raw());
        m.set_flags(MessageFlags::HAS_CAPABILITY);
        return m;
    };
    auto is_valid = [&](Capability c) {
        for (const Capability& v : valid)
            if (v == c) return true;
        return false;
    };
    std::mt19937_64 rng(0xCAB5'0000 +
                        static_cast<u64>(::testing::UnitTest::GetInstance()->random_seed()));
    u64 wrongly_accepted = 0;
    u64 checked = 0;
    for (u64 i = 0; checked < kValues; ++i) {
        Capability c;
        switch (i % 4) {
            case 0:
                c = Capability(rng());
                break;
            case 1: {  // a live handle with 1..3 random bits flipped
                u64 raw = valid[rng() % valid.size()].raw();
                for (u64 k = 0, n = 1 + rng() % 3; k < n; ++k)
                    raw ^= u64{1} << (rng() % 64);
                c = Capability(raw);
                break;
            }
            case 2:  // a stale handle, possibly mutated
                c = Capability(stale[rng() % stale.size()].raw() ^ (rng() % 2 ? 0 : rng()));
                break;
            default:  // a small index with random check bits: aims at the live entries
                c = Capability::make(static_cast<u32>(rng() % 64), rng());
                break;
        }
        if (is_valid(c)) continue;  // a mutation that happened to land on a live handle
        ++checked;
        // The operations that do not change anything on failure, each of which must refuse.
        SmallMessage m{c.raw(), 1, 0, {0, 0, 0, 0}};
        const bool accepted =
            registry.validate_capability(space, c, 0).has_value() ||
            fast_ipc_send(space, m).has_value() || space.inspect(c).has_value() ||
            call_reply(space, tagged(1), c, Deadline::past()).has_value() ||
            space.revoke(c).has_value() || space.release(c).has_value() ||
            e.send_async(carrying(c)).has_value();  // a capability carried in a message
        if (accepted) ++wrongly_accepted;
    }
    EXPECT_EQ(checked, kValues);
    EXPECT_EQ(wrongly_accepted, 0u);
    // Every valid handle still works, and nothing reached the endpoints.
    for (const Capability& v : valid)
        EXPECT_IPC_OK(registry.validate_capability(space, v, 0));
    EXPECT_EQ(stats_of(e).sent, 0u);
    EXPECT_EQ(stats_of(theirs).sent, 0u);
}

}  // namespace
}  // namespace veridian::ipc
