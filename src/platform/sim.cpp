// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc platform: the deterministic simulation scheduler (see sim.hpp).
//
// Baton passing. Every task is a std::thread, but a task runs only while it holds the baton
// (State::baton_holder == its index); run()'s own thread holds it before the first task
// starts and gets it back when the last one ends. All scheduler state is guarded by one
// mutex; a task gives the baton away only at a switch point, by naming the next holder under
// that mutex and then sleeping until it is named again. So task code runs strictly one task
// at a time, and each handoff is a release/acquire pair of that mutex.
//
// The switch-point protocol (State::switch_point; the running task has already set its own
// status: Runnable for a plain switch point, Blocked when it is about to sleep in wait(),
// Done when its body has returned):
//   (1) count the switch and advance the clock by the seeded tick (Options::max_tick_ns);
//   (2) every blocked task whose deadline has passed becomes runnable with TimedOut;
//   (3) if some task can run, maybe wake one blocked task spuriously (seeded, at
//       Options::spurious_wake_permille);
//   (4) if no task can run: jump the clock to the earliest deadline of a blocked task and
//       time those out as in (2); if no blocked task has a deadline, but some are blocked,
//       that is a deadlock (go to the abort protocol); if every task is done, the baton goes
//       back to run();
//   (5) pick the next task among the runnable ones with the seeded generator;
//   (6) hand it the baton and, unless the caller is done, park the caller until the baton
//       comes back to it.
//
// The wait protocol (SimPlatform::wait), as a futex: (1) compare *word with expected;
// different -> a switch point, then ValueChanged. (2) deadline already passed -> a switch
// point, then TimedOut. (3) otherwise record the wait (key = the word's address, never
// dereferenced again; the deadline) and mark the task Blocked; (4) switch; (5) when the
// baton comes back, the task was made runnable by exactly one of: a wake_one/wake_all on
// its key (Woken), a spurious wake (Woken), its deadline (TimedOut), or the abort protocol
// (throws TaskAbort).
//
// The abort protocol (a deadlock): (A1) write the failure naming every blocked task and the
// word it waits on; (A2) mark every blocked task runnable with Aborted and enter aborting
// mode, in which switch points no longer switch; (A3) give the baton to the lowest-numbered
// runnable task: its wait() throws TaskAbort, which unwinds the task to task_main(), which
// catches it; (A4) each task that ends hands the baton to the next one, and the last one to
// run().
#include "veridian/ipc/platform/sim.hpp"

#include <sched.h>

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace veridian::ipc {

namespace {

// splitmix64: small, fast and the same sequence on every machine for a given seed.
class SeededRandom {
public:
    explicit SeededRandom(u64 seed) : state_(seed) {}

    u64 next() {
        state_ += 0x9E3779B97F4A7C15ull;
        u64 z = state_;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

    // A number in [0, bound), bound > 0, by multiply-shift (deterministic; the bias of at
    // most bound / 2^64 does not matter here).
    u64 below(u64 bound) {
        return static_cast<u64>((static_cast<unsigned __int128>(next()) * bound) >> 64);
    }

private:
    u64 state_;
};

// Thrown out of wait() in the tasks that were blocked when a deadlock was found. Not derived
// from std::exception, so task code catching std::exception does not swallow it.
struct TaskAbort {};

enum class TaskStatus : u8 { Runnable, Blocked, Done };
enum class WakeReason : u8 { None, Woken, Spurious, TimedOut, Aborted };

// A wait() in a task that is unwinding after a deadlock returns at once; a loop that keeps
// waiting there (it can never be satisfied) is stopped after this many calls.
constexpr u64 MAX_WAITS_WHILE_UNWINDING = 100000;

constexpr u32 RUN_THREAD = ~u32{0};  // baton_holder value: run()'s thread holds the baton

struct Task {
    u32 index = 0;
    ProcessId pid{};
    std::function<void()> body;
    TaskStatus status = TaskStatus::Runnable;
    // While Blocked: what it waits on. The key is the word's address, used only as a key.
    std::uintptr_t wait_key = 0;
    Deadline deadline = Deadline::never();
    WakeReason reason = WakeReason::None;
    u64 waits_while_unwinding = 0;
    std::condition_variable baton;  // signalled when baton_holder becomes this task
    std::thread thread;
};

// Which sim and which task the calling thread runs (set in each task thread).
thread_local const void* t_owner = nullptr;
thread_local Task* t_task = nullptr;

}  // namespace

struct SimPlatform::State {
    State(u64 seed_value, Options opts) : seed(seed_value), options(opts), random(seed_value) {}

    Task* current_task() const { return t_owner == this ? t_task : nullptr; }

    void switch_point(std::unique_lock<std::mutex>& lock, Task& self);
    void hand_off(std::unique_lock<std::mutex>& lock, Task& self, u32 next);
    void expire_deadlines();
    void begin_abort(std::unique_lock<std::mutex>& lock, Task& self);
    u32 lowest_runnable() const;
    void wake(std::uintptr_t key, bool all);
    void record_choice(u32 next);
    void task_main(Task& task);

    const u64 seed;
    const Options options;
    SeededRandom random;

    std::mutex mutex;
    std::vector<std::unique_ptr<Task>> tasks;
    u32 baton_holder = RUN_THREAD;
    std::condition_variable run_baton;  // signalled when the baton comes back to run()
    bool started = false;
    bool cancelled = false;  // run() could not start every task thread
    bool aborting = false;
    int cpu = -1;  // the CPU task threads are pinned to, or -1

    u64 now = 0;
    u64 switches = 0;
    u64 handoffs = 0;
    u64 spurious_wakes = 0;
    u64 timeouts = 0;
    u64 schedule_hash = 0xCBF29CE484222325ull;
    std::vector<u32> schedule;
    std::string failure;
    bool deadlock = false;
    std::vector<u32> runnable;  // scratch for switch_point
};

void SimPlatform::State::record_choice(u32 next) {
    // FNV-1a over (task index, clock) of every choice.
    for (u64 v : {u64{next}, now}) {
        for (int i = 0; i < 8; ++i) {
            schedule_hash ^= (v >> (8 * i)) & 0xFF;
            schedule_hash *= 0x100000001B3ull;
        }
    }
    if (options.record_schedule) schedule.push_back(next);
}

void SimPlatform::State::expire_deadlines() {
    for (auto& t : tasks) {
        if (t->status == TaskStatus::Blocked && t->deadline.expired(now)) {
            t->status = TaskStatus::Runnable;
            t->reason = WakeReason::TimedOut;
            ++timeouts;
        }
    }
}

u32 SimPlatform::State::lowest_runnable() const {
    for (const auto& t : tasks) {
        if (t->status == TaskStatus::Runnable) return t->index;
    }
    return RUN_THREAD;
}

void SimPlatform::State::switch_point(std::unique_lock<std::mutex>& lock, Task& self) {
    if (aborting) {
        // (A4) while unwinding, a task keeps the baton until it ends.
        if (self.status == TaskStatus::Done) hand_off(lock, self, lowest_runnable());
        return;
    }

    // (1) count the switch; advance the clock by the seeded tick.
    ++switches;
    if (options.max_tick_ns != 0) {
        const u64 tick = random.below(options.max_tick_ns + 1);
        now = tick >= ~u64{0} - now ? ~u64{0} - 1 : now + tick;
    }

    // (2) blocked tasks whose deadline has passed become runnable with TimedOut.
    expire_deadlines();

    runnable.clear();
    for (const auto& t : tasks) {
        if (t->status == TaskStatus::Runnable) runnable.push_back(t->index);
    }

    // (3) while some task can run, maybe wake one blocked task spuriously.
    if (!runnable.empty() && options.spurious_wake_permille != 0 &&
        random.below(1000) < options.spurious_wake_permille) {
        u32 blocked = 0;
        for (const auto& t : tasks) {
            if (t->status == TaskStatus::Blocked) ++blocked;
        }
        if (blocked != 0) {
            u64 pick = random.below(blocked);
            for (auto& t : tasks) {
                if (t->status != TaskStatus::Blocked) continue;
                if (pick-- == 0) {
                    t->status = TaskStatus::Runnable;
                    t->reason = WakeReason::Spurious;
                    ++spurious_wakes;
                    runnable.push_back(t->index);
                    break;
                }
            }
        }
    }

    // (4) nobody can run: jump to the earliest deadline, else deadlock, else all done.
    if (runnable.empty()) {
        u64 earliest = ~u64{0};
        bool any_blocked = false;
        for (const auto& t : tasks) {
            if (t->status != TaskStatus::Blocked) continue;
            any_blocked = true;
            if (!t->deadline.is_never() && t->deadline.ns() < earliest) {
                earliest = t->deadline.ns();
            }
        }
        if (earliest != ~u64{0}) {
            if (earliest > now) now = earliest;
            expire_deadlines();
            for (const auto& t : tasks) {
                if (t->status == TaskStatus::Runnable) runnable.push_back(t->index);
            }
        } else if (any_blocked) {
            begin_abort(lock, self);
            return;
        } else {
            record_choice(RUN_THREAD);
            hand_off(lock, self, RUN_THREAD);
            return;
        }
    }

    // (5) the seeded choice of who runs next.
    const u32 next = runnable[random.below(runnable.size())];
    record_choice(next);

    // (6) hand over the baton (and park unless done).
    hand_off(lock, self, next);
}

void SimPlatform::State::hand_off(std::unique_lock<std::mutex>& lock, Task& self, u32 next) {
    if (next == self.index) return;
    ++handoffs;
    baton_holder = next;
    std::condition_variable& target = next == RUN_THREAD ? run_baton : tasks[next]->baton;
    const bool done = self.status == TaskStatus::Done;
    // Notify without the mutex so the woken thread does not immediately block on it. The
    // target cannot miss the signal: it re-checks baton_holder under the mutex before it
    // sleeps. Task objects outlive their threads (run() joins before anything is freed).
    lock.unlock();
    target.notify_one();
    lock.lock();
    if (done) return;
    self.baton.wait(lock, [&] { return baton_holder == self.index; });
}

void SimPlatform::State::begin_abort(std::unique_lock<std::mutex>& lock, Task& self) {
    // (A1) name every task that would sleep forever.
    deadlock = true;
    std::string text =
        "deadlock: no task can run and no blocked task has a deadline (a waiter sleeps "
        "forever) after " +
        std::to_string(switches) + " switches at t=" + std::to_string(now) + "ns:";
    for (const auto& t : tasks) {
        if (t->status != TaskStatus::Blocked) continue;
        char line[128];
        std::snprintf(line, sizeof line, " [task %u (pid %llu) waits on %#llx]", t->index,
                      static_cast<unsigned long long>(t->pid.value),
                      static_cast<unsigned long long>(t->wait_key));
        text += line;
    }
    if (!failure.empty()) failure += "; ";
    failure += text;

    // (A2) every blocked task will throw out of its wait().
    aborting = true;
    for (auto& t : tasks) {
        if (t->status == TaskStatus::Blocked) {
            t->status = TaskStatus::Runnable;
            t->reason = WakeReason::Aborted;
        }
    }
    // (A3) the lowest-numbered one goes first.
    hand_off(lock, self, lowest_runnable());
}

void SimPlatform::State::wake(std::uintptr_t key, bool all) {
    if (all) {
        for (auto& t : tasks) {
            if (t->status == TaskStatus::Blocked && t->wait_key == key) {
                t->status = TaskStatus::Runnable;
                t->reason = WakeReason::Woken;
            }
        }
        return;
    }
    u32 matching = 0;
    for (const auto& t : tasks) {
        matching += t->status == TaskStatus::Blocked && t->wait_key == key ? 1 : 0;
    }
    if (matching == 0) return;
    // Which waiter wakes is a seeded choice: callers must not rely on any order.
    u64 pick = matching == 1 ? 0 : random.below(matching);
    for (auto& t : tasks) {
        if (t->status != TaskStatus::Blocked || t->wait_key != key) continue;
        if (pick-- == 0) {
            t->status = TaskStatus::Runnable;
            t->reason = WakeReason::Woken;
            return;
        }
    }
}

void SimPlatform::State::task_main(Task& task) {
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        // Best effort: if pinning fails the sim is just slower, never less deterministic.
        (void)sched_setaffinity(0, sizeof set, &set);
    }
    t_owner = this;
    t_task = &task;
    {
        std::unique_lock<std::mutex> lock(mutex);
        task.baton.wait(lock, [&] { return baton_holder == task.index || cancelled; });
        if (cancelled) {
            t_owner = nullptr;
            t_task = nullptr;
            return;
        }
    }

    std::string error;
    try {
        task.body();
    } catch (const TaskAbort&) {
        // Unwound by the abort protocol; the failure is already recorded.
    } catch (const std::exception& e) {
        error = e.what();
        if (error.empty()) error = "an exception";
    } catch (...) {
        error = "an exception of unknown type";
    }

    std::unique_lock<std::mutex> lock(mutex);
    if (!error.empty()) {
        if (!failure.empty()) failure += "; ";
        failure += "task " + std::to_string(task.index) + " (pid " +
                   std::to_string(task.pid.value) + ") threw: " + error;
    }
    task.status = TaskStatus::Done;
    switch_point(lock, task);
    t_owner = nullptr;
    t_task = nullptr;
}

SimPlatform::SimPlatform(u64 seed) : SimPlatform(seed, Options{}) {}

SimPlatform::SimPlatform(u64 seed, Options options)
    : state_(std::make_unique<State>(seed, options)) {}

SimPlatform::~SimPlatform() {
    // run() joins every thread it starts; a sim that never ran has none.
    for (auto& t : state_->tasks) {
        if (t->thread.joinable()) t->thread.join();
    }
}

u64 SimPlatform::seed() const {
    return state_->seed;
}

void SimPlatform::spawn(ProcessId pid, std::function<void()> body) {
    State& s = *state_;
    if (s.current_task() != nullptr) {
        throw std::logic_error("SimPlatform::spawn called from inside a task");
    }
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.started) throw std::logic_error("SimPlatform::spawn called after run()");
    auto task = std::make_unique<Task>();
    task->index = static_cast<u32>(s.tasks.size());
    task->pid = pid;
    task->body = std::move(body);
    s.tasks.push_back(std::move(task));
}

SimPlatform::RunResult SimPlatform::run() {
    State& s = *state_;
    if (s.current_task() != nullptr) {
        throw std::logic_error("SimPlatform::run called from inside a task");
    }
    std::unique_lock<std::mutex> lock(s.mutex);
    if (s.started) throw std::logic_error("SimPlatform::run called twice");
    s.started = true;

    if (s.options.pin_to_one_cpu) {
        cpu_set_t allowed;
        CPU_ZERO(&allowed);
        const int here = sched_getcpu();
        if (here >= 0 && sched_getaffinity(0, sizeof allowed, &allowed) == 0 &&
            CPU_ISSET(here, &allowed)) {
            s.cpu = here;
        }
    }

    if (!s.tasks.empty()) {
        // Threads start parked: none runs until the baton names it.
        try {
            for (auto& t : s.tasks) {
                Task* task = t.get();
                task->thread = std::thread([&s, task] { s.task_main(*task); });
            }
        } catch (...) {
            // Could not start every task: release the ones already parked without running
            // their bodies, and report the error to the caller.
            s.cancelled = true;
            lock.unlock();
            for (auto& t : s.tasks) {
                t->baton.notify_one();
                if (t->thread.joinable()) t->thread.join();
            }
            throw;
        }
        const u32 first = static_cast<u32>(s.random.below(s.tasks.size()));
        s.record_choice(first);
        s.baton_holder = first;
        s.tasks[first]->baton.notify_one();
        s.run_baton.wait(lock, [&] { return s.baton_holder == RUN_THREAD; });
        lock.unlock();
        for (auto& t : s.tasks)
            t->thread.join();
        lock.lock();
    }

    RunResult result;
    result.ok = s.failure.empty();
    result.failure = s.failure;
    result.switches = s.switches;
    result.handoffs = s.handoffs;
    result.end_time_ns = s.now;
    result.deadlock = s.deadlock;
    result.spurious_wakes = s.spurious_wakes;
    result.timeouts = s.timeouts;
    result.schedule_hash = s.schedule_hash;
    result.schedule = s.schedule;
    return result;
}

void SimPlatform::yield() {
    State& s = *state_;
    Task* self = s.current_task();
    if (self == nullptr) return;
    std::unique_lock<std::mutex> lock(s.mutex);
    s.switch_point(lock, *self);
}

void SimPlatform::preemption_point() { yield(); }

int SimPlatform::current_task() const {
    const Task* self = state_->current_task();
    return self == nullptr ? -1 : static_cast<int>(self->index);
}

WaitResult SimPlatform::wait(std::atomic<u32>* word, u32 expected, Deadline deadline) {
    State& s = *state_;
    Task* self = s.current_task();
    std::unique_lock<std::mutex> lock(s.mutex);

    if (self == nullptr) {
        // Outside any task nobody could wake us: never switch, never block.
        if (word->load(std::memory_order_seq_cst) != expected) return WaitResult::ValueChanged;
        if (deadline.is_never()) {
            std::fprintf(stderr,
                         "SimPlatform: wait() outside a task with no deadline would sleep "
                         "forever (seed %llu)\n",
                         static_cast<unsigned long long>(s.seed));
            std::abort();
        }
        if (deadline.ns() > s.now) s.now = deadline.ns();
        return WaitResult::TimedOut;
    }

    if (s.aborting) {
        // A task being unwound after a deadlock.
        if (std::uncaught_exceptions() == 0) throw TaskAbort{};
        if (++self->waits_while_unwinding > MAX_WAITS_WHILE_UNWINDING) {
            std::fprintf(stderr,
                         "SimPlatform: task %u keeps waiting while it is unwound after a "
                         "deadlock (seed %llu): %s\n",
                         self->index, static_cast<unsigned long long>(s.seed), s.failure.c_str());
            std::abort();
        }
        return WaitResult::TimedOut;
    }

    // (1) compare.
    if (word->load(std::memory_order_seq_cst) != expected) {
        s.switch_point(lock, *self);
        return WaitResult::ValueChanged;
    }
    // (2) a deadline that has already passed does not block.
    if (deadline.expired(s.now)) {
        ++s.timeouts;
        s.switch_point(lock, *self);
        return WaitResult::TimedOut;
    }
    // (3) record the wait; the address is only a key from here on.
    self->status = TaskStatus::Blocked;
    self->wait_key = reinterpret_cast<std::uintptr_t>(word);
    self->deadline = deadline;
    self->reason = WakeReason::None;
    // (4) switch.
    s.switch_point(lock, *self);
    // (5) made runnable by a wake, a spurious wake, the deadline or the abort protocol.
    self->wait_key = 0;
    switch (self->reason) {
        case WakeReason::TimedOut:
            return WaitResult::TimedOut;
        case WakeReason::Aborted:
            throw TaskAbort{};
        case WakeReason::Woken:
        case WakeReason::Spurious:
        case WakeReason::None:
            break;
    }
    return WaitResult::Woken;
}

// A wake is a switch point both before and after it wakes: the waker may be preempted
// between publishing a new value and waking (so the waiter may see the value, return and
// reuse the word's memory first), and the woken task may run at once.
void SimPlatform::wake_one(std::atomic<u32>* word) {
    State& s = *state_;
    Task* self = s.current_task();
    std::unique_lock<std::mutex> lock(s.mutex);
    if (self != nullptr) s.switch_point(lock, *self);
    s.wake(reinterpret_cast<std::uintptr_t>(word), /*all=*/false);
    if (self != nullptr) s.switch_point(lock, *self);
}

void SimPlatform::wake_all(std::atomic<u32>* word) {
    State& s = *state_;
    Task* self = s.current_task();
    std::unique_lock<std::mutex> lock(s.mutex);
    if (self != nullptr) s.switch_point(lock, *self);
    s.wake(reinterpret_cast<std::uintptr_t>(word), /*all=*/true);
    if (self != nullptr) s.switch_point(lock, *self);
}

u64 SimPlatform::now_ns() {
    State& s = *state_;
    Task* self = s.current_task();
    std::unique_lock<std::mutex> lock(s.mutex);
    if (self != nullptr) s.switch_point(lock, *self);
    return s.now;
}

ProcessId SimPlatform::current_process() {
    const Task* self = state_->current_task();
    return self == nullptr ? ProcessId{0} : self->pid;
}

}  // namespace veridian::ipc
