// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc core: IpcError and Result<T>.
//
// Errors are values, never exceptions, so kernel and user code read the same. Every
// fallible operation returns Result<T>, shaped like std::expected<T, IpcError>:
//
//   Result<Message> r = endpoint.try_receive();
//   if (!r) return r.error();          // or: Message m = VIPC_TRY(endpoint.try_receive());
//   use(*r);
//
// VIPC_TRY(expr) is the one propagation helper: it evaluates to the value of a successful
// Result and returns the error from the enclosing function otherwise (a GNU statement
// expression, supported by GCC and Clang, which are the compilers this project builds with).
#pragma once

#include <new>
#include <type_traits>

#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc {

// The 16 error kinds of the seed, with errno-style codes -1..-16 in this order.
// New kinds go after them.
enum class IpcError : int {
    InvalidCapability = -1,
    ProcessNotFound = -2,
    EndpointNotFound = -3,
    MessageTooLarge = -4,
    OutOfMemory = -5,
    WouldBlock = -6,
    RateLimitExceeded = -7,
    Timeout = -8,
    PermissionDenied = -9,
    InvalidMessage = -10,
    ChannelFull = -11,
    ChannelEmpty = -12,
    EndpointBusy = -13,
    InvalidMemoryRegion = -14,
    ResourceBusy = -15,
    NotInitialized = -16,
};

inline constexpr int IPC_ERROR_KIND_COUNT = 16;

// The errno-style code of an error (-1..-16).
constexpr int error_code(IpcError e) {
    return static_cast<int>(e);
}

// Sets *out to the error whose code is `code` and returns true; false for any other code.
constexpr bool error_from_code(int code, IpcError* out) {
    if (code > -1 || code < -IPC_ERROR_KIND_COUNT) return false;
    *out = static_cast<IpcError>(code);
    return true;
}

// The kind's name, e.g. "ChannelFull".
const char* error_name(IpcError e);
// One sentence that says what happened, e.g. "the queue is full".
const char* error_text(IpcError e);

// Result<T>: a T or an IpcError. Result<void> carries only success or an error.
template <typename T>
class [[nodiscard]] Result {
    static_assert(!std::is_reference_v<T>, "Result<T&> is not supported");

public:
    Result(const T& value) : has_value_(true) { new (&value_) T(value); }  // NOLINT: implicit
    Result(T&& value) : has_value_(true) {                                 // NOLINT: implicit
        new (&value_) T(static_cast<T&&>(value));
    }
    Result(IpcError error) : error_(error), has_value_(false) {}  // NOLINT: implicit

    Result(const Result& other) : has_value_(other.has_value_) {
        if (has_value_) {
            new (&value_) T(other.value_);
        } else {
            error_ = other.error_;
        }
    }
    Result(Result&& other) : has_value_(other.has_value_) {
        if (has_value_) {
            new (&value_) T(static_cast<T&&>(other.value_));
        } else {
            error_ = other.error_;
        }
    }
    Result& operator=(const Result& other) {
        if (this != &other) {
            destroy();
            new (this) Result(other);
        }
        return *this;
    }
    Result& operator=(Result&& other) {
        if (this != &other) {
            destroy();
            new (this) Result(static_cast<Result&&>(other));
        }
        return *this;
    }
    ~Result() { destroy(); }

    bool has_value() const { return has_value_; }
    explicit operator bool() const { return has_value_; }

    // Precondition: has_value(). Violating it traps (there are no exceptions to throw).
    T& value() & {
        check(has_value_);
        return value_;
    }
    const T& value() const& {
        check(has_value_);
        return value_;
    }
    T&& value() && {
        check(has_value_);
        return static_cast<T&&>(value_);
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return static_cast<Result&&>(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    // Precondition: !has_value().
    IpcError error() const {
        check(!has_value_);
        return error_;
    }

    T value_or(T fallback) const { return has_value_ ? value_ : fallback; }

private:
    static void check(bool ok) {
        if (VIPC_UNLIKELY(!ok)) __builtin_trap();
    }
    void destroy() {
        if (has_value_) value_.~T();
    }

    union {
        T value_;
        IpcError error_;
    };
    bool has_value_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() : error_(IpcError::NotInitialized), has_value_(true) {}
    Result(IpcError error) : error_(error), has_value_(false) {}  // NOLINT: implicit

    bool has_value() const { return has_value_; }
    explicit operator bool() const { return has_value_; }
    void value() const {
        if (VIPC_UNLIKELY(!has_value_)) __builtin_trap();
    }
    IpcError error() const {
        if (VIPC_UNLIKELY(has_value_)) __builtin_trap();
        return error_;
    }

private:
    IpcError error_;
    bool has_value_;
};

// Success of a Result<void>.
inline Result<void> ok() {
    return Result<void>();
}

}  // namespace veridian::ipc

// Evaluates `expr` (a Result); on error returns that error from the enclosing function,
// otherwise the whole expression has the success value (void for Result<void>).
#define VIPC_TRY(expr)                                                                     \
    ({                                                                                     \
        auto vipc_try_result_ = (expr);                                                    \
        if (VIPC_UNLIKELY(!vipc_try_result_.has_value())) return vipc_try_result_.error(); \
        ::veridian::ipc::detail::take_value(                                               \
            static_cast<decltype(vipc_try_result_)&&>(vipc_try_result_));                  \
    })

namespace veridian::ipc::detail {
template <typename T>
T take_value(Result<T>&& r) {
    return static_cast<Result<T>&&>(r).value();
}
inline void take_value(Result<void>&&) {}
}  // namespace veridian::ipc::detail
