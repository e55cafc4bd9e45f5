// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc core (private): the endpoint object that lives in a registry slot, its
// bounded queue and its waiters.
//
// Invariants, all under EndpointObject::lock:
//   - receivers non-empty  =>  queue empty  (a sender hands off before it queues)
//   - senders non-empty    =>  queue full   (a receiver that frees a place refills it from
//                                             the first blocked sender, in FIFO order)
//   - a Waiter is in at most one list, and only while its state is WAITING
//   - closed (!active)     =>  queue and every waiter list empty
//   - every live capability entry naming this endpoint is in `entries`, and its derivation
//     tree links point only at live entries naming this endpoint
#pragma once

#include <atomic>

#include "veridian/ipc/core/endpoint.hpp"
#include "veridian/ipc/core/mutex.hpp"
#include "veridian/ipc/core/registry.hpp"

namespace veridian::ipc::detail {

// A fixed-capacity FIFO ring over storage it is given (the one queue of the core).
template <typename T>
class BoundedQueue {
public:
    void reset(T* storage, u32 capacity) {
        slots_ = storage;
        capacity_ = capacity;
        head_ = 0;
        size_ = 0;
    }
    u32 size() const { return size_; }
    u32 capacity() const { return capacity_; }
    bool empty() const { return size_ == 0; }
    bool full() const { return size_ == capacity_; }
    T* storage() const { return slots_; }

    // Precondition: !full().
    void push(const T& value) {
        u32 tail = head_ + size_;
        if (tail >= capacity_) tail -= capacity_;
        slots_[tail] = value;
        ++size_;
    }
    // Precondition: !empty().
    T pop() {
        T value = slots_[head_];
        head_ = head_ + 1 == capacity_ ? 0 : head_ + 1;
        --size_;
        return value;
    }
    void clear() {
        head_ = 0;
        size_ = 0;
    }

private:
    T* slots_ = nullptr;
    u32 capacity_ = 0;
    u32 head_ = 0;
    u32 size_ = 0;
};

// One entry of a capability space (see capability.hpp for the contract).
//
// Who may write what:
//   - `state` FREE <-> RESERVED, and `free_next`: the space's lock (allocation, sweeping
//     DEAD back to FREE);
//   - RESERVED -> LIVE (filling `target`, `badge`, the links, then publishing `key`), and
//     LIVE -> DEAD (`key` to 0, unlinking): the lock of the endpoint the entry names, so
//     that everything a check under that lock reads about the entry is stable;
//   - the tree links and the endpoint-list links of a LIVE entry: the named endpoint's lock.
// `key` equals the handle value exactly while the entry is LIVE, and is 0 otherwise; tags
// are never reused within a space, so `key == handle` identifies one filling of the entry.
struct CapabilityEntry {
    static constexpr u8 FREE = 0;
    static constexpr u8 RESERVED = 1;  // taken from the free list, being filled
    static constexpr u8 LIVE = 2;
    static constexpr u8 DEAD = 3;  // revoked or released, not yet swept to the free list

    // SYNC POINT: `key` is stored with release after every other field of a filling is
    // written (pairs with the acquire load in Resolver::resolve and in checks).
    std::atomic<u64> key{0};
    std::atomic<u64> target{0};  // endpoint slot | generation << 32 | rights << 48
    std::atomic<u64> badge{0};
    std::atomic<u8> state{FREE};

    CapabilitySpace* space = nullptr;  // the space whose table holds this entry (constant)
    CapabilityEntry* parent = nullptr;
    CapabilityEntry* first_child = nullptr;
    CapabilityEntry* next_sibling = nullptr;
    CapabilityEntry* prev_sibling = nullptr;
    CapabilityEntry* endpoint_next = nullptr;  // the named endpoint's list of live entries
    CapabilityEntry* endpoint_prev = nullptr;
    u32 free_next = 0;  // the space's free list (index + 1); under the space's lock

    static constexpr u64 pack(u32 slot, u16 generation, u16 rights) {
        return u64{slot} | (u64{generation} << 32) | (u64{rights} << 48);
    }
    static constexpr u32 slot_of(u64 t) { return static_cast<u32>(t); }
    static constexpr u16 generation_of(u64 t) { return static_cast<u16>(t >> 32); }
    static constexpr u16 rights_of(u64 t) { return static_cast<u16>(t >> 48); }
};

// One blocked party (receiver, sender or caller), parked on a word of its own, on its own
// stack (like Zircon's MessageWaiter). A waker removes it from its list and sets `state`
// under the endpoint lock, then wakes the word; after setting `state` the waker never
// touches the Waiter again (its owner may return at once), and the platform's wake uses
// the word's address only as a key.
struct Waiter {
    static constexpr u32 WAITING = 0;    // in a list, parked or about to park
    static constexpr u32 DONE = 1;       // message delivered (receiver, caller) / accepted (sender)
    static constexpr u32 CLOSED = 2;     // the endpoint closed
    static constexpr u32 TIMED_OUT = 3;  // set by the waiter itself, never by a waker
    static constexpr u32 REVOKED = 4;    // the entry it is blocked through was revoked

    std::atomic<u32> state{WAITING};
    const CapabilityEntry* via = nullptr;  // the entry the operation goes through
    u64 via_key = 0;                       // and its key when the operation was checked
    Message message{};       // receivers and callers: delivered here; senders: to enqueue
    TransactionId txid = 0;  // callers: the transaction they wait for
    Waiter* next = nullptr;
    Waiter* prev = nullptr;
};

// An intrusive FIFO of waiters.
class WaiterList {
public:
    bool empty() const { return head_ == nullptr; }
    u32 size() const { return size_; }
    void push_back(Waiter* w) {
        w->next = nullptr;
        w->prev = tail_;
        if (tail_ != nullptr) {
            tail_->next = w;
        } else {
            head_ = w;
        }
        tail_ = w;
        ++size_;
    }
    Waiter* pop_front() {
        Waiter* w = head_;
        if (w != nullptr) remove(w);
        return w;
    }
    void remove(Waiter* w) {
        (w->prev != nullptr ? w->prev->next : head_) = w->next;
        (w->next != nullptr ? w->next->prev : tail_) = w->prev;
        w->next = w->prev = nullptr;
        --size_;
    }
    Waiter* first() const { return head_; }
    Waiter* find_transaction(TransactionId txid) const {
        for (Waiter* w = head_; w != nullptr; w = w->next) {
            if (w->txid == txid) return w;
        }
        return nullptr;
    }

private:
    Waiter* head_ = nullptr;
    Waiter* tail_ = nullptr;
    u32 size_ = 0;
};

enum class SendMode : u8 { Async, Sync, Fast };

class EndpointObject {
public:
    explicit EndpointObject(Platform& platform) : lock(platform) {}

    Platform& platform() const { return lock.platform(); }

    // The one capability check, under `lock`: `entry` is still the live filling `key`
    // names, it names this slot at the endpoint's generation, it has `rights`, and
    // (unless `allow_closed`) the endpoint is open.
    Result<void> check(const CapabilityEntry* entry, u64 key, u16 rights,
                       bool allow_closed = false) const VIPC_REQUIRES(lock);

    // Derivation tree and entry list (all under `lock`).
    void link_entry(CapabilityEntry* e) VIPC_REQUIRES(lock);
    // Marks `e` DEAD and takes it out of the entry list (the tree links are the caller's).
    void kill_entry(CapabilityEntry* e) VIPC_REQUIRES(lock);
    // `e` and its whole subtree become DEAD; `e` leaves its parent's child list.
    void revoke_subtree(CapabilityEntry* e) VIPC_REQUIRES(lock);
    // `e` alone becomes DEAD; its children move to its parent.
    void release_entry(CapabilityEntry* e) VIPC_REQUIRES(lock);
    // `child` (just filled) becomes a child of `parent`.
    void adopt_entry(CapabilityEntry* parent, CapabilityEntry* child) VIPC_REQUIRES(lock);
    // `replacement` (just filled) takes `old`'s place in the tree; `old` becomes DEAD.
    void replace_entry(CapabilityEntry* old, CapabilityEntry* replacement) VIPC_REQUIRES(lock);
    // Every live entry becomes DEAD (revoke_all, removal).
    void kill_all_entries() VIPC_REQUIRES(lock);
    // Wakes, with REVOKED, every waiter whose entry is no longer the one it was checked
    // through. Returns how many.
    u32 wake_revoked_locked() VIPC_REQUIRES(lock);

    // The operations, called with `lk` holding `lock` and check() passed. Each returns with
    // the lock released.
    // `via`/`key`: the entry the operation was checked through (recorded in its Waiter).
    Result<void> send(Message msg, SendMode mode, Deadline deadline, const CapabilityEntry* via,
                      u64 key, UniqueLock& lk) VIPC_REQUIRES(lock);
    Result<Message> receive(bool block, Deadline deadline, const CapabilityEntry* via, u64 key,
                            UniqueLock& lk) VIPC_REQUIRES(lock);
    Result<Message> call(Message request, Deadline deadline, const CapabilityEntry* via, u64 key,
                         UniqueLock& lk) VIPC_REQUIRES(lock);
    Result<void> reply(const Message& request, Message response, UniqueLock& lk)
        VIPC_REQUIRES(lock);

    // Closes under the lock (idempotent): wakes every waiter with CLOSED, discards the queue.
    void close_locked() VIPC_REQUIRES(lock);

    EndpointStats stats_locked() const VIPC_REQUIRES(lock);

    mutable Mutex lock;

    // Identity; changes only under `lock` (and the registry's lock for the free list).
    u16 generation VIPC_GUARDED_BY(lock) = 0;  // 0 = never used; tokens need >= 1
    bool registered VIPC_GUARDED_BY(lock) = false;
    bool active VIPC_GUARDED_BY(lock) = false;
    EndpointId id VIPC_GUARDED_BY(lock) = 0;
    ProcessId owner VIPC_GUARDED_BY(lock){};
    bool bound VIPC_GUARDED_BY(lock) = false;
    ProcessId bound_to VIPC_GUARDED_BY(lock){};
    TransactionId next_txid VIPC_GUARDED_BY(lock) = 1;
    CapabilityEntry* entries VIPC_GUARDED_BY(lock) = nullptr;  // live entries naming it

    BoundedQueue<Message> queue VIPC_GUARDED_BY(lock);
    WaiterList receivers VIPC_GUARDED_BY(lock);
    WaiterList senders VIPC_GUARDED_BY(lock);
    WaiterList callers VIPC_GUARDED_BY(lock);
    EndpointStats counters VIPC_GUARDED_BY(lock);

    u32 free_next = 0;  // registry free list link (index + 1); guarded by the registry lock
    u32 index = 0;      // this slot's index (constant)

private:
    // Parks `w` (registered in `list`) until it leaves WAITING or the deadline passes.
    u32 park(Waiter& w, WaiterList& list, Deadline deadline, UniqueLock& lk) VIPC_REQUIRES(lock);
    // Moves the first blocked sender's message into the queue (a place was just freed).
    std::atomic<u32>* refill_from_blocked_sender() VIPC_REQUIRES(lock);
};

// Handle resolution, shared by every operation: step (0) of each protocol.
struct Resolved {
    CapabilityEntry* entry;
    EndpointObject* object;
    u64 key;
};

struct Resolver {
    // O(1), without a lock: the space's table -> the entry (index in range, key equal to
    // the handle) -> the endpoint slot it names. The caller then locks the slot and runs
    // EndpointObject::check, which repeats the key compare under the lock.
    static Result<Resolved> resolve(const CapabilitySpace* space, Capability handle) {
        if (VIPC_UNLIKELY(space == nullptr)) return IpcError::InvalidCapability;
        const u64 key = handle.raw();
        const u32 index = handle.index();
        if (VIPC_UNLIKELY(key == 0 || index >= space->capacity_)) {
            return IpcError::InvalidCapability;
        }
        CapabilityEntry* e = &space->entries_[index];
        // SYNC POINT: acquire pairs with the release store of `key` when the entry was filled.
        if (VIPC_UNLIKELY(e->key.load(std::memory_order_acquire) != key)) {
            return IpcError::InvalidCapability;
        }
        const u64 t = e->target.load(std::memory_order_relaxed);
        return Resolved{e, space->registry_->slot(CapabilityEntry::slot_of(t)), key};
    }
};

// Where a new entry goes in the derivation tree.
enum class Placement : u8 {
    Root,       // no parent (create_endpoint, lookup, revoke_all)
    ChildOf,    // a child of the source entry (derive, Copy)
    ReplaceOf,  // takes the source entry's place, which dies (Move)
};

// The operations that fill entries and manage spaces' tables (registry.cpp).
struct CapabilityOps {
    // Takes a free entry of `space` (sweeping DEAD entries back first if none is free), or
    // nullptr when the table is full. Requires space.lock_.
    static CapabilityEntry* reserve(CapabilitySpace& space);
    // Gives a reserved entry back. Requires space.lock_.
    static void unreserve(CapabilitySpace& space, CapabilityEntry* e);
    // The next handle value for entry `index` of `space` (a fresh tag). Requires space.lock_.
    static u64 next_key(CapabilitySpace& space, u32 index);
    // Fills reserved `e` (of `space`) for `obj` and publishes it. Requires obj.lock and
    // space.lock_.
    static u64 fill(CapabilitySpace& space, CapabilityEntry* e, EndpointObject& obj, u16 rights,
                    Badge badge);
    // A new entry in `into` from the entry `handle` names in `from` (which needs `need`
    // rights), with rights ∩ `mask` and `badge` (0 = the source's), placed as said.
    // `from_serial` != 0: `from` must still have that serial (a message's sender space).
    static Result<Endpoint> install(CapabilitySpace& into, CapabilitySpace& from, Capability handle,
                                    u16 need, u16 mask, Badge badge, Placement placement,
                                    u64 from_serial = 0);
    // Kills the entry `handle` names in `space` (subtree or alone) and wakes what was blocked
    // through it.
    enum class Kill : u8 { Subtree, Alone };
    static Result<void> kill(CapabilitySpace& space, Capability handle, Kill how);
    // The owner's revoke: see Endpoint::revoke_all.
    static Result<Endpoint> revoke_all(CapabilitySpace& space, Capability handle);
    // A space's place in its registry's table, for messages that carry a capability.
    static u32 space_index(const CapabilitySpace& space) { return space.index_; }
    static u64 space_serial(const CapabilitySpace& space) {
        return space.serial_.load(std::memory_order_acquire);
    }
    // The space at `index` if it still has `serial` (it may be torn down meanwhile: the
    // caller checks `active_` under its lock).
    static CapabilitySpace* space_at(Registry& registry, u32 index, u64 serial);
};

}  // namespace veridian::ipc::detail

namespace veridian::ipc {
// The core's access to a message's transit fields (a capability carried in a message).
struct CoreMessageAccess {
    static void set_transit(Message& m, u32 space, u64 serial) {
        m.transit_space_ = space;
        m.transit_serial_ = serial;
    }
    static u32 transit_space(const Message& m) { return m.transit_space_; }
    static u64 transit_serial(const Message& m) { return m.transit_serial_; }
};
}  // namespace veridian::ipc
