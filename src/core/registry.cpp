// veridian-ipc core: the registry's slot table, creation, removal and capability checks.
//
// Lock order: the registry lock and a slot's lock are never held together. Creation pops a
// free slot under the registry lock, then initializes it under the slot lock; removal
// retires the endpoint under the slot lock, then returns the slot under the registry lock.
#include "veridian/ipc/core/registry.hpp"

#include <new>

#include "core/endpoint_object.hpp"

namespace veridian::ipc {

using detail::EndpointObject;

namespace {
// Endpoint ids: one counter for the whole program, starting at 1, never reused.
std::atomic<u64> g_endpoint_counter{1};

constexpr u16 kLastGeneration = 0xFFFF;

u32 clamp_capacity(u32 capacity) {
    if (capacity < 1) return 1;
    if (capacity > MAX_CHANNEL_QUEUE_SIZE) return MAX_CHANNEL_QUEUE_SIZE;
    return capacity;
}
}  // namespace

Registry::Registry(Platform& platform, Allocator& allocator, u32 max_endpoints)
    : platform_(&platform), allocator_(&allocator), lock_(platform) {
    void* memory = max_endpoints == 0 ? nullptr
                                      : allocator.allocate(sizeof(EndpointObject) * max_endpoints,
                                                           alignof(EndpointObject));
    if (memory == nullptr) return;  // capacity_ stays 0: create_* give OutOfMemory
    slots_ = static_cast<EndpointObject*>(memory);
    capacity_ = max_endpoints;
    for (u32 i = 0; i < capacity_; ++i) {
        new (&slots_[i]) EndpointObject(platform);
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
}

EndpointObject* Registry::slot(u32 index) const {
    return &slots_[index];
}

Result<EndpointObject*> Registry::resolve(Capability capability, u16 rights) {
    (void)rights;  // checked under the slot lock by EndpointObject::check
    if (VIPC_UNLIKELY(capability.is_null() || capability.index() >= capacity_ ||
                      capability.generation() == 0)) {
        return IpcError::InvalidCapability;
    }
    return slot(capability.index());
}

Result<Endpoint> Registry::create_endpoint(ProcessId owner, u32 capacity) {
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
        ++live_;
        ++created_;
    }
    EndpointObject& obj = *slot(index);
    MutexLock lk(obj.lock);
    ++obj.generation;  // a reused slot never reaches past kLastGeneration (see remove_slot)
    obj.registered = true;
    obj.active = true;
    obj.id = g_endpoint_counter.fetch_add(1, std::memory_order_relaxed);
    obj.owner = owner;
    obj.bound = false;
    obj.next_txid = 1;
    obj.counters = EndpointStats{};
    obj.queue.reset(static_cast<Message*>(storage), capacity);
    return Endpoint(this, Capability::make(index, obj.generation, Rights::ALL), obj.id, owner);
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
        MutexLock lk(obj.lock);
        if (obj.registered && obj.id == id) {
            return Endpoint(this, Capability::make(i, obj.generation, Rights::ALL), obj.id,
                            obj.owner);
        }
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

Result<Endpoint> Registry::validate_capability(Capability capability, u16 rights) {
    EndpointObject* obj = VIPC_TRY(resolve(capability, rights));
    MutexLock lk(obj->lock);
    VIPC_TRY(obj->check(capability, rights, true));
    return Endpoint(this, capability, obj->id, obj->owner);
}

RegistryStats Registry::stats() {
    MutexLock lk(lock_);
    return RegistryStats{capacity_, live_, created_, removed_, retired_};
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
    return receive_endpoint_.call(request, registry->platform().current_process(), deadline);
}

void Channel::close() {
    Endpoint* endpoints[] = {&send_endpoint_, &receive_endpoint_};
    for (Endpoint* e : endpoints) {
        if (e->registry() != nullptr) (void)e->registry()->remove_endpoint(e->id(), e->owner());
        *e = Endpoint();
    }
}

}  // namespace veridian::ipc
