// SPDX-License-Identifier: MIT OR Apache-2.0
// Opcodes the posix tests and vipc_test_peer agree on.
#pragma once

#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc::posix::test {
inline constexpr u32 OP_DATA = 1;         // a plain message
inline constexpr u32 OP_CALL = 2;         // a call: the echo server answers data[0] + 1
inline constexpr u32 OP_SEND_BACK = 3;    // the echo server sends it back with send_sync
inline constexpr u32 OP_HOLD = 4;         // the echo server takes it and never answers
inline constexpr u32 OP_EXIT = 5;         // the echo server exits
inline constexpr u32 OP_REGION = 6;       // region-echo: inspect the region (or inline bytes)
inline constexpr u32 OP_REGION_BACK = 7;  // region-echo: reply with a new region of data[0] bytes
inline constexpr u32 OP_GIVE_CAP = 9;     // cap-owner: reply carrying its minted capability
inline constexpr u32 OP_REVOKE = 10;      // cap-owner: revoke it; reply data[0] = revoke time (ns)
inline constexpr u32 OP_COUNT = 8;        // region-echo: how many regions were taken so far

// What region-echo reports about an OP_REGION request (a small reply's data[2] bits).
inline constexpr u64 REPORT_WRITABLE = 1u << 16;       // the mapping it got is writable
inline constexpr u64 REPORT_WRITE_REFUSED = 1u << 17;  // no way found to write a read-only one
// Regions up to this size are checksummed whole by region-echo (data[3]).
inline constexpr u64 REPORT_CHECKSUM_LIMIT = 1u << 20;
}  // namespace veridian::ipc::posix::test
