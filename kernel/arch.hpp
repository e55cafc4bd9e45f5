// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the few x86-64 instructions the kernel needs, as inline functions.
#pragma once

#include <cstdint>

namespace vipc_kernel {

inline void outb(std::uint16_t port, std::uint8_t value) {
    asm volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

inline std::uint8_t inb(std::uint16_t port) {
    std::uint8_t value;
    asm volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

inline std::uint64_t rdtsc() {
    std::uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (std::uint64_t{hi} << 32) | lo;
}

inline void halt() {
    asm volatile("hlt");
}

// Disables interrupts for its lifetime and then restores the previous interrupt flag.
//
// On this single CPU, "interrupts off" is the kernel's only lock: the timer interrupt is the
// only thing that can preempt a task, so code between cli and the restore runs atomically
// with respect to every other task and to the tick handler. A task may switch away while
// holding a guard (wait() does): the switch saves its flags with IF clear, the next task
// runs with its own saved flags, and when this task resumes, the guard's destructor restores
// its own flags.
class IrqGuard {
public:
    IrqGuard() { asm volatile("pushfq\n\tpopq %0\n\tcli" : "=r"(flags_) : : "memory"); }
    ~IrqGuard() { asm volatile("pushq %0\n\tpopfq" : : "r"(flags_) : "memory", "cc"); }
    IrqGuard(const IrqGuard&) = delete;
    IrqGuard& operator=(const IrqGuard&) = delete;

private:
    std::uint64_t flags_;
};

// QEMU's isa-debug-exit device (-device isa-debug-exit,iobase=0xf4,iosize=0x04): writing
// `code` makes QEMU exit with status (code << 1) | 1.
inline constexpr std::uint16_t DEBUG_EXIT_PORT = 0xf4;
inline constexpr std::uint8_t EXIT_SUCCESS_CODE = 0x10;  // QEMU status 33
inline constexpr std::uint8_t EXIT_FAILURE_CODE = 0x11;  // QEMU status 35
inline constexpr std::uint8_t EXIT_FAULT_CODE = 0x12;    // QEMU status 37

[[noreturn]] inline void qemu_exit(std::uint8_t code) {
    outb(DEBUG_EXIT_PORT, code);
    // Without the device (a real machine, or QEMU started without it): stop here.
    for (;;) {
        asm volatile("cli; hlt");
    }
}

}  // namespace vipc_kernel
