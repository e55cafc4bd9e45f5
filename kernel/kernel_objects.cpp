// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the shared Registry and the endpoint companions (kernel_objects.hpp).
#include "kernel_objects.hpp"

#include "arch.hpp"

namespace vipc_kernel {
namespace {
KernelEndpoint g_kernel_endpoints[MAX_KERNEL_ENDPOINTS];
}  // namespace

KernelPlatform& kernel_platform() {
    static KernelPlatform platform;
    return platform;
}

ArenaAllocator& kernel_allocator() {
    static ArenaAllocator allocator;
    return allocator;
}

veridian::ipc::Registry& kernel_registry() {
    static veridian::ipc::Registry registry(kernel_platform(), kernel_allocator(),
                                            /*max_endpoints=*/64);
    return registry;
}

veridian::ipc::Result<KernelEndpoint*> create_kernel_endpoint(veridian::ipc::CapabilitySpace& owner,
                                                              std::uint32_t capacity) {
    IrqGuard guard;
    KernelEndpoint* k = nullptr;
    for (KernelEndpoint& candidate : g_kernel_endpoints) {
        if (candidate.id == 0) {
            k = &candidate;
            break;
        }
    }
    if (k == nullptr) return veridian::ipc::IpcError::OutOfMemory;
    auto endpoint = VIPC_TRY(kernel_registry().create_endpoint(owner, capacity));
    *k = KernelEndpoint{};
    k->endpoint = endpoint;
    k->id = endpoint.id();
    k->owner = owner.holder();
    return k;
}

KernelEndpoint* find_kernel_endpoint(veridian::ipc::EndpointId id) {
    if (id == 0) return nullptr;
    for (KernelEndpoint& k : g_kernel_endpoints) {
        if (k.id == id) return &k;
    }
    return nullptr;
}

std::uint32_t kernel_endpoints_live() {
    IrqGuard guard;
    std::uint32_t n = 0;
    for (const KernelEndpoint& k : g_kernel_endpoints)
        n += k.id != 0 ? 1 : 0;
    return n;
}

KernelEndpoint* kernel_endpoint_table() {
    return g_kernel_endpoints;
}

}  // namespace vipc_kernel
