// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc core: the registry's slot table, capability spaces, creation, removal and
// the filling and killing of capability entries.
//
// Lock order: the registry lock, then a space's lock (two spaces: the lower index first),
// then an endpoint slot's lock. The registry lock and a slot's lock are never held
// together. Creation pops a free slot under the registry lock, then fills the owner's entry
// under the space's and the slot's locks; removal retires the endpoint under the slot lock,
// then returns the slot under the registry lock.
#include "veridian/ipc/core/registry.hpp"

#include <new>

#include "core/endpoint_object.hpp"

namespace veridian::ipc {

using detail::CapabilityEntry;
using detail::CapabilityOps;
using detail::EndpointObject;
using detail::Placement;
using detail::Resolved;
using detail::Resolver;

namespace {
// Endpoint ids: one counter for the whole program, starting at 1, never reused.
std::atomic<u64> g_endpoint_counter{1};

constexpr u16 kLastGeneration = 0xFFFF;

u32 clamp_capacity(u32 capacity) {
    if (capacity < 1) return 1;
    if (capacity > MAX_CHANNEL_QUEUE_SIZE) return MAX_CHANNEL_QUEUE_SIZE;
    return capacity;
}

u64 splitmix64(u64 x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// A bijection of the 39-bit values keyed by `secret`: each step (add, multiply by an odd
// constant, xor-shift right, xor) is invertible modulo 2^39, so distinct counters give
// distinct tags.
u64 mix_tag(u64 counter, u64 secret) {
    constexpr u64 M = Capability::CHECK_MASK;
    u64 x = (counter + secret) & M;
    x = (x * 0x2545F4914F6CDD1Dull) & M;
    x ^= x >> 19;
    x = (x * 0x9E3779B97F4A7C15ull) & M;
    x ^= x >> 17;
    return (x ^ (secret >> 25)) & M;
}

void push_free_slot(EndpointObject* slots, u32& free_head, u32 index) {
    slots[index].free_next = free_head;
    free_head = index + 1;
}
}  // namespace

namespace detail {

CapabilityEntry* CapabilityOps::reserve(CapabilitySpace& space) {
    if (space.free_head_ == 0 && space.dead_.load(std::memory_order_relaxed) != 0) {
        // Sweep DEAD entries back to the free list (amortized over the entries they were).
        for (u32 i = 0; i < space.capacity_; ++i) {
            CapabilityEntry& e = space.entries_[i];
            // SYNC POINT: acquire pairs with the release store of DEAD in kill_entry.
            if (e.state.load(std::memory_order_acquire) != CapabilityEntry::DEAD) continue;
            e.state.store(CapabilityEntry::FREE, std::memory_order_relaxed);
            e.free_next = space.free_head_;
            space.free_head_ = i + 1;
            --space.used_;
            space.dead_.fetch_sub(1, std::memory_order_relaxed);
        }
    }
    if (space.free_head_ == 0) return nullptr;
    CapabilityEntry* e = &space.entries_[space.free_head_ - 1];
    space.free_head_ = e->free_next;
    e->free_next = 0;
    e->state.store(CapabilityEntry::RESERVED, std::memory_order_relaxed);
    ++space.used_;
    return e;
}

void CapabilityOps::unreserve(CapabilitySpace& space, CapabilityEntry* e) {
    e->state.store(CapabilityEntry::FREE, std::memory_order_relaxed);
    e->free_next = space.free_head_;
    space.free_head_ = static_cast<u32>(e - space.entries_) + 1;
    --space.used_;
}

u64 CapabilityOps::next_key(CapabilitySpace& space, u32 index) {
    for (;;) {
        const u64 tag = mix_tag(space.counter_++, space.secret_);
        if (tag != 0) return Capability::make(index, tag).raw();
    }
}

u64 CapabilityOps::fill(CapabilitySpace& space, CapabilityEntry* e, EndpointObject& obj, u16 rights,
                        Badge badge) {
    e->target.store(CapabilityEntry::pack(obj.index, obj.generation, rights),
                    std::memory_order_relaxed);
    e->badge.store(badge, std::memory_order_relaxed);
    e->parent = e->first_child = e->next_sibling = e->prev_sibling = nullptr;
    obj.link_entry(e);
    const u64 key = next_key(space, static_cast<u32>(e - space.entries_));
    e->state.store(CapabilityEntry::LIVE, std::memory_order_relaxed);
    // SYNC POINT: publishes the filling (pairs with the acquire loads of `key`).
    e->key.store(key, std::memory_order_release);
    return key;
}

Result<Endpoint> CapabilityOps::install(CapabilitySpace& into, CapabilitySpace& from,
                                        Capability handle, u16 need, u16 mask, Badge badge,
                                        Placement placement, u64 from_serial) {
    // The two spaces' locks, the lower index first (one lock when they are the same space).
    CapabilitySpace* first = &into;
    CapabilitySpace* second = &from == &into ? nullptr : &from;
    if (second != nullptr && from.index_ < into.index_) {
        first = &from;
        second = &into;
    }
    MutexLock first_lock(first->lock_);
    if (second != nullptr) second->lock_.lock();
    struct Unlock {
        CapabilitySpace* s;
        ~Unlock() {
            if (s != nullptr) s->lock_.unlock();
        }
    } unlock_second{second};

    if (!from.active_ ||
        (from_serial != 0 && from.serial_.load(std::memory_order_relaxed) != from_serial)) {
        return IpcError::InvalidCapability;
    }
    if (!into.active_) return IpcError::ProcessNotFound;
    CapabilityEntry* e = reserve(into);
    if (e == nullptr) return IpcError::OutOfMemory;
    Result<Resolved> r = Resolver::resolve(&from, handle);
    if (!r) {
        unreserve(into, e);
        return r.error();
    }
    EndpointObject& obj = *r->object;
    Result<Endpoint> out = IpcError::InvalidCapability;
    {
        MutexLock lk(obj.lock);
        Result<void> checked = obj.check(r->entry, r->key, need, true);
        const Badge source_badge = r->entry->badge.load(std::memory_order_relaxed);
        if (!checked) {
            out = checked.error();
        } else if (badge != 0 && source_badge != 0 && badge != source_badge) {
            out = IpcError::PermissionDenied;  // a badged entry cannot be re-badged
        } else {
            const u16 rights = static_cast<u16>(
                CapabilityEntry::rights_of(r->entry->target.load(std::memory_order_relaxed)) &
                mask);
            const u64 key = fill(into, e, obj, rights, badge != 0 ? badge : source_badge);
            if (placement == Placement::ChildOf) {
                obj.adopt_entry(r->entry, e);
            } else if (placement == Placement::ReplaceOf) {
                obj.replace_entry(r->entry, e);
                obj.wake_revoked_locked();  // (3D): operations through the moved entry
            }
            out = Endpoint(&into, Capability(key), obj.id, obj.owner);
        }
    }
    if (!out) unreserve(into, e);
    return out;
}

Result<void> CapabilityOps::kill(CapabilitySpace& space, Capability handle, Kill how) {
    const Resolved r = VIPC_TRY(Resolver::resolve(&space, handle));
    MutexLock lk(r.object->lock);
    VIPC_TRY(r.object->check(r.entry, r.key, 0, true));
    if (how == Kill::Subtree) {
        r.object->revoke_subtree(r.entry);
    } else {
        r.object->release_entry(r.entry);
    }
    // (3D) of the wait protocol: in the same critical section as the kill.
    r.object->wake_revoked_locked();
    return ok();
}

Result<Endpoint> CapabilityOps::revoke_all(CapabilitySpace& space, Capability handle) {
    MutexLock sl(space.lock_);
    if (!space.active_) return IpcError::InvalidCapability;
    CapabilityEntry* e = reserve(space);
    if (e == nullptr) return IpcError::OutOfMemory;
    Result<Resolved> r = Resolver::resolve(&space, handle);
    if (!r) {
        unreserve(space, e);
        return r.error();
    }
    EndpointObject& obj = *r->object;
    Result<Endpoint> out = IpcError::InvalidCapability;
    {
        MutexLock lk(obj.lock);
        Result<void> checked = obj.check(r->entry, r->key, Rights::REVOKE, true);
        if (!checked) {
            out = checked.error();
        } else if (obj.generation == kLastGeneration) {
            out = IpcError::ResourceBusy;  // generations used up
        } else {
            ++obj.generation;
            obj.kill_all_entries();
            obj.wake_revoked_locked();  // (3D): every waiter went through a now dead entry
            const u64 key = fill(space, e, obj, Rights::ALL, 0);
            out = Endpoint(&space, Capability(key), obj.id, obj.owner);
        }
    }
    if (!out) unreserve(space, e);
    return out;
}

CapabilitySpace* CapabilityOps::space_at(Registry& registry, u32 index, u64 serial) {
    if (index >= registry.space_capacity_) return nullptr;
    CapabilitySpace* s = &registry.spaces_[index];
    return s->serial_.load(std::memory_order_acquire) == serial ? s : nullptr;
}

}  // namespace detail

// ---- capability spaces ----

Result<Endpoint> CapabilitySpace::endpoint(Capability handle, u16 rights) {
    return registry_->validate_capability(*this, handle, rights);
}

Result<CapabilityInfo> CapabilitySpace::inspect(Capability handle) {
    const Endpoint e = VIPC_TRY(endpoint(handle, 0));
    return e.info();
}

Result<void> CapabilitySpace::revoke(Capability handle) {
    return CapabilityOps::kill(*this, handle, CapabilityOps::Kill::Subtree);
}

Result<void> CapabilitySpace::release(Capability handle) {
    return CapabilityOps::kill(*this, handle, CapabilityOps::Kill::Alone);
}

CapabilitySpaceStats CapabilitySpace::stats() {
    MutexLock lk(lock_);
    const u32 dead = dead_.load(std::memory_order_relaxed);
    return CapabilitySpaceStats{capacity_, used_ > dead ? used_ - dead : 0, counter_};
}

Registry::Registry(Platform& platform, Allocator& allocator, u32 max_endpoints, u32 max_spaces)
    : platform_(&platform), allocator_(&allocator), lock_(platform) {
    seed_ = splitmix64(platform.now_ns() ^ reinterpret_cast<usize>(this));
    void* space_memory = max_spaces == 0 ? nullptr
                                         : allocator.allocate(sizeof(CapabilitySpace) * max_spaces,
                                                              alignof(CapabilitySpace));
    if (space_memory == nullptr) return;  // capacity_ stays 0: create_* give OutOfMemory
    void* memory = max_endpoints == 0 ? nullptr
                                      : allocator.allocate(sizeof(EndpointObject) * max_endpoints,
                                                           alignof(EndpointObject));
    if (memory == nullptr) {
        allocator.deallocate(space_memory, sizeof(CapabilitySpace) * max_spaces,
                             alignof(CapabilitySpace));
        return;
    }
    spaces_ = static_cast<CapabilitySpace*>(space_memory);
    space_capacity_ = max_spaces;
    for (u32 i = space_capacity_; i-- > 0;) {
        CapabilitySpace* s = new (&spaces_[i]) CapabilitySpace(platform);
        s->registry_ = this;
        s->index_ = i;
        s->next_free_ = free_spaces_;
        free_spaces_ = s;
    }
    slots_ = static_cast<EndpointObject*>(memory);
    capacity_ = max_endpoints;
    for (u32 i = 0; i < capacity_; ++i) {
        new (&slots_[i]) EndpointObject(platform);
        slots_[i].index = i;
        slots_[i].free_next = i + 2 <= capacity_ ? i + 2 : 0;
    }
    free_head_ = 1;
}

Registry::~Registry() {
    for (u32 i = 0; i < capacity_; ++i) {
        EndpointObject& obj = slots_[i];
        {
            MutexLock lk(obj.lock);
            if (obj.registered) {
                obj.close_locked();
                obj.kill_all_entries();
                obj.registered = false;
                allocator_->deallocate(obj.queue.storage(), sizeof(Message) * obj.queue.capacity(),
                                       alignof(Message));
            }
        }
        obj.~EndpointObject();
    }
    if (slots_ != nullptr) {
        allocator_->deallocate(slots_, sizeof(EndpointObject) * capacity_, alignof(EndpointObject));
    }
    for (u32 i = 0; i < space_capacity_; ++i) {
        CapabilitySpace& s = spaces_[i];
        if (s.entries_ != nullptr) {
            for (u32 k = 0; k < s.capacity_; ++k)
                s.entries_[k].~CapabilityEntry();
            allocator_->deallocate(s.entries_, sizeof(CapabilityEntry) * s.capacity_,
                                   alignof(CapabilityEntry));
        }
        s.~CapabilitySpace();
    }
    if (spaces_ != nullptr) {
        allocator_->deallocate(spaces_, sizeof(CapabilitySpace) * space_capacity_,
                               alignof(CapabilitySpace));
    }
}

EndpointObject* Registry::slot(u32 index) const {
    return &slots_[index];
}

Result<CapabilitySpace*> Registry::create_space(ProcessId holder, u32 max_entries) {
    if (max_entries < 1) max_entries = 1;
    if (max_entries > Capability::MAX_INDEX + 1) max_entries = Capability::MAX_INDEX + 1;
    MutexLock lk(lock_);
    for (u32 i = 0; i < space_capacity_; ++i) {
        if (spaces_[i].registered_ && spaces_[i].holder_ == holder) return IpcError::EndpointBusy;
    }
    CapabilitySpace* s = free_spaces_;
    if (s == nullptr) return IpcError::OutOfMemory;
    void* memory =
        allocator_->allocate(sizeof(CapabilityEntry) * max_entries, alignof(CapabilityEntry));
    if (memory == nullptr) return IpcError::OutOfMemory;
    free_spaces_ = s->next_free_;
    s->next_free_ = nullptr;
    s->registered_ = true;
    s->holder_ = holder;
    ++live_spaces_;
    const u64 serial = ++space_serial_;
    MutexLock sl(s->lock_);
    s->entries_ = static_cast<CapabilityEntry*>(memory);
    s->capacity_ = max_entries;
    for (u32 i = 0; i < max_entries; ++i) {
        CapabilityEntry* e = new (&s->entries_[i]) CapabilityEntry();
        e->space = s;
        e->free_next = i + 2 <= max_entries ? i + 2 : 0;
    }
    s->free_head_ = 1;
    s->used_ = 0;
    s->dead_.store(0, std::memory_order_relaxed);
    s->counter_ = 0;
    s->secret_ = splitmix64(seed_ ^ (serial * 0xD6E8FEB86659FD93ull));
    s->serial_.store(serial, std::memory_order_release);
    s->active_ = true;
    return s;
}

CapabilitySpace* Registry::find_space(ProcessId holder) {
    MutexLock lk(lock_);
    for (u32 i = 0; i < space_capacity_; ++i) {
        if (spaces_[i].registered_ && spaces_[i].holder_ == holder) return &spaces_[i];
    }
    return nullptr;
}

Result<CapabilitySpace*> Registry::space(ProcessId holder) {
    if (CapabilitySpace* s = find_space(holder)) return s;
    Result<CapabilitySpace*> created = create_space(holder);
    if (!created && created.error() == IpcError::EndpointBusy) {
        if (CapabilitySpace* s = find_space(holder)) return s;  // another thread made it
    }
    return created;
}

u32 Registry::destroy_space(CapabilitySpace& space) {
    u32 released = 0;
    {
        MutexLock sl(space.lock_);
        if (!space.active_) return 0;
        space.active_ = false;
        space.serial_.store(0, std::memory_order_release);
        for (u32 i = 0; i < space.capacity_; ++i) {
            CapabilityEntry* e = &space.entries_[i];
            if (e->state.load(std::memory_order_acquire) != CapabilityEntry::LIVE) continue;
            const u64 key = e->key.load(std::memory_order_acquire);
            if (key == 0) continue;  // being killed right now
            EndpointObject& obj =
                *slot(CapabilityEntry::slot_of(e->target.load(std::memory_order_relaxed)));
            MutexLock lk(obj.lock);
            if (e->key.load(std::memory_order_relaxed) != key) continue;
            // The death rule: the entry goes, its children elsewhere stay (re-parented).
            obj.release_entry(e);
            obj.wake_revoked_locked();  // (3D)
            ++released;
        }
        for (u32 i = 0; i < space.capacity_; ++i)
            space.entries_[i].~CapabilityEntry();
        allocator_->deallocate(space.entries_, sizeof(CapabilityEntry) * space.capacity_,
                               alignof(CapabilityEntry));
        space.entries_ = nullptr;
        space.capacity_ = 0;
        space.free_head_ = 0;
        space.used_ = 0;
    }
    MutexLock lk(lock_);
    space.registered_ = false;
    space.next_free_ = free_spaces_;
    free_spaces_ = &space;
    --live_spaces_;
    return released;
}

RemovedProcess Registry::remove_process(ProcessId holder) {
    RemovedProcess out;
    out.endpoints = remove_process_endpoints(holder);
    if (CapabilitySpace* s = find_space(holder)) out.entries = destroy_space(*s);
    return out;
}

// ---- endpoints ----

Result<Endpoint> Registry::create_endpoint(ProcessId owner, u32 capacity) {
    CapabilitySpace* s = VIPC_TRY(space(owner));
    return create_endpoint(*s, capacity);
}

Result<Endpoint> Registry::create_endpoint(CapabilitySpace& owner, u32 capacity) {
    capacity = clamp_capacity(capacity);
    void* storage = allocator_->allocate(sizeof(Message) * capacity, alignof(Message));
    if (storage == nullptr) return IpcError::OutOfMemory;
    u32 index;
    {
        MutexLock lk(lock_);
        if (free_head_ == 0) {
            allocator_->deallocate(storage, sizeof(Message) * capacity, alignof(Message));
            return IpcError::OutOfMemory;
        }
        index = free_head_ - 1;
        free_head_ = slots_[index].free_next;
    }
    Result<Endpoint> out = IpcError::OutOfMemory;
    {
        MutexLock sl(owner.lock_);
        CapabilityEntry* e = owner.active_ ? CapabilityOps::reserve(owner) : nullptr;
        if (e != nullptr) {
            EndpointObject& obj = *slot(index);
            MutexLock lk(obj.lock);
            ++obj.generation;  // a reused slot never reaches past kLastGeneration (remove_slot)
            obj.registered = true;
            obj.active = true;
            obj.id = g_endpoint_counter.fetch_add(1, std::memory_order_relaxed);
            obj.owner = owner.holder_;
            obj.bound = false;
            obj.next_txid = 1;
            obj.counters = EndpointStats{};
            obj.queue.reset(static_cast<Message*>(storage), capacity);
            const u64 key = CapabilityOps::fill(owner, e, obj, Rights::ALL, 0);
            out = Endpoint(&owner, Capability(key), obj.id, obj.owner);
        } else if (!owner.active_) {
            out = IpcError::ProcessNotFound;
        }
    }
    MutexLock lk(lock_);
    if (!out) {
        allocator_->deallocate(storage, sizeof(Message) * capacity, alignof(Message));
        push_free_slot(slots_, free_head_, index);
        return out;
    }
    ++live_;
    ++created_;
    return out;
}

Result<EndpointWithGuard> Registry::create_endpoint_with_guard(ProcessId owner, u32 capacity) {
    Endpoint endpoint = VIPC_TRY(create_endpoint(owner, capacity));
    return EndpointWithGuard{endpoint, ChannelGuard(*this, endpoint.id(), owner)};
}

Result<Channel> Registry::create_channel(ProcessId owner, u32 capacity) {
    capacity = clamp_capacity(capacity);
    Endpoint send = VIPC_TRY(create_endpoint(owner, capacity));
    Result<Endpoint> receive = create_endpoint(owner, capacity);
    if (!receive) {
        (void)remove_endpoint(send.id(), owner);
        return receive.error();
    }
    return Channel(send, *receive, capacity);
}

Result<Endpoint> Registry::lookup(EndpointId id) {
    for (u32 i = 0; i < capacity_; ++i) {
        EndpointObject& obj = *slot(i);
        ProcessId owner;
        {
            MutexLock lk(obj.lock);
            if (!obj.registered || obj.id != id) continue;
            owner = obj.owner;
        }
        CapabilitySpace* s = VIPC_TRY(space(owner));
        MutexLock sl(s->lock_);
        if (!s->active_) return IpcError::ProcessNotFound;
        CapabilityEntry* e = CapabilityOps::reserve(*s);
        if (e == nullptr) return IpcError::OutOfMemory;
        MutexLock lk(obj.lock);
        if (!obj.registered || obj.id != id) {
            CapabilityOps::unreserve(*s, e);
            return IpcError::EndpointNotFound;
        }
        const u64 key = CapabilityOps::fill(*s, e, obj, Rights::ALL, 0);
        return Endpoint(s, Capability(key), obj.id, obj.owner);
    }
    return IpcError::EndpointNotFound;
}

Result<void> Registry::remove_slot(u32 index, EndpointId id) {
    EndpointObject& obj = *slot(index);
    void* storage;
    u32 capacity;
    bool retire;
    {
        MutexLock lk(obj.lock);
        if (!obj.registered || obj.id != id) return IpcError::EndpointNotFound;
        obj.close_locked();
        obj.kill_all_entries();  // every entry naming it, in every space, is now invalid
        obj.registered = false;
        storage = obj.queue.storage();
        capacity = obj.queue.capacity();
        obj.queue.reset(nullptr, 0);
        retire = obj.generation == kLastGeneration;  // its tokens could come back to life
    }
    allocator_->deallocate(storage, sizeof(Message) * capacity, alignof(Message));
    MutexLock lk(lock_);
    --live_;
    ++removed_;
    if (retire) {
        ++retired_;
    } else {
        obj.free_next = free_head_;
        free_head_ = index + 1;
    }
    return ok();
}

Result<void> Registry::remove_endpoint(EndpointId id, ProcessId caller) {
    for (u32 i = 0; i < capacity_; ++i) {
        EndpointObject& obj = *slot(i);
        {
            MutexLock lk(obj.lock);
            if (!obj.registered || obj.id != id) continue;
            if (obj.owner != caller) return IpcError::PermissionDenied;
        }
        return remove_slot(i, id);
    }
    return IpcError::EndpointNotFound;
}

u32 Registry::remove_process_endpoints(ProcessId owner) {
    u32 removed = 0;
    for (u32 i = 0; i < capacity_; ++i) {
        EndpointObject& obj = *slot(i);
        EndpointId id;
        {
            MutexLock lk(obj.lock);
            if (!obj.registered || obj.owner != owner) continue;
            id = obj.id;
        }
        if (remove_slot(i, id)) ++removed;
    }
    return removed;
}

Result<Endpoint> Registry::validate_capability(CapabilitySpace& space, Capability handle,
                                               u16 rights) {
    const Resolved r = VIPC_TRY(Resolver::resolve(&space, handle));
    MutexLock lk(r.object->lock);
    VIPC_TRY(r.object->check(r.entry, r.key, rights, true));
    return Endpoint(&space, handle, r.object->id, r.object->owner);
}

RegistryStats Registry::stats() {
    MutexLock lk(lock_);
    RegistryStats s;
    s.capacity = capacity_;
    s.live = live_;
    s.space_capacity = space_capacity_;
    s.live_spaces = live_spaces_;
    s.created = created_;
    s.removed = removed_;
    s.retired_slots = retired_;
    return s;
}

ChannelGuard& ChannelGuard::operator=(ChannelGuard&& other) noexcept {
    if (this != &other) {
        reset();
        registry_ = other.registry_;
        id_ = other.id_;
        owner_ = other.owner_;
        other.registry_ = nullptr;
        other.id_ = 0;
    }
    return *this;
}

void ChannelGuard::reset() {
    if (registry_ != nullptr && id_ != 0) {
        (void)registry_->remove_endpoint(id_, owner_);  // already removed: nothing to do
    }
    registry_ = nullptr;
    id_ = 0;
}

EndpointId ChannelGuard::release() {
    const EndpointId id = id_;
    registry_ = nullptr;
    id_ = 0;
    return id;
}

Channel& Channel::operator=(Channel&& other) noexcept {
    if (this != &other) {
        close();
        send_endpoint_ = other.send_endpoint_;
        receive_endpoint_ = other.receive_endpoint_;
        capacity_ = other.capacity_;
        other.send_endpoint_ = Endpoint();
        other.receive_endpoint_ = Endpoint();
        other.capacity_ = 0;
    }
    return *this;
}

Result<Message> Channel::call(const Message& request, Deadline deadline) {
    Registry* registry = receive_endpoint_.registry();
    if (registry == nullptr) return IpcError::InvalidCapability;  // closed or moved from
    return receive_endpoint_.call(request, deadline);
}

void Channel::close() {
    Endpoint* endpoints[] = {&send_endpoint_, &receive_endpoint_};
    for (Endpoint* e : endpoints) {
        if (e->registry() != nullptr) (void)e->registry()->remove_endpoint(e->id(), e->owner());
        *e = Endpoint();
    }
}

}  // namespace veridian::ipc
