// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime, internal: the byte ring of variable-length records (one
// direction of one connection), and the record codec.
//
// Layer: posix (hosted). Not installed; included by src/posix, the fuzz targets and the
// simulator's ring scenarios.
//
// Layout, in two memfds so that the rights to write each half can be given separately (see
// runtime.hpp, "Connections and capabilities"):
//
//   data memfd (written by the producer only)        ctl memfd (written by the consumer only)
//   +0    RingDataHeader (128 bytes)                  +0    RingCtl (128 bytes)
//           tail  futex word of data waits,                 head  lines consumed, every record
//                 published lazily
//   +64     waiting_for_space, closed, cpu            +64     waiting_for_data, closed, cpu,
//   +128  ring_lines lines of 64 bytes: records                space_wake (futex word of
//                                                              space waits), released
//                                                     +128  the loan pool's return queue
//
// A record starts on a line and covers `lines` whole lines; its first 16 bytes are the
// RecordHeader, whose first word is the record's sequence word:
//
//   RecordHeader  seq (u32) | kind (u8) | attachment (u8) | lines (u16) | txid (u64)
//   Small    1 line:  header + SmallMessage (48 bytes): exactly one cache line
//   Large    3 lines: header + LargeMessage (120 bytes) + remaining_ns (u64, at byte 136 of
//                     the record: in the last line's 56 spare bytes)
//   Payload  header + PayloadHead (32 bytes, remaining_ns in its last word) + length bytes:
//                     lines = ceil((48 + length) / 64)
//   Loan     1 line:  header + LoanDescriptor (40 bytes): a chunk of the producer's pool
//   Padding  from its line to the ring's end: the next record starts at line 0
//
// The protocol (indexes are free-running u32 line counts; line i is at i & (ring_lines - 1)):
//   producer, publishing a record at its private tail t (n lines, after p lines of padding
//   when the record would not fit before the ring's end):
//     (P1) space: n + p + 1 lines free and fewer than `depth` records in flight, judged from
//          the private copy of the head; only when that says full, re-read the shared head
//          (the cached opposite index: Lamport/Folly)
//     (P2) write the body and the header, except the sequence words
//     (P3) clear the sequence word of line t + p + n (where the next record will start), so
//          that the consumer never mistakes what an older lap left there for a record
//     (P4) with padding: store the record's sequence word (relaxed) at t + p
//     (P5) store the first sequence word, SEQ(t), with publish_order(): the record exists
//     (P6) if the consumer announced it sleeps (waiting_for_data): store the tail, wake it
//          (parking.hpp, (a)-(c)); otherwise the tail is stored only every quarter ring,
//          for statistics: the consumer never needs it to find a record
//   consumer, at its private head h:
//     (C1) load the sequence word of line h (acquire). 0 → empty. SEQ(h) → a record. Any
//          other value → InvalidMessage (the producer broke the protocol).
//          SYNC POINT: acquire of (C1) pairs with the release (or seq_cst) of (P5).
//     (C2) copy the header out once, check it (kind, lines, length against the private
//          geometry); Padding → h += lines, back to (C1)
//     (C3) use the body in place (a view) or copy it out
//     (C4) finish: h += lines; store the head (publish_order()); if the producer announced
//          it waits for space, bump space_wake and wake it
//   closing: a side stores its `closed` word, then changes the futex word the other side
//     sleeps on (the producer bumps tail, the consumer space_wake) and wakes it: a peer
//     between its last check and its sleep then does not sleep (the futex compares the word).
//   So a 48-byte message moves one cache line from producer to consumer, and the consumer
//   polls the very line that carries it (the FastForward / Vyukov-queue technique); the
//   shared head and tail sit on their own lines, read only when a side thinks the ring is
//   full, or sleeps.
//
// The caller's remaining time (remaining_ns): a call record (txid != 0, written by a client)
// carries how long its caller will still wait, as a duration in nanoseconds computed by the
// producer when it writes the record (0 = no deadline; a deadline already past is 1). A
// duration, never a clock value: it means the same on any clock (nothing assumes the two
// sides share one; the NATS bridge carries it on between hosts), and the consumer anchors it
// to its own clock when it takes the record. Where it lives costs no line and no store
// beyond the record's own lines: in a Payload record, PayloadHead's last word (written as 0
// by every record that is not a call with a deadline); in a Large record, the first 8 of the
// 56 spare bytes of its last line. A Small record has no room for it (its 48-byte message
// fills its one line, and the fast path stays one cache line per direction), so it carries
// none; nor does a Loan record (a loan is not a call's request). The consumer treats it as a
// hint (see runtime.hpp, "Deadlines of calls"): it bounds nothing the consumer does, so a
// false one harms only the caller that wrote it.
//
// Trust: a side trusts only the words it writes. The consumer checks every header against
// the geometry it keeps privately (a record never crosses the ring's end, never exceeds the
// largest record, its length matches its lines); a producer that scribbles on a record after
// publishing it can only corrupt its own messages. The producer checks the head it reads
// moved forward by at most what it published.
#pragma once

#include <atomic>
#include <cstring>
#include <span>
#include <vector>

#include "platform/shared_words.hpp"
#include "posix/os.hpp"
#include "posix/parking.hpp"
#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/core/types.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::posix::detail {

using platform::SharedWords;

inline constexpr u32 LINE_BYTES = 64;
inline constexpr u32 RING_HEADER_BYTES = 128;

enum class RecordKind : u8 { Small = 1, Large = 2, Payload = 3, Loan = 4, Padding = 5 };

// Whether the record's attachments (a region's descriptor, capabilities) wait on the
// connection's socket. Set by the producer's library only when it sent them there, so a
// receiver looks at the socket only then: a message whose flags merely say HAS_CAPABILITY
// costs no system call (it is delivered with the flag cleared).
enum class Attachment : u8 { None = 0, OnSocket = 1 };

struct RecordHeader {
    std::atomic<u32> seq;  // SEQ(line index): the record is there; 0: nothing yet
    u8 kind;               // RecordKind
    u8 attachment;         // Attachment
    u16 lines;
    u64 txid;  // transaction id of a call or a reply, 0 otherwise
};
static_assert(sizeof(RecordHeader) == 16);
static_assert(sizeof(RecordHeader) + sizeof(SmallMessage) == LINE_BYTES);

// The sequence word of a record starting at line index i: never 0.
inline constexpr u32 seq_for(u32 line_index) {
    return (line_index & 0x7FFF'FFFFu) | 0x8000'0000u;
}

struct PayloadHead {
    u64 capability;
    u32 opcode;
    u32 flags;
    u32 length;  // payload bytes that follow
    u32 reserved0;
    u64 remaining_ns;  // a call's remaining time (see above); 0 otherwise
};
static_assert(sizeof(PayloadHead) == 32);
inline constexpr u32 PAYLOAD_OFFSET = sizeof(RecordHeader) + sizeof(PayloadHead);  // 48

struct LoanDescriptor {
    u64 capability;
    u32 opcode;
    u32 flags;
    u64 offset;  // in the producer's pool
    u64 length;
    u32 slot;        // the producer's loan slot
    u32 generation;  // of that slot
};
static_assert(sizeof(LoanDescriptor) == 40);
static_assert(sizeof(RecordHeader) + sizeof(LoanDescriptor) <= LINE_BYTES);

inline constexpr u32 lines_for_bytes(u64 bytes) {
    return static_cast<u32>((bytes + LINE_BYTES - 1) / LINE_BYTES);
}
inline constexpr u32 lines_for_payload(u32 length) {
    return lines_for_bytes(u64{PAYLOAD_OFFSET} + length);
}
// Where a Large record keeps remaining_ns: right after its LargeMessage, in its last line.
inline constexpr u32 LARGE_REMAINING_OFFSET = sizeof(RecordHeader) + sizeof(LargeMessage);  // 136
inline constexpr u32 LARGE_LINES = lines_for_bytes(u64{LARGE_REMAINING_OFFSET} + sizeof(u64));
static_assert(LARGE_LINES == 3 && LARGE_REMAINING_OFFSET % alignof(u64) == 0);

// Each header is two cache lines: the busy index alone on the first, the flags (written only
// around sleeps and closes) on the second.
struct alignas(64) RingDataHeader {
    std::atomic<u32> tail;  // lines published (lazily, see (P6)); futex word of data waits
    u32 reserved0[15];
    std::atomic<u32> waiting_for_space;  // 1 while the producer sleeps on ctl.head or a loan
    std::atomic<u32> closed;             // 1 once the producer side closed (2: revoked)
    std::atomic<u32> cpu;                // CPU the producer last ran on, + 1 (0 = unknown)
    u32 reserved1[13];
};
static_assert(sizeof(RingDataHeader) == RING_HEADER_BYTES);

struct alignas(64) RingCtl {
    std::atomic<u32> head;  // lines consumed; futex word of space (and loan) waits
    u32 reserved0[15];
    std::atomic<u32> waiting_for_data;  // 1 while the consumer sleeps on data.tail
    std::atomic<u32> closed;            // 1 once the consumer side closed (2: revoked)
    std::atomic<u32> cpu;               // CPU the consumer last ran on, + 1 (0 = unknown)
    std::atomic<u32> space_wake;        // futex word of space waits: bumped by a waking consumer
    std::atomic<u32> released;          // loan returns written to the return queue
    std::atomic<u32> poll_armed;        // 1 once the consumer polls (see pollable.hpp): s2c only
    // c2s only, written by the server (ready_set.hpp): 1 while the connection is armed (its
    // client marks its slot after publishing), 0 while the server polls it; and its slot.
    std::atomic<u32> ready_arm;
    u32 ready_slot;
    u32 reserved1[8];
};
static_assert(sizeof(RingCtl) == RING_HEADER_BYTES);

// The geometry of a ring, fixed at connect time and kept privately.
struct RingGeometry {
    u32 depth = 0;               // records in flight at most
    u32 max_inline_payload = 0;  // bytes
    u32 ring_lines = 0;          // a power of two
    u32 line_mask = 0;
    u32 max_record_lines = 0;  // the largest record (not padding)
    u32 return_slots = 0;      // loan return queue entries (a power of two, or 0)
    usize data_bytes = 0;      // size of the data memfd
    usize ctl_bytes = 0;       // size of the ctl memfd

    // depth: a power of two in 1..MAX_CHANNEL_QUEUE_SIZE; max_inline_payload <=
    // MAX_INLINE_PAYLOAD_LIMIT; return_slots: 0 or a power of two <= MAX_LOAN_SLOTS.
    // InvalidMessage otherwise.
    static Result<RingGeometry> make(u32 depth, u32 max_inline_payload, u32 return_slots);
};

// Rounds a requested depth up to a power of two, clamped to 1..MAX_CHANNEL_QUEUE_SIZE.
u32 normalize_depth(u32 requested);

inline constexpr u32 MAX_LOAN_SLOTS = 4096;

// A record taken by the consumer: the checked copy of its header and where its body is.
struct RecordView {
    RecordKind kind = RecordKind::Small;
    u32 lines = 0;
    u64 txid = 0;
    Attachment attachment = Attachment::None;
    const u8* body = nullptr;  // in the ring: the bytes after the RecordHeader
    // Payload: the checked head and the payload bytes (in the ring).
    PayloadHead payload_head{};
    const std::byte* payload = nullptr;
    // Large and Payload: the producer's remaining_ns, copied out (0: none; Small, Loan: 0).
    u64 remaining_ns = 0;
};

// remaining_ns for a record written now with `deadline` (never: 0; past: 1).
inline u64 remaining_ns_for(Deadline deadline, u64 now_ns) {
    if (deadline.is_never()) return 0;
    return deadline.ns() > now_ns ? deadline.ns() - now_ns : 1;
}

// The producer half of a ring. Not thread-safe: its owner serializes callers.
class RecordProducer {
public:
    RecordProducer() = default;
    RecordProducer(SharedWords& words, const RingGeometry& geometry, RingDataHeader* data,
                   const RingCtl* ctl);

    bool valid() const { return data_ != nullptr; }
    const RingGeometry& geometry() const { return geometry_; }
    RingDataHeader* data() const { return data_; }
    const RingCtl* ctl() const { return ctl_; }

    // Whether a record of `lines` lines fits now (re-reading the head only when the private
    // copy says no). InvalidMessage if the head is corrupt.
    Result<bool> fits(u32 lines);
    // The publishers: ChannelFull when there is no space.
    Result<void> push_small(const SmallMessage& msg, u64 txid,
                            Attachment attachment = Attachment::None);
    // remaining_ns: see above (0 for anything but a call).
    Result<void> push_large(const LargeMessage& msg, u64 txid,
                            Attachment attachment = Attachment::None, u64 remaining_ns = 0);
    // Precondition: payload.size() <= geometry().max_inline_payload.
    Result<void> push_payload(u64 capability, u32 opcode, u32 flags,
                              std::span<const std::byte> payload, u64 txid, u64 remaining_ns = 0);
    Result<void> push_loan(const LoanDescriptor& loan, u64 txid);
    // (P6) on demand: store the tail (changing the futex word) and wake it.
    void publish_tail() {
        data_->tail.store(tail_, std::memory_order_seq_cst);
        words_->wake_all(&data_->tail);
    }
    // Records in flight (as of the last head read) and lines used.
    u32 queued() const { return sent_ - acked_; }

private:
    Result<void> refresh_head();
    // (P1)-(P2) start: the line index for a record of n lines, after padding if needed.
    Result<u8*> begin(u32 n);
    void publish(u32 n);  // (P3)-(P6)
    RecordHeader* line(u32 index) const {
        return reinterpret_cast<RecordHeader*>(reinterpret_cast<u8*>(data_) + RING_HEADER_BYTES +
                                               usize{index & geometry_.line_mask} * LINE_BYTES);
    }

    SharedWords* words_ = nullptr;
    RingGeometry geometry_{};
    RingDataHeader* data_ = nullptr;
    const RingCtl* ctl_ = nullptr;
    u32 tail_ = 0;       // private: the only truth about our tail (lines)
    u32 head_seen_ = 0;  // the last head we checked (lines)
    u32 pad_ = 0;        // padding lines before the record begin() placed
    u32 stats_due_ = 0;  // lines until the next lazy tail store
    // The end (in lines) of each record in flight, to count records against `depth`.
    std::vector<u32> ends_;
    u32 sent_ = 0;
    u32 acked_ = 0;
};

// The consumer half of a ring. Not thread-safe: its owner serializes callers.
class RecordConsumer {
public:
    RecordConsumer() = default;
    RecordConsumer(SharedWords& words, const RingGeometry& geometry, const RingDataHeader* data,
                   RingCtl* ctl)
        : words_(&words), geometry_(geometry), data_(data), ctl_(ctl) {}

    bool valid() const { return data_ != nullptr; }
    const RingGeometry& geometry() const { return geometry_; }
    const RingDataHeader* data() const { return data_; }
    RingCtl* ctl() const { return ctl_; }

    // Whether a record is there (skipping nothing). InvalidMessage for a bad sequence word.
    Result<bool> ready() const;
    // (C1)-(C2): the next record, checked; ChannelEmpty when there is none. The record
    // stays in the ring until finish().
    Result<RecordView> peek();
    // (C4) for the record peek() returned.
    void finish(const RecordView& record);
    // Copies a Small or Large record out as a Message (transaction id set).
    // InvalidMessage for a malformed Large one.
    static Result<Message> to_message(const RecordView& record);

private:
    const RecordHeader* line(u32 index) const {
        return reinterpret_cast<const RecordHeader*>(
            reinterpret_cast<const u8*>(data_) + RING_HEADER_BYTES +
            usize{index & geometry_.line_mask} * LINE_BYTES);
    }

    SharedWords* words_ = nullptr;
    RingGeometry geometry_{};
    const RingDataHeader* data_ = nullptr;
    RingCtl* ctl_ = nullptr;
    u32 head_ = 0;  // private copy (lines)
};

// A side closes its half (value 1, or CLOSED_REVOKED): see "closing" above.
void close_producer_side(SharedWords& words, RingDataHeader* data, u32 value);
void close_consumer_side(SharedWords& words, RingCtl* ctl, u32 value);

// Records waiting in a ring, counted from the consumer's published head along the sequence
// words: a racy snapshot for statistics (at most depth), never used for access.
u32 count_records(const RingGeometry& geometry, const RingDataHeader* data, const RingCtl* ctl);

}  // namespace veridian::ipc::posix::detail
