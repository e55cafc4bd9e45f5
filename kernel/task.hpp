// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the task (a kernel thread, or a user process's thread with its kernel stack) and
// the scheduler operations the system-call paths use.
//
// A user process is a task whose frames return to ring 3: it has its own address space,
// its own handle table (the capability space it names endpoints through), reply slots
// (one-shot reply capabilities for calls it received) and its IPC state. Its kernel stack
// is the task's stack; its user registers are always the frame at the top of it
// (user_frame()), whether it entered by a system call or an interrupt.
//
// Two ways to block:
//   - inside the core (send on a full queue, a receive with a deadline): the task waits in
//     the scheduler's wait queues (wait_on), its kernel stack in use below its user frame;
//   - at the kernel's IPC level (a receive on an empty endpoint, a call awaiting its reply):
//     the task is Blocked with only its user frame saved (`park`), like a seL4 thread
//     blocked on an endpoint. It is in exactly one list — its endpoint's receivers — or,
//     awaiting a reply, in none (its caller slot is found through the server's reply slot).
#pragma once

#include <cstdint>

#include "address_space.hpp"
#include "cpu.hpp"
#include "handle_table.hpp"
#include "interrupts.hpp"
#include "scheduler.hpp"

namespace vipc_kernel {

struct KernelEndpoint;

enum class TaskState : std::uint8_t { Free, Created, Ready, Running, Blocked };

// How a process is parked at the IPC level (no kernel stack in use).
enum class IpcPark : std::uint8_t { None, Receive, Reply };

// A call's progress: Pending from the moment its request is sent until its reply (or an
// error) is written into the caller's user frame, which makes it Done.
enum class CallState : std::uint8_t { None, Pending, Done };

// How a user process ended.
enum class ProcessEnd : std::uint8_t { Running, Exited, Faulted };

struct ProcessOutcome {
    ProcessEnd end = ProcessEnd::Running;
    std::int64_t exit_code = 0;
    std::uint64_t fault_vector = 0;
};

// A one-shot reply capability held by a server for one call it received.
struct ReplySlot {
    Task* client = nullptr;
    std::uint64_t call_seq = 0;  // the client's call this answers
    KernelEndpoint* endpoint = nullptr;
    std::uint16_t tag = 0;
    bool used = false;
};
inline constexpr std::uint32_t REPLY_SLOTS = 8;

struct Task;

// An intrusive FIFO of tasks (run queue, wait buckets, an endpoint's parked receivers).
class TaskList {
public:
    bool empty() const { return head_ == nullptr; }
    Task* front() const { return head_; }
    void push_back(Task* t);
    void remove(Task* t);
    Task* pop_front();

private:
    Task* head_ = nullptr;
    Task* tail_ = nullptr;
};

struct Task {
    InterruptFrame* saved_frame = nullptr;  // valid while not Running
    ProcessId pid{};
    TaskState state = TaskState::Free;
    const char* name = nullptr;
    TaskEntry entry = nullptr;
    void* arg = nullptr;

    // Links in the run queue, one wait bucket or one endpoint's receivers (one at a time).
    Task* prev = nullptr;
    Task* next = nullptr;

    // The wait in progress (valid while Blocked in wait_on), and how it ended.
    const void* wait_key = nullptr;
    Deadline wait_deadline = Deadline::never();
    WaitResult wait_result = WaitResult::Woken;

    // User processes only.
    bool is_user = false;
    std::uint64_t cr3 = 0;  // the address space to load (kernel threads: the boot tables)
    AddressSpace space;
    HandleTable handles;
    ReplySlot replies[REPLY_SLOTS];
    std::uint16_t next_reply_tag = 1;
    IpcPark park = IpcPark::None;
    KernelEndpoint* parked_on = nullptr;  // park == Receive
    CallState call_state = CallState::None;
    std::uint64_t call_seq = 0;
    KernelEndpoint* call_endpoint = nullptr;
    ProcessOutcome* outcome = nullptr;

    alignas(16) std::uint8_t stack[TASK_STACK_BYTES]{};

    std::uint64_t kernel_stack_top() const {
        return reinterpret_cast<std::uint64_t>(stack + TASK_STACK_BYTES) & ~0xfull;
    }
    // The user registers of a user process (the frame every entry from ring 3 leaves).
    InterruptFrame* user_frame() {
        return reinterpret_cast<InterruptFrame*>(kernel_stack_top() - sizeof(InterruptFrame));
    }
};

// The running task on this CPU.
inline Task* current_task() {
    return this_cpu().current;
}

// Scheduler operations for the kernel's system-call paths (interrupts off).
void make_ready(Task* t);
// Saves `frame` as the current task's, queues it if it is still Running, and returns the
// frame of the next task to run (loading its address space and kernel stack).
InterruptFrame* switch_task(InterruptFrame* frame);
// Makes `next` the running task on `cpu`: kernel stack, TSS, address space. No queues.
inline void activate(PerCpu& cpu, Task* next) {
    next->state = TaskState::Running;
    cpu.current = next;
    set_kernel_stack(cpu, next->kernel_stack_top());
    load_address_space(cpu, next->cr3);
}
// Counts a direct switch made without the run queue (the fast path).
void count_direct_switch();

// Takes a Free task slot for a user process (state Created: not run until start_task).
// Its user frame enters USER_BASE at ring 3 with rdi, rsi, rdx, rcx = args[0..3].
Task* create_user_task(const char* name, const AddressSpace& space, const std::uint64_t args[4]);
void start_task(Task* t);
// Ends the current task for good: counts it in tasks_finished() and returns the next
// task's frame (the caller resumes it). The task's slot becomes Free.
InterruptFrame* finish_current_task(InterruptFrame* frame);

// All task slots, for the kernel's scans (teardown, close).
Task* task_table();

}  // namespace vipc_kernel
