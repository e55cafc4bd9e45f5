// SPDX-License-Identifier: MIT OR Apache-2.0
// ChannelGuard: the RAII owner of an endpoint. Destroying it closes the endpoint and
// removes it from the registry.
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace veridian::ipc {
namespace {

using test::CoreTest;
using test::kOwner;
using test::tagged;

using Guard = CoreTest;

TEST_F(Guard, CreationGivesAnActiveEndpointAndAGuardForIt) {
    Result<EndpointWithGuard> made = registry.create_endpoint_with_guard(kOwner);
    ASSERT_IPC_OK(made);
    EXPECT_TRUE(made->endpoint.is_active());
    EXPECT_EQ(made->endpoint.owner(), kOwner);
    EXPECT_EQ(made->guard.endpoint_id(), made->endpoint.id());
}

TEST_F(Guard, DestroyingItClosesAndRemovesTheEndpoint) {
    Endpoint e;
    {
        Result<EndpointWithGuard> made = registry.create_endpoint_with_guard(kOwner, 4);
        ASSERT_IPC_OK(made);
        e = made->endpoint;
        ASSERT_IPC_OK(e.send_async(tagged(1)));
    }
    EXPECT_FALSE(e.is_active());
    EXPECT_IPC_ERROR(e.send_async(tagged(2)), IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(registry.validate_capability(owner_space(), e.capability(), 0),
                     IpcError::InvalidCapability);
    EXPECT_IPC_ERROR(registry.lookup(e.id()), IpcError::EndpointNotFound);
    EXPECT_EQ(registry.stats().live, 0u);
}

TEST_F(Guard, DestroyingItWakesBlockedReceiversWithEndpointNotFound) {
    constexpr int kReceivers = 3;
    Result<EndpointWithGuard> made = registry.create_endpoint_with_guard(kOwner);
    ASSERT_IPC_OK(made);
    Endpoint e = made->endpoint;
    ChannelGuard guard = static_cast<ChannelGuard&&>(made->guard);
    std::vector<Result<Message>> results(kReceivers, Result<Message>(IpcError::NotInitialized));
    {
        std::vector<std::jthread> receivers;
        for (int i = 0; i < kReceivers; ++i) {
            receivers.emplace_back([&, i] { results[i] = e.receive_sync(bound()); });
        }
        ASSERT_TRUE(wait_for_receivers(e, kReceivers));
        { ChannelGuard dying = static_cast<ChannelGuard&&>(guard); }
    }
    for (const Result<Message>& r : results)
        EXPECT_IPC_ERROR(r, IpcError::EndpointNotFound);
}

TEST_F(Guard, ResetClosesNowAndIsIdempotent) {
    Result<EndpointWithGuard> made = registry.create_endpoint_with_guard(kOwner);
    ASSERT_IPC_OK(made);
    made->guard.reset();
    EXPECT_FALSE(made->endpoint.is_active());
    EXPECT_EQ(made->guard.endpoint_id(), 0u);
    made->guard.reset();
    EXPECT_EQ(registry.stats().removed, 1u);
}

TEST_F(Guard, ReleaseGivesUpOwnershipWithoutClosing) {
    Endpoint e;
    EndpointId released = 0;
    {
        Result<EndpointWithGuard> made = registry.create_endpoint_with_guard(kOwner);
        ASSERT_IPC_OK(made);
        e = made->endpoint;
        released = made->guard.release();
    }
    EXPECT_EQ(released, e.id());
    EXPECT_TRUE(e.is_active());
    EXPECT_IPC_OK(registry.remove_endpoint(released, kOwner));
}

TEST_F(Guard, MoveTransfersOwnershipAndTheMovedFromGuardClosesNothing) {
    Result<EndpointWithGuard> made = registry.create_endpoint_with_guard(kOwner);
    ASSERT_IPC_OK(made);
    ChannelGuard target;
    target = static_cast<ChannelGuard&&>(made->guard);
    EXPECT_EQ(made->guard.endpoint_id(), 0u);
    made->guard.reset();
    EXPECT_TRUE(made->endpoint.is_active());
    target.reset();
    EXPECT_FALSE(made->endpoint.is_active());
}

TEST_F(Guard, MoveAssigningOverAGuardClosesWhatItOwned) {
    Result<EndpointWithGuard> first = registry.create_endpoint_with_guard(kOwner);
    Result<EndpointWithGuard> second = registry.create_endpoint_with_guard(kOwner);
    ASSERT_IPC_OK(first);
    ASSERT_IPC_OK(second);
    first->guard = static_cast<ChannelGuard&&>(second->guard);
    EXPECT_FALSE(first->endpoint.is_active());
    EXPECT_TRUE(second->endpoint.is_active());
    EXPECT_EQ(first->guard.endpoint_id(), second->endpoint.id());
}

TEST_F(Guard, OutlivingItsEndpointIsHarmless) {
    Result<EndpointWithGuard> made = registry.create_endpoint_with_guard(kOwner);
    ASSERT_IPC_OK(made);
    ASSERT_IPC_OK(registry.remove_endpoint(made->endpoint.id(), kOwner));
    Endpoint later = make_endpoint();
    made->guard.reset();  // its endpoint is gone; the newer one must be left alone
    EXPECT_TRUE(later.is_active());
    EXPECT_EQ(registry.stats().live, 1u);
}

}  // namespace
}  // namespace veridian::ipc
