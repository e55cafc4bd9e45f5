// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc: the payload of a message, from the command line to the wire and back.
//
//   --data TEXT        the bytes of TEXT                 vipc send jobs --data 'hello'
//   --data @FILE, @FILE (positional)  the bytes of FILE  vipc send jobs @frame.bin
//   --data @-, - (positional)         the bytes of stdin  cat frame.bin | vipc send jobs -
//   --hex HEX          bytes written in hex (spaces and colons allowed)  --hex 'de ad be ef'
//   --words A,B,C,D    the four 64-bit data words of a 48-byte SmallMessage (the fast path)
// Without any of them a message is a SmallMessage of zero words.
//
// On the wire (see Via): --words travel as a 48-byte SmallMessage; bytes as a payload record
// copied into the ring up to the connection's max_inline_payload(), then in a loan from the
// sender's pool (zero copy) up to the pool's size, then in a Region that the sender moves to
// the receiver (sealed: it cannot change after it was sent). A call's request has no loan
// form (Connection::call takes a payload or a Region), so a call over the inline maximum
// travels in a Region.
#pragma once

#include <span>
#include <string>

#include "cli.hpp"
#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/posix/region.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace vipc {

// The largest payload the CLI reads (from a file or stdin) and sends.
inline constexpr veridian::ipc::u64 kMaxPayloadBytes = veridian::ipc::u64{1} << 30;

struct Payload {
    enum class Kind { Words, Bytes };
    Kind kind = Kind::Words;
    cli::u64 words[4] = {0, 0, 0, 0};
    std::string bytes;
    bool given = false;  // a payload option was used (at most one is allowed)
};

// If the current argument is a payload option (--data, --hex, --words, or a positional @FILE,
// @- or -), reads it into *p and returns true; on a bad value reports a usage error and sets
// *rc to EXIT_USAGE.
bool payload_argument(cli::Args& args, Payload* p, int* rc);

// How a message travelled: a SmallMessage or a LargeMessage with its bytes inline ("inline"),
// a payload record copied through the ring ("payload"), a loan from the sender's pool
// ("loan"), or a Region ("region").
enum class Via { Inline, Payload, Loan, Region };
const char* via_name(Via via);
// Inline, or Region when the message names a region.
Via via_of(const veridian::ipc::Message& msg);

// A Message that describes a payload message (for printing it with message_text /
// message_json): a LargeMessage with the opcode, flags and size of `info`, its sender and
// transaction id, and no bytes of its own (they are printed from the payload).
veridian::ipc::Message described(const veridian::ipc::posix::PayloadInfo& info);

inline std::span<const std::byte> as_bytes(const std::string& s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Writes `bytes` to `path` ("-" = stdout); `append` adds them to what the file holds (else
// it is truncated first). False with *error naming the file and the fix.
bool write_payload(const std::string& path, std::string_view bytes, bool append,
                   std::string* error);

// A message to send with `opcode` and payload `p`; `*region` gets the region a payload over
// LARGE_MESSAGE_INLINE_BYTES travels in (then send it with Transfer::Move), or, with
// `way` Via::Region, any payload of bytes.
veridian::ipc::Result<veridian::ipc::Message> outgoing_message(cli::u32 opcode, const Payload& p,
                                                               veridian::ipc::posix::Region* region,
                                                               Via way = Via::Inline);

// The payload bytes a received message carries: inline bytes and, when it names a region,
// that region's bytes (taken with Region::receive). A SmallMessage's 32 data bytes.
veridian::ipc::Result<std::string> payload_of(const veridian::ipc::Message& msg);

}  // namespace vipc
