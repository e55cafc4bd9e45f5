// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc core: the registry of endpoints, ChannelGuard, Channel, the fast path and
// call_reply.
//
// The Registry owns a fixed table of endpoint slots and a fixed table of capability spaces
// (both allocated once, at construction, from the Allocator it is given; each space's entry
// table is allocated when the space is created). Neither a slot's nor a space object's
// memory is freed while the registry lives, so an entry whose endpoint was removed, or a
// message naming a torn-down space, can still be checked safely. That is what makes
// resolving a handle O(1) and free of the registry's lock.
//
//   ThreadsPlatform platform;            // or the sim platform, or a kernel's scheduler
//   HeapAllocator allocator;
//   Registry registry(platform, allocator);
//   auto [endpoint, guard] = VIPC_TRY(registry.create_endpoint_with_guard(ProcessId{1}));
//   // ... guard's destructor closes the endpoint and removes it from the registry.
//   CapabilitySpace& client = *VIPC_TRY(registry.space(ProcessId{2}));
//   Endpoint send = VIPC_TRY(endpoint.transfer(client, TransferMode::Copy, Rights::SEND));
//   VIPC_TRY(registry.remove_process(ProcessId{2}));   // the client died: its space goes
//
// Precondition of ~Registry: no thread is inside an operation on one of its endpoints.
// It closes every endpoint that is still registered and frees every space.
#pragma once

#include "veridian/ipc/core/endpoint.hpp"
#include "veridian/ipc/core/mutex.hpp"

namespace veridian::ipc {

namespace detail {
class EndpointObject;
struct Resolver;
struct CapabilityOps;
}  // namespace detail

struct RegistryStats {
    u32 capacity = 0;        // slots in the table
    u32 live = 0;            // endpoints registered now
    u32 space_capacity = 0;  // capability spaces the registry can hold
    u32 live_spaces = 0;     // capability spaces now
    u64 created = 0;         // endpoints created since the registry was made
    u64 removed = 0;         // endpoints removed since
    u64 retired_slots = 0;   // slots whose generation ran out (never reused)
};

class ChannelGuard;
class Channel;

struct EndpointWithGuard;

// What remove_process did.
struct RemovedProcess {
    u32 endpoints = 0;  // endpoints closed and removed
    u32 entries = 0;    // entries of its space released
};

class Registry {
public:
    static constexpr u32 DEFAULT_MAX_ENDPOINTS = 1024;
    static constexpr u32 DEFAULT_MAX_SPACES = 64;

    // Allocates the slot table and the space table. If that fails, every create_* returns
    // OutOfMemory.
    Registry(Platform& platform, Allocator& allocator, u32 max_endpoints = DEFAULT_MAX_ENDPOINTS,
             u32 max_spaces = DEFAULT_MAX_SPACES);
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // A capability space for `holder` with a table of `max_entries` (1..Capability::
    // MAX_INDEX) entries. EndpointBusy when `holder` has one already; OutOfMemory when the
    // space table is full or the entries cannot be allocated.
    Result<CapabilitySpace*> create_space(ProcessId holder,
                                          u32 max_entries = CapabilitySpace::DEFAULT_ENTRIES);
    // The space of `holder` (O(spaces)), created with the default size if it has none.
    Result<CapabilitySpace*> space(ProcessId holder);
    // The space of `holder`, or nullptr.
    CapabilitySpace* find_space(ProcessId holder);
    // Tears the space down: every entry is released (operations blocked through one wake
    // with InvalidCapability; capabilities derived from them in other spaces are kept,
    // re-parented), the table is freed. Precondition: no thread of the holder is inside an
    // operation that started on this space. Returns the entries released.
    u32 destroy_space(CapabilitySpace& space);
    // A holder went away: remove_process_endpoints(holder), then destroy_space of its space.
    RemovedProcess remove_process(ProcessId holder);

    // The seed's Endpoint::new(owner): a new endpoint with a queue of `capacity` messages
    // (clamped to 1..MAX_CHANNEL_QUEUE_SIZE), and a root entry with all rights in the
    // owner's space (created with the default size if it has none).
    // OutOfMemory when a table is full or the queue cannot be allocated.
    Result<Endpoint> create_endpoint(ProcessId owner, u32 capacity = MAX_CHANNEL_QUEUE_SIZE);
    Result<Endpoint> create_endpoint(CapabilitySpace& owner, u32 capacity = MAX_CHANNEL_QUEUE_SIZE);

    // The seed's Endpoint::new_with_guard(owner).
    Result<EndpointWithGuard> create_endpoint_with_guard(ProcessId owner,
                                                         u32 capacity = MAX_CHANNEL_QUEUE_SIZE);

    // The seed's Channel::new(owner, capacity): two endpoints, capacity clamped to 1..1024.
    Result<Channel> create_channel(ProcessId owner, u32 capacity);

    // A new root entry with all rights, in the owner's space, to the live endpoint with this
    // id (O(table size)): how an owner that kept only the id gets a handle back.
    // EndpointNotFound when no such endpoint; the owner's space is the only one it fills.
    Result<Endpoint> lookup(EndpointId id);

    // Closes and unregisters the endpoint. Only its owner may: PermissionDenied otherwise.
    Result<void> remove_endpoint(EndpointId id, ProcessId caller);

    // Closes and unregisters every endpoint owned by `owner` (every waiter wakes with
    // EndpointNotFound; every entry naming them becomes invalid); returns how many.
    u32 remove_process_endpoints(ProcessId owner);

    // Resolves `handle` in `space` (O(1)): a handle object when it names a live entry of
    // that space, at its endpoint's current generation, with `rights`. Null, forged, stale,
    // freed or another space's -> InvalidCapability; missing rights -> PermissionDenied.
    Result<Endpoint> validate_capability(CapabilitySpace& space, Capability handle, u16 rights);

    RegistryStats stats();
    Platform& platform() const { return *platform_; }
    Allocator& allocator() const { return *allocator_; }

private:
    friend class Endpoint;
    friend class CapabilitySpace;
    friend struct detail::Resolver;
    friend struct detail::CapabilityOps;

    detail::EndpointObject* slot(u32 index) const;
    Result<void> remove_slot(u32 index, EndpointId id);

    Platform* platform_;
    Allocator* allocator_;
    detail::EndpointObject* slots_ = nullptr;
    u32 capacity_ = 0;
    CapabilitySpace* spaces_ = nullptr;
    u32 space_capacity_ = 0;
    CapabilitySpace* free_spaces_ VIPC_GUARDED_BY(lock_) = nullptr;
    u32 live_spaces_ VIPC_GUARDED_BY(lock_) = 0;
    u64 space_serial_ VIPC_GUARDED_BY(lock_) = 0;
    u64 seed_ = 0;  // mixed into each space's secret
    Mutex lock_;    // guards the free list and the counters below (never held while blocking)
    u32 free_head_ VIPC_GUARDED_BY(lock_) = 0;  // index + 1 of the first free slot; 0 = none
    u32 live_ VIPC_GUARDED_BY(lock_) = 0;
    u64 created_ VIPC_GUARDED_BY(lock_) = 0;
    u64 removed_ VIPC_GUARDED_BY(lock_) = 0;
    u64 retired_ VIPC_GUARDED_BY(lock_) = 0;
};

// RAII ownership of one endpoint: its destructor closes the endpoint and removes it from
// the registry (the seed's ChannelGuard). Move-only.
class ChannelGuard {
public:
    ChannelGuard() = default;
    ChannelGuard(Registry& registry, EndpointId id, ProcessId owner)
        : registry_(&registry), id_(id), owner_(owner) {}
    ChannelGuard(ChannelGuard&& other) noexcept { *this = static_cast<ChannelGuard&&>(other); }
    ChannelGuard& operator=(ChannelGuard&& other) noexcept;
    ChannelGuard(const ChannelGuard&) = delete;
    ChannelGuard& operator=(const ChannelGuard&) = delete;
    ~ChannelGuard() { reset(); }

    EndpointId endpoint_id() const { return id_; }
    // Closes and removes the endpoint now (idempotent).
    void reset();
    // Gives up ownership without closing.
    EndpointId release();

private:
    Registry* registry_ = nullptr;
    EndpointId id_ = 0;
    ProcessId owner_{};
};

struct EndpointWithGuard {
    Endpoint endpoint;
    ChannelGuard guard;
};

// Two endpoints owned together (the seed's Channel). send()/receive() go through the
// receive endpoint; call() sends a request there and waits for its reply. The Channel owns
// both endpoints: close() (or the destructor) closes and removes them. Move-only.
class Channel {
public:
    Channel() = default;
    Channel(Channel&& other) noexcept { *this = static_cast<Channel&&>(other); }
    Channel& operator=(Channel&& other) noexcept;
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;
    ~Channel() { close(); }

    EndpointId send_id() const { return send_endpoint_.id(); }
    EndpointId receive_id() const { return receive_endpoint_.id(); }
    u32 capacity() const { return capacity_; }
    Endpoint& send_endpoint() { return send_endpoint_; }
    Endpoint& receive_endpoint() { return receive_endpoint_; }

    Result<void> send(const Message& msg) { return receive_endpoint_.send_async(msg); }
    Result<Message> receive() { return receive_endpoint_.try_receive(); }
    Result<Message> call(const Message& request, Deadline deadline = Deadline::never());
    // Closes and removes both endpoints (idempotent).
    void close();

private:
    friend class Registry;
    Channel(Endpoint send, Endpoint receive, u32 capacity)
        : send_endpoint_(send), receive_endpoint_(receive), capacity_(capacity) {}

    Endpoint send_endpoint_;
    Endpoint receive_endpoint_;
    u32 capacity_ = 0;
};

// The register-sized fast path. `msg.capability` is a handle of the caller's space `from`
// and must carry SEND. Full O(1) resolve (space's table -> entry -> endpoint slot ->
// generation -> rights). If a receiver is blocked on the target, the 48 bytes are copied
// straight into its parking slot and it is woken; otherwise the slow path queues the
// message (ChannelFull when the queue is full: the fast path never blocks, like the seed's).
// HAS_CAPABILITY is not carried on the fast path (InvalidMessage).
Result<void> fast_ipc_send(CapabilitySpace& from, const SmallMessage& msg);

// RPC: sends `request` to the endpoint the handle `target` of the caller's space `from`
// names (needs SEND), tagged with a fresh transaction id, and blocks until the matching
// reply, the deadline (Timeout), the target closing (EndpointNotFound) or the entry's
// revocation (InvalidCapability).
Result<Message> call_reply(CapabilitySpace& from, const Message& request, Capability target,
                           Deadline deadline = Deadline::never());

}  // namespace veridian::ipc
