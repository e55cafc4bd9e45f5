// veridian-ipc core (private): the endpoint object that lives in a registry slot, its
// bounded queue and its waiters.
//
// Invariants, all under EndpointObject::lock:
//   - receivers non-empty  =>  queue empty  (a sender hands off before it queues)
//   - senders non-empty    =>  queue full   (a receiver that frees a place refills it from
//                                             the first blocked sender, in FIFO order)
//   - a Waiter is in at most one list, and only while its state is WAITING
//   - closed (!active)     =>  queue and every waiter list empty
#pragma once

#include <atomic>

#include "veridian/ipc/core/endpoint.hpp"
#include "veridian/ipc/core/mutex.hpp"

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

    std::atomic<u32> state{WAITING};
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

    // The one capability check, under `lock`: the slot holds a registered endpoint at the
    // token's generation, the token has `rights`, and (unless `allow_closed`) it is open.
    Result<void> check(Capability cap, u16 rights, bool allow_closed = false) const
        VIPC_REQUIRES(lock);

    // The operations, called with `lk` holding `lock` and check() passed. Each returns with
    // the lock released.
    Result<void> send(Message msg, SendMode mode, Deadline deadline, UniqueLock& lk)
        VIPC_REQUIRES(lock);
    Result<Message> receive(ProcessId receiver, bool block, Deadline deadline, UniqueLock& lk)
        VIPC_REQUIRES(lock);
    Result<Message> call(Message request, ProcessId caller, Deadline deadline, UniqueLock& lk)
        VIPC_REQUIRES(lock);
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

    BoundedQueue<Message> queue VIPC_GUARDED_BY(lock);
    WaiterList receivers VIPC_GUARDED_BY(lock);
    WaiterList senders VIPC_GUARDED_BY(lock);
    WaiterList callers VIPC_GUARDED_BY(lock);
    EndpointStats counters VIPC_GUARDED_BY(lock);

    u32 free_next = 0;  // registry free list link (index + 1); guarded by the registry lock

private:
    // Parks `w` (registered in `list`) until it leaves WAITING or the deadline passes.
    u32 park(Waiter& w, WaiterList& list, Deadline deadline, UniqueLock& lk) VIPC_REQUIRES(lock);
    // Moves the first blocked sender's message into the queue (a place was just freed).
    std::atomic<u32>* refill_from_blocked_sender() VIPC_REQUIRES(lock);
};

}  // namespace veridian::ipc::detail
