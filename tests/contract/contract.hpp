// SPDX-License-Identifier: MIT OR Apache-2.0
// The contract suite's vocabulary: CONTRACT_TEST and the checks, hosted (a gtest typed test
// per runtime) or in the kernel (one "PASS name" / "FAIL name: why" line on the serial port).
//
// A behaviour is written once, against an adapter `a` (see core_adapter.hpp,
// posix_adapter.hpp) that opens a server endpoint and one client with a capacity and rights:
//
//   CONTRACT_TEST(TryReceiveOnAnEmptyQueueIsChannelEmpty) {
//       REQUIRE(a.open(Setup{}));
//       CHECK_ERR(a.client_try_receive(), IpcError::ChannelEmpty);
//   }
//
// CONTRACT_TEST bodies run in every runtime, the kernel's included, so they use only the
// core's freestanding vocabulary; CONTRACT_TEST_HOSTED bodies (more threads, more memory)
// run in the hosted runtimes only. A body that branches on a runtime's documented
// difference says so with the adapter's constant (e.g. `A::kCloseDiscardsQueued`) and names
// the row of docs/CONTRACT.md.
#pragma once

#include "veridian/ipc/core/capability.hpp"
#include "veridian/ipc/core/endpoint.hpp"
#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/message.hpp"

namespace veridian::ipc::contract {

// What a test opens: a server endpoint and one client of it.
struct Setup {
    u32 capacity = 4;                                    // messages per direction (a power of two)
    u16 client_rights = Rights::SEND | Rights::RECEIVE;  // SEND, RECEIVE
};

// A message taken by the server, and what it needs to reply to it.
struct Request {
    Message message;
    u64 token = 0;  // the runtime's handle of the request's connection
};

inline Message small(u32 opcode, u64 data0 = 0) {
    Message m = Message::small(0, opcode);
    m.small_message().data[0] = data0;
    return m;
}

// The failure sink: a hosted build reports to gtest, the kernel prints.
void report_failure(const char* file, int line, const char* what, const char* detail);

template <typename R>
bool check_ok(const R& r, const char* file, int line, const char* expr) {
    if (r.has_value()) return true;
    report_failure(file, line, expr, error_name(r.error()));
    return false;
}

template <typename R>
bool check_err(const R& r, IpcError want, const char* file, int line, const char* expr) {
    if (!r.has_value() && r.error() == want) return true;
    report_failure(file, line, expr, r.has_value() ? "succeeded" : error_name(r.error()));
    return false;
}

inline bool check(bool ok, const char* file, int line, const char* expr) {
    if (!ok) report_failure(file, line, expr, "is false");
    return ok;
}

}  // namespace veridian::ipc::contract

#define CHECK_TRUE(cond) ::veridian::ipc::contract::check((cond), __FILE__, __LINE__, #cond)
#define CHECK_EQ(a, b) \
    ::veridian::ipc::contract::check((a) == (b), __FILE__, __LINE__, #a " == " #b)
#define CHECK_OK(r) ::veridian::ipc::contract::check_ok((r), __FILE__, __LINE__, #r)
#define CHECK_ERR(r, e) ::veridian::ipc::contract::check_err((r), (e), __FILE__, __LINE__, #r)
// Ends the body (or the party) when the condition fails.
#define REQUIRE(cond)                  \
    do {                               \
        if (!CHECK_TRUE(cond)) return; \
    } while (0)
#define REQUIRE_OK(r)             \
    do {                          \
        if (!CHECK_OK(r)) return; \
    } while (0)

// CONTRACT_TEST(Name) { body using `a` (the adapter, of type A) }
#if defined(VIPC_CONTRACT_KERNEL)
#include "kernel_contract.hpp"
#else
#include <gtest/gtest.h>
#define VIPC_CONTRACT_TYPED(Name)                                            \
    template <typename A>                                                    \
    void Name##_body(A& a);                                                  \
    TYPED_TEST(Contract, Name) {                                             \
        TypeParam::repeat([](TypeParam& adapter) { Name##_body(adapter); }); \
    }                                                                        \
    template <typename A>                                                    \
    void Name##_body([[maybe_unused]] A& a)
#define CONTRACT_TEST(Name) VIPC_CONTRACT_TYPED(Name)
#define CONTRACT_TEST_HOSTED(Name) VIPC_CONTRACT_TYPED(Name)
#endif
