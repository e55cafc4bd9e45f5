// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime, internal: the token buckets behind RateLimit.
//
// Layer: posix (hosted). Not installed. One bucket per limited quantity (messages, bytes) of a
// connection's sending side; its owner serializes callers (the producer lock).
#pragma once

#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc::posix::detail {

// Holds up to `burst` tokens and gains `rate` per second. A take of more than `burst` is
// allowed once the bucket is full (and empties it), so no message is too large to ever pass.
class TokenBucket {
public:
    TokenBucket() = default;
    TokenBucket(u64 rate_per_second, u64 burst, u64 now)
        : rate_(static_cast<double>(rate_per_second)),
          burst_(static_cast<double>(burst != 0 ? burst : rate_per_second)),
          tokens_(burst_),
          last_ns_(now) {}

    bool enabled() const { return rate_ > 0; }

    // Nanoseconds until `amount` can be taken (0: now).
    u64 wait_ns(u64 amount, u64 now) {
        refill(now);
        const double need = needed(amount);
        if (tokens_ >= need) return 0;
        return static_cast<u64>((need - tokens_) / rate_ * 1e9) + 1;
    }
    // Precondition: wait_ns(amount, now) == 0.
    void take(u64 amount) { tokens_ -= needed(amount); }

private:
    double needed(u64 amount) const {
        const double a = static_cast<double>(amount);
        return a > burst_ ? burst_ : a;
    }
    void refill(u64 now) {
        if (now <= last_ns_) return;
        tokens_ += static_cast<double>(now - last_ns_) * rate_ / 1e9;
        if (tokens_ > burst_) tokens_ = burst_;
        last_ns_ = now;
    }

    double rate_ = 0;
    double burst_ = 0;
    double tokens_ = 0;
    u64 last_ns_ = 0;
};

}  // namespace veridian::ipc::posix::detail
