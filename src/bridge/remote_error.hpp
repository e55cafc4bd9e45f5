// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc bridge: errors of remote calls, as the local caller of an imported name sees
// them.
//
// A local server can answer a call only with a message: the posix runtime has no way to make
// a caller's call() return an IpcError chosen by the server. So when a bridged call fails
// remotely (no exporter: EndpointNotFound; the remote deadline passed: Timeout; the remote
// endpoint refused the exporter: PermissionDenied; ...), the import bridge answers with an
// *error reply*: a LargeMessage whose opcode is ERROR_REPLY_OPCODE, whose capability word is
// ERROR_REPLY_MAGIC | the error's code (as u32), and whose inline bytes are the detail (at
// most 64 bytes, cut at a character boundary). check_reply() turns such a reply back into the
// IpcError and keeps the detail for remote_error_detail():
//
//   Result<Message> r = bridge::check_reply(conn.call(request, posix::deadline_after_ms(200)));
//   if (!r && r.error() == IpcError::EndpointNotFound) { ...  bridge::remote_error_detail() }
//
// A call that ends at the caller's own deadline returns Timeout from call() itself.
// Applications must not use ERROR_REPLY_OPCODE for their own replies.
#pragma once

#include <string>
#include <string_view>

#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::bridge {

// When the posix runtime can answer a call with an error (Server::reply_error), the import
// bridge uses it: the caller's call() then returns the remote error's kind itself, and
// posix::last_error_detail() gives the detail (its first 56 bytes, where the runtime carries
// one). Otherwise it answers with the error reply described above. check_reply() is right in
// both cases, and error_detail() gives the detail in both.
template <typename S>
concept ServerRepliesErrors = requires(S& s, const posix::Received& r) {
    s.reply_error(r, IpcError::Timeout, Deadline::never());
};
inline constexpr bool NATIVE_ERROR_REPLIES = ServerRepliesErrors<posix::Server>;

// Answers `request` on `server` with `error` (natively where the runtime can, else with an
// error reply carrying `detail`).
template <typename S>
Result<void> reply_with_error(S& server, const posix::Received& request, IpcError error,
                              std::string_view detail, Deadline deadline);

inline constexpr u32 ERROR_REPLY_OPCODE = 0xFFFF'FFF0u;
inline constexpr u64 ERROR_REPLY_MAGIC = 0x7669'7063'0000'0000u;  // "vipc" in the high half

// The error reply for `error` with `detail`.
Message make_error_reply(IpcError error, std::string_view detail);
// The error an error reply carries (and its detail in *detail), or false for any other message.
bool decode_error_reply(const Message& msg, IpcError* error, std::string* detail);
// `result`, or the error carried by an error reply in it (its detail kept for
// remote_error_detail() on this thread).
Result<Message> check_reply(Result<Message> result);
// The detail of the last error reply check_reply() turned into an error on this thread.
const char* remote_error_detail();
// The detail of the last failed bridged call on this thread, however it came back: the error
// reply's (remote_error_detail()) or the runtime's (posix::last_error_detail()).
inline const char* error_detail();

inline const char* error_detail() {
    return NATIVE_ERROR_REPLIES ? posix::last_error_detail() : remote_error_detail();
}

template <typename S>
Result<void> reply_with_error(S& server, const posix::Received& request, IpcError error,
                              std::string_view detail, Deadline deadline) {
    if constexpr (requires { server.reply_error(request, error, detail, deadline); }) {
        // The caller's call() fails with `error`, its last_error_detail() names the detail.
        return server.reply_error(request, error, detail, deadline);
    } else if constexpr (ServerRepliesErrors<S>) {
        (void)detail;
        return server.reply_error(request, error, deadline);
    } else {
        return server.reply(request, make_error_reply(error, detail), deadline);
    }
}

}  // namespace veridian::ipc::bridge
