// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the page-frame pool and address spaces (layout in address_space.hpp).
#include "address_space.hpp"

#include "arch.hpp"

extern "C" std::uint64_t boot_pdpt[512];

namespace vipc_kernel {
namespace {

using vipc_abi::PAGE_BYTES;
using vipc_abi::USER_PAGES;

constexpr std::size_t FRAME_COUNT = 1024;  // 4 MiB of frames for page tables and user pages
constexpr std::uint64_t PAGE_PRESENT = 1, PAGE_WRITABLE = 2, PAGE_USER = 4;

alignas(4096) std::uint8_t g_frames[FRAME_COUNT][PAGE_BYTES];
// A stack of free frame numbers; frames are handed out and taken back with interrupts off.
std::uint16_t g_free[FRAME_COUNT];
std::size_t g_free_count = 0;
bool g_initialized = false;

void pool_init() {
    if (g_initialized) return;
    for (std::size_t i = 0; i < FRAME_COUNT; ++i)
        g_free[i] = static_cast<std::uint16_t>(FRAME_COUNT - 1 - i);
    g_free_count = FRAME_COUNT;
    g_initialized = true;
}

std::uint8_t* frame_alloc() {
    pool_init();
    if (g_free_count == 0) return nullptr;
    std::uint8_t* f = g_frames[g_free[--g_free_count]];
    __builtin_memset(f, 0, PAGE_BYTES);
    return f;
}

void frame_free(void* p) {
    if (p == nullptr) return;
    const auto index =
        static_cast<std::size_t>((static_cast<std::uint8_t*>(p) - &g_frames[0][0]) / PAGE_BYTES);
    g_free[g_free_count++] = static_cast<std::uint16_t>(index);
}

std::uint64_t entry(const void* table, std::uint64_t flags) {
    return reinterpret_cast<std::uint64_t>(table) | flags;
}

}  // namespace

bool address_space_create(AddressSpace& space, const std::uint8_t* image, std::size_t bytes) {
    IrqGuard guard;
    pool_init();
    space = AddressSpace{};
    if (bytes > vipc_abi::USER_IMAGE_MAX_BYTES) return false;
    if (g_free_count < 4 + USER_PAGES) return false;
    space.pml4 = reinterpret_cast<std::uint64_t*>(frame_alloc());
    space.pdpt = reinterpret_cast<std::uint64_t*>(frame_alloc());
    space.pd = reinterpret_cast<std::uint64_t*>(frame_alloc());
    space.pt = reinterpret_cast<std::uint64_t*>(frame_alloc());
    const std::uint64_t user = PAGE_PRESENT | PAGE_WRITABLE | PAGE_USER;
    space.pml4[0] = entry(space.pdpt, user);
    space.pdpt[0] = boot_pdpt[0];  // the kernel's identity map, supervisor-only
    static_assert(vipc_abi::USER_BASE == 1ull << 30, "the user range is PDPT[1]");
    space.pdpt[1] = entry(space.pd, user);
    space.pd[0] = entry(space.pt, user);
    for (std::size_t i = 0; i < USER_PAGES; ++i) {
        space.pages[i] = frame_alloc();
        space.pt[i] = entry(space.pages[i], user);
        const std::size_t offset = i * PAGE_BYTES;
        if (offset < bytes) {
            const std::size_t n = bytes - offset < PAGE_BYTES ? bytes - offset : PAGE_BYTES;
            __builtin_memcpy(space.pages[i], image + offset, n);
        }
    }
    return true;
}

void address_space_destroy(AddressSpace& space) {
    IrqGuard guard;
    for (std::uint8_t*& page : space.pages) {
        frame_free(page);
        page = nullptr;
    }
    frame_free(space.pt);
    frame_free(space.pd);
    frame_free(space.pdpt);
    frame_free(space.pml4);
    space = AddressSpace{};
}

std::size_t frames_total() {
    return FRAME_COUNT;
}

std::size_t frames_free() {
    IrqGuard guard;
    pool_init();
    return g_free_count;
}

}  // namespace vipc_kernel
