// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the core's Platform and Allocator, implemented by the scheduler and a static arena.
//
//   KernelPlatform platform;
//   ArenaAllocator allocator;
//   veridian::ipc::Registry registry(platform, allocator, 64);
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "scheduler.hpp"
#include "veridian/ipc/core/platform.hpp"

namespace vipc_kernel {

// wait/wake are the scheduler's address-keyed wait queues; the clock is the timer tick
// count (resolution TICK_NS); the current process is the running task's ProcessId.
class KernelPlatform final : public veridian::ipc::Platform {
public:
    constexpr KernelPlatform() = default;

    WaitResult wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                    Deadline deadline) override {
        return wait_on(word, expected, deadline);
    }
    void wake_one(std::atomic<std::uint32_t>* word) override { wake(word, /*all=*/false); }
    void wake_all(std::atomic<std::uint32_t>* word) override { wake(word, /*all=*/true); }
    std::uint64_t now_ns() override { return vipc_kernel::now_ns(); }
    ProcessId current_process() override { return current_pid(); }
};

// A first-fit allocator over a static arena, with a free list sorted by address and
// coalescing on free. Every block is a multiple of 16 bytes and 16-byte aligned, so a free
// block always has room for its list node. The core passes the size back on deallocate, so
// blocks need no header. Interrupts are off inside, so tasks may allocate concurrently.
class ArenaAllocator final : public veridian::ipc::Allocator {
public:
    static constexpr std::size_t ARENA_BYTES = 4 * 1024 * 1024;

    constexpr ArenaAllocator() = default;

    void* allocate(std::size_t bytes, std::size_t align) override;
    void deallocate(void* p, std::size_t bytes, std::size_t align) override;

    std::size_t bytes_in_use() const { return in_use_; }

private:
    struct FreeBlock {
        FreeBlock* next;
        std::size_t size;
    };

    FreeBlock* free_list_ = nullptr;
    bool initialized_ = false;
    std::size_t in_use_ = 0;
};

}  // namespace vipc_kernel
