// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: kernel_main, called by boot.S in 64-bit mode on the boot stack.
#include <cstdint>

#include "arch.hpp"
#include "cpu.hpp"
#include "interrupts.hpp"
#include "scenarios.hpp"
#include "scheduler.hpp"
#include "serial.hpp"
#include "user_scenarios.hpp"

extern "C" void (*__init_array_start[])();
extern "C" void (*__init_array_end[])();

namespace vipc_kernel {
bool run_contract_cases();  // tests/contract/kernel_contract.cpp
}

namespace {

constexpr std::uint32_t MULTIBOOT_BOOTLOADER_MAGIC = 0x2BADB002;

// Runs the global constructors (there are no crt files to do it).
void run_global_constructors() {
    for (auto* ctor = __init_array_start; ctor != __init_array_end; ++ctor)
        (*ctor)();
}

// The first task: runs every scenario, then ends the machine with the verdict.
void main_task(void*) {
    // Kernel threads calling the core as a library, then user processes calling it
    // through system calls, then the contract suite's cases (kernel threads).
    const bool threads_passed = vipc_kernel::run_scenarios();
    const bool users_passed = vipc_kernel::run_user_scenarios();
    const bool contract_passed = vipc_kernel::run_contract_cases();
    const bool all_passed = threads_passed && users_passed && contract_passed;
    const auto stats = vipc_kernel::scheduler_stats();
    vipc_kernel::kprint("scheduler: ", stats.ticks, " ticks, ", stats.switches, " switches, ",
                        stats.preemptions, " preemptions, ", stats.timeouts, " wait timeouts\n");
    if (all_passed) {
        vipc_kernel::kprint("ALL PASSED\n");
        vipc_kernel::qemu_exit(vipc_kernel::EXIT_SUCCESS_CODE);
    }
    vipc_kernel::kprint("SOME FAILED\n");
    vipc_kernel::qemu_exit(vipc_kernel::EXIT_FAILURE_CODE);
}

}  // namespace

extern "C" void kernel_main(std::uint32_t multiboot_magic, std::uint32_t /*multiboot_info*/) {
    using namespace vipc_kernel;
    cpu_init();  // first: the per-CPU block (GS) is read by everything after it
    serial_init();
    kprint("veridian-ipc kernel: x86-64 long mode, serial on COM1\n");
    if (multiboot_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
        kprint("FAULT: not started by a Multiboot loader (magic ", Hex{multiboot_magic}, ")\n");
        qemu_exit(EXIT_FAULT_CODE);
    }
    run_global_constructors();
    interrupts_init();
    scheduler_init();
    spawn("main", &main_task, nullptr);
    kprint("scheduler: preemptive round robin, timer at ",
           (PIT_INPUT_HZ + PIT_DIVISOR / 2) / PIT_DIVISOR, " Hz (", TICK_NS, " ns per tick)\n");
    scheduler_start();
}
