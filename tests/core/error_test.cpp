// SPDX-License-Identifier: MIT OR Apache-2.0
// IpcError, Result<T> and VIPC_TRY: the error half of the contract.
#include <cstring>
#include <iterator>
#include <set>
#include <string>

#include "test_support.hpp"

namespace veridian::ipc {
namespace {

using test::outcome;

// The 16 kinds in the order DESIGN.md lists them.
constexpr IpcError kDesignOrder[] = {
    IpcError::InvalidCapability, IpcError::ProcessNotFound,
    IpcError::EndpointNotFound,  IpcError::MessageTooLarge,
    IpcError::OutOfMemory,       IpcError::WouldBlock,
    IpcError::RateLimitExceeded, IpcError::Timeout,
    IpcError::PermissionDenied,  IpcError::InvalidMessage,
    IpcError::ChannelFull,       IpcError::ChannelEmpty,
    IpcError::EndpointBusy,      IpcError::InvalidMemoryRegion,
    IpcError::ResourceBusy,      IpcError::NotInitialized,
};
constexpr const char* kDesignNames[] = {
    "InvalidCapability", "ProcessNotFound",     "EndpointNotFound",  "MessageTooLarge",
    "OutOfMemory",       "WouldBlock",          "RateLimitExceeded", "Timeout",
    "PermissionDenied",  "InvalidMessage",      "ChannelFull",       "ChannelEmpty",
    "EndpointBusy",      "InvalidMemoryRegion", "ResourceBusy",      "NotInitialized",
};
static_assert(std::size(kDesignOrder) == IPC_ERROR_KIND_COUNT);

TEST(IpcError, CodesAreMinusOneToMinusSixteenInDesignOrder) {
    for (int i = 0; i < IPC_ERROR_KIND_COUNT; ++i) {
        EXPECT_EQ(error_code(kDesignOrder[i]), -(i + 1)) << kDesignNames[i];
    }
}

TEST(IpcError, EachKindIsNamedAsInTheDesign) {
    for (int i = 0; i < IPC_ERROR_KIND_COUNT; ++i) {
        EXPECT_STREQ(error_name(kDesignOrder[i]), kDesignNames[i]);
    }
}

TEST(IpcError, EachKindHasANonEmptyTextOfItsOwn) {
    std::set<std::string> texts;
    std::set<std::string> names;
    for (IpcError e : kDesignOrder) {
        ASSERT_NE(error_text(e), nullptr);
        ASSERT_NE(error_name(e), nullptr);
        EXPECT_GT(std::strlen(error_text(e)), 0u) << error_name(e);
        EXPECT_TRUE(texts.insert(error_text(e)).second) << "duplicate text: " << error_text(e);
        EXPECT_TRUE(names.insert(error_name(e)).second) << "duplicate name: " << error_name(e);
        EXPECT_STRNE(error_text(e), error_name(e));
    }
}

TEST(IpcError, CodesConvertBackToTheirKindAndNothingElseDoes) {
    for (IpcError e : kDesignOrder) {
        IpcError back = IpcError::NotInitialized;
        EXPECT_TRUE(error_from_code(error_code(e), &back));
        EXPECT_EQ(back, e);
    }
    IpcError untouched = IpcError::Timeout;
    for (int code : {0, 1, -17, -100, 16}) {
        EXPECT_FALSE(error_from_code(code, &untouched)) << code;
    }
    EXPECT_EQ(untouched, IpcError::Timeout);
}

TEST(IpcError, AnUnknownCodeStillHasANameAndAText) {
    const IpcError unknown = static_cast<IpcError>(-99);
    ASSERT_NE(error_name(unknown), nullptr);
    ASSERT_NE(error_text(unknown), nullptr);
    EXPECT_GT(std::strlen(error_name(unknown)), 0u);
    for (IpcError e : kDesignOrder)
        EXPECT_STRNE(error_name(unknown), error_name(e));
}

// A type that counts its live instances, to check that Result constructs and destroys its
// value exactly once per copy.
struct Tracked {
    static inline int live = 0;
    int value;
    explicit Tracked(int v) : value(v) { ++live; }
    Tracked(const Tracked& o) : value(o.value) { ++live; }
    Tracked(Tracked&& o) noexcept : value(o.value) { ++live; }
    Tracked& operator=(const Tracked&) = default;
    ~Tracked() { --live; }
};

TEST(Result, HoldsEitherAValueOrAnError) {
    Result<int> good = 42;
    ASSERT_TRUE(good.has_value());
    EXPECT_TRUE(static_cast<bool>(good));
    EXPECT_EQ(*good, 42);
    EXPECT_EQ(good.value(), 42);

    Result<int> bad = IpcError::ChannelEmpty;
    ASSERT_FALSE(bad.has_value());
    EXPECT_FALSE(static_cast<bool>(bad));
    EXPECT_EQ(bad.error(), IpcError::ChannelEmpty);
}

TEST(Result, ValueOrGivesTheFallbackOnlyOnError) {
    Result<int> good = 7;
    Result<int> bad = IpcError::Timeout;
    EXPECT_EQ(good.value_or(-1), 7);
    EXPECT_EQ(bad.value_or(-1), -1);
}

TEST(Result, VoidResultIsSuccessOrAnError) {
    Result<void> success = ok();
    EXPECT_TRUE(success.has_value());
    Result<void> failure = IpcError::EndpointBusy;
    ASSERT_FALSE(failure.has_value());
    EXPECT_EQ(failure.error(), IpcError::EndpointBusy);
}

TEST(Result, CopiesMovesAndAssignmentsKeepValueOrErrorAndDestroyEachValueOnce) {
    ASSERT_EQ(Tracked::live, 0);
    {
        Result<Tracked> a = Tracked(5);
        Result<Tracked> b = a;                                  // copy
        Result<Tracked> c = static_cast<Result<Tracked>&&>(b);  // move
        Result<Tracked> d = IpcError::OutOfMemory;
        EXPECT_EQ(c->value, 5);
        d = a;  // error -> value
        ASSERT_TRUE(d.has_value());
        EXPECT_EQ(d->value, 5);
        a = Result<Tracked>(IpcError::Timeout);  // value -> error
        ASSERT_FALSE(a.has_value());
        EXPECT_EQ(a.error(), IpcError::Timeout);
        c = a;
        EXPECT_EQ(c.error(), IpcError::Timeout);
    }
    EXPECT_EQ(Tracked::live, 0);
}

Result<int> parse_digit(char c) {
    if (c < '0' || c > '9') return IpcError::InvalidMessage;
    return c - '0';
}

int g_steps = 0;

Result<int> sum_of_digits(const char* s) {
    int sum = 0;
    for (; *s != '\0'; ++s) {
        sum += VIPC_TRY(parse_digit(*s));
        ++g_steps;
    }
    return sum;
}

Result<void> check_even(int v) {
    if (v % 2 != 0) return IpcError::InvalidMessage;
    return ok();
}

Result<int> half(int v) {
    VIPC_TRY(check_even(v));
    return v / 2;
}

TEST(VipcTry, YieldsTheValueOfASuccessfulResult) {
    Result<int> r = sum_of_digits("123");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(*r, 6);
}

TEST(VipcTry, ReturnsTheFirstErrorFromTheEnclosingFunction) {
    g_steps = 0;
    Result<int> r = sum_of_digits("12x45");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), IpcError::InvalidMessage);
    EXPECT_EQ(g_steps, 2);  // stopped at 'x'
}

TEST(VipcTry, PropagatesAVoidResult) {
    EXPECT_EQ(outcome(half(8)), "ok");
    EXPECT_EQ(half(8).value_or(0), 4);
    EXPECT_EQ(outcome(half(7)), "InvalidMessage");
}

TEST(VipcTry, EvaluatesItsExpressionExactlyOnce) {
    int calls = 0;
    auto once = [&]() -> Result<int> {
        ++calls;
        return 3;
    };
    auto user = [&]() -> Result<int> { return VIPC_TRY(once()) * 2; };
    Result<int> r = user();
    EXPECT_EQ(r.value_or(0), 6);
    EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace veridian::ipc
