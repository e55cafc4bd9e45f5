// veridian-ipc core: the registry of endpoints, ChannelGuard, Channel, the fast path and
// call_reply.
//
// The Registry owns a fixed table of endpoint slots (allocated once, at construction, from
// the Allocator it is given). A slot's memory is never freed while the registry lives, so a
// handle whose endpoint was removed can still be checked safely: its generation no longer
// matches. That is what makes capability validation O(1) and lock-free of the registry.
//
//   ThreadsPlatform platform;            // or the sim platform, or a kernel's scheduler
//   HeapAllocator allocator;
//   Registry registry(platform, allocator);
//   auto [endpoint, guard] = VIPC_TRY(registry.create_endpoint_with_guard(ProcessId{1}));
//   // ... guard's destructor closes the endpoint and removes it from the registry.
//
// Precondition of ~Registry: no thread is inside an operation on one of its endpoints.
// It closes every endpoint that is still registered.
#pragma once

#include "veridian/ipc/core/endpoint.hpp"
#include "veridian/ipc/core/mutex.hpp"

namespace veridian::ipc {

namespace detail {
class EndpointObject;
}

struct RegistryStats {
    u32 capacity = 0;       // slots in the table
    u32 live = 0;           // endpoints registered now
    u64 created = 0;        // endpoints created since the registry was made
    u64 removed = 0;        // endpoints removed since
    u64 retired_slots = 0;  // slots whose generation ran out (never reused)
};

class ChannelGuard;
class Channel;

struct EndpointWithGuard;

class Registry {
public:
    static constexpr u32 DEFAULT_MAX_ENDPOINTS = 1024;

    // Allocates the slot table. If that fails, every create_* returns OutOfMemory.
    Registry(Platform& platform, Allocator& allocator, u32 max_endpoints = DEFAULT_MAX_ENDPOINTS);
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // The seed's Endpoint::new(owner): a new endpoint with a queue of `capacity` messages
    // (clamped to 1..MAX_CHANNEL_QUEUE_SIZE), and a handle with all rights.
    // OutOfMemory when the table is full or the queue cannot be allocated.
    Result<Endpoint> create_endpoint(ProcessId owner, u32 capacity = MAX_CHANNEL_QUEUE_SIZE);

    // The seed's Endpoint::new_with_guard(owner).
    Result<EndpointWithGuard> create_endpoint_with_guard(ProcessId owner,
                                                         u32 capacity = MAX_CHANNEL_QUEUE_SIZE);

    // The seed's Channel::new(owner, capacity): two endpoints, capacity clamped to 1..1024.
    Result<Channel> create_channel(ProcessId owner, u32 capacity);

    // A handle with all rights to the live endpoint with this id (O(table size)). Meant for
    // the kernel side and for tools: it hands out every right.
    Result<Endpoint> lookup(EndpointId id);

    // Closes and unregisters the endpoint. Only its owner may: PermissionDenied otherwise.
    Result<void> remove_endpoint(EndpointId id, ProcessId caller);

    // Closes and unregisters every endpoint owned by `owner`; returns how many.
    u32 remove_process_endpoints(ProcessId owner);

    // The one place a capability is checked (O(1)): returns a handle when `capability`
    // names a live slot of this registry at its current generation and has `rights`.
    // Null, forged or stale -> InvalidCapability; missing rights -> PermissionDenied.
    Result<Endpoint> validate_capability(Capability capability, u16 rights);

    RegistryStats stats();
    Platform& platform() const { return *platform_; }
    Allocator& allocator() const { return *allocator_; }

private:
    friend class Endpoint;
    friend Result<void> fast_ipc_send(Registry& registry, const SmallMessage& msg);

    // The slot a capability names and its generation check, or the error. Does not lock.
    Result<detail::EndpointObject*> resolve(Capability capability, u16 rights);
    detail::EndpointObject* slot(u32 index) const;
    Result<void> remove_slot(u32 index, EndpointId id);

    Platform* platform_;
    Allocator* allocator_;
    detail::EndpointObject* slots_ = nullptr;
    u32 capacity_ = 0;
    Mutex lock_;  // guards the free list and the counters below (never held while blocking)
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

// The register-sized fast path. `msg.capability` names the target endpoint and must carry
// SEND. Full O(1) check (token -> table -> generation -> rights). If a receiver is blocked
// on the target, the 48 bytes are copied straight into its parking slot and it is woken;
// otherwise the slow path queues the message (ChannelFull when the queue is full: the fast
// path never blocks, like the seed's).
Result<void> fast_ipc_send(Registry& registry, const SmallMessage& msg);

// RPC: sends `request` to the endpoint `target` names (needs SEND), tagged with a fresh
// transaction id, and blocks until the matching reply, the deadline (Timeout) or the
// target closing (EndpointNotFound). The caller is the platform's current process.
Result<Message> call_reply(Registry& registry, const Message& request, Capability target,
                           Deadline deadline = Deadline::never());

}  // namespace veridian::ipc
