// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: a preemptive round-robin scheduler for one CPU, and the wait queues behind the
// core's futex-shaped Platform (kernel_platform.hpp).
//
// Tasks are kernel threads with their own stacks and ProcessIds. The PIT tick (~4 kHz)
// preempts the running task whenever another is ready; a task also leaves the CPU when it
// blocks in wait_on() or returns. When no task is ready, an idle task halts until the next
// interrupt.
//
// Invariants (all scheduler state is touched only with interrupts off, which on one CPU
// makes every scheduler operation atomic):
//   - exactly one task is Running: the current one (possibly the idle task);
//   - a Ready task is in the run queue, and only Ready tasks are;
//   - a Blocked task is in exactly one wait bucket, the one its wait key hashes to, and
//     leaves it only through wake() (result Woken) or the tick (result TimedOut);
//   - a task that is not Running is fully described by the frame at its saved_rsp.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "interrupts.hpp"
#include "veridian/ipc/core/platform.hpp"
#include "veridian/ipc/core/types.hpp"

namespace vipc_kernel {

using veridian::ipc::Deadline;
using veridian::ipc::ProcessId;
using veridian::ipc::WaitResult;

inline constexpr std::uint32_t MAX_TASKS = 24;
inline constexpr std::size_t TASK_STACK_BYTES = 32 * 1024;

using TaskEntry = void (*)(void* arg);

struct SchedulerStats {
    std::uint64_t ticks = 0;
    std::uint64_t switches = 0;     // every change of the running task
    std::uint64_t preemptions = 0;  // switches forced by the tick on a task that could run on
    std::uint64_t timeouts = 0;     // waits ended by the tick at their deadline
};

// Creates the idle task. Call once, before spawn().
void scheduler_init();

// Creates a Ready task that runs entry(arg) and ends when it returns. Returns its new
// ProcessId, or ProcessId{0} when all MAX_TASKS slots are in use.
ProcessId spawn(const char* name, TaskEntry entry, void* arg);

// Enables interrupts and runs the first ready task; the boot stack is abandoned.
[[noreturn]] void scheduler_start();

ProcessId current_pid();
const char* current_task_name();
std::uint64_t now_ns();
SchedulerStats scheduler_stats();

// Incremented, then woken with wake(all), each time a task ends: a join counter.
std::atomic<std::uint32_t>& tasks_finished();

// The futex-shaped wait: blocks the current task while *word == expected, until wake() on
// `word` or the deadline. See the numbered protocol in scheduler.cpp.
WaitResult wait_on(std::atomic<std::uint32_t>* word, std::uint32_t expected, Deadline deadline);
// Wakes one (or every) task blocked on `key`. The key is only compared, never dereferenced.
void wake(const void* key, bool all);

// Interrupt handlers (interrupts off): return the frame to resume.
InterruptFrame* scheduler_on_tick(InterruptFrame* frame);
InterruptFrame* scheduler_on_yield(InterruptFrame* frame);

}  // namespace vipc_kernel
