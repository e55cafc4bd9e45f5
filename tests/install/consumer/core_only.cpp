// SPDX-License-Identifier: MIT OR Apache-2.0
// Uses only veridian::ipc_core (the freestanding core, no posix runtime, no platforms): the
// program brings its own Platform and Allocator, as a kernel or an RTOS does.
#include <veridian/ipc/core/registry.hpp>

#include <cstdio>
#include <cstdlib>

using namespace veridian::ipc;

namespace {
class OneTaskPlatform final : public Platform {
public:
    WaitResult wait(std::atomic<u32>*, u32, Deadline) override { return WaitResult::TimedOut; }
    void wake_one(std::atomic<u32>*) override {}
    void wake_all(std::atomic<u32>*) override {}
    u64 now_ns() override { return ++ticks_; }
    ProcessId current_process() override { return ProcessId{1}; }

private:
    u64 ticks_ = 0;
};
class MallocAllocator final : public Allocator {
public:
    void* allocate(usize bytes, usize align) override {
        return std::aligned_alloc(align, (bytes + align - 1) / align * align);
    }
    void deallocate(void* p, usize, usize) override { std::free(p); }
};
}  // namespace

int main() {
    OneTaskPlatform platform;
    MallocAllocator allocator;
    Registry registry(platform, allocator);
    Result<Endpoint> endpoint = registry.create_endpoint(ProcessId{1}, 4);
    if (!endpoint || !endpoint->send_async(Message::small(0, 42))) return 1;
    Result<Message> got = endpoint->try_receive();
    if (!got || got->opcode() != 42) return 2;
    std::puts("consumer_core: the installed core alone works");
    return 0;
}
