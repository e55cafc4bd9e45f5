// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: a process's handle table — the one interface through which a system call turns
// a handle (a number the process holds) into an endpoint and the rights it has on it.
//
// The table is the process's CapabilitySpace in the core (registry.create_space, one per
// user task): a handle is the core's handle (index in bits 0-23, 39 check bits in 24-62),
// it names an entry of the caller's own space only, and the rights, badge and endpoint are
// in the entry, never in the handle. The core decides every resolve (`resolve`).
//
// Beside the space the kernel keeps a mirror, one slot per entry index: the handle value,
// the endpoint's kernel companion, the rights and badge, and when the core last confirmed
// the entry. The fast path reads only the mirror (`lookup`), and only trusts a slot that
// the core confirmed after the last revocation anywhere (revocation_count(): every revoke,
// revoke_all and process teardown passes through the kernel, which counts it); otherwise it
// leaves for the general path, whose resolve asks the core and refreshes the slot.
//
//   HandleEntry* e = VIPC_TRY(task.handles.resolve(handle, Rights::SEND));
//   e->endpoint.send_sync(...);
#pragma once

#include <cstdint>

#include "veridian/ipc/core/capability.hpp"
#include "veridian/ipc/core/endpoint.hpp"
#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/registry.hpp"

namespace vipc_kernel {

struct KernelEndpoint;

struct HandleEntry {
    veridian::ipc::Endpoint endpoint;  // the core's handle object (space + handle)
    KernelEndpoint* kernel_endpoint = nullptr;
    veridian::ipc::EndpointId id = 0;
    std::uint64_t handle = 0;
    std::uint64_t confirmed_at = 0;  // revocation_count() when the core last confirmed it
    veridian::ipc::Badge badge = 0;
    std::uint16_t rights = 0;
    bool used = false;
};

// Counts every operation that may have removed entries in any space.
std::uint64_t revocation_count();
void count_revocation();

class HandleTable {
public:
    static constexpr std::uint32_t CAPACITY = 16;

    // Gives the process its capability space in the core (OutOfMemory, EndpointBusy).
    veridian::ipc::Result<void> attach(veridian::ipc::Registry& registry,
                                       veridian::ipc::ProcessId holder);
    veridian::ipc::CapabilitySpace* space() const { return space_; }

    // The fast path's view: the mirror slot of this exact handle value, or nullptr. Says
    // nothing about validity beyond `confirmed_at`.
    HandleEntry* lookup(std::uint64_t handle) {
        const std::uint64_t index = handle & veridian::ipc::Capability::MAX_INDEX;
        if (index >= CAPACITY) return nullptr;
        HandleEntry* e = &entries_[index];
        return e->used && e->handle == handle ? e : nullptr;
    }

    // The core resolves the handle in this space (InvalidCapability: names nothing live;
    // PermissionDenied: a right is missing); the mirror slot is refreshed and returned.
    veridian::ipc::Result<HandleEntry*> resolve(std::uint64_t handle, std::uint16_t rights);

    // Copies `source` (an entry with GRANT) into this space with `rights` (and `badge`, if
    // the source has none).
    veridian::ipc::Result<std::uint64_t> install(KernelEndpoint* kernel_endpoint,
                                                 const veridian::ipc::Endpoint& source,
                                                 std::uint16_t rights,
                                                 veridian::ipc::Badge badge = 0);
    // A new entry in this space, derived from `handle`: rights & rights_to_keep, and the
    // badge if the entry had none (rights and badges only narrow: the core's rule).
    veridian::ipc::Result<std::uint64_t> derive(std::uint64_t handle, std::uint16_t rights_to_keep,
                                                veridian::ipc::Badge badge);
    // Records an entry the kernel got from the core for this space (e.g. revoke_all's).
    veridian::ipc::Result<std::uint64_t> adopt(KernelEndpoint* kernel_endpoint,
                                               const veridian::ipc::Endpoint& entry);

    // Forgets the mirror (the core's space goes with Registry::remove_process).
    void clear();

private:
    HandleEntry* fill(KernelEndpoint* kernel_endpoint, const veridian::ipc::Endpoint& entry);

    veridian::ipc::CapabilitySpace* space_ = nullptr;
    HandleEntry entries_[CAPACITY];
};

}  // namespace vipc_kernel
