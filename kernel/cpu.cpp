// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the GDT, the TSS, the per-CPU block and the syscall MSRs.
#include "cpu.hpp"

#include "interrupts.hpp"

extern "C" void syscall_entry();
extern "C" std::uint64_t boot_pml4[512];

namespace vipc_kernel {
namespace {

constexpr std::uint32_t MSR_EFER = 0xC0000080;
constexpr std::uint32_t MSR_STAR = 0xC0000081;
constexpr std::uint32_t MSR_LSTAR = 0xC0000082;
constexpr std::uint32_t MSR_SFMASK = 0xC0000084;
constexpr std::uint32_t MSR_GS_BASE = 0xC0000101;
constexpr std::uint32_t MSR_KERNEL_GS_BASE = 0xC0000102;
constexpr std::uint64_t EFER_SCE = 1;
// IF, TF, DF, AC and NT are cleared on syscall entry.
constexpr std::uint64_t SFMASK_BITS = (1u << 9) | (1u << 8) | (1u << 10) | (1u << 18) | (1u << 14);

void write_msr(std::uint32_t msr, std::uint64_t value) {
    asm volatile("wrmsr"
                 :
                 : "c"(msr), "a"(static_cast<std::uint32_t>(value)),
                   "d"(static_cast<std::uint32_t>(value >> 32)));
}

std::uint64_t read_msr(std::uint32_t msr) {
    std::uint32_t lo, hi;
    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (std::uint64_t{hi} << 32) | lo;
}

Tss g_tss{};
PerCpu g_cpu0{};

// 0x00 null, 0x08 kernel code, 0x10 kernel data, 0x18 user data, 0x20 user code (64-bit),
// 0x28 the TSS (a 16-byte descriptor).
alignas(16) std::uint64_t g_gdt[7] = {
    0,
    0x00AF9A000000FFFF,  // kernel code: present, ring 0, executable, long mode
    0x00CF92000000FFFF,  // kernel data: present, ring 0, writable
    0x00CFF2000000FFFF,  // user data: present, ring 3, writable
    0x00AFFA000000FFFF,  // user code: present, ring 3, executable, long mode
    0,
    0,
};

struct [[gnu::packed]] GdtPointer {
    std::uint16_t limit;
    std::uint64_t base;
};

}  // namespace

std::uint64_t kernel_cr3() {
    return reinterpret_cast<std::uint64_t>(&boot_pml4[0]);
}

void cpu_init() {
    g_tss.iomap_base = sizeof(Tss);  // no I/O bitmap: ring 3 may use no port
    const auto base = reinterpret_cast<std::uint64_t>(&g_tss);
    const std::uint64_t limit = sizeof(Tss) - 1;
    g_gdt[5] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ull << 40) |
               (((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56);
    g_gdt[6] = base >> 32;
    const GdtPointer pointer{sizeof(g_gdt) - 1, reinterpret_cast<std::uint64_t>(&g_gdt[0])};
    asm volatile(
        "lgdt %0\n\t"
        "pushq $0x08\n\t"
        "leaq 1f(%%rip), %%rax\n\t"
        "pushq %%rax\n\t"
        "lretq\n"
        "1:\n\t"
        "mov $0x10, %%ax\n\t"
        "mov %%ax, %%ds\n\t"
        "mov %%ax, %%es\n\t"
        "mov %%ax, %%ss\n\t"
        "mov $0x28, %%ax\n\t"
        "ltr %%ax"
        :
        : "m"(pointer)
        : "rax", "memory");

    g_cpu0.self = &g_cpu0;
    g_cpu0.tss = &g_tss;
    g_cpu0.cr3 = kernel_cr3();
    write_msr(MSR_GS_BASE, reinterpret_cast<std::uint64_t>(&g_cpu0));
    write_msr(MSR_KERNEL_GS_BASE, 0);  // user mode's GS base
    write_msr(MSR_EFER, read_msr(MSR_EFER) | EFER_SCE);
    write_msr(MSR_STAR, (std::uint64_t{0x10} << 48) | (KERNEL_CODE_SELECTOR << 32));
    write_msr(MSR_LSTAR, reinterpret_cast<std::uint64_t>(&syscall_entry));
    write_msr(MSR_SFMASK, SFMASK_BITS);
}

}  // namespace vipc_kernel
