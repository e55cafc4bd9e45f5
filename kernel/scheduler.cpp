// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the preemptive scheduler and its wait queues.
#include "scheduler.hpp"

#include "task.hpp"

#include "arch.hpp"
#include "serial.hpp"

namespace vipc_kernel {

void TaskList::push_back(Task* t) {
    t->next = nullptr;
    t->prev = tail_;
    if (tail_ != nullptr) {
        tail_->next = t;
    } else {
        head_ = t;
    }
    tail_ = t;
}

void TaskList::remove(Task* t) {
    if (t->prev != nullptr) {
        t->prev->next = t->next;
    } else {
        head_ = t->next;
    }
    if (t->next != nullptr) {
        t->next->prev = t->prev;
    } else {
        tail_ = t->prev;
    }
    t->prev = t->next = nullptr;
}

Task* TaskList::pop_front() {
    Task* t = head_;
    if (t != nullptr) remove(t);
    return t;
}

namespace {

// Wait queues keyed by address: a blocked task sits in the bucket its key hashes to; a
// bucket may hold several keys, so wake() compares keys while scanning (in FIFO order).
constexpr std::uint32_t WAIT_BUCKETS = 64;

Task g_tasks[MAX_TASKS];
Task* g_idle = nullptr;
TaskList g_run_queue;
TaskList g_wait_buckets[WAIT_BUCKETS];
std::uint64_t g_next_pid = 1;
SchedulerStats g_stats;
std::atomic<std::uint32_t> g_tasks_finished{0};

TaskList& bucket_for(const void* key) {
    // Fibonacci hashing of the address; the low bits are alignment, the top bits spread.
    const auto a = reinterpret_cast<std::uintptr_t>(key);
    return g_wait_buckets[(a * 0x9E3779B97F4A7C15ull) >> 58];
}
static_assert(WAIT_BUCKETS == 64, "bucket_for keeps the top 6 bits");

// The lowest word of every stack holds this value; a task that overwrote it has overflowed
// its stack into the Task below it. Checked each time a task leaves the CPU.
constexpr std::uint64_t STACK_GUARD = 0x5AFE57AC4B0770Bull;

void check_stack_guard(const Task& t) {
    std::uint64_t guard;
    __builtin_memcpy(&guard, t.stack, sizeof(guard));
    if (guard == STACK_GUARD) return;
    kprint("FAULT: task ", t.name, " overflowed its ", std::uint64_t{TASK_STACK_BYTES},
           "-byte stack\n");
    qemu_exit(EXIT_FAULT_CODE);
}

// Saves the current task's frame and picks the next one: the first ready task, or idle.
// A Running current task goes to the back of the run queue; a Blocked or Free one (it is
// waiting, or it has ended) is not queued.
}  // namespace

void make_ready(Task* t) {
    t->state = TaskState::Ready;
    g_run_queue.push_back(t);
}

InterruptFrame* switch_task(InterruptFrame* frame) {
    PerCpu& cpu = this_cpu();
    Task* prev = cpu.current;
    check_stack_guard(*prev);
    prev->saved_frame = frame;
    if (prev->state == TaskState::Running && prev != g_idle) make_ready(prev);
    Task* next = g_run_queue.pop_front();
    if (next == nullptr) next = g_idle;
    if (next != prev) ++g_stats.switches;
    activate(cpu, next);
    return next->saved_frame;
}

void count_direct_switch() {
    ++g_stats.switches;
}

Task* task_table() {
    return g_tasks;
}

namespace {

[[noreturn]] void task_exit() {
    IrqGuard guard;  // never released: this task does not run again
    // 1. Count the end and wake joiners; they cannot run before step 3 (interrupts are off).
    g_tasks_finished.fetch_add(1, std::memory_order_release);
    wake(&g_tasks_finished, /*all=*/true);
    // 2. Give the slot back; its stack stays untouched until spawn() reuses it, which can
    //    only happen on another task, after step 3.
    this_cpu().current->state = TaskState::Free;
    // 3. Switch away for good.
    asm volatile("int %0" : : "i"(YIELD_VECTOR) : "memory");
    __builtin_unreachable();
}

// Where every new task starts (its first frame's rip): rdi holds the Task.
extern "C" [[noreturn]] void task_trampoline(Task* t) {
    t->entry(t->arg);
    task_exit();
}

void idle_loop(void*) {
    for (;;) {
        asm volatile("sti; hlt" : : : "memory");
    }
}

Task* take_free_slot(const char* name, ProcessId pid) {
    Task* t = nullptr;
    for (Task& candidate : g_tasks) {
        if (candidate.state == TaskState::Free) {
            t = &candidate;
            break;
        }
    }
    if (t == nullptr) return nullptr;
    t->pid = pid;
    t->name = name;
    t->entry = nullptr;
    t->arg = nullptr;
    t->wait_key = nullptr;
    t->wait_deadline = Deadline::never();
    t->is_user = false;
    t->cr3 = kernel_cr3();
    t->park = IpcPark::None;
    t->parked_on = nullptr;
    t->call_state = CallState::None;
    t->call_endpoint = nullptr;
    t->outcome = nullptr;
    for (ReplySlot& r : t->replies)
        r = ReplySlot{};
    __builtin_memcpy(t->stack, &STACK_GUARD, sizeof(STACK_GUARD));
    return t;
}

Task* create_task(const char* name, TaskEntry entry, void* arg, ProcessId pid) {
    Task* t = take_free_slot(name, pid);
    if (t == nullptr) return nullptr;
    t->entry = entry;
    t->arg = arg;
    // The first frame: "return" into task_trampoline(t) with interrupts on. Its rsp makes
    // the trampoline start as if called (rsp = 8 mod 16) with a zero return address.
    const auto top = reinterpret_cast<std::uintptr_t>(t->stack + TASK_STACK_BYTES) & ~0xfull;
    const std::uintptr_t entry_rsp = top - 8;
    *reinterpret_cast<std::uint64_t*>(entry_rsp) = 0;
    auto* f = reinterpret_cast<InterruptFrame*>(entry_rsp - sizeof(InterruptFrame));
    *f = InterruptFrame{};
    f->rdi = reinterpret_cast<std::uint64_t>(t);
    f->rip = reinterpret_cast<std::uint64_t>(&task_trampoline);
    f->cs = KERNEL_CODE_SELECTOR;
    f->rflags = 0x202;  // IF set (bit 1 is always 1)
    f->rsp = entry_rsp;
    f->ss = KERNEL_DATA_SELECTOR;
    t->saved_frame = f;
    return t;
}

}  // namespace

Task* create_user_task(const char* name, const AddressSpace& space, const std::uint64_t args[4]) {
    IrqGuard guard;
    Task* t = take_free_slot(name, ProcessId{g_next_pid});
    if (t == nullptr) return nullptr;
    ++g_next_pid;
    t->state = TaskState::Created;
    t->is_user = true;
    t->space = space;
    t->cr3 = space.cr3();
    t->handles.clear();  // the caller attaches the process's capability space
    t->next_reply_tag = static_cast<std::uint16_t>(t->pid.value * 0x2F1D + 1);
    InterruptFrame* f = t->user_frame();
    *f = InterruptFrame{};
    f->rdi = args[0];
    f->rsi = args[1];
    f->rdx = args[2];
    f->rcx = args[3];
    f->vector = USER_START_VECTOR;
    f->rip = vipc_abi::USER_BASE;
    f->cs = USER_CODE_SELECTOR;
    f->rflags = 0x202;  // IF set
    f->rsp = vipc_abi::USER_STACK_TOP;
    f->ss = USER_DATA_SELECTOR;
    t->saved_frame = f;
    return t;
}

void start_task(Task* t) {
    IrqGuard guard;
    make_ready(t);
}

InterruptFrame* finish_current_task(InterruptFrame* frame) {
    Task* self = this_cpu().current;
    self->state = TaskState::Free;
    g_tasks_finished.fetch_add(1, std::memory_order_release);
    wake(&g_tasks_finished, /*all=*/true);
    return switch_task(frame);
}

void scheduler_init() {
    IrqGuard guard;
    g_idle = create_task("idle", &idle_loop, nullptr, ProcessId{0});
    g_idle->state = TaskState::Ready;  // never in the run queue: chosen when it is empty
}

ProcessId spawn(const char* name, TaskEntry entry, void* arg) {
    IrqGuard guard;
    Task* t = create_task(name, entry, arg, ProcessId{g_next_pid});
    if (t == nullptr) return ProcessId{0};
    ++g_next_pid;
    make_ready(t);
    return t->pid;
}

[[noreturn]] void scheduler_start() {
    asm volatile("cli");
    Task* first = g_run_queue.pop_front();
    if (first == nullptr) first = g_idle;
    activate(this_cpu(), first);
    resume_frame(first->saved_frame);  // its rflags turn interrupts on
}

ProcessId current_pid() {
    IrqGuard guard;
    Task* t = this_cpu().current;
    return t != nullptr ? t->pid : ProcessId{0};
}

const char* current_task_name() {
    Task* t = this_cpu().current;
    return t != nullptr ? t->name : "boot";
}

std::uint64_t now_ns() {
    IrqGuard guard;
    return g_stats.ticks * TICK_NS;
}

SchedulerStats scheduler_stats() {
    IrqGuard guard;
    return g_stats;
}

std::atomic<std::uint32_t>& tasks_finished() {
    return g_tasks_finished;
}

// The wait protocol. Every step runs with interrupts off, so on this one CPU nothing can
// happen between the compare in step 2 and the parking in step 4: a waker either ran
// before step 2 (and changed the word first, so step 2 sees it) or runs after step 5 (and
// finds the task parked). That is why no wakeup is lost.
WaitResult wait_on(std::atomic<std::uint32_t>* word, std::uint32_t expected, Deadline deadline) {
    // 1. Interrupts off: neither the tick nor another task can run until step 5 switches.
    IrqGuard guard;
    // 2. Compare: the waker changes the word before it wakes, so a changed word means the
    //    event already happened.
    if (word->load(std::memory_order_acquire) != expected) return WaitResult::ValueChanged;
    // 3. A deadline already passed does not block.
    if (deadline.expired(g_stats.ticks * TICK_NS)) return WaitResult::TimedOut;
    // 4. Park: record the key and the deadline, and join the key's bucket. The task is in
    //    no run queue now, so only step 6A or 6B can make it run again.
    Task* self = this_cpu().current;
    // Before the first task runs there is nothing to switch to: report a spurious wake.
    if (self == nullptr) return WaitResult::Woken;
    self->wait_key = word;
    self->wait_deadline = deadline;
    self->state = TaskState::Blocked;
    bucket_for(word).push_back(self);
    // 5. Switch away. The saved frame keeps IF clear; the guard restores it after step 7.
    asm volatile("int %0" : : "i"(YIELD_VECTOR) : "memory");
    // 6. (Not here.) The task left its bucket in one of two ways, each of which set
    //    wait_result and moved it to the run queue:
    //    6A. wake() found its key: Woken.
    //    6B. scheduler_on_tick() found its deadline passed: TimedOut.
    // 7. Resumed: report how the wait ended. Callers re-check their word either way.
    self->wait_key = nullptr;
    self->wait_deadline = Deadline::never();
    return self->wait_result;
}

// The wake protocol (the waker has already changed the word; see platform.hpp):
void wake(const void* key, bool all) {
    // 1. Interrupts off, as in wait_on.
    IrqGuard guard;
    // 2. Scan the key's bucket in FIFO order, comparing keys only (never dereferencing).
    TaskList& bucket = bucket_for(key);
    for (Task* t = bucket.front(); t != nullptr;) {
        Task* following = t->next;
        if (t->wait_key == key) {
            // 3. Unpark the waiter (step 6A of wait_on) and queue it. The waker keeps the
            //    CPU; the waiter runs when it reaches the front of the run queue.
            bucket.remove(t);
            t->wait_result = WaitResult::Woken;
            make_ready(t);
            // 4. wake_one stops at the first match.
            if (!all) return;
        }
        t = following;
    }
}

InterruptFrame* scheduler_on_tick(InterruptFrame* frame) {
    ++g_stats.ticks;
    const std::uint64_t now = g_stats.ticks * TICK_NS;
    // Deadlines (step 6B of wait_on): a blocked task whose deadline has passed leaves its
    // bucket with TimedOut. A linear scan: there are at most MAX_TASKS tasks.
    for (Task& t : g_tasks) {
        if (t.state == TaskState::Blocked && t.wait_key != nullptr &&
            t.wait_deadline.expired(now)) {
            bucket_for(t.wait_key).remove(&t);
            t.wait_result = WaitResult::TimedOut;
            ++g_stats.timeouts;
            make_ready(&t);
        }
    }
    // Preemption: round robin among the ready tasks.
    Task* current = this_cpu().current;
    if (current == nullptr || g_run_queue.empty()) return frame;
    if (current != g_idle) ++g_stats.preemptions;
    return switch_task(frame);
}

InterruptFrame* scheduler_on_yield(InterruptFrame* frame) {
    return switch_task(frame);
}

}  // namespace vipc_kernel
