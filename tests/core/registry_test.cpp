// SPDX-License-Identifier: MIT OR Apache-2.0
// Registry: creation, lookup, removal (by owner only), per-process cleanup, the slot table's
// limits, allocation failures and the registry's counters.
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace veridian::ipc::registry_spec {
namespace {

using test::CoreTest;
using test::kOther;
using test::kOwner;
using test::tagged;
using test::TestAllocator;

// The suite is named for the type; inside this namespace `Registry` is the fixture, and the
// type is spelled ipc::Registry.
using Registry = CoreTest;

TEST_F(Registry, LookupGivesTheOwnerANewRootEntryWithAllRights) {
    Endpoint e = make_endpoint(4, ProcessId{7});
    Endpoint narrow = e.derive(Rights::SEND).value();
    Result<Endpoint> found = registry.lookup(narrow.id());
    ASSERT_IPC_OK(found);
    EXPECT_EQ(found->id(), e.id());
    EXPECT_EQ(found->owner(), ProcessId{7});
    EXPECT_EQ(found->space(), e.space());            // in the owner's space only
    EXPECT_NE(found->capability(), e.capability());  // a new entry
    EXPECT_EQ(found->info()->rights, Rights::ALL);
    EXPECT_IPC_OK(found->send_async(tagged(1)));
    EXPECT_IPC_OK(e.try_receive());
}

TEST_F(Registry, LookupOfAnUnknownOrRemovedIdGivesEndpointNotFound) {
    Endpoint e = make_endpoint();
    EXPECT_IPC_ERROR(registry.lookup(0), IpcError::EndpointNotFound);
    EXPECT_IPC_ERROR(registry.lookup(e.id() + 1000), IpcError::EndpointNotFound);
    ASSERT_IPC_OK(registry.remove_endpoint(e.id(), kOwner));
    EXPECT_IPC_ERROR(registry.lookup(e.id()), IpcError::EndpointNotFound);
}

TEST_F(Registry, RemoveEndpointByANonOwnerGivesPermissionDeniedAndKeepsIt) {
    Endpoint e = make_endpoint(4, kOwner);
    EXPECT_IPC_ERROR(registry.remove_endpoint(e.id(), kOther), IpcError::PermissionDenied);
    EXPECT_TRUE(e.is_active());
    EXPECT_IPC_OK(registry.lookup(e.id()));
    EXPECT_EQ(registry.stats().live, 1u);
}

TEST_F(Registry, RemoveEndpointByItsOwnerClosesAndUnregistersIt) {
    Endpoint e = make_endpoint(4, kOwner);
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    ASSERT_IPC_OK(registry.remove_endpoint(e.id(), kOwner));
    EXPECT_FALSE(e.is_active());
    EXPECT_IPC_ERROR(e.try_receive(), IpcError::InvalidCapability);
    EXPECT_EQ(registry.stats().live, 0u);
}

TEST_F(Registry, RemoveEndpointTwiceGivesEndpointNotFound) {
    Endpoint e = make_endpoint();
    ASSERT_IPC_OK(registry.remove_endpoint(e.id(), kOwner));
    EXPECT_IPC_ERROR(registry.remove_endpoint(e.id(), kOwner), IpcError::EndpointNotFound);
    EXPECT_EQ(registry.stats().removed, 1u);
}

TEST_F(Registry, RemoveProcessEndpointsRemovesExactlyThatOwnersEndpoints) {
    std::vector<Endpoint> mine;
    std::vector<Endpoint> theirs;
    for (int i = 0; i < 3; ++i)
        mine.push_back(make_endpoint(2, ProcessId{10}));
    for (int i = 0; i < 2; ++i)
        theirs.push_back(make_endpoint(2, ProcessId{11}));
    mine.push_back(make_endpoint(2, ProcessId{10}));

    EXPECT_EQ(registry.remove_process_endpoints(ProcessId{10}), 4u);
    for (const Endpoint& e : mine)
        EXPECT_FALSE(e.is_active());
    for (const Endpoint& e : theirs) {
        EXPECT_TRUE(e.is_active());
        EXPECT_IPC_OK(e.derive(Rights::ALL).value().send_async(tagged(1)));
    }
    EXPECT_EQ(registry.stats().live, 2u);
    EXPECT_EQ(registry.remove_process_endpoints(ProcessId{10}), 0u);
    EXPECT_EQ(registry.remove_process_endpoints(ProcessId{12}), 0u);
}

TEST_F(Registry, FullTableGivesOutOfMemoryUntilASlotIsFreed) {
    ThreadsPlatform p;
    HeapAllocator a;
    ipc::Registry small(p, a, 3);
    std::vector<Endpoint> endpoints;
    for (int i = 0; i < 3; ++i) {
        Result<Endpoint> e = small.create_endpoint(kOwner, 1);
        ASSERT_IPC_OK(e);
        endpoints.push_back(*e);
    }
    EXPECT_IPC_ERROR(small.create_endpoint(kOwner, 1), IpcError::OutOfMemory);
    EXPECT_IPC_ERROR(small.create_endpoint_with_guard(kOwner, 1), IpcError::OutOfMemory);
    EXPECT_EQ(small.stats().capacity, 3u);
    EXPECT_EQ(small.stats().live, 3u);
    ASSERT_IPC_OK(small.remove_endpoint(endpoints[1].id(), kOwner));
    EXPECT_IPC_OK(small.create_endpoint(kOwner, 1));
}

TEST_F(Registry, ATableOfZeroSlotsGivesOutOfMemory) {
    ThreadsPlatform p;
    HeapAllocator a;
    ipc::Registry empty(p, a, 0);
    EXPECT_EQ(empty.stats().capacity, 0u);
    EXPECT_IPC_ERROR(empty.create_endpoint(kOwner, 1), IpcError::OutOfMemory);
}

TEST_F(Registry, AnAllocatorThatFailsGivesOutOfMemory) {
    TestAllocator failing(0);  // refuses every allocation
    {
        ipc::Registry broken(platform, failing);
        EXPECT_IPC_ERROR(broken.create_endpoint(kOwner, 4), IpcError::OutOfMemory);
        EXPECT_IPC_ERROR(broken.create_endpoint_with_guard(kOwner), IpcError::OutOfMemory);
        EXPECT_IPC_ERROR(broken.create_channel(kOwner, 4), IpcError::OutOfMemory);
        EXPECT_EQ(broken.stats().capacity, 0u);
        EXPECT_EQ(broken.stats().live, 0u);
        EXPECT_IPC_ERROR(broken.lookup(1), IpcError::EndpointNotFound);
        EXPECT_EQ(broken.remove_process_endpoints(kOwner), 0u);
    }
    EXPECT_GT(failing.refused(), 0);
    EXPECT_EQ(failing.outstanding(), 0);
}

TEST_F(Registry, QueueAllocationFailureGivesOutOfMemoryAndTakesNoSlot) {
    TestAllocator allocator_that_fails_later;
    {
        ipc::Registry r(platform, allocator_that_fails_later, 4);
        ASSERT_EQ(allocator_that_fails_later.allocations(), 2);  // the two tables, once
        ASSERT_IPC_OK(r.create_space(kOwner));                   // the owner's entries
        ASSERT_EQ(allocator_that_fails_later.allocations(), 3);
        allocator_that_fails_later.fail_after(0);
        EXPECT_IPC_ERROR(r.create_endpoint(kOwner, 4), IpcError::OutOfMemory);
        EXPECT_EQ(r.stats().live, 0u);
        EXPECT_EQ(r.stats().created, 0u);
        allocator_that_fails_later.fail_after(1);  // one queue, then failure again
        EXPECT_IPC_ERROR(r.create_channel(kOwner, 4), IpcError::OutOfMemory);
        EXPECT_EQ(r.stats().live, 0u);
        allocator_that_fails_later.never_fail();
        EXPECT_IPC_OK(r.create_endpoint(kOwner, 4));
    }
    EXPECT_EQ(allocator_that_fails_later.outstanding(), 0);
}

TEST_F(Registry, AllocatesOnlyThroughItsAllocatorAndGivesEverythingBack) {
    TestAllocator counting;
    {
        ipc::Registry r(platform, counting, 8);
        EXPECT_EQ(counting.outstanding(), 2);  // the slot table and the space table
        ASSERT_IPC_OK(r.create_space(kOwner));
        const long after_table = counting.outstanding();
        EXPECT_EQ(after_table, 3);  // and the owner's entries
        Endpoint a = *r.create_endpoint(kOwner, 16);
        Endpoint b = *r.create_endpoint(kOwner, 16);
        EXPECT_EQ(counting.outstanding(), after_table + 2);  // one queue each
        ASSERT_IPC_OK(r.remove_endpoint(a.id(), kOwner));
        EXPECT_EQ(counting.outstanding(), after_table + 1);
        (void)b;  // left for the destructor
    }
    EXPECT_EQ(counting.outstanding(), 0);
}

TEST_F(Registry, DestructorClosesEndpointsStillRegistered) {
    TestAllocator counting;
    auto r = std::make_unique<ipc::Registry>(platform, counting, 4);
    Endpoint e = *r->create_endpoint(kOwner, 4);
    ASSERT_IPC_OK(e.send_async(tagged(1)));
    r.reset();
    EXPECT_EQ(counting.outstanding(), 0);
}

TEST_F(Registry, StatsCountCreatedRemovedAndLiveEndpoints) {
    const RegistryStats before = registry.stats();
    EXPECT_EQ(before.capacity, ipc::Registry::DEFAULT_MAX_ENDPOINTS);
    EXPECT_EQ(before.live, 0u);
    EXPECT_EQ(before.created, 0u);
    Endpoint a = make_endpoint(1);
    Endpoint b = make_endpoint(1);
    make_endpoint(1);
    ASSERT_IPC_OK(registry.remove_endpoint(a.id(), kOwner));
    ASSERT_IPC_OK(registry.remove_endpoint(b.id(), kOwner));
    const RegistryStats s = registry.stats();
    EXPECT_EQ(s.created, 3u);
    EXPECT_EQ(s.removed, 2u);
    EXPECT_EQ(s.live, 1u);
    EXPECT_EQ(s.retired_slots, 0u);
}

TEST_F(Registry, ASlotIsRetiredOnceCreateAndRemoveHaveUsedUpItsGenerations) {
    ThreadsPlatform p;
    HeapAllocator a;
    ipc::Registry one(p, a, 1);
    Result<Endpoint> first = one.create_endpoint(kOwner, 1);
    ASSERT_IPC_OK(first);
    const Capability first_token = first->capability();
    ASSERT_IPC_OK(one.remove_endpoint(first->id(), kOwner));
    u64 created = 1;
    for (;;) {
        Result<Endpoint> e = one.create_endpoint(kOwner, 1);
        if (!e) {
            EXPECT_EQ(e.error(), IpcError::OutOfMemory);
            break;
        }
        ++created;
        ASSERT_LE(created, 0xFFFFu) << "the slot's generation wrapped around";
        ASSERT_NE(e->capability().check(), 0u);
        ASSERT_IPC_OK(one.remove_endpoint(e->id(), kOwner));
    }
    // One endpoint per generation 1..0xFFFF; the first token never came back to life.
    EXPECT_EQ(created, 0xFFFFu);
    EXPECT_EQ(one.stats().retired_slots, 1u);
    EXPECT_IPC_ERROR(one.validate_capability(*first->space(), first_token, 0),
                     IpcError::InvalidCapability);
}

TEST_F(Registry, ValidateCapabilityReturnsAHandleWithTheEntrysRights) {
    Endpoint e = make_endpoint();
    Result<Endpoint> v = registry.validate_capability(
        owner_space(), e.derive(Rights::SEND).value().capability(), Rights::SEND);
    ASSERT_IPC_OK(v);
    EXPECT_EQ(v->id(), e.id());
    ASSERT_IPC_OK(v->info());
    EXPECT_EQ(v->info()->rights, Rights::SEND);
    EXPECT_IPC_OK(v->send_async(tagged(1)));
    EXPECT_IPC_ERROR(v->try_receive(), IpcError::PermissionDenied);
}

TEST_F(Registry, EndpointsWorkFromManyThreadsCreatingAndRemovingAtOnce) {
    constexpr int kThreads = 4;
    constexpr int kRounds = 500;
    std::atomic<int> failures{0};
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                const ProcessId owner{static_cast<u64>(100 + t)};
                for (int i = 0; i < kRounds; ++i) {
                    Result<Endpoint> e = registry.create_endpoint(owner, 2);
                    if (!e || !e->send_async(tagged(1)) || !e->try_receive() ||
                        !registry.remove_endpoint(e->id(), owner)) {
                        failures.fetch_add(1);
                    }
                }
            });
        }
    }
    EXPECT_EQ(failures.load(), 0);
    const RegistryStats s = registry.stats();
    EXPECT_EQ(s.live, 0u);
    EXPECT_EQ(s.created, u64{kThreads * kRounds});
    EXPECT_EQ(s.removed, u64{kThreads * kRounds});
}

}  // namespace
}  // namespace veridian::ipc::registry_spec
