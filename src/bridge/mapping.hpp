// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc bridge: how endpoints, messages, deadlines and errors map onto NATS.
//
// Layer: bridge (hosted). Pure functions, no NATS calls: the mapping that docs/BRIDGE.md
// describes, in one place, so that both directions of the bridge (and the tests) agree.
//
// Subjects (PREFIX defaults to "vipc")
//   An endpoint name's components become subject tokens ("demo/echo" → "vipc.demo.echo");
//   a '.' inside a component (names allow it, NATS subjects use it as the separator) is
//   written as '~', which names never contain, so the mapping is one-to-one.
//     BASE                    calls (requests) and stream opens; exporters of one name
//                             subscribe in the queue group BASE, so each request goes to one
//     BASE.%s.<exporter id>   one exporter's streams of one-way messages (ordered)
//     BASE.%p.<exporter id>   that exporter's liveness probe (answers at once)
//   '%' never occurs in a name's subject either, so no name can reach these.
//
// Headers (NATS message headers; values are ASCII). Calls carry none: headers cost a few
// microseconds per message to build and to parse, a fifth of a NATS round trip.
//   Vipc-Op           "open" on a stream-open request; absent on a call
//   Vipc-Stream       on "open": the stream id (16 hex digits)
//   Vipc-Credit       on "open": the subject the exporter publishes credit to
//   Vipc-Window       on "open" and its reply: the credit window, in messages
//   Vipc-Stream-Subject  on the reply to "open": where the stream's frames go
//   Vipc-Error        on a failed call's reply: the IpcError's name ("Timeout")
//   Vipc-Detail       with Vipc-Error: the remote side's one-line detail
//
// Bodies (little-endian, fixed layout; see encode_record)
//   A call's request: u64 the time the call may take, a duration in nanoseconds (never a
//   clock value: the hosts' clocks are unrelated), then one record. Its successful reply:
//   one record. A one-way message published to BASE without a reply subject: one record.
//   A stream frame: u64 stream id, u64 sequence number of its first record, u32 count,
//   u32 zero, then `count` records. Credit: u64 stream id, u64 messages delivered so far.
//
// Record (32-byte head, then the payload):
//   off  0 u8  kind (0 SmallMessage, 1 LargeMessage with inline bytes only, 2 a payload of
//              the runtime's payload API: opcode, flags and 0..MAX_PAYLOAD_BYTES bytes)
//   off  1 u8[3] zero
//   off  4 u32 opcode      off  8 u32 flags      off 12 u32 checksum
//   off 16 u64 capability (the application's word, carried as is)
//   off 24 u32 payload length    off 28 u32 zero
//   off 32 payload: the SmallMessage's four data words, the inline bytes, or the payload
// What cannot be encoded — a message carrying a capability (HAS_CAPABILITY) or a memory
// region (region.size != 0) — is refused before anything is sent: InvalidCapability and
// InvalidMemoryRegion, because a descriptor means nothing on another host.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc::bridge {

inline constexpr const char* DEFAULT_PREFIX = "vipc";

inline constexpr const char* HEADER_OP = "Vipc-Op";
inline constexpr const char* HEADER_STREAM = "Vipc-Stream";
inline constexpr const char* HEADER_CREDIT = "Vipc-Credit";
inline constexpr const char* HEADER_WINDOW = "Vipc-Window";
inline constexpr const char* HEADER_STREAM_SUBJECT = "Vipc-Stream-Subject";
inline constexpr const char* HEADER_ERROR = "Vipc-Error";
inline constexpr const char* HEADER_DETAIL = "Vipc-Detail";
inline constexpr const char* OP_OPEN = "open";

inline constexpr usize CALL_HEAD_BYTES = 8;
inline constexpr usize RECORD_HEAD_BYTES = 32;
inline constexpr usize FRAME_HEAD_BYTES = 24;
inline constexpr usize CREDIT_BYTES = 16;
// The largest record today: a LargeMessage with 64 inline bytes.
inline constexpr usize MAX_RECORD_BYTES = RECORD_HEAD_BYTES + LARGE_MESSAGE_INLINE_BYTES;

// The largest payload record (the runtime's hard cap on an endpoint's inline payload).
inline constexpr usize MAX_PAYLOAD_BYTES = 65536;

enum class RecordKind : u8 { Small = 0, LargeInline = 1, Payload = 2 };

// Ok, or InvalidMessage for a prefix that is not tokens of [A-Za-z0-9_-] separated by '.'.
Result<void> validate_prefix(std::string_view prefix);
// PREFIX.<name as tokens> (see above). Precondition: validate_name(name), validate_prefix.
std::string base_subject(std::string_view prefix, std::string_view name);
std::string stream_subject(std::string_view base, std::string_view exporter_id);
std::string probe_subject(std::string_view base, std::string_view exporter_id);

// Ok, or the error a message that cannot cross hosts gets (InvalidCapability,
// InvalidMemoryRegion, MessageTooLarge), with *why set to a one-line reason.
Result<void> check_crossable(const Message& msg, std::string* why);

// Appends msg's record to out. Precondition: check_crossable(msg).
void encode_record(const Message& msg, std::vector<u8>& out);
usize record_size(const Message& msg);
// Decodes one record from the front of `in`; on success advances *used by its size.
// InvalidMessage (with *why) for anything malformed: unknown kind, short input, a payload
// longer than the kind allows, non-zero padding.
Result<Message> decode_record(std::span<const u8> in, usize* used, std::string* why);

// A payload record (kind 2).
void encode_payload_record(u32 opcode, u32 flags, std::span<const u8> payload,
                           std::vector<u8>& out);

// Any record: a Message (kinds 0 and 1) or a payload (kind 2, `payload` pointing into `in`).
struct Record {
    RecordKind kind = RecordKind::Small;
    Message message;
    u32 opcode = 0;
    u32 flags = 0;
    std::span<const u8> payload;
};
Result<Record> decode_any_record(std::span<const u8> in, usize* used, std::string* why);

// A call request's head: the duration it may take.
void encode_call_head(u64 timeout_ns, std::vector<u8>& out);
std::optional<u64> decode_call_head(std::span<const u8> in);

struct FrameHead {
    u64 stream_id = 0;
    u64 first_seq = 0;
    u32 count = 0;
};
void encode_frame_head(const FrameHead& head, std::vector<u8>& out);
std::optional<FrameHead> decode_frame_head(std::span<const u8> in);

struct Credit {
    u64 stream_id = 0;
    u64 delivered = 0;  // messages of the stream delivered to the local endpoint so far
};
void encode_credit(const Credit& credit, u8 (&out)[CREDIT_BYTES]);
std::optional<Credit> decode_credit(std::span<const u8> in);

// The error kind named `name` ("Timeout"), if it is one.
std::optional<IpcError> error_from_name(std::string_view name);
// A decimal u64, nothing else.
std::optional<u64> parse_decimal(std::string_view text);
std::string hex64(u64 v);
std::optional<u64> parse_hex64(std::string_view text);

}  // namespace veridian::ipc::bridge
