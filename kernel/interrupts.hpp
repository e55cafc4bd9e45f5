// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the IDT, the legacy PIC, the PIT timer and interrupt dispatch.
#pragma once

#include <cstdint>

namespace vipc_kernel {

// What isr.S leaves on the stack for every interrupt, lowest address first.
struct InterruptFrame {
    std::uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    std::uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    std::uint64_t vector, error_code;
    // Pushed by the CPU.
    std::uint64_t rip, cs, rflags, rsp, ss;
};
static_assert(sizeof(InterruptFrame) == 22 * 8);

inline constexpr std::uint64_t KERNEL_CODE_SELECTOR = 0x08;
inline constexpr std::uint64_t KERNEL_DATA_SELECTOR = 0x10;
inline constexpr std::uint8_t TIMER_VECTOR = 32;    // IRQ0 after remapping the PIC
inline constexpr std::uint8_t YIELD_VECTOR = 0x81;  // `int $0x81`: switch to another task
// Frame "vectors" that are not interrupts: a frame built by syscall_entry (resumed with
// sysretq), and the first frame of a user process (resumed with iretq).
inline constexpr std::uint64_t SYSCALL_VECTOR = 256;
inline constexpr std::uint64_t USER_START_VECTOR = 257;

// The PIT's input clock, and the divisor the kernel programs: 1193182 / 298 = ~4004 Hz.
// A stress build may preempt more often with -DVIPC_KERNEL_PIT_DIVISOR=<smaller divisor>.
inline constexpr std::uint64_t PIT_INPUT_HZ = 1193182;
#ifdef VIPC_KERNEL_PIT_DIVISOR
inline constexpr std::uint16_t PIT_DIVISOR = VIPC_KERNEL_PIT_DIVISOR;
#else
inline constexpr std::uint16_t PIT_DIVISOR = 298;
#endif
// Nanoseconds per tick (249,752 with the default divisor); the kernel clock is ticks * this.
inline constexpr std::uint64_t TICK_NS = PIT_DIVISOR * 1'000'000'000ull / PIT_INPUT_HZ;

// Installs the IDT, remaps and masks the PIC (only IRQ0 stays enabled) and starts the PIT.
// Interrupts stay disabled until the first task runs.
void interrupts_init();

}  // namespace vipc_kernel

// Called by isr.S with interrupts disabled; returns the frame to resume.
extern "C" vipc_kernel::InterruptFrame* interrupt_dispatch(vipc_kernel::InterruptFrame* frame);
// Loads the frame into the CPU (isr.S); used to start the first task.
extern "C" [[noreturn]] void resume_frame(vipc_kernel::InterruptFrame* frame);
