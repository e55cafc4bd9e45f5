// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: page frames and per-process address spaces.
//
// Layout of every process's address space (4-level paging):
//   PML4[0] -> the process's PDPT
//     PDPT[0] -> the kernel's page directory: the identity map of the first GiB in 2 MiB
//                pages, supervisor-only (its U/S bit is clear, so ring 3 faults on it)
//     PDPT[1] -> the process's page directory -> one page table -> USER_PAGES frames at
//                USER_BASE (1 GiB), present, writable, user-accessible
// Nothing else is mapped. The kernel reaches every frame through its identity map, so it
// never needs a process's mappings to load or free it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "abi.hpp"

namespace vipc_kernel {

struct AddressSpace {
    std::uint64_t* pml4 = nullptr;
    std::uint64_t* pdpt = nullptr;
    std::uint64_t* pd = nullptr;
    std::uint64_t* pt = nullptr;
    std::uint8_t* pages[vipc_abi::USER_PAGES] = {};
    std::uint64_t cr3() const { return reinterpret_cast<std::uint64_t>(pml4); }
    bool live() const { return pml4 != nullptr; }
};

// Builds a fresh address space holding `image` (copied to USER_BASE; the rest zeroed).
// False when the image is too large or there are not enough free frames (nothing leaks).
bool address_space_create(AddressSpace& space, const std::uint8_t* image, std::size_t bytes);

// Frees every frame of the space. The caller must not have it loaded.
void address_space_destroy(AddressSpace& space);

// True when [address, address + length) lies inside the user range (overflow-safe).
// Every byte of the user range is mapped, so such a range can be read and written from
// the kernel while the owning address space is loaded.
inline bool user_range_ok(std::uint64_t address, std::uint64_t length) {
    return address >= vipc_abi::USER_BASE && length <= vipc_abi::USER_BYTES &&
           address - vipc_abi::USER_BASE <= vipc_abi::USER_BYTES - length;
}

// Frames in the pool, and how many are free now (the scenarios check nothing leaks).
std::size_t frames_total();
std::size_t frames_free();

}  // namespace vipc_kernel
