// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the objects every part of the kernel shares — the core's Registry (with the
// kernel's Platform and Allocator) and the kernel's companion of each endpoint that user
// processes use.
//
// A KernelEndpoint holds what the core does not: the processes parked in receive on the
// endpoint (at the IPC level, with no kernel stack in use: the fast path hands a call
// straight to the first of them), whether the core's queue may hold messages, and whether
// the endpoint was closed. Which handles are still valid is the core's (handle_table.hpp).
//
// What the kernel knows of the core's queue (interrupts off around every change): `queued`
// counts the messages the kernel's sends put there and its receives have not taken;
// `queue_uncertain` is set when a receiver blocked inside the core (a receive with a
// deadline) may have taken one or been handed one, and cleared when the core says
// ChannelEmpty. known_empty() => the queue is empty, but for one transient case: a
// message the core moved in from a sender blocked on the full queue is counted when that
// sender runs again, which then also wakes a parked receiver (S2 in syscall.cpp), so it
// never stays unseen. Parked receivers => known_empty() (a sender wakes one after each
// send; a receiver parks only when known_empty() or after the core said ChannelEmpty).
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
    veridian::ipc::Endpoint endpoint;  // an entry with all rights (the root, or revoke_all's)
    veridian::ipc::EndpointId id = 0;  // 0: this slot is free
    ProcessId owner{};
    bool closed = false;
    bool queue_uncertain = false;
    std::uint32_t queued = 0;
    std::uint32_t core_receivers = 0;  // receivers blocked inside the core (deadline)
    TaskList receivers;                // parked in receive, FIFO
    std::uint64_t fast_calls = 0;
    std::uint64_t fast_replies = 0;

    bool known_empty() const { return !queue_uncertain && queued == 0; }
    void note_sent() {
        if (core_receivers != 0) {
            queue_uncertain = true;
        } else {
            ++queued;
        }
    }
    void note_taken() {
        if (queued != 0) --queued;
    }
    void note_empty() {
        queued = 0;
        queue_uncertain = false;
    }
};

inline constexpr std::uint32_t MAX_KERNEL_ENDPOINTS = 48;

// Creates an endpoint owned by the holder of `owner` (a user process: its teardown removes
// it), its root entry in that space, and its companion. OutOfMemory when a table is full.
veridian::ipc::Result<KernelEndpoint*> create_kernel_endpoint(veridian::ipc::CapabilitySpace& owner,
                                                              std::uint32_t capacity);

// The companion of a live endpoint, or nullptr.
KernelEndpoint* find_kernel_endpoint(veridian::ipc::EndpointId id);

// All companion slots (MAX_KERNEL_ENDPOINTS; id 0 = free), for teardown's scan.
KernelEndpoint* kernel_endpoint_table();

// Live companions (the scenarios check that teardown leaves none behind).
std::uint32_t kernel_endpoints_live();

}  // namespace vipc_kernel
