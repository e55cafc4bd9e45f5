// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc core: basic types shared by every layer.
//
// Layer: core (freestanding). This header, like every header under core/, includes only
// freestanding headers (<cstddef>, <cstdint>, <atomic>, <type_traits>, <new>) and never
// allocates.
#pragma once

#include <cstddef>
#include <cstdint>

// Thread-safety annotations (as in Abseil's mutex.h). They document which lock guards which
// field. The build does not enforce them with clang's -Wthread-safety: the endpoint's
// operations hand their held lock to a callee that releases it, which that analysis cannot
// follow. Compilers other than clang ignore them.
#if defined(__clang__)
#define VIPC_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define VIPC_THREAD_ANNOTATION(x)
#endif
#define VIPC_GUARDED_BY(lock) VIPC_THREAD_ANNOTATION(guarded_by(lock))
#define VIPC_CAPABILITY(name) VIPC_THREAD_ANNOTATION(capability(name))
#define VIPC_ACQUIRE(...) VIPC_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define VIPC_RELEASE(...) VIPC_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define VIPC_REQUIRES(...) VIPC_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define VIPC_SCOPED_CAPABILITY VIPC_THREAD_ANNOTATION(scoped_lockable)

#define VIPC_LIKELY(x) __builtin_expect(!!(x), 1)
#define VIPC_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace veridian::ipc {

using u8 = std::uint8_t;
using u16 = std::uint16_t;
using u32 = std::uint32_t;
using u64 = std::uint64_t;
using usize = std::size_t;

// Maximum number of queued messages per endpoint (the seed's MAX_CHANNEL_QUEUE_SIZE).
// Every queue's capacity is clamped to 1..MAX_CHANNEL_QUEUE_SIZE.
inline constexpr usize MAX_CHANNEL_QUEUE_SIZE = 1024;

// A process (or, in the threads platform, whatever the caller names a process).
struct ProcessId {
    u64 value = 0;
    friend constexpr bool operator==(ProcessId, ProcessId) = default;
};

// Endpoint ids come from one counter starting at 1 and are never reused. 0 is "no endpoint".
using EndpointId = u64;

// A 64-bit word chosen by whoever derives a capability entry; stamped by the core on every
// message sent through that entry (capability.hpp). 0 = unbadged.
using Badge = u64;

// Transaction id of a call_reply round trip; 0 means "not part of a call".
using TransactionId = u64;

}  // namespace veridian::ipc
