// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: a reply that carries an error instead of an answer.
//
// Layer: posix (hosted). Not installed. Server::reply_error sends it; the caller's call()
// (and take_reply) returns the error it carries. On the wire it is a message with IS_REPLY
// and ERROR_REPLY set (a bit of the runtime's low 16 flag bits, which applications do not
// use) and opcode 0: without a detail a SmallMessage with data[0] = the error's code; with
// one a LargeMessage whose inline bytes are the code (8 bytes, little-endian two's
// complement) and then up to ERROR_DETAIL_MAX bytes of detail. A code that is not an
// IpcError's (from a corrupt or hostile server) gives InvalidMessage; a detail's control
// characters become '?' (it ends up in last_error_detail(), and on terminals).
#pragma once

#include <cstring>
#include <string>
#include <string_view>

#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/message.hpp"

namespace veridian::ipc::posix::detail {

inline constexpr u32 ERROR_REPLY = 1u << 15;
inline constexpr usize ERROR_DETAIL_MAX = LARGE_MESSAGE_INLINE_BYTES - 8;

inline Message error_reply_message(IpcError error, std::string_view detail = {}) {
    const auto code = static_cast<long long>(error_code(error));
    if (detail.empty()) {
        Message m = Message::small(0, 0);
        m.set_flags(ERROR_REPLY);
        m.small_message().data[0] = static_cast<u64>(code);
        return m;
    }
    LargeMessage l{};
    l.header.flags = ERROR_REPLY;
    const u64 wire = static_cast<u64>(code);
    std::memcpy(l.inline_data, &wire, 8);
    const usize n = detail.size() < ERROR_DETAIL_MAX ? detail.size() : ERROR_DETAIL_MAX;
    std::memcpy(l.inline_data + 8, detail.data(), n);
    l.header.total_size = 8 + n;
    return Message(l);
}

// Ok for an ordinary reply; the error an error reply carries otherwise (its detail, if it
// has one, in *detail).
inline Result<void> error_in_reply(const Message& reply, std::string* detail = nullptr) {
    if ((reply.flags() & ERROR_REPLY) == 0) return ok();
    u64 wire = 0;
    if (reply.is_small()) {
        wire = reply.small_message().data[0];
    } else {
        const LargeMessage& l = reply.large_message();
        if (l.header.total_size < 8 || l.header.total_size > LARGE_MESSAGE_INLINE_BYTES ||
            l.region.size != 0) {
            return IpcError::InvalidMessage;
        }
        std::memcpy(&wire, l.inline_data, 8);
        if (detail != nullptr) {
            detail->assign(reinterpret_cast<const char*>(l.inline_data + 8),
                           static_cast<usize>(l.header.total_size - 8));
            for (char& c : *detail) {
                if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
            }
        }
    }
    const auto code = static_cast<long long>(wire);
    IpcError e = IpcError::InvalidMessage;
    if (code < -IPC_ERROR_KIND_COUNT || code > -1 || !error_from_code(static_cast<int>(code), &e)) {
        return IpcError::InvalidMessage;
    }
    return e;
}

}  // namespace veridian::ipc::posix::detail
