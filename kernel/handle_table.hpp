// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: a process's handle table — the one interface through which a system call turns
// a handle (a number the process holds) into an endpoint and the rights it has on it.
//
// A handle is `index + 1` (bits 0-7) | `check bits` (bits 8-23, nonzero, drawn from a
// per-table sequence when the slot is filled); every other bit is zero. It names a slot in
// the caller's own table only: the same number in another process's table names that
// table's slot (or nothing). The rights and the endpoint are in the entry, never in the
// handle, so a process cannot raise its rights by writing bits. Resolving is O(1): index ->
// entry -> check bits -> rights; the core then checks the endpoint's own capability.
//
//   HandleEntry* e = VIPC_TRY(task.handles.resolve(handle, Rights::SEND));
//   e->endpoint.send_sync(...);
#pragma once

#include <cstdint>

#include "veridian/ipc/core/endpoint.hpp"
#include "veridian/ipc/core/error.hpp"

namespace vipc_kernel {

struct KernelEndpoint;

struct HandleEntry {
    veridian::ipc::Endpoint endpoint;  // the core handle, with exactly `rights`
    KernelEndpoint* kernel_endpoint = nullptr;
    veridian::ipc::EndpointId id = 0;
    std::uint32_t epoch = 0;  // the endpoint's revocation epoch when this entry was made
    std::uint16_t rights = 0;
    std::uint16_t check = 0;
    bool used = false;
};

class HandleTable {
public:
    static constexpr std::uint32_t CAPACITY = 16;

    // Empties the table and seeds its check-bit sequence (distinct per process).
    void reset(std::uint64_t seed);

    // The entry a handle names, by index and check bits only; nullptr for anything else.
    HandleEntry* lookup(std::uint64_t handle) {
        const std::uint64_t index = (handle & 0xff) - 1;
        if (index >= CAPACITY || (handle >> 24) != 0) return nullptr;
        HandleEntry* e = &entries_[index];
        if (!e->used || e->check != ((handle >> 8) & 0xffff)) return nullptr;
        return e;
    }

    // lookup() plus the rights: InvalidCapability for a handle that names nothing (or an
    // endpoint that was removed), PermissionDenied when a right is missing.
    veridian::ipc::Result<HandleEntry*> resolve(std::uint64_t handle, std::uint16_t rights);

    // Fills a free slot: OutOfMemory when the table is full.
    veridian::ipc::Result<std::uint64_t> install(KernelEndpoint* kernel_endpoint,
                                                 const veridian::ipc::Endpoint& endpoint,
                                                 std::uint16_t rights);
    // A new handle to the same endpoint with rights & rights_to_keep (never more).
    veridian::ipc::Result<std::uint64_t> derive(std::uint64_t handle, std::uint16_t rights_to_keep);

    // Empties every slot (the process is going away).
    void clear();

private:
    HandleEntry entries_[CAPACITY];
    std::uint32_t sequence_ = 1;
};

}  // namespace vipc_kernel
