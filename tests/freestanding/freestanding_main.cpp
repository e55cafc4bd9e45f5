// SPDX-License-Identifier: MIT OR Apache-2.0
// A freestanding program that links the core with -ffreestanding -fno-exceptions -fno-rtti
// -nostdlib and no libc at all, then uses it: it proves the core needs nothing hosted.
// On x86-64 Linux it also runs (its own _start and exit system call): exit status 0 means
// a message went through an endpoint and every check below held.
#include "veridian/ipc/core/registry.hpp"

using namespace veridian::ipc;

// The only symbols a freestanding compiler may emit calls to (it can lower copies of large
// structs to them); a kernel provides them likewise.
extern "C" void* memcpy(void* dst, const void* src, usize n) {
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    for (usize i = 0; i < n; ++i)
        d[i] = s[i];
    return dst;
}
extern "C" void* memset(void* dst, int c, usize n) {
    auto* d = static_cast<unsigned char*>(dst);
    for (usize i = 0; i < n; ++i)
        d[i] = static_cast<unsigned char>(c);
    return dst;
}
extern "C" void* memmove(void* dst, const void* src, usize n) {
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    if (d < s) {
        for (usize i = 0; i < n; ++i)
            d[i] = s[i];
    } else {
        for (usize i = n; i > 0; --i)
            d[i - 1] = s[i - 1];
    }
    return dst;
}

namespace {

// One task, no scheduler: nothing can wake a waiter, so a wait times out at once.
class SingleTaskPlatform final : public Platform {
public:
    WaitResult wait(std::atomic<u32>*, u32, Deadline) override { return WaitResult::TimedOut; }
    void wake_one(std::atomic<u32>*) override {}
    void wake_all(std::atomic<u32>*) override {}
    u64 now_ns() override { return ++ticks_; }
    ProcessId current_process() override { return ProcessId{1}; }

private:
    u64 ticks_ = 0;
};

// A bump allocator over a static arena (no heap).
class ArenaAllocator final : public Allocator {
public:
    void* allocate(usize bytes, usize align) override {
        usize at = (used_ + align - 1) & ~(align - 1);
        if (at + bytes > sizeof(arena_)) return nullptr;
        used_ = at + bytes;
        return arena_ + at;
    }
    void deallocate(void*, usize, usize) override {}

private:
    alignas(64) unsigned char arena_[1 << 20];
    usize used_ = 0;
};

int run() {
    // Locals, not globals: without a C runtime nothing runs global constructors.
    SingleTaskPlatform platform;
    ArenaAllocator allocator;
    Registry registry(platform, allocator, 8);
    Result<Endpoint> endpoint = registry.create_endpoint(ProcessId{1}, 4);
    if (!endpoint) return 1;
    if (!endpoint->send_async(Message::small(0x1234, 42))) return 2;
    Result<Message> got = endpoint->try_receive();
    if (!got || got->capability() != 0x1234 || got->opcode() != 42) return 3;
    Result<Message> timed_out = endpoint->receive_sync(platform.after_ns(10));
    if (timed_out || timed_out.error() != IpcError::Timeout) return 4;
    if (!endpoint->close()) return 5;
    if (endpoint->try_receive().error() != IpcError::EndpointNotFound) return 6;
    return 0;
}

}  // namespace

// The entry point; the stack is aligned for the C++ code it calls.
extern "C" [[noreturn]] __attribute__((force_align_arg_pointer)) void _start() {
    const long status = run();
#if defined(__x86_64__)
    asm volatile("syscall" : : "a"(60L), "D"(status) : "rcx", "r11", "memory");
#endif
    for (;;) {
    }
}
