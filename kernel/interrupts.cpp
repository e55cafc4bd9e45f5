// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the IDT, the legacy PIC, the PIT timer and interrupt dispatch.
#include "interrupts.hpp"

#include "arch.hpp"
#include "scheduler.hpp"
#include "serial.hpp"
#include "syscall.hpp"

extern "C" const std::uint64_t isr_stub_table[48];
extern "C" const std::uint64_t isr_stub_yield;

namespace vipc_kernel {
namespace {

struct [[gnu::packed]] IdtEntry {
    std::uint16_t offset_low;
    std::uint16_t selector;
    std::uint8_t ist;
    std::uint8_t type_attributes;
    std::uint16_t offset_middle;
    std::uint32_t offset_high;
    std::uint32_t reserved;
};
static_assert(sizeof(IdtEntry) == 16);

struct [[gnu::packed]] IdtPointer {
    std::uint16_t limit;
    std::uint64_t base;
};

// Present, ring 0, 64-bit interrupt gate: the CPU clears IF on entry, so every handler runs
// with interrupts off.
constexpr std::uint8_t INTERRUPT_GATE = 0x8e;

alignas(16) IdtEntry g_idt[256];

void set_gate(std::uint8_t vector, std::uint64_t handler) {
    IdtEntry& e = g_idt[vector];
    e.offset_low = static_cast<std::uint16_t>(handler);
    e.selector = static_cast<std::uint16_t>(KERNEL_CODE_SELECTOR);
    e.ist = 0;
    e.type_attributes = INTERRUPT_GATE;
    e.offset_middle = static_cast<std::uint16_t>(handler >> 16);
    e.offset_high = static_cast<std::uint32_t>(handler >> 32);
    e.reserved = 0;
}

constexpr std::uint16_t PIC1_COMMAND = 0x20, PIC1_DATA = 0x21;
constexpr std::uint16_t PIC2_COMMAND = 0xa0, PIC2_DATA = 0xa1;
constexpr std::uint8_t PIC_EOI = 0x20;

void pic_init() {
    outb(PIC1_COMMAND, 0x11);  // ICW1: initialize, ICW4 follows
    outb(PIC2_COMMAND, 0x11);
    outb(PIC1_DATA, 32);  // ICW2: IRQ0-7 -> vectors 32-39 (clear of the CPU exceptions)
    outb(PIC2_DATA, 40);  //       IRQ8-15 -> vectors 40-47
    outb(PIC1_DATA, 4);   // ICW3: the slave is on IRQ2
    outb(PIC2_DATA, 2);
    outb(PIC1_DATA, 0x01);  // ICW4: 8086 mode
    outb(PIC2_DATA, 0x01);
    outb(PIC1_DATA, 0xfe);  // mask everything but IRQ0 (the timer)
    outb(PIC2_DATA, 0xff);
}

void pic_end_of_interrupt(std::uint64_t vector) {
    if (vector >= 40) outb(PIC2_COMMAND, PIC_EOI);
    outb(PIC1_COMMAND, PIC_EOI);
}

void pit_init() {
    outb(0x43, 0x34);  // channel 0, low then high byte, mode 2 (rate generator)
    outb(0x40, static_cast<std::uint8_t>(PIT_DIVISOR & 0xff));
    outb(0x40, static_cast<std::uint8_t>(PIT_DIVISOR >> 8));
}

const char* exception_name(std::uint64_t vector) {
    static constexpr const char* NAMES[32] = {"divide error",
                                              "debug",
                                              "NMI",
                                              "breakpoint",
                                              "overflow",
                                              "bound range",
                                              "invalid opcode",
                                              "device not available",
                                              "double fault",
                                              "coprocessor overrun",
                                              "invalid TSS",
                                              "segment not present",
                                              "stack fault",
                                              "general protection",
                                              "page fault",
                                              "reserved",
                                              "x87 floating point",
                                              "alignment check",
                                              "machine check",
                                              "SIMD floating point",
                                              "virtualization",
                                              "control protection",
                                              "reserved",
                                              "reserved",
                                              "reserved",
                                              "reserved",
                                              "reserved",
                                              "reserved",
                                              "hypervisor injection",
                                              "VMM communication",
                                              "security",
                                              "reserved"};
    return NAMES[vector & 31];
}

[[noreturn]] void report_fault(const InterruptFrame& f) {
    std::uint64_t cr2;
    asm volatile("mov %%cr2, %0" : "=r"(cr2));
    kprint("FAULT: CPU exception ", f.vector, " (", exception_name(f.vector), ") in task ",
           current_task_name(), " rip=", Hex{f.rip}, " error=", Hex{f.error_code},
           " cr2=", Hex{cr2}, " rsp=", Hex{f.rsp}, "\n");
    qemu_exit(EXIT_FAULT_CODE);
}

}  // namespace

void interrupts_init() {
    for (std::uint8_t v = 0; v < 48; ++v)
        set_gate(v, isr_stub_table[v]);
    set_gate(YIELD_VECTOR, isr_stub_yield);
    const IdtPointer pointer{sizeof(g_idt) - 1, reinterpret_cast<std::uint64_t>(&g_idt[0])};
    asm volatile("lidt %0" : : "m"(pointer));
    pic_init();
    pit_init();
}

}  // namespace vipc_kernel

extern "C" vipc_kernel::InterruptFrame* interrupt_dispatch(vipc_kernel::InterruptFrame* frame) {
    using namespace vipc_kernel;
    const std::uint64_t vector = frame->vector;
    if (vector < 32) {
        // A fault in ring 3 ends that process only; a fault in the kernel ends the machine.
        if ((frame->cs & 3) == 3) return user_fault(frame);
        report_fault(*frame);
    }
    if (vector == TIMER_VECTOR) {
        pic_end_of_interrupt(vector);
        return scheduler_on_tick(frame);
    }
    if (vector == YIELD_VECTOR) return scheduler_on_yield(frame);
    // Another PIC line (all masked) or a spurious IRQ7/IRQ15: acknowledge real ones, ignore.
    if (vector != 39 && vector != 47) pic_end_of_interrupt(vector);
    return frame;
}
