// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc bridge: error replies (see remote_error.hpp).
#include "bridge/remote_error.hpp"

#include <cstring>

namespace veridian::ipc::bridge {
namespace {
thread_local std::string t_remote_detail;
}  // namespace

Message make_error_reply(IpcError error, std::string_view detail) {
    LargeMessage m{};
    m.header.opcode = ERROR_REPLY_OPCODE;
    m.header.capability = ERROR_REPLY_MAGIC | static_cast<u32>(error_code(error));
    usize n =
        detail.size() < LARGE_MESSAGE_INLINE_BYTES ? detail.size() : LARGE_MESSAGE_INLINE_BYTES;
    // Cut at a character boundary: never in the middle of a UTF-8 sequence.
    if (n < detail.size()) {
        while (n > 0 && (static_cast<unsigned char>(detail[n]) & 0xC0) == 0x80)
            --n;
    }
    std::memcpy(m.inline_data, detail.data(), n);
    m.header.total_size = n;
    return Message(m);
}

bool decode_error_reply(const Message& msg, IpcError* error, std::string* detail) {
    if (!msg.is_large() || msg.opcode() != ERROR_REPLY_OPCODE) return false;
    const LargeMessage& m = msg.large_message();
    if ((m.header.capability & ~u64{0xFFFF'FFFF}) != ERROR_REPLY_MAGIC) return false;
    const int code = static_cast<int>(static_cast<u32>(m.header.capability));
    if (!error_from_code(code, error)) return false;
    const usize n = m.header.total_size <= LARGE_MESSAGE_INLINE_BYTES
                        ? static_cast<usize>(m.header.total_size)
                        : LARGE_MESSAGE_INLINE_BYTES;
    detail->assign(reinterpret_cast<const char*>(m.inline_data), n);
    return true;
}

Result<Message> check_reply(Result<Message> result) {
    if (!result) return result;
    IpcError error{};
    std::string detail;
    if (!decode_error_reply(*result, &error, &detail)) return result;
    t_remote_detail = std::move(detail);
    return error;
}

const char* remote_error_detail() {
    return t_remote_detail.c_str();
}

}  // namespace veridian::ipc::bridge
