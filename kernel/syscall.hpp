// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: system calls (the ABI is in abi.hpp) and process teardown.
//
// Every system call runs with interrupts off (SFMASK clears IF on entry): on this one CPU
// that is the kernel's lock, as in the scheduler. A call may still block inside the core
// (wait_on switches away with interrupts off in its saved flags; other tasks run with
// their own).
#pragma once

#include <cstdint>

#include "interrupts.hpp"

namespace vipc_kernel {

struct Task;
struct KernelEndpoint;
struct ReplySlot;

// A CPU exception in ring 3: tears the current process down; returns the next frame.
InterruptFrame* user_fault(InterruptFrame* frame);

// The fast path (fastpath.cpp): returns the frame to resume after a direct switch, or
// nullptr when any check fails (nothing has changed then; the general path takes over).
InterruptFrame* fastpath_call(InterruptFrame* frame);
InterruptFrame* fastpath_reply_receive(InterruptFrame* frame);

// A free reply slot of `server` with fresh check bits (marked used), or nullptr when all
// REPLY_SLOTS are taken; and the handle that names it.
ReplySlot* reply_slot_alloc(Task* server);
std::uint64_t reply_slot_handle(const Task* server, const ReplySlot* r);
// The used slot a reply handle names, or nullptr.
ReplySlot* reply_slot_lookup(Task* server, std::uint64_t handle);

// Handles of reply slots: bit 31 set, check bits 8-23, index + 1 in bits 0-7.
inline constexpr std::uint64_t REPLY_HANDLE_MARK = 1ull << 31;

// Counters for the report.
struct SyscallStats {
    std::uint64_t calls = 0;
    std::uint64_t fast_calls = 0;
    std::uint64_t fast_reply_receives = 0;
    std::uint64_t processes_torn_down = 0;
};
SyscallStats syscall_stats();
void count_fast_call();
void count_fast_reply_receive();

}  // namespace vipc_kernel

extern "C" vipc_kernel::InterruptFrame* syscall_dispatch(vipc_kernel::InterruptFrame* frame);
