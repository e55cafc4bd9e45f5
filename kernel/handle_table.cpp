// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the per-process handle table over the core's CapabilitySpace (handle_table.hpp).
#include "handle_table.hpp"

#include "kernel_objects.hpp"

namespace vipc_kernel {

using veridian::ipc::Capability;
using veridian::ipc::Endpoint;
using veridian::ipc::IpcError;
using veridian::ipc::Result;

namespace {
std::uint64_t g_revocations = 1;
}  // namespace

std::uint64_t revocation_count() {
    return g_revocations;
}

void count_revocation() {
    ++g_revocations;
}

Result<void> HandleTable::attach(veridian::ipc::Registry& registry,
                                 veridian::ipc::ProcessId holder) {
    clear();
    space_ = VIPC_TRY(registry.create_space(holder, CAPACITY));
    return veridian::ipc::ok();
}

HandleEntry* HandleTable::fill(KernelEndpoint* kernel_endpoint, const Endpoint& entry) {
    const std::uint64_t index = entry.capability().index();
    if (index >= CAPACITY || kernel_endpoint == nullptr) return nullptr;
    auto info = entry.info();
    if (!info) return nullptr;
    HandleEntry& e = entries_[index];
    e.endpoint = entry;
    e.kernel_endpoint = kernel_endpoint;
    e.id = entry.id();
    e.handle = entry.capability().raw();
    e.confirmed_at = g_revocations;
    e.badge = info->badge;
    e.rights = info->rights;
    e.used = true;
    return &e;
}

Result<HandleEntry*> HandleTable::resolve(std::uint64_t handle, std::uint16_t rights) {
    if (space_ == nullptr) return IpcError::InvalidCapability;
    // A slot the core confirmed after the last revocation names a live entry still (only a
    // revocation or a teardown removes entries, and the kernel counts both), with the
    // rights it had then (an entry's rights never change). The core checks the entry
    // again in the operation that follows.
    if (HandleEntry* e = lookup(handle); e != nullptr && e->confirmed_at == g_revocations) {
        if ((e->rights & rights) != rights) return IpcError::PermissionDenied;
        return e;
    }
    Endpoint entry = VIPC_TRY(space_->endpoint(Capability(handle), rights));
    if (HandleEntry* e = lookup(handle); e != nullptr && e->id == entry.id()) {
        e->confirmed_at = g_revocations;
        return e;
    }
    // An entry the kernel has not seen yet: find its endpoint's companion.
    HandleEntry* e = fill(find_kernel_endpoint(entry.id()), entry);
    if (e == nullptr) return IpcError::InvalidCapability;
    return e;
}

Result<std::uint64_t> HandleTable::install(KernelEndpoint* kernel_endpoint, const Endpoint& source,
                                           std::uint16_t rights, veridian::ipc::Badge badge) {
    if (space_ == nullptr) return IpcError::InvalidCapability;
    Endpoint entry =
        VIPC_TRY(source.transfer(*space_, veridian::ipc::TransferMode::Copy, rights, badge));
    return adopt(kernel_endpoint, entry);
}

Result<std::uint64_t> HandleTable::derive(std::uint64_t handle, std::uint16_t rights_to_keep,
                                          veridian::ipc::Badge badge) {
    HandleEntry* e = VIPC_TRY(resolve(handle, 0));
    KernelEndpoint* k = e->kernel_endpoint;
    Endpoint entry = VIPC_TRY(e->endpoint.derive(rights_to_keep, badge));
    return adopt(k, entry);
}

Result<std::uint64_t> HandleTable::adopt(KernelEndpoint* kernel_endpoint, const Endpoint& entry) {
    if (fill(kernel_endpoint, entry) == nullptr) {
        (void)entry.release();
        count_revocation();
        return IpcError::OutOfMemory;
    }
    return entry.capability().raw();
}

void HandleTable::clear() {
    for (HandleEntry& e : entries_)
        e = HandleEntry{};
    space_ = nullptr;
}

}  // namespace vipc_kernel
