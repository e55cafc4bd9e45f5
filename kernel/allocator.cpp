// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the arena allocator behind the core's Allocator interface.
#include "arch.hpp"
#include "kernel_platform.hpp"

namespace vipc_kernel {
namespace {

constexpr std::size_t GRANULE = 16;

alignas(GRANULE) std::uint8_t g_arena[ArenaAllocator::ARENA_BYTES];

constexpr std::uintptr_t round_up(std::uintptr_t v, std::uintptr_t a) {
    return (v + a - 1) & ~(a - 1);
}

}  // namespace

void* ArenaAllocator::allocate(std::size_t bytes, std::size_t align) {
    IrqGuard guard;
    if (!initialized_) {
        free_list_ = reinterpret_cast<FreeBlock*>(g_arena);
        free_list_->next = nullptr;
        free_list_->size = sizeof(g_arena);
        initialized_ = true;
    }
    const std::uintptr_t size = round_up(bytes == 0 ? 1 : bytes, GRANULE);
    const std::uintptr_t alignment = align > GRANULE ? align : GRANULE;
    for (FreeBlock** link = &free_list_; *link != nullptr; link = &(*link)->next) {
        FreeBlock* block = *link;
        const auto start = reinterpret_cast<std::uintptr_t>(block);
        const std::uintptr_t end = start + block->size;
        const std::uintptr_t aligned = round_up(start, alignment);
        if (aligned + size > end) continue;
        // Carve [aligned, aligned + size) out of the block: what is left before it (prefix)
        // stays where the block was; what is left after it (suffix) becomes a new block.
        FreeBlock* const after = block->next;
        FreeBlock* rest = after;
        if (aligned + size < end) {
            rest = reinterpret_cast<FreeBlock*>(aligned + size);
            rest->next = after;
            rest->size = end - (aligned + size);
        }
        if (aligned > start) {
            block->size = aligned - start;
            block->next = rest;
        } else {
            *link = rest;
        }
        in_use_ += size;
        return reinterpret_cast<void*>(aligned);
    }
    return nullptr;
}

void ArenaAllocator::deallocate(void* p, std::size_t bytes, std::size_t) {
    if (p == nullptr) return;
    IrqGuard guard;
    const std::uintptr_t size = round_up(bytes == 0 ? 1 : bytes, GRANULE);
    in_use_ -= size;
    auto* block = static_cast<FreeBlock*>(p);
    block->size = size;
    // Insert in address order, then merge with the following and the preceding block.
    FreeBlock* prev = nullptr;
    FreeBlock* next = free_list_;
    while (next != nullptr && next < block) {
        prev = next;
        next = next->next;
    }
    block->next = next;
    if (next != nullptr && reinterpret_cast<std::uintptr_t>(block) + block->size ==
                               reinterpret_cast<std::uintptr_t>(next)) {
        block->size += next->size;
        block->next = next->next;
    }
    if (prev == nullptr) {
        free_list_ = block;
    } else if (reinterpret_cast<std::uintptr_t>(prev) + prev->size ==
               reinterpret_cast<std::uintptr_t>(block)) {
        prev->size += block->size;
        prev->next = block->next;
    } else {
        prev->next = block;
    }
}

}  // namespace vipc_kernel
