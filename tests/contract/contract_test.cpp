// SPDX-License-Identifier: MIT OR Apache-2.0
// The contract suite, hosted: every behaviour of behaviours.hpp instantiated for the core on
// ThreadsPlatform, the core on the seeded sim, the posix runtime in one process, and the
// posix runtime across two processes; plus the behaviours only hosted runtimes run.
#include <atomic>
#include <thread>
#include <vector>

#include "posix_adapter.hpp"

namespace veridian::ipc::contract {

void report_failure(const char* file, int line, const char* what, const char* detail) {
    ADD_FAILURE_AT(file, line) << what << ": " << detail;
}

template <typename A>
class Contract : public ::testing::Test {};

struct AdapterName {
    template <typename A>
    static std::string GetName(int) {
        std::string name = A::kName;
        for (char& c : name) {
            if (c == '-') c = '_';
        }
        return name;
    }
};

using Runtimes = ::testing::Types<CoreThreads, CoreSim, PosixInProcess, PosixTwoProcesses>;
TYPED_TEST_SUITE(Contract, Runtimes, AdapterName);

}  // namespace veridian::ipc::contract

#include "behaviours.hpp"

namespace veridian::ipc::contract {

// ---- hosted only -------------------------------------------------------------------------------

CONTRACT_TEST_HOSTED(CallsFromSeveralThreadsGetTheirOwnReplies) {
    REQUIRE(a.open(Setup{16}));
    constexpr int kThreads = 4;
    constexpr int kCalls = 25;
    std::atomic<int> served{0};
    auto caller = [&](int t) {
        for (int i = 0; i < kCalls; ++i) {
            const u64 tag = static_cast<u64>(t) * 1000 + static_cast<u64>(i);
            auto r = a.client_call(small(5, tag), a.bound());
            if (!CHECK_OK(r)) return;
            CHECK_EQ(r->small_message().data[0], tag + 1);
        }
    };
    a.run_parties([&] { caller(0); }, [&] { caller(1); }, [&] { caller(2); }, [&] { caller(3); },
                  [&] {
                      while (served.load() < kThreads * kCalls) {
                          auto request = a.server_receive_sync(a.bound());
                          if (!CHECK_OK(request)) return;
                          const u64 tag = request->message.small_message().data[0];
                          if (!CHECK_OK(a.server_reply(*request, small(6, tag + 1)))) return;
                          served.fetch_add(1);
                      }
                  });
    CHECK_EQ(served.load(), kThreads * kCalls);
}

// ---- MessagePort: user code written once ------------------------------------------------------

// Sends `n` messages and says how many the port has sent: the same code for a core Endpoint
// and a posix Connection.
template <MessagePort Port>
Result<u64> send_and_count(Port& port, u64 n) {
    for (u64 i = 0; i < n; ++i)
        VIPC_TRY(port.send_async(small(1, i)));
    const EndpointStats s = VIPC_TRY(port.stats());
    return s.sent;
}

TEST(MessagePort, OneFunctionDrivesACoreEndpointAndAPosixConnection) {
    ThreadsPlatform platform;
    HeapAllocator allocator;
    Registry registry(platform, allocator, 4);
    auto endpoint = registry.create_endpoint(ProcessId{1}, 8);
    ASSERT_TRUE(endpoint);
    auto core_sent = send_and_count(*endpoint, 3);
    ASSERT_TRUE(core_sent);
    EXPECT_EQ(*core_sent, 3u);

    ScratchDir dir;
    posix::ServerOptions o;
    o.runtime_dir = dir.path();
    auto server = posix::Server::publish(kEndpointName, o);
    ASSERT_TRUE(server);
    posix::ConnectOptions c;
    c.runtime_dir = dir.path();
    auto connection = posix::Connection::connect(kEndpointName, c);
    ASSERT_TRUE(connection);
    auto posix_sent = send_and_count(*connection, 3);
    ASSERT_TRUE(posix_sent);
    EXPECT_EQ(*posix_sent, 3u);
    EXPECT_EQ(server->stats()->queued, 3u);
}

// ---- revoke: the runtimes whose client can be revoked ------------------------------------------
// (posix: a connection made through a capability — in one process, and across two with the
// capability minted and sent by the server's process; one made by name is ended with
// Server::disconnect instead, docs/CONTRACT.md "revoke").

template <typename A>
class ContractRevoke : public ::testing::Test {};
using RevocableRuntimes =
    ::testing::Types<CoreThreads, CoreSim, PosixInProcess, PosixTwoProcessesThroughCapability>;
TYPED_TEST_SUITE(ContractRevoke, RevocableRuntimes, AdapterName);

#define CONTRACT_REVOKE_TEST(Name)                                           \
    template <typename A>                                                    \
    void Name##_body(A& a);                                                  \
    TYPED_TEST(ContractRevoke, Name) {                                       \
        TypeParam::repeat([](TypeParam& adapter) { Name##_body(adapter); }); \
    }                                                                        \
    template <typename A>                                                    \
    void Name##_body([[maybe_unused]] A& a)

CONTRACT_REVOKE_TEST(ARevokedClientGetsInvalidCapability) {
    REQUIRE(a.open(Setup{}));
    REQUIRE_OK(a.revoke_client());
    CHECK_ERR(a.client_send_async(small(1)), IpcError::InvalidCapability);
    CHECK_ERR(a.client_send_sync(small(1), a.after_ms(20)), IpcError::InvalidCapability);
    CHECK_ERR(a.client_try_receive(), IpcError::InvalidCapability);
    CHECK_ERR(a.client_receive_sync(a.after_ms(20)), IpcError::InvalidCapability);
    CHECK_ERR(a.client_call(small(1), a.after_ms(20)), IpcError::InvalidCapability);
}

// docs/CONTRACT.md "revoke and blocked parties": posix ends the revoked connection and
// wakes whoever is blocked on it; the core's revoke (a generation bump) leaves a parked
// party parked until a message, a close or its deadline.
CONTRACT_REVOKE_TEST(RevokeAndTheClientsBlockedReceiver) {
    REQUIRE(a.open(Setup{}));
    a.run_parties(
        [&] {
            if constexpr (A::kRevokeWakesBlocked) {
                CHECK_ERR(a.client_receive_sync(a.bound()), IpcError::InvalidCapability);
            } else {
                CHECK_ERR(a.client_receive_sync(a.after_ms(200)), IpcError::Timeout);
            }
        },
        [&] {
            REQUIRE(a.wait_until([&] { return a.client_stats().waiting_receivers == 1; }));
            CHECK_OK(a.revoke_client());
        });
}

CONTRACT_REVOKE_TEST(TheServerGoesOnAfterRevokingAClient) {
    REQUIRE(a.open(Setup{}));
    REQUIRE_OK(a.revoke_client());
    CHECK_ERR(a.server_try_receive(), IpcError::ChannelEmpty);
    CHECK_TRUE(a.server_stats().active);
}

}  // namespace veridian::ipc::contract
