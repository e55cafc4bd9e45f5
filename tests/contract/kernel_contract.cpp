// SPDX-License-Identifier: MIT OR Apache-2.0
// The contract suite in the kernel: every CONTRACT_TEST of behaviours.hpp, run on the
// kernel's preemptive scheduler with the core on KernelPlatform (parties are kernel tasks).
// Each prints "PASS <name>" or "FAIL <name>: <where and why>" on COM1 (kernel/run-qemu.sh
// checks for them). Called by kernel_main's first task after the kernel's own scenarios.
#define VIPC_CONTRACT_KERNEL 1

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core_adapter.hpp"
#include "kernel_platform.hpp"
#include "scheduler.hpp"
#include "serial.hpp"

namespace veridian::ipc::contract {

namespace kernel {

Case*& first_case() {
    static Case* first = nullptr;
    return first;
}
Case*& last_case() {
    static Case* last = nullptr;
    return last;
}

// A bump allocator over a static arena, reset before each case (every case's registry and
// queues are freed when it ends; the kernel's own arena is left alone).
class CaseArena final : public Allocator {
public:
    void* allocate(usize bytes, usize align) override {
        const usize at = (used_ + align - 1) & ~(align - 1);
        if (at + bytes > sizeof(bytes_)) return nullptr;
        used_ = at + bytes;
        return bytes_ + at;
    }
    void deallocate(void*, usize, usize) override {}
    void reset() { used_ = 0; }

private:
    alignas(64) unsigned char bytes_[256 * 1024];
    usize used_ = 0;
};

CaseArena g_arena;
vipc_kernel::KernelPlatform g_platform;
bool g_failed = false;
const char* g_first_failure_file = nullptr;
int g_first_failure_line = 0;
const char* g_first_failure_what = nullptr;
const char* g_first_failure_detail = nullptr;

constexpr u64 WATCHDOG_NS = 30'000'000'000ull;  // turns a hang into a FAIL line only

template <typename F>
void run_party(void* f) {
    (*static_cast<F*>(f))();
}

class KernelRunner {
public:
    Platform& platform() { return g_platform; }
    Allocator& allocator() { return g_arena; }
    bool leak_on_exit() const { return false; }

    // Each party a kernel task; returns when all ended (the scheduler's join counter).
    template <typename... F>
    void run_parties(F&&... parties) {
        std::atomic<u32>& finished = vipc_kernel::tasks_finished();
        const u32 start = finished.load(std::memory_order_acquire);
        u32 spawned = 0;
        ((vipc_kernel::spawn("contract", &run_party<std::remove_reference_t<F>>, &parties) !=
                  ProcessId{0}
              ? ++spawned
              : 0),
         ...);
        if (spawned != sizeof...(F)) report_failure(__FILE__, __LINE__, "spawn", "no task slot");
        const Deadline limit = g_platform.after_ns(WATCHDOG_NS);
        for (;;) {
            const u32 seen = finished.load(std::memory_order_acquire);
            if (seen - start >= spawned) return;
            if (g_platform.wait(&finished, seen, limit) == WaitResult::TimedOut) {
                report_failure(__FILE__, __LINE__, "run_parties", "a party did not end");
                return;
            }
        }
    }
    // Polls once per tick.
    template <typename Pred>
    bool wait_until(Pred pred) {
        const Deadline limit = g_platform.after_ns(WATCHDOG_NS);
        std::atomic<u32> never_changes{0};
        while (!pred()) {
            if (limit.expired(g_platform.now_ns())) return false;
            (void)g_platform.wait(&never_changes, 0, g_platform.after_ns(vipc_kernel::TICK_NS));
        }
        return true;
    }
};

}  // namespace kernel

class KernelAdapter : public CoreAdapter<kernel::KernelRunner> {
public:
    explicit KernelAdapter(kernel::KernelRunner& r) : CoreAdapter<kernel::KernelRunner>(r) {}
};

void report_failure(const char* file, int line, const char* what, const char* detail) {
    if (!kernel::g_failed) {
        kernel::g_first_failure_file = file;
        kernel::g_first_failure_line = line;
        kernel::g_first_failure_what = what;
        kernel::g_first_failure_detail = detail;
    }
    kernel::g_failed = true;
}

namespace kernel {

void run_case(void (*body)(KernelAdapter&)) {
    g_arena.reset();
    g_failed = false;
    KernelRunner runner;
    KernelAdapter a(runner);
    body(a);
}

}  // namespace kernel

}  // namespace veridian::ipc::contract

#include "behaviours.hpp"

namespace vipc_kernel {

// Runs every registered contract case; true when all passed.
bool run_contract_cases() {
    namespace k = veridian::ipc::contract::kernel;
    bool all_passed = true;
    std::uint32_t count = 0;
    for (k::Case* c = k::first_case(); c != nullptr; c = c->next) {
        c->run();
        ++count;
        if (k::g_failed) {
            all_passed = false;
            kprint("FAIL ", c->name, ": ", k::g_first_failure_file, ":", k::g_first_failure_line,
                   ": ", k::g_first_failure_what, ": ", k::g_first_failure_detail, "\n");
        } else {
            kprint("PASS ", c->name, "\n");
        }
    }
    kprint("contract: ", count, " behaviours of the contract suite run in the kernel\n");
    return all_passed;
}

}  // namespace vipc_kernel
