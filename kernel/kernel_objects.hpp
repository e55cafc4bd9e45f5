// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the objects every part of the kernel shares — the core's Registry (with the
// kernel's Platform and Allocator) and the kernel's companion of each endpoint that user
// processes use.
//
// A KernelEndpoint holds what the core does not: the processes parked in receive on the
// endpoint (at the IPC level, with no kernel stack in use: the fast path hands a call
// straight to the first of them), whether the core's queue may hold messages, whether the
// endpoint was closed, and a revocation epoch (handle entries made before a revoke are
// refused by the fast path and then by the core).
//
// Invariant (interrupts off around every change): receivers non-empty => the core's queue
// is empty (a sender that finds a parked receiver wakes it; a receiver parks only after
// the core said ChannelEmpty). maybe_queued == false => the core's queue is empty.
#pragma once

#include <cstdint>

#include "kernel_platform.hpp"
#include "task.hpp"
#include "veridian/ipc/core/registry.hpp"

namespace vipc_kernel {

KernelPlatform& kernel_platform();
ArenaAllocator& kernel_allocator();
veridian::ipc::Registry& kernel_registry();

struct KernelEndpoint {
    veridian::ipc::Endpoint endpoint;  // all rights: the kernel's own handle
    veridian::ipc::EndpointId id = 0;  // 0: this slot is free
    ProcessId owner{};
    std::uint32_t epoch = 0;
    bool closed = false;
    bool maybe_queued = false;
    TaskList receivers;  // parked in receive, FIFO
    std::uint64_t fast_calls = 0;
    std::uint64_t fast_replies = 0;
};

inline constexpr std::uint32_t MAX_KERNEL_ENDPOINTS = 48;

// Creates an endpoint owned by `owner` (a user process: its teardown removes it) and its
// companion. OutOfMemory when either table is full.
veridian::ipc::Result<KernelEndpoint*> create_kernel_endpoint(ProcessId owner,
                                                              std::uint32_t capacity);

// All companion slots (MAX_KERNEL_ENDPOINTS; id 0 = free), for teardown's scan.
KernelEndpoint* kernel_endpoint_table();

// Live companions (the scenarios check that teardown leaves none behind).
std::uint32_t kernel_endpoints_live();

}  // namespace vipc_kernel
