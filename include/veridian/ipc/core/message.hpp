// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc core: messages.
//
// A SmallMessage is the register-sized message of the fast path: exactly 48 bytes in C
// layout (u64 capability, u32 opcode, u32 flags, u64 data[4]). A LargeMessage adds a
// memory-region descriptor and 64 inline bytes to a header. A Message is either one, plus
// the routing the core fills in (sender, transaction id of a call).
//
//   Message m = Message::small(capability, /*opcode=*/42);
//   m.small_message().data[0] = 7;
//   VIPC_TRY(endpoint.send_async(m));
#pragma once

#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc {

// Message flags (the low 16 bits of the flags word are the core's; the high 16 are free
// for applications).
namespace MessageFlags {
inline constexpr u32 URGENT = 1u << 0;
inline constexpr u32 UNORDERED = 1u << 1;
inline constexpr u32 NEEDS_ACK = 1u << 2;
inline constexpr u32 IS_REPLY = 1u << 3;
inline constexpr u32 HAS_CAPABILITY = 1u << 4;   // data[0] carries a handle (capability.hpp)
inline constexpr u32 MOVE_CAPABILITY = 1u << 5;  // with HAS_CAPABILITY: move it, not copy
inline constexpr u32 CORE_MASK = 0xFFFFu;
}  // namespace MessageFlags

// The register-sized message: 48 bytes, C layout, part of the contract.
struct SmallMessage {
    u64 capability;
    u32 opcode;
    u32 flags;
    u64 data[4];
};
static_assert(sizeof(SmallMessage) == 48, "SmallMessage is 48 bytes");
static_assert(alignof(SmallMessage) == 8);
static_assert(__builtin_offsetof(SmallMessage, capability) == 0);
static_assert(__builtin_offsetof(SmallMessage, opcode) == 8);
static_assert(__builtin_offsetof(SmallMessage, flags) == 12);
static_assert(__builtin_offsetof(SmallMessage, data) == 16);

struct MessageHeader {
    u64 capability;
    u32 opcode;
    u32 flags;
    u64 total_size;  // bytes of payload the message describes (inline + region)
    u32 checksum;    // checksum of the payload when the sender asked for one, else 0
    u32 reserved;
};
static_assert(sizeof(MessageHeader) == 32);

// Permissions of a memory region.
namespace RegionPermissions {
inline constexpr u32 READ = 1u << 0;
inline constexpr u32 WRITE = 1u << 1;
inline constexpr u32 EXECUTE = 1u << 2;
}  // namespace RegionPermissions

enum class CachePolicy : u32 { WriteBack = 0, WriteThrough = 1, Uncached = 2, WriteCombining = 3 };

// Describes memory that travels with a large message (in one address space, base is an
// address; across processes the runtime gives it meaning as a region capability).
struct MemoryRegion {
    u64 base;
    u64 size;
    u32 permissions;
    CachePolicy cache_policy;
};
static_assert(sizeof(MemoryRegion) == 24);

inline constexpr usize LARGE_MESSAGE_INLINE_BYTES = 64;

struct LargeMessage {
    MessageHeader header;
    MemoryRegion region;
    u8 inline_data[LARGE_MESSAGE_INLINE_BYTES];
};
static_assert(sizeof(LargeMessage) == 120);

enum class MessageKind : u8 { Small = 0, Large = 1 };

// A small or a large message, plus routing set by the core. Trivially copyable.
class Message {
public:
    Message() : Message(SmallMessage{}) {}
    explicit Message(const SmallMessage& m) : kind_(MessageKind::Small) { body_.small = m; }
    explicit Message(const LargeMessage& m) : kind_(MessageKind::Large) { body_.large = m; }

    // The seed's Message::small(capability, opcode).
    static Message small(u64 capability, u32 opcode) {
        return Message(SmallMessage{capability, opcode, 0, {0, 0, 0, 0}});
    }

    MessageKind kind() const { return kind_; }
    bool is_small() const { return kind_ == MessageKind::Small; }
    bool is_large() const { return kind_ == MessageKind::Large; }

    // Precondition: is_small() (resp. is_large()); otherwise traps.
    SmallMessage& small_message() { return check(is_small()), body_.small; }
    const SmallMessage& small_message() const { return check(is_small()), body_.small; }
    LargeMessage& large_message() { return check(is_large()), body_.large; }
    const LargeMessage& large_message() const { return check(is_large()), body_.large; }

    u64 capability() const {
        return is_small() ? body_.small.capability : body_.large.header.capability;
    }
    u32 opcode() const { return is_small() ? body_.small.opcode : body_.large.header.opcode; }
    u32 flags() const { return is_small() ? body_.small.flags : body_.large.header.flags; }
    void set_flags(u32 flags) {
        if (is_small()) {
            body_.small.flags = flags;
        } else {
            body_.large.header.flags = flags;
        }
    }

    // Routing, stamped by the core on every send (whatever the sender set is overwritten):
    // the holder of the capability space the message was sent through, the badge of the
    // entry it was sent through (0 when unbadged), and, for a request sent by call, its
    // transaction id (0 otherwise). A server answers a request with reply(request,
    // response), which uses the transaction id. (The posix runtime stamps sender() itself
    // from the peer's kernel-verified credentials.)
    ProcessId sender() const { return sender_; }
    Badge badge() const { return badge_; }
    TransactionId transaction_id() const { return txid_; }
    void set_sender(ProcessId pid) { sender_ = pid; }
    void set_badge(Badge badge) { badge_ = badge; }
    void set_transaction_id(TransactionId txid) { txid_ = txid; }

private:
    static void check(bool ok) {
        if (VIPC_UNLIKELY(!ok)) __builtin_trap();
    }

    MessageKind kind_;
    union Body {
        SmallMessage small;
        LargeMessage large;
    } body_;
    ProcessId sender_{};
    Badge badge_ = 0;
    TransactionId txid_ = 0;
    // A capability in transit (HAS_CAPABILITY): the sender's space, by its index and serial
    // in the registry's space table; set and read only by the core.
    friend struct CoreMessageAccess;
    u32 transit_space_ = 0;
    u64 transit_serial_ = 0;
};

// 32-bit FNV-1a of a byte range: the header checksum of large messages.
u32 payload_checksum(const void* data, usize size);

}  // namespace veridian::ipc
