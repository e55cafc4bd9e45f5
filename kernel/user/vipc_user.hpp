// SPDX-License-Identifier: MIT OR Apache-2.0
// User programs: the system calls of abi.hpp as functions, and a line printer.
//
//   vipc_user::Message m{};
//   m.opcode = 1;
//   m.data[0] = 41;
//   if (vipc_user::call(handle, m) != 0) return 1;   // m now holds the reply
//
// Every function returns the kernel's status: 0, or an IpcError code (vipc_abi::ERR_*).
#pragma once

#include <cstdint>

#include "abi.hpp"

namespace vipc_user {

using std::int64_t;
using std::uint32_t;
using std::uint64_t;

// The six message registers (plus what the kernel returns with a received message).
struct Message {
    uint64_t handle = 0;  // out: the reply handle of a received call, else 0
    uint32_t opcode = 0;
    uint32_t flags = 0;
    uint64_t data[4] = {0, 0, 0, 0};
    uint64_t sender = 0;  // out: the sender's ProcessId, stamped by the kernel
    uint64_t badge = 0;   // out: the badge of the entry the message was sent through
};

struct Registers {
    uint64_t rdi = 0, rsi = 0, rdx = 0, r10 = 0, r8 = 0, r9 = 0, r12 = 0, r13 = 0;
};

inline int64_t raw_syscall(uint64_t number, Registers& r) {
    register uint64_t rdi asm("rdi") = r.rdi;
    register uint64_t rsi asm("rsi") = r.rsi;
    register uint64_t rdx asm("rdx") = r.rdx;
    register uint64_t r10 asm("r10") = r.r10;
    register uint64_t r8 asm("r8") = r.r8;
    register uint64_t r9 asm("r9") = r.r9;
    register uint64_t r12 asm("r12") = r.r12;
    register uint64_t r13 asm("r13") = r.r13;
    uint64_t rax = number;
    asm volatile("syscall"
                 : "+a"(rax), "+r"(rdi), "+r"(rsi), "+r"(rdx), "+r"(r10), "+r"(r8), "+r"(r9),
                   "+r"(r12), "+r"(r13)
                 :
                 : "rcx", "r11", "memory");
    r = Registers{rdi, rsi, rdx, r10, r8, r9, r12, r13};
    return static_cast<int64_t>(rax);
}

inline Registers to_registers(uint64_t handle, const Message& m) {
    Registers r;
    r.rdi = handle;
    r.rsi = m.opcode | (uint64_t{m.flags} << 32);
    r.rdx = m.data[0];
    r.r10 = m.data[1];
    r.r8 = m.data[2];
    r.r9 = m.data[3];
    return r;
}

inline void from_registers(const Registers& r, Message& m) {
    m.handle = r.rdi;
    m.opcode = static_cast<uint32_t>(r.rsi);
    m.flags = static_cast<uint32_t>(r.rsi >> 32);
    m.data[0] = r.rdx;
    m.data[1] = r.r10;
    m.data[2] = r.r8;
    m.data[3] = r.r9;
    m.sender = r.r12;
    m.badge = r.r13;
}

inline uint64_t path(bool general) {
    return general ? vipc_abi::GENERAL_PATH_FLAG : 0;
}

inline int64_t send(uint64_t handle, const Message& m) {
    Registers r = to_registers(handle, m);
    return raw_syscall(vipc_abi::SYS_SEND, r);
}
inline int64_t send_deadline(uint64_t handle, const Message& m, uint64_t timeout_ns) {
    Registers r = to_registers(handle, m);
    r.r12 = timeout_ns;
    return raw_syscall(vipc_abi::SYS_SEND_DEADLINE, r);
}
inline int64_t fast_send(uint64_t handle, const Message& m) {
    Registers r = to_registers(handle, m);
    return raw_syscall(vipc_abi::SYS_FAST_SEND, r);
}
inline int64_t receive(uint64_t handle, Message& out) {
    Registers r;
    r.rdi = handle;
    const int64_t status = raw_syscall(vipc_abi::SYS_RECEIVE, r);
    if (status == 0) from_registers(r, out);
    return status;
}
inline int64_t receive_deadline(uint64_t handle, Message& out, uint64_t timeout_ns) {
    Registers r;
    r.rdi = handle;
    r.r12 = timeout_ns;
    const int64_t status = raw_syscall(vipc_abi::SYS_RECEIVE_DEADLINE, r);
    if (status == 0) from_registers(r, out);
    return status;
}
// `m` is the request; on success it holds the reply.
inline int64_t call(uint64_t handle, Message& m, bool general = false) {
    Registers r = to_registers(handle, m);
    const int64_t status = raw_syscall(vipc_abi::SYS_CALL | path(general), r);
    if (status == 0) from_registers(r, m);
    return status;
}
inline int64_t reply(uint64_t reply_handle, const Message& m) {
    Registers r = to_registers(reply_handle, m);
    return raw_syscall(vipc_abi::SYS_REPLY, r);
}
inline int64_t reply_receive(uint64_t reply_handle, const Message& answer, uint64_t handle,
                             Message& out, bool general = false) {
    Registers r = to_registers(reply_handle, answer);
    r.r12 = handle;
    const int64_t status = raw_syscall(vipc_abi::SYS_REPLY_RECEIVE | path(general), r);
    if (status == 0) from_registers(r, out);
    return status;
}
inline int64_t close(uint64_t handle) {
    Registers r;
    r.rdi = handle;
    return raw_syscall(vipc_abi::SYS_CLOSE, r);
}
inline int64_t derive(uint64_t handle, uint64_t rights, uint64_t& out, uint64_t badge = 0) {
    Registers r;
    r.rdi = handle;
    r.rsi = rights;
    r.rdx = badge;
    const int64_t status = raw_syscall(vipc_abi::SYS_DERIVE, r);
    if (status == 0) out = r.rdi;
    return status;
}
// The owner's revoke: every other handle to the endpoint, in every process, goes; `fresh`
// is the caller's new handle with all rights (`handle` goes too).
inline int64_t revoke(uint64_t handle, uint64_t& fresh) {
    Registers r;
    r.rdi = handle;
    const int64_t status = raw_syscall(vipc_abi::SYS_REVOKE, r);
    if (status == 0) fresh = r.rdi;
    return status;
}

struct EndpointStats {
    uint64_t queued = 0, blocked_senders = 0, blocked_receivers = 0, awaiting_reply = 0;
};
inline int64_t stats(uint64_t handle, EndpointStats& out) {
    Registers r;
    r.rdi = handle;
    const int64_t status = raw_syscall(vipc_abi::SYS_ENDPOINT_STATS, r);
    if (status == 0) out = EndpointStats{r.rsi, r.rdx, r.r10, r.r8};
    return status;
}
inline int64_t debug_print(const void* text, uint64_t length) {
    Registers r;
    r.rdi = reinterpret_cast<uint64_t>(text);
    r.rsi = length;
    return raw_syscall(vipc_abi::SYS_DEBUG_PRINT, r);
}
inline void yield() {
    Registers r;
    (void)raw_syscall(vipc_abi::SYS_YIELD, r);
}
[[noreturn]] inline void exit(int64_t code) {
    Registers r;
    r.rdi = static_cast<uint64_t>(code);
    (void)raw_syscall(vipc_abi::SYS_EXIT, r);
    __builtin_trap();
}

inline uint64_t rdtsc() {
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t{hi} << 32) | lo;
}

// Builds one line and prints it with debug_print.
class Line {
public:
    Line& operator<<(const char* s) {
        while (*s != '\0' && length_ < sizeof(buffer_))
            buffer_[length_++] = *s++;
        return *this;
    }
    Line& operator<<(uint64_t v) {
        char digits[20];
        int n = 0;
        do {
            digits[n++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v != 0);
        while (n > 0 && length_ < sizeof(buffer_))
            buffer_[length_++] = digits[--n];
        return *this;
    }
    Line& operator<<(int64_t v) {
        if (v < 0) {
            *this << "-";
            return *this << static_cast<uint64_t>(-v);
        }
        return *this << static_cast<uint64_t>(v);
    }
    Line& operator<<(int v) { return *this << static_cast<int64_t>(v); }
    Line& operator<<(uint32_t v) { return *this << static_cast<uint64_t>(v); }
    ~Line() { (void)debug_print(buffer_, length_); }

private:
    char buffer_[200];
    uint64_t length_ = 0;
};

// A check in a user scenario: prints what went wrong and counts it.
class Checker {
public:
    void expect(bool ok, const char* what) {
        if (!ok) {
            Line() << "check failed: " << what;
            ++failures_;
        }
    }
    void expect_status(int64_t got, int64_t want, const char* what) {
        if (got != want) {
            Line() << "check failed: " << what << " gave " << got << ", expected " << want;
            ++failures_;
        }
    }
    int64_t exit_code() const { return failures_ == 0 ? 0 : 1; }
    uint64_t failures() const { return failures_; }

private:
    uint64_t failures_ = 0;
};

}  // namespace vipc_user

// Every user program defines this: the four start arguments are what the kernel put in
// rdi, rsi, rdx and rcx. Its return value is the exit code.
extern "C" std::int64_t user_main(std::uint64_t a0, std::uint64_t a1, std::uint64_t a2,
                                  std::uint64_t a3);
