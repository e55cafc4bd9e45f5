// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the user/kernel contract — the address-space layout and the system-call ABI.
// Included by the kernel and by every user program (kernel/user/), so both sides agree.
//
// A system call is the `syscall` instruction with:
//   rax  in: the call number (bits 0-7) | GENERAL_PATH_FLAG (bit 8, optional)
//        out: 0 on success, else an IpcError code (-1..-16) sign-extended to 64 bits
//   rdi, rsi, rdx, r10, r8, r9: the arguments. For the IPC calls these six registers are
//        the SmallMessage: rdi = capability (a handle), rsi = opcode (bits 0-31) | flags
//        (bits 32-63), rdx, r10, r8, r9 = data[0..3].
//   r12  an extra argument (reply_receive: the endpoint to receive on; the *_deadline
//        calls: the timeout in nanoseconds) and, on return from a receive, the sender.
//   rcx, r11: clobbered by syscall/sysret (they carry rip and rflags), as on Linux.
// Every other register is preserved.
//
// A received message comes back in the same six registers: rdi = the reply handle (a
// one-shot capability to answer a call; 0 when the message was not a call), rsi =
// opcode|flags, rdx, r10, r8, r9 = data[0..3], and r12 = the sender's ProcessId, stamped by
// the kernel (never taken from the sender).
#pragma once

#include <cstdint>

namespace vipc_abi {

// The user half of every address space: USER_PAGES pages at USER_BASE, all mapped,
// user-accessible and writable. The program image is loaded at USER_BASE (its entry point
// is USER_BASE itself) and the stack grows down from USER_STACK_TOP. Everything else —
// in particular the kernel's identity map of the first GiB — is supervisor-only.
inline constexpr std::uint64_t USER_BASE = 0x4000'0000;  // 1 GiB
inline constexpr std::uint64_t PAGE_BYTES = 4096;
inline constexpr std::uint64_t USER_PAGES = 32;
inline constexpr std::uint64_t USER_BYTES = USER_PAGES * PAGE_BYTES;
inline constexpr std::uint64_t USER_STACK_TOP = USER_BASE + USER_BYTES;
inline constexpr std::uint64_t USER_STACK_BYTES = 16 * 1024;
inline constexpr std::uint64_t USER_IMAGE_MAX_BYTES = USER_BYTES - USER_STACK_BYTES;

// The longest debug_print (longer: MessageTooLarge).
inline constexpr std::uint64_t DEBUG_PRINT_MAX_BYTES = 256;

enum Syscall : std::uint64_t {
    SYS_DEBUG_PRINT = 0,        // rdi = text, rsi = length (no newline needed)
    SYS_EXIT = 1,               // rdi = exit code; does not return
    SYS_YIELD = 2,              // gives the CPU to the next ready task
    SYS_SEND = 3,               // message regs; blocks while the queue is full
    SYS_FAST_SEND = 4,          // message regs; never blocks (ChannelFull)
    SYS_RECEIVE = 5,            // rdi = endpoint; blocks until a message (received regs)
    SYS_CALL = 6,               // message regs; blocks until the reply (received regs)
    SYS_REPLY = 7,              // rdi = reply handle, rsi..r9 = the reply
    SYS_REPLY_RECEIVE = 8,      // rdi = reply handle, rsi..r9 = the reply, r12 = endpoint
    SYS_CLOSE = 9,              // rdi = endpoint (needs REVOKE)
    SYS_DERIVE = 10,            // rdi = handle, rsi = rights to keep; out rdi = new handle
    SYS_REVOKE = 11,            // rdi = handle (needs REVOKE): every other handle goes stale
    SYS_RECEIVE_DEADLINE = 12,  // SYS_RECEIVE with r12 = timeout in ns (Timeout)
    SYS_SEND_DEADLINE = 13,     // SYS_SEND with r12 = timeout in ns (Timeout)
    SYS_ENDPOINT_STATS = 14,    // rdi = handle; out rsi = queued, rdx = blocked senders,
                                // r10 = blocked receivers, r8 = callers awaiting a reply
    SYSCALL_COUNT = 15,
};

// Set in rax to keep a call (SYS_CALL, SYS_REPLY_RECEIVE) off the fast path: for
// measuring the general path against it.
inline constexpr std::uint64_t GENERAL_PATH_FLAG = 1u << 8;
inline constexpr std::uint64_t SYSCALL_NUMBER_MASK = 0xff;

// Rights, as in veridian/ipc/core/capability.hpp.
inline constexpr std::uint64_t RIGHT_SEND = 1u << 0;
inline constexpr std::uint64_t RIGHT_RECEIVE = 1u << 1;
inline constexpr std::uint64_t RIGHT_GRANT = 1u << 2;
inline constexpr std::uint64_t RIGHT_REVOKE = 1u << 3;

// Error codes (the core's IpcError values).
inline constexpr std::int64_t ERR_INVALID_CAPABILITY = -1;
inline constexpr std::int64_t ERR_ENDPOINT_NOT_FOUND = -3;
inline constexpr std::int64_t ERR_MESSAGE_TOO_LARGE = -4;
inline constexpr std::int64_t ERR_TIMEOUT = -8;
inline constexpr std::int64_t ERR_PERMISSION_DENIED = -9;
inline constexpr std::int64_t ERR_INVALID_MESSAGE = -10;
inline constexpr std::int64_t ERR_CHANNEL_FULL = -11;
inline constexpr std::int64_t ERR_ENDPOINT_BUSY = -13;
inline constexpr std::int64_t ERR_INVALID_MEMORY_REGION = -14;

// Message flags (as MessageFlags): the kernel sets IS_REPLY on a reply; HAS_CAPABILITY
// says data[0] is a handle of the sender's space, which the receiver gets as a handle of
// its own (the send needs GRANT on it; not in replies).
inline constexpr std::uint64_t FLAG_IS_REPLY = 1u << 3;
inline constexpr std::uint64_t FLAG_HAS_CAPABILITY = 1u << 4;

}  // namespace vipc_abi
