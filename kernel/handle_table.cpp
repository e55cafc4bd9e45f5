// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the per-process handle table (handle_table.hpp).
#include "handle_table.hpp"

#include "kernel_objects.hpp"

namespace vipc_kernel {

using veridian::ipc::IpcError;
using veridian::ipc::Result;

void HandleTable::reset(std::uint64_t seed) {
    clear();
    // A different odd starting point per process, so equal indices get different bits.
    sequence_ = static_cast<std::uint32_t>(seed * 0x9E3779B1u) | 1u;
}

Result<HandleEntry*> HandleTable::resolve(std::uint64_t handle, std::uint16_t rights) {
    HandleEntry* e = lookup(handle);
    if (e == nullptr || e->kernel_endpoint->id != e->id) return IpcError::InvalidCapability;
    if ((e->rights & rights) != rights) return IpcError::PermissionDenied;
    return e;
}

Result<std::uint64_t> HandleTable::install(KernelEndpoint* kernel_endpoint,
                                           const veridian::ipc::Endpoint& endpoint,
                                           std::uint16_t rights) {
    for (std::uint32_t i = 0; i < CAPACITY; ++i) {
        HandleEntry& e = entries_[i];
        if (e.used) continue;
        // The check bits: the next value of a Weyl sequence, never 0.
        sequence_ += 0x6D2B;
        std::uint16_t check = static_cast<std::uint16_t>(sequence_ ^ (sequence_ >> 16));
        if (check == 0) check = 1;
        e.endpoint = endpoint.derive(rights);
        e.kernel_endpoint = kernel_endpoint;
        e.id = kernel_endpoint->id;
        e.epoch = kernel_endpoint->epoch;
        e.rights = static_cast<std::uint16_t>(e.endpoint.capability().rights());
        e.check = check;
        e.used = true;
        return (std::uint64_t{check} << 8) | (i + 1);
    }
    return IpcError::OutOfMemory;
}

Result<std::uint64_t> HandleTable::derive(std::uint64_t handle, std::uint16_t rights_to_keep) {
    HandleEntry* e = VIPC_TRY(resolve(handle, 0));
    const HandleEntry original = *e;
    return install(original.kernel_endpoint, original.endpoint,
                   static_cast<std::uint16_t>(original.rights & rights_to_keep));
}

void HandleTable::clear() {
    for (HandleEntry& e : entries_)
        e = HandleEntry{};
}

}  // namespace vipc_kernel
