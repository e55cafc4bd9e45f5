// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc core: capabilities, handles and capability spaces.
//
// The capability contract
// -----------------------
// A capability is an entry in a holder's CapabilitySpace, kept by the registry where the
// holder cannot write it: {endpoint slot, generation at mint, rights, badge}. What a holder
// has in hand is a handle: a 64-bit value that names an entry of its *own* space.
//
//   handle bits  0-23  index of the entry in the holder's table
//   handle bits 24-62  check bits: the entry's 39-bit tag, drawn (through a bijection) from
//                      a per-space counter and a per-space secret, fresh each time an
//                      entry is filled; never 0 for a live entry
//   handle bit  63     always 0
//
// Rights, generation and badge are never read from a handle. Resolving one is O(1):
// holder's table -> entry (index in range, tag equal) -> endpoint slot -> generation equal
// to the slot's -> rights. Handle 0 is never valid. A reused index never gets the check bits
// it had before (the tags of one space are all distinct until 2^39 entries have been filled
// in it), so a kept copy of a freed or revoked handle is rejected, and so is any mutation of
// a live handle. Another holder's handle, or any other bit pattern, names an entry of the
// holder's own table only by a 2^-39 coincidence of the check bits.
//
// Derive. derive(rights, badge) makes a new entry in the same space whose rights are the
// intersection of the original's and `rights` (never more). The new entry is a child of the
// original in the endpoint's derivation tree. A badge can be set only on an unbadged
// entry (a badged entry's children keep its badge; asking for another gives
// PermissionDenied), like seL4's mint.
//
// Transfer. transfer(to, mode, rights) needs GRANT in the source entry (PermissionDenied
// otherwise) and installs a new entry in the space `to`, with rights ⊆ the source's:
// TransferMode::Copy leaves the source in place and makes the new entry its child;
// TransferMode::Move removes the source and puts the new entry in its place in the tree
// (its children stay its children). A message sent with MessageFlags::HAS_CAPABILITY
// carries, in data[0] of a small message, a handle of the sender's space: the send needs
// GRANT on it (PermissionDenied, nothing sent), and the receiver finds data[0] replaced by
// a handle of its own space (a Copy; with MessageFlags::MOVE_CAPABILITY also set, a Move).
// The capability is installed when the message is taken: if by then the sender's entry has
// been revoked or lost GRANT, or the receiver's table is full, data[0] is 0 and
// HAS_CAPABILITY is cleared (the rest of the message is delivered).
//
// Revoke. revoke() on an entry removes it and every entry derived from it (its subtree in
// the derivation tree, in whatever spaces the entries are), and wakes every operation
// blocked through any of them (a send waiting on a full queue, a receive, a call in its
// send or its reply phase) with InvalidCapability; their messages are not delivered.
// Messages already queued stay queued. No right is needed: a holder can only give up
// authority that passes through its own entry. revoke_all() (needs REVOKE) is the endpoint
// owner's revoke: it bumps the endpoint's generation, removes every entry of the endpoint in
// every space, wakes every blocked party with InvalidCapability, and returns a fresh root
// entry with all rights in the caller's space. release() removes just one entry (its
// children stay, re-parented to its parent): a holder closing its handle.
//
// Badges. Every message the core delivers carries Message::sender() (the ProcessId of the
// space the message was sent through) and Message::badge() (the badge of the entry it was
// sent through, 0 when unbadged), both stamped by the core on send; whatever the sender
// put there is overwritten. A server tells its clients apart by the badges it minted.
//
// Death. Registry::remove_process(pid) runs when a holder goes away: the endpoints it owns
// close and are removed (every waiter wakes with EndpointNotFound; every entry naming them,
// in every space, becomes invalid), then its space is torn down: each of its entries is
// released, and operations blocked through them wake with InvalidCapability. The rule for
// what the dead holder passed on: capabilities derived from its entries and held by others
// are kept, re-parented to the dead entry's parent, so whoever granted the dead holder its
// capability can still revoke them; only the endpoint's owner or an ancestor can end them.
//
// Which revocation scheme, and why: a derivation tree per endpoint (like seL4's CDT), plus
// a generation per endpoint slot. Every entry of one tree names the same endpoint (derive
// and transfer never change the object), so the tree's links are guarded by that endpoint's
// lock: revoking a subtree, linking a child and checking a handle before blocking are all
// decided under one lock, with no global capability lock, and a waiter can never park
// through an entry that a concurrent revoke has already passed. A generation per lineage
// would make revoking a subtree O(1) but a resolve would have to check every ancestor's
// generation (not O(1)), or lineages could not nest. The slot generation gives the O(1)
// revoke-all and makes entries of a removed endpoint stale even before they are swept.
#pragma once

#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/mutex.hpp"
#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc {

namespace Rights {
inline constexpr u16 SEND = 1u << 0;     // send_sync, send_async, fast_ipc_send, call
inline constexpr u16 RECEIVE = 1u << 1;  // receive_sync, try_receive, reply
inline constexpr u16 GRANT = 1u << 2;    // transfer to another space, send in a message
inline constexpr u16 REVOKE = 1u << 3;   // revoke_all, close and remove the endpoint
inline constexpr u16 ALL = SEND | RECEIVE | GRANT | REVOKE;
}  // namespace Rights

// Whether a transfer leaves the source entry in place (Copy) or removes it (Move).
enum class TransferMode : u8 { Copy = 0, Move = 1 };

// A handle: the value a holder writes to name an entry of its own capability space.
class Capability {
public:
    static constexpr u32 INDEX_BITS = 24;
    static constexpr u32 CHECK_BITS = 39;
    static constexpr u32 MAX_INDEX = (1u << INDEX_BITS) - 1;
    static constexpr u64 CHECK_MASK = (u64{1} << CHECK_BITS) - 1;

    constexpr Capability() = default;
    constexpr explicit Capability(u64 raw) : raw_(raw) {}
    static constexpr Capability make(u32 index, u64 check) {
        return Capability((u64{index} & MAX_INDEX) | ((check & CHECK_MASK) << INDEX_BITS));
    }

    constexpr u64 raw() const { return raw_; }
    constexpr u32 index() const { return static_cast<u32>(raw_) & MAX_INDEX; }
    constexpr u64 check() const { return (raw_ >> INDEX_BITS) & CHECK_MASK; }
    constexpr bool is_null() const { return raw_ == 0; }

    friend constexpr bool operator==(Capability, Capability) = default;

private:
    u64 raw_ = 0;
};

// What an entry holds, as its holder may read it (CapabilitySpace::inspect).
struct CapabilityInfo {
    EndpointId endpoint = 0;
    u16 rights = 0;
    Badge badge = 0;
};

struct CapabilitySpaceStats {
    u32 capacity = 0;  // entries in the table
    u32 live = 0;      // entries that resolve
    u64 filled = 0;    // entries ever filled in this space
};

class Endpoint;
class Registry;

namespace detail {
struct CapabilityEntry;
struct Resolver;
class EndpointObject;
struct CapabilityOps;
}  // namespace detail

// A holder's table of entries. Created by Registry::create_space (or implicitly by
// Registry::space / create_endpoint for a ProcessId), its table allocated once from the
// registry's Allocator; the object itself lives in the registry's space table and is never
// freed while the registry lives. A platform associates one with each process (the kernel:
// one per task). Thread-safe.
class CapabilitySpace {
public:
    static constexpr u32 DEFAULT_ENTRIES = 256;

    CapabilitySpace(const CapabilitySpace&) = delete;
    CapabilitySpace& operator=(const CapabilitySpace&) = delete;

    ProcessId holder() const { return holder_; }
    Registry& registry() const { return *registry_; }

    // A handle object for `handle` in this space when it resolves and has `rights`.
    // Null, forged, stale, freed or another space's -> InvalidCapability; missing rights ->
    // PermissionDenied. Does not check that the endpoint is open.
    Result<Endpoint> endpoint(Capability handle, u16 rights = 0);
    // The entry's endpoint id, rights and badge (InvalidCapability as above).
    Result<CapabilityInfo> inspect(Capability handle);
    // Removes the entry and every entry derived from it (see the contract above).
    Result<void> revoke(Capability handle);
    // Removes the entry only; its children are re-parented to its parent.
    Result<void> release(Capability handle);

    CapabilitySpaceStats stats();

private:
    friend class Registry;
    friend class Endpoint;
    friend struct detail::Resolver;
    friend class detail::EndpointObject;
    friend struct detail::CapabilityOps;
    explicit CapabilitySpace(Platform& platform) : lock_(platform) {}

    // Guards the table's free list and counters (the entries' contents are guarded by the
    // lock of the endpoint each names). Lock order: a space's lock before an endpoint's.
    Mutex lock_;
    Registry* registry_ = nullptr;
    ProcessId holder_{};
    detail::CapabilityEntry* entries_ = nullptr;  // the table (from the registry's Allocator)
    u32 capacity_ = 0;
    u32 index_ = 0;               // this space's index in the registry's space table
    std::atomic<u64> serial_{0};  // changes each time the table slot is reused; 0 = unused
    bool registered_ = false;     // in use in the registry's table (the registry's lock)
    u64 secret_ = 0;              // mixed into every tag
    u64 counter_ = 0;             // entries filled so far (the tag counter)
    u32 free_head_ = 0;           // index + 1 of the first free entry; 0 = none
    u32 used_ = 0;                // entries not free (live, reserved or dead-unswept)
    std::atomic<u32> dead_{0};    // DEAD entries not yet swept back to the free list
    bool active_ = false;         // has a table; false once torn down (this space's lock)
    CapabilitySpace* next_free_ = nullptr;
};

}  // namespace veridian::ipc
