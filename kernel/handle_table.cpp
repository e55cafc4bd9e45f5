// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the per-process handle table (handle_table.hpp).
#include "handle_table.hpp"

#include "kernel_objects.hpp"

namespace vipc_kernel {

using veridian::ipc::IpcError;
using veridian::ipc::Result;

void HandleTable::reset(std::uint64_t seed) {
    clear();
    pid_ = seed;
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
    // The core entry lives in this process's own capability space, so that the core stamps
    // what it sends with its ProcessId.
    const auto mine = VIPC_TRY(endpoint.transfer(veridian::ipc::ProcessId{pid_},
                                                 veridian::ipc::TransferMode::Copy, rights));
    auto filled = fill(kernel_endpoint, mine);
    if (!filled) (void)mine.release();
    return filled;
}

Result<std::uint64_t> HandleTable::fill(KernelEndpoint* kernel_endpoint,
                                        const veridian::ipc::Endpoint& endpoint) {
    for (std::uint32_t i = 0; i < CAPACITY; ++i) {
        HandleEntry& e = entries_[i];
        if (e.used) continue;
        // The check bits: the next value of a Weyl sequence, never 0.
        sequence_ += 0x6D2B;
        std::uint16_t check = static_cast<std::uint16_t>(sequence_ ^ (sequence_ >> 16));
        if (check == 0) check = 1;
        e.endpoint = endpoint;
        e.kernel_endpoint = kernel_endpoint;
        e.id = kernel_endpoint->id;
        e.epoch = kernel_endpoint->epoch;
        e.rights = VIPC_TRY(endpoint.info()).rights;
        e.check = check;
        e.used = true;
        return (std::uint64_t{check} << 8) | (i + 1);
    }
    return IpcError::OutOfMemory;
}

Result<std::uint64_t> HandleTable::derive(std::uint64_t handle, std::uint16_t rights_to_keep) {
    HandleEntry* e = VIPC_TRY(resolve(handle, 0));
    const HandleEntry original = *e;
    const auto mine = VIPC_TRY(original.endpoint.derive(rights_to_keep));  // same space
    auto filled = fill(original.kernel_endpoint, mine);
    if (!filled) (void)mine.release();
    return filled;
}

void HandleTable::clear() {
    for (HandleEntry& e : entries_) {
        if (e.used) (void)e.endpoint.release();  // already gone with its space: no matter
        e = HandleEntry{};
    }
}

}  // namespace vipc_kernel
