// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc platform: a deterministic, seeded scheduler of cooperative tasks, for tests.
//
// The sim runs tasks one at a time on a virtual clock. Every Platform call (wait, wake_one,
// wake_all, now_ns) and every yield() is a switch point at which a seeded random choice
// picks which runnable task goes on, so one seed is one interleaving and the same seed
// replays it exactly. Blocked waits time out only when no task can run: the virtual clock
// then jumps to the earliest deadline. If no task can run and no blocked task has a
// deadline, some waiter would sleep forever: run() stops and reports it. The sim may also
// wake a blocked task spuriously (as futexes may), to check that callers re-check.
//
//   SimPlatform sim(seed);
//   HeapAllocator allocator;
//   Registry registry(sim, allocator);
//   sim.spawn(ProcessId{1}, [&] { ... endpoint.send_sync(...) ... });
//   sim.spawn(ProcessId{2}, [&] { ... endpoint.receive_sync(...) ... });
//   SimPlatform::RunResult r = sim.run();
//   ASSERT_TRUE(r.ok) << "seed " << seed << ": " << r.failure;
//
// How it runs: each task is a std::thread, but only the task holding the baton runs; a
// switch point hands the baton to the task the seeded choice names and parks the caller.
// So task bodies and the core run strictly one at a time, every handoff is a mutex
// release/acquire (ThreadSanitizer sees the order), and the interleaving depends only on
// the seed and the tasks' code. By default every task thread is pinned to the CPU run() was
// called on, which makes a handoff a same-core wake.
//
// The switch points, exactly: wait(), now_ns(), yield() and preemption_point() called from
// a task, and wake_one()/wake_all(), which switch both before and after they wake (a waker
// can be preempted between publishing a value and waking). current_process() is not one.
// The core calls preemption_point() right after taking each of its locks, so tasks are
// also switched inside critical sections, and others then contend for the held lock. Code
// between two switch points runs without interruption. Platform calls made outside any task (before
// or after run(), e.g. a Registry built or destroyed on the test's thread) never switch:
// wake_* wake nothing, wait() returns ValueChanged or, with a deadline, moves the clock
// to it and returns TimedOut; a wait() outside a task that would sleep forever aborts the
// process with a message.
//
// When run() reports a deadlock. Every task that was blocked is unwound: its wait() throws
// a private exception that the sim catches at the top of the task (task bodies must not
// swallow it with catch (...); if they do, their next wait() throws again). The core is not
// written to be unwound, so what it was doing is left half done: an endpoint's waiter lists
// may still point at parking slots that lived on the unwound stacks. A test that got a
// deadlock must therefore not touch that Registry or its endpoints again, not even by
// destroying them (the Registry destructor closes endpoints, which walks the waiter lists):
// keep them on the heap and leak them on that path. While the tasks unwind, switch points
// do nothing, and a wait() reached from a destructor during the unwinding returns TimedOut
// at once (a loop that keeps waiting there aborts the process with a message rather than
// hang). A wait() blocked inside a noexcept function (e.g. a destructor) when the deadlock is
// found cannot be unwound: the process terminates.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "veridian/ipc/core/platform.hpp"

namespace veridian::ipc {

class SimPlatform final : public Platform {
public:
    struct Options {
        // Probability, in 1/1000, that a switch point wakes one blocked task spuriously.
        // Spurious wakes are only injected while some task can run, so they never hide a
        // deadlock. 0 disables them.
        u32 spurious_wake_permille = 20;
        // Each switch point advances the virtual clock by a seeded amount in
        // [0, max_tick_ns], so deadlines can also pass while other tasks run (a timeout then
        // races with a wake). 0: the clock moves only when no task can run.
        u64 max_tick_ns = 0;
        // Pin every task thread to the CPU run() is called on, so a handoff is always a
        // same-core wake (about 2 us; a cross-core one measured about 3 times slower).
        bool pin_to_one_cpu = true;
        // Record the index of the task chosen at every switch point in RunResult::schedule.
        bool record_schedule = false;
    };

    explicit SimPlatform(u64 seed);
    SimPlatform(u64 seed, Options options);
    ~SimPlatform();
    SimPlatform(const SimPlatform&) = delete;
    SimPlatform& operator=(const SimPlatform&) = delete;

    // Adds a task; tasks start when run() is called. Tasks are numbered 0, 1, ... in spawn
    // order. Throws std::logic_error from inside a task or after run().
    void spawn(ProcessId pid, std::function<void()> body);

    struct RunResult {
        bool ok = true;
        std::string failure;        // when !ok: what went wrong (e.g. which tasks sleep forever)
        u64 switches = 0;           // switch points passed
        u64 handoffs = 0;           // switch points at which another task took over
        u64 end_time_ns = 0;        // virtual clock at the end
        bool deadlock = false;      // a waiter would have slept forever (failure names it)
        u64 spurious_wakes = 0;     // spurious wakes injected
        u64 timeouts = 0;           // waits that ended at their deadline
        u64 schedule_hash = 0;      // a fingerprint of the whole interleaving
        std::vector<u32> schedule;  // with Options::record_schedule: the task chosen at each
                                    // switch point, in order
    };
    // Runs every task to completion (or until a deadlock is found). A task body that throws
    // (anything but the sim's own unwinding) makes ok false with the exception's text; the
    // other tasks go on. Call once; throws std::logic_error on a second call or from a task,
    // and std::system_error (having run nothing) if a task's thread cannot be started.
    RunResult run();

    u64 seed() const;

    // A switch point for test code (does nothing outside a task).
    void yield();

    // The running task's index (spawn order), or -1 outside any task.
    int current_task() const;

    WaitResult wait(std::atomic<u32>* word, u32 expected, Deadline deadline) override;
    void wake_one(std::atomic<u32>* word) override;
    void wake_all(std::atomic<u32>* word) override;
    u64 now_ns() override;
    ProcessId current_process() override;
    // A switch point (like yield()): the core calls it with one of its locks held.
    void preemption_point() override;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace veridian::ipc
