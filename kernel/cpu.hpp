// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: per-CPU state, the GDT with user segments and a TSS, and the syscall MSRs.
//
// Each CPU has one PerCpu, reached through the GS base in kernel mode (user mode runs with
// its own GS base: the entry paths swap them with swapgs). It holds what the entry paths and
// the fast path need without any global: the running task, the top of its kernel stack (the
// syscall entry loads it; the TSS's rsp0 mirrors it for interrupts from ring 3) and the
// address space that is loaded. This kernel starts one CPU; a second would get its own
// PerCpu, GDT and TSS.
#pragma once

#include <cstdint>

namespace vipc_kernel {

struct Task;

struct [[gnu::packed]] Tss {
    std::uint32_t reserved0;
    std::uint64_t rsp0, rsp1, rsp2;
    std::uint64_t reserved1;
    std::uint64_t ist[7];
    std::uint64_t reserved2;
    std::uint16_t reserved3;
    std::uint16_t iomap_base;
};
static_assert(sizeof(Tss) == 104);

struct PerCpu {
    PerCpu* self;              // gs:0  (this_cpu() reads it)
    std::uint64_t kernel_rsp;  // gs:8  the running task's kernel stack top (syscall entry)
    std::uint64_t user_rsp;    // gs:16 scratch: the user rsp during syscall entry
    Task* current;             // gs:24 the running task (null before the scheduler starts)
    std::uint64_t cr3;         // the address space loaded now
    Tss* tss;
};

// Offsets used by isr.S.
static_assert(__builtin_offsetof(PerCpu, kernel_rsp) == 8);
static_assert(__builtin_offsetof(PerCpu, user_rsp) == 16);

inline PerCpu& this_cpu() {
    PerCpu* p;
    asm volatile("mov %%gs:0, %0" : "=r"(p));
    return *p;
}

// Selectors. sysret derives the user ones from STAR[63:48] = 0x10: SS = 0x18|3, CS = 0x20|3.
inline constexpr std::uint64_t USER_DATA_SELECTOR = 0x18 | 3;
inline constexpr std::uint64_t USER_CODE_SELECTOR = 0x20 | 3;
inline constexpr std::uint64_t TSS_SELECTOR = 0x28;

// Loads the GDT (kernel and user segments, the TSS), points GS at CPU 0's PerCpu and sets
// EFER.SCE, STAR, LSTAR (syscall_entry in isr.S) and SFMASK (IF, TF, DF, AC, NT cleared on
// entry: every system call runs with interrupts off). Call first thing in kernel_main.
void cpu_init();

// Makes `rsp0` the kernel stack for the next entry from ring 3 (syscall or interrupt).
inline void set_kernel_stack(PerCpu& cpu, std::uint64_t rsp0) {
    cpu.kernel_rsp = rsp0;
    cpu.tss->rsp0 = rsp0;
}

// Loads an address space unless it is loaded already.
inline void load_address_space(PerCpu& cpu, std::uint64_t cr3) {
    if (cpu.cr3 == cr3) return;
    cpu.cr3 = cr3;
    asm volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
}

// The boot page tables' physical address (boot.S): the address space of kernel threads.
std::uint64_t kernel_cr3();

}  // namespace vipc_kernel
