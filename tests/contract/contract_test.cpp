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

// ---- revoke: the runtimes whose client can be revoked ------------------------------------------
// (posix: a connection made through a capability; one made by name is ended with
// Server::disconnect instead, docs/CONTRACT.md "revoke").

template <typename A>
class ContractRevoke : public ::testing::Test {};
using RevocableRuntimes = ::testing::Types<CoreThreads, CoreSim, PosixInProcess>;
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

CONTRACT_REVOKE_TEST(TheServerGoesOnAfterRevokingAClient) {
    REQUIRE(a.open(Setup{}));
    REQUIRE_OK(a.revoke_client());
    CHECK_ERR(a.server_try_receive(), IpcError::ChannelEmpty);
    CHECK_TRUE(a.server_stats().active);
}

}  // namespace veridian::ipc::contract
