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
// On the wire a payload of up to LARGE_MESSAGE_INLINE_BYTES travels inline in a
// LargeMessage (header.total_size = its size); a larger one travels in a Region that the
// sender moves to the receiver (sealed: it cannot change after it was sent).
#pragma once

#include <string>

#include "cli.hpp"
#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/posix/region.hpp"

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

// A message to send with `opcode` and payload `p`; `*region` gets the region a payload over
// the inline maximum travels in (then send it with Transfer::Move).
veridian::ipc::Result<veridian::ipc::Message> outgoing_message(
    cli::u32 opcode, const Payload& p, veridian::ipc::posix::Region* region);

// The payload bytes a received message carries: inline bytes and, when it names a region,
// that region's bytes (taken with Region::receive). A SmallMessage's 32 data bytes.
veridian::ipc::Result<std::string> payload_of(const veridian::ipc::Message& msg);

}  // namespace vipc
