// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc platform: threads of one Linux process.
//
// ThreadsPlatform implements the core's Platform with private Linux futexes, so endpoints
// in one Registry can be shared by the threads of a process:
//
//   veridian::ipc::ThreadsPlatform platform;
//   veridian::ipc::HeapAllocator allocator;
//   veridian::ipc::Registry registry(platform, allocator);
//
// Waiting is a bounded spin (only when the machine has more than one CPU: on one CPU the
// peer cannot run while we spin) followed by a futex sleep with the deadline.
// current_process() is the ProcessId set for the calling thread with
// set_current_process(), else getpid().
#pragma once

#include "veridian/ipc/core/platform.hpp"

namespace veridian::ipc {

class ThreadsPlatform final : public Platform {
public:
    // spin_iterations: how many times wait() re-reads the word (with a pause) before it
    // sleeps; 0 always sleeps. The default is tuned for this host class and is 0 on one CPU.
    explicit ThreadsPlatform(u32 spin_iterations = default_spin_iterations());

    WaitResult wait(std::atomic<u32>* word, u32 expected, Deadline deadline) override;
    void wake_one(std::atomic<u32>* word) override;
    void wake_all(std::atomic<u32>* word) override;
    u64 now_ns() override;
    ProcessId current_process() override;

    // Names the process the calling thread acts for (thread-local).
    static void set_current_process(ProcessId pid);
    static u32 default_spin_iterations();

private:
    u32 spin_iterations_;
};

// The hosted allocator: the C heap.
class HeapAllocator final : public Allocator {
public:
    void* allocate(usize bytes, usize align) override;
    void deallocate(void* p, usize bytes, usize align) override;
};

}  // namespace veridian::ipc
