// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: counting the threads parked in a wait, for EndpointStats.
//
// A party counts as parked (EndpointStats::waiting_senders, waiting_receivers,
// waiting_callers) exactly while it is inside a wait that only the peer, a close, the peer's
// death or its deadline can end: waiting for a contended ring side's lock, or in the ring's
// or the doorbell's wait. So a test of "close wakes blocked parties" can first wait until
// they are observably parked instead of sleeping. The uncontended paths count nothing.
#pragma once

#include <atomic>

#include "posix/parking.hpp"

namespace veridian::ipc::posix::detail {

class ParkedScope {
public:
    // SYNC POINT: the increment is seq_cst so that a reader of the count that then closes
    // is ordered after it: the parked thread's next check (after its wait) sees the close.
    explicit ParkedScope(std::atomic<u32>& count) : count_(count) {
        count_.fetch_add(1, std::memory_order_seq_cst);
    }
    ~ParkedScope() { count_.fetch_sub(1, std::memory_order_seq_cst); }
    ParkedScope(const ParkedScope&) = delete;
    ParkedScope& operator=(const ParkedScope&) = delete;

private:
    std::atomic<u32>& count_;
};

// DeadlineMutex::lock_for, counting the caller as parked while it waits for a contended lock
// in a blocking operation.
inline bool lock_counting_parked(DeadlineMutex& m, Blocking blocking, Deadline deadline,
                                 std::atomic<u32>& parked)
    VIPC_THREAD_ANNOTATION(no_thread_safety_analysis) {
    if (blocking == Blocking::No) return m.lock_for(Blocking::No, deadline);
    if (m.lock_until(Deadline::past())) return true;
    ParkedScope scope(parked);
    return m.lock_for(Blocking::Yes, deadline);
}

}  // namespace veridian::ipc::posix::detail
