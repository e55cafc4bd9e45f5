// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc bridge: what the bridge takes from and gives to the local endpoint, for every
// kind of message the posix runtime carries.
//
// Layer: bridge (hosted, internal). The runtime carries Messages (a SmallMessage, a
// LargeMessage with up to 64 inline bytes) and, where it has the payload API
// (Server::receive_view, Connection::call/send_sync with an opcode, flags and a span),
// payloads of any size up to the endpoint's max_inline_payload (and zero-copy loans, whose
// bytes the bridge copies: they travel as payloads, up to MAX_PAYLOAD_BYTES). These use the
// payload API when the runtime the bridge is built against has it (detected with concepts,
// so the bridge builds against either), and Messages otherwise.
#pragma once

#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::bridge {

template <typename S>
concept ServerHasViews = requires(S& s) {
    s.receive_view(Deadline::never());
    s.try_receive_view();
};

template <typename S>
concept ServerRepliesPayloads = requires(S& s, const posix::Received& r,
                                         std::span<const std::byte> p) {
    s.reply(r, u32{}, u32{}, p, Deadline::never());
};

template <typename C>
concept ConnectionCarriesPayloads = requires(C& c, std::span<const std::byte> p,
                                             std::vector<std::byte>& out) {
    c.call(u32{}, u32{}, p, out, Deadline::never());
    c.send_sync(u32{}, u32{}, p, Deadline::never());
};

inline constexpr bool RUNTIME_HAS_PAYLOADS =
    ServerHasViews<posix::Server> && ConnectionCarriesPayloads<posix::Connection>;

// One message taken from the local endpoint: a Message, or a payload (bytes copied out of
// the view, which is valid only until the next receive).
struct LocalItem {
    posix::Received request;  // request.message: the Message, or for a payload only its
                              // routing (sender, transaction id)
    bool is_payload = false;
    u32 opcode = 0;
    u32 flags = 0;
    std::vector<u8> bytes;

    bool is_call() const { return request.message.transaction_id() != 0; }
};

// The next message (blocking until `deadline`, or with Deadline::past() not at all).
template <typename S>
Result<LocalItem> take_local(S& server, Deadline deadline, bool blocking) {
    LocalItem item;
    if constexpr (ServerHasViews<S>) {
        auto in = blocking ? server.receive_view(deadline) : server.try_receive_view();
        if (!in) return in.error();
        using Kind = typename std::remove_cvref_t<decltype(*in)>::Kind;
        item.request.connection = in->info.connection;
        item.request.caller_deadline = in->info.caller_deadline;
        bool loan = false;
        if constexpr (requires { Kind::Loan; }) loan = in->kind == Kind::Loan;
        if (in->kind == Kind::Payload || loan) {
            item.is_payload = true;
            item.opcode = in->info.opcode;
            item.flags = in->info.flags;
            item.request.message.set_sender(in->info.sender);
            item.request.message.set_transaction_id(in->info.transaction_id);
            item.bytes.resize(in->payload.size());
            if (!in->payload.empty()) {
                std::memcpy(item.bytes.data(), in->payload.data(), in->payload.size());
            }
            // A zero-copy loan cannot cross hosts: its bytes travel as a payload, and the
            // chunk goes back to the sender's pool at once.
            if constexpr (requires { server.release(*in); }) {
                if (loan) (void)server.release(*in);
            }
        } else {
            item.request.message = in->message;
        }
    } else {
        (void)deadline;
        auto r = blocking ? server.receive_sync(deadline) : server.try_receive();
        if (!r) return r.error();
        item.request = *r;
    }
    return item;
}

// Answers a call with a payload. InvalidMessage when this runtime has no payloads.
template <typename S>
Result<void> reply_payload(S& server, const posix::Received& request, u32 opcode, u32 flags,
                           std::span<const u8> bytes, Deadline deadline) {
    if constexpr (ServerRepliesPayloads<S>) {
        return server.reply(request, opcode, flags, std::as_bytes(bytes), deadline);
    } else {
        (void)server, (void)request, (void)opcode, (void)flags, (void)bytes, (void)deadline;
        return IpcError::InvalidMessage;
    }
}

// A call with a payload; the reply's payload in *reply_bytes and its opcode/flags in *opcode,
// *flags. MessageTooLarge when this runtime has no payloads.
template <typename C>
Result<void> call_payload(C& c, u32 opcode, u32 flags, std::span<const u8> bytes,
                          std::vector<std::byte>& reply_bytes, u32* reply_opcode, u32* reply_flags,
                          Deadline deadline) {
    if constexpr (ConnectionCarriesPayloads<C>) {
        auto r = c.call(opcode, flags, std::as_bytes(bytes), reply_bytes, deadline);
        if (!r) return r.error();
        *reply_opcode = r->opcode;
        *reply_flags = r->flags;
        return ok();
    } else {
        (void)c, (void)opcode, (void)flags, (void)bytes, (void)reply_bytes, (void)reply_opcode,
            (void)reply_flags, (void)deadline;
        return IpcError::MessageTooLarge;
    }
}

template <typename C>
Result<void> send_payload(C& c, u32 opcode, u32 flags, std::span<const u8> bytes,
                          Deadline deadline) {
    if constexpr (ConnectionCarriesPayloads<C>) {
        if constexpr (requires(usize n) {
                          c.loan(n, deadline);
                          c.max_inline_payload();
                      }) {
            // More than the endpoint takes inline: through a loan of this side's pool
            // (waiting for space until the deadline).
            if (bytes.size() > c.max_inline_payload()) {
                auto loan = c.loan(bytes.size(), deadline);
                if (!loan) return loan.error();
                std::memcpy(loan->bytes.data(), bytes.data(), bytes.size());
                Result<void> sent = c.send_loan(*loan, bytes.size(), opcode, flags, deadline);
                if (!sent) (void)c.cancel_loan(*loan);
                return sent;
            }
        }
        return c.send_sync(opcode, flags, std::as_bytes(bytes), deadline);
    } else {
        (void)c, (void)opcode, (void)flags, (void)bytes, (void)deadline;
        return IpcError::MessageTooLarge;
    }
}

}  // namespace veridian::ipc::bridge
