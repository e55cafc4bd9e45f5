// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: a reply that carries an error instead of an answer.
//
// Layer: posix (hosted). Not installed. Server::reply_error sends it; the caller's call()
// (and take_reply) returns the error it carries. On the wire it is a SmallMessage with
// IS_REPLY and ERROR_REPLY set (a bit of the runtime's low 16 flag bits, which applications
// do not use), opcode 0 and data[0] = the error's code. A code that is not an IpcError's
// (from a corrupt or hostile server) gives InvalidMessage.
#pragma once

#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/message.hpp"

namespace veridian::ipc::posix::detail {

inline constexpr u32 ERROR_REPLY = 1u << 15;

inline Message error_reply_message(IpcError error) {
    Message m = Message::small(0, 0);
    m.set_flags(ERROR_REPLY);
    m.small_message().data[0] = static_cast<u64>(static_cast<long long>(error_code(error)));
    return m;
}

// Ok for an ordinary reply; the error an error reply carries otherwise.
inline Result<void> error_in_reply(const Message& reply) {
    if ((reply.flags() & ERROR_REPLY) == 0) return ok();
    IpcError e = IpcError::InvalidMessage;
    if (!reply.is_small()) return e;
    const auto code = static_cast<long long>(reply.small_message().data[0]);
    if (code < -IPC_ERROR_KIND_COUNT || code > -1 || !error_from_code(static_cast<int>(code), &e)) {
        return IpcError::InvalidMessage;
    }
    return e;
}

}  // namespace veridian::ipc::posix::detail
