// Opcodes the posix tests and vipc_test_peer agree on.
#pragma once

#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc::posix::test {
inline constexpr u32 OP_DATA = 1;       // a plain message
inline constexpr u32 OP_CALL = 2;       // a call: the echo server answers data[0] + 1
inline constexpr u32 OP_SEND_BACK = 3;  // the echo server sends it back with send_sync
inline constexpr u32 OP_HOLD = 4;       // the echo server takes it and never answers
inline constexpr u32 OP_EXIT = 5;       // the echo server exits
}  // namespace veridian::ipc::posix::test
