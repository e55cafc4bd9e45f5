// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc platform, internal: SharedWords over the simulator (for tests).
//
// Layer: platform (hosted). Not installed. Two simulated processes "share a page" by using
// the same buffer: the sim keys waits by address, as shared futexes do. Every call is a
// switch point of the sim (wait, wake, now_ns, yield), so the seeded scheduler interleaves the
// ring protocol at every step a real machine could. Tasks run one at a time, so every store is
// visible to the next task: heavy_barrier() is a switch point only, and publish_order() is
// release (the fast sides then rely on the barrier, as on Linux with membarrier).
#pragma once

#include "platform/shared_words.hpp"
#include "veridian/ipc/platform/sim.hpp"

namespace veridian::ipc::platform {

class SimSharedWords final : public SharedWords {
public:
    explicit SimSharedWords(SimPlatform& sim) : SharedWords(true), sim_(sim) {}

    WaitResult wait(const std::atomic<u32>* word, u32 expected, Deadline deadline) override {
        // The sim only uses the address as a key and reads the word: no write through it.
        return sim_.wait(const_cast<std::atomic<u32>*>(word), expected, deadline);
    }
    void wake_all(const std::atomic<u32>* word) override {
        sim_.wake_all(const_cast<std::atomic<u32>*>(word));
    }
    u64 now_ns() override { return sim_.now_ns(); }
    void heavy_barrier() override { sim_.yield(); }
    u32 cpu_hint() override { return 0; }
    bool single_cpu() override { return false; }
    void yield() override { sim_.yield(); }
    void relax() override { sim_.yield(); }

private:
    SimPlatform& sim_;
};

}  // namespace veridian::ipc::platform
