// veridian-ipc core: the endpoint's operations and their wait/wake protocols.
//
// Every blocking operation follows the same numbered protocol (after Zircon's channel):
//   (0) take the endpoint lock and check the capability (EndpointObject::check);
//   (1) complete at once if possible: hand off to a blocked party, or use the queue;
//   (2) otherwise register a Waiter on this stack in the right list, and release the lock;
//   (3) wait on the Waiter's own word until it leaves WAITING. It leaves in one of three
//       ways, each decided under the endpoint lock, so exactly one happens:
//       (3A) a peer completed it: removed it from the list, wrote or took its message,
//            set DONE;
//       (3B) close removed it and set CLOSED;
//       (3C) its deadline passed: it takes the lock itself; if it is still WAITING it
//            removes itself (TIMED_OUT), else 3A or 3B won the race and stands;
//   (4) return the outcome; the Waiter is not in any list any more.
// A waker changes the state (release) before it wakes the word, and never touches the
// Waiter after that store; waking uses the word's address only as a key.
#include "core/endpoint_object.hpp"
#include "veridian/ipc/core/registry.hpp"

namespace veridian::ipc {

namespace detail {

namespace {
// Sets a waiter's outcome and returns its word for a wake after the lock is released.
std::atomic<u32>* complete(Waiter* w, u32 outcome) {
    std::atomic<u32>* word = &w->state;
    word->store(outcome, std::memory_order_release);
    return word;
}
}  // namespace

Result<void> EndpointObject::check(Capability cap, u16 rights, bool allow_closed) const {
    if (!registered || cap.generation() != generation) return IpcError::InvalidCapability;
    if (!cap.has_rights(rights)) return IpcError::PermissionDenied;
    if (!active && !allow_closed) return IpcError::EndpointNotFound;
    return ok();
}

u32 EndpointObject::park(Waiter& w, WaiterList& list, Deadline deadline, UniqueLock& lk) {
    if (const u32 s = w.state.load(std::memory_order_relaxed); s != Waiter::WAITING) {
        lk.unlock();  // already completed while we held the lock (a call's early reply)
        return s;
    }
    ++counters.blocked;
    lk.unlock();
    Platform& p = platform();
    // (3) Wait for a peer (3A), close (3B) or the deadline (3C).
    for (;;) {
        const u32 s = w.state.load(std::memory_order_acquire);
        if (s != Waiter::WAITING) return s;  // (3A)/(3B): the waker removed us
        if (deadline.expired(p.now_ns())) break;
        if (p.wait(&w.state, Waiter::WAITING, deadline) == WaitResult::TimedOut) break;
    }
    // (3C) The deadline passed. Decide the race with a waker under the lock.
    lk.lock();
    u32 s = w.state.load(std::memory_order_acquire);
    if (s == Waiter::WAITING) {
        list.remove(&w);
        ++counters.timed_out;
        s = Waiter::TIMED_OUT;
    }
    lk.unlock();
    return s;
}

std::atomic<u32>* EndpointObject::refill_from_blocked_sender() {
    Waiter* s = senders.pop_front();
    if (s == nullptr) return nullptr;
    queue.push(s->message);
    ++counters.sent;
    return complete(s, Waiter::DONE);
}

Result<void> EndpointObject::send(Message msg, SendMode mode, Deadline deadline, UniqueLock& lk) {
    Platform& p = platform();
    // (1a) A receiver is blocked: hand the message straight into its parking slot.
    if (Waiter* r = receivers.pop_front()) {
        r->message = msg;
        ++counters.sent;
        ++counters.received;
        if (mode == SendMode::Fast) ++counters.fast_path_hits;
        std::atomic<u32>* word = complete(r, Waiter::DONE);
        lk.unlock();
        p.wake_one(word);
        return ok();
    }
    if (mode == SendMode::Fast) ++counters.slow_path;
    // (1b) Room in the queue.
    if (!queue.full()) {
        queue.push(msg);
        ++counters.sent;
        lk.unlock();
        return ok();
    }
    ++counters.full;
    if (mode != SendMode::Sync) {
        lk.unlock();
        return IpcError::ChannelFull;
    }
    // (2) Full: block as a sender; a receiver that frees a place queues our message (3A).
    Waiter w;
    w.message = msg;
    senders.push_back(&w);
    switch (park(w, senders, deadline, lk)) {
        case Waiter::DONE:
            return ok();
        case Waiter::CLOSED:
            return IpcError::EndpointNotFound;
        default:
            return IpcError::Timeout;
    }
}

Result<Message> EndpointObject::receive(ProcessId receiver, bool block, Deadline deadline,
                                        UniqueLock& lk) {
    (void)receiver;
    Platform& p = platform();
    // (1) A queued message; the place it frees goes to the first blocked sender.
    if (!queue.empty()) {
        Message msg = queue.pop();
        ++counters.received;
        std::atomic<u32>* sender_word = refill_from_blocked_sender();
        lk.unlock();
        if (sender_word != nullptr) p.wake_one(sender_word);
        return msg;
    }
    if (!block) {
        lk.unlock();
        return IpcError::ChannelEmpty;
    }
    // (2) Empty: block as a receiver; a sender hands its message into w.message (3A).
    Waiter w;
    receivers.push_back(&w);
    switch (park(w, receivers, deadline, lk)) {
        case Waiter::DONE:
            return w.message;
        case Waiter::CLOSED:
            return IpcError::EndpointNotFound;
        default:
            return IpcError::Timeout;
    }
}

Result<Message> EndpointObject::call(Message request, ProcessId caller, Deadline deadline,
                                     UniqueLock& lk) {
    // (2, first) Register for the reply before the request can reach a server, so that a
    // reply can never arrive before its caller is findable.
    Waiter reply_waiter;
    reply_waiter.txid = next_txid++;
    callers.push_back(&reply_waiter);
    request.set_transaction_id(reply_waiter.txid);
    request.set_sender(caller);
    request.set_flags(request.flags() & ~MessageFlags::IS_REPLY);

    // (1) Send the request like send_sync (it may block while the queue is full).
    Result<void> sent = send(request, SendMode::Sync, deadline, lk);
    lk.lock();
    if (!sent) {
        // The request was not delivered; withdraw unless close already took us out.
        if (reply_waiter.state.load(std::memory_order_relaxed) == Waiter::WAITING) {
            callers.remove(&reply_waiter);
        }
        lk.unlock();
        return sent.error();
    }
    // (3) Wait for reply() (3A), close (3B) or the deadline (3C).
    switch (park(reply_waiter, callers, deadline, lk)) {
        case Waiter::DONE:
            return reply_waiter.message;
        case Waiter::CLOSED:
            return IpcError::EndpointNotFound;
        default:
            return IpcError::Timeout;
    }
}

Result<void> EndpointObject::reply(const Message& request, Message response, UniqueLock& lk) {
    const TransactionId txid = request.transaction_id();
    if (txid == 0) {
        lk.unlock();
        return IpcError::InvalidMessage;  // not a request sent by call()
    }
    Waiter* c = callers.find_transaction(txid);
    if (c == nullptr) {
        lk.unlock();
        return IpcError::ProcessNotFound;  // the caller gave up (deadline) or never was
    }
    callers.remove(c);
    response.set_transaction_id(txid);
    response.set_flags(response.flags() | MessageFlags::IS_REPLY);
    c->message = response;
    ++counters.sent;
    ++counters.received;
    std::atomic<u32>* word = complete(c, Waiter::DONE);
    lk.unlock();
    platform().wake_one(word);
    return ok();
}

void EndpointObject::close_locked() {
    if (!active) return;
    active = false;
    bound = false;
    counters.discarded_on_close += queue.size();
    queue.clear();
    // (3B) Every waiter leaves with CLOSED. Waking under the lock keeps this loop simple
    // (the list is not touched after unlock); woken waiters do not need the lock to leave.
    Platform& p = platform();
    WaiterList* lists[] = {&receivers, &senders, &callers};
    for (WaiterList* list : lists) {
        while (Waiter* w = list->pop_front())
            p.wake_one(complete(w, Waiter::CLOSED));
    }
}

EndpointStats EndpointObject::stats_locked() const {
    EndpointStats s = counters;
    s.queued = queue.size();
    s.capacity = queue.capacity();
    s.waiting_senders = senders.size();
    s.waiting_receivers = receivers.size();
    s.waiting_callers = callers.size();
    s.active = active;
    s.bound = bound;
    s.bound_to = bound_to;
    return s;
}

}  // namespace detail

using detail::EndpointObject;
using detail::SendMode;

// Each handle operation: (0) resolve the slot, lock it, check the capability, then run the
// object's operation, which releases the lock.
#define VIPC_LOCK_AND_CHECK(obj, lk, rights, allow_closed)                   \
    if (registry_ == nullptr) return IpcError::InvalidCapability;            \
    EndpointObject* obj = VIPC_TRY(registry_->resolve(capability_, rights)); \
    UniqueLock lk(obj->lock);                                                \
    VIPC_TRY(obj->check(capability_, rights, allow_closed))

bool Endpoint::is_active() const {
    if (registry_ == nullptr) return false;
    auto obj = registry_->resolve(capability_, 0);
    if (!obj) return false;
    MutexLock lk((*obj)->lock);
    return (*obj)->check(capability_, 0).has_value();
}

Result<void> Endpoint::bind(ProcessId target) {
    VIPC_LOCK_AND_CHECK(obj, lk, 0, false);
    if (obj->bound) return IpcError::EndpointBusy;
    obj->bound = true;
    obj->bound_to = target;
    return ok();
}

Result<void> Endpoint::send_sync(const Message& msg, ProcessId sender, Deadline deadline) {
    VIPC_LOCK_AND_CHECK(obj, lk, Rights::SEND, false);
    Message m = msg;
    m.set_sender(sender);
    m.set_transaction_id(0);
    return obj->send(m, SendMode::Sync, deadline, lk);
}

Result<Message> Endpoint::receive_sync(ProcessId receiver, Deadline deadline) {
    VIPC_LOCK_AND_CHECK(obj, lk, Rights::RECEIVE, false);
    return obj->receive(receiver, true, deadline, lk);
}

Result<void> Endpoint::send_async(const Message& msg) {
    VIPC_LOCK_AND_CHECK(obj, lk, Rights::SEND, false);
    Message m = msg;
    m.set_sender(obj->platform().current_process());
    m.set_transaction_id(0);
    return obj->send(m, SendMode::Async, Deadline::past(), lk);
}

Result<Message> Endpoint::try_receive() {
    VIPC_LOCK_AND_CHECK(obj, lk, Rights::RECEIVE, false);
    return obj->receive(ProcessId{}, false, Deadline::past(), lk);
}

Result<void> Endpoint::close() {
    VIPC_LOCK_AND_CHECK(obj, lk, Rights::REVOKE, true);
    obj->close_locked();
    return ok();
}

Result<Message> Endpoint::call(const Message& request, ProcessId caller, Deadline deadline) {
    VIPC_LOCK_AND_CHECK(obj, lk, Rights::SEND, false);
    return obj->call(request, caller, deadline, lk);
}

Result<void> Endpoint::reply(const Message& request, const Message& response) {
    VIPC_LOCK_AND_CHECK(obj, lk, Rights::RECEIVE, false);
    return obj->reply(request, response, lk);
}

// The shape of posix::Connection (see message_port.hpp): the platform's current process acts.
Result<void> Endpoint::send_sync(const Message& msg, Deadline deadline) {
    if (registry_ == nullptr) return IpcError::InvalidCapability;
    return send_sync(msg, registry_->platform().current_process(), deadline);
}

Result<Message> Endpoint::receive_sync(Deadline deadline) {
    if (registry_ == nullptr) return IpcError::InvalidCapability;
    return receive_sync(registry_->platform().current_process(), deadline);
}

Result<Message> Endpoint::call(const Message& request, Deadline deadline) {
    if (registry_ == nullptr) return IpcError::InvalidCapability;
    return call(request, registry_->platform().current_process(), deadline);
}

Result<void> Endpoint::fast_send(const SmallMessage& msg) {
    if (registry_ == nullptr) return IpcError::InvalidCapability;
    SmallMessage m = msg;
    m.capability = capability_.raw();
    return fast_ipc_send(*registry_, m);
}

Result<Endpoint> Endpoint::revoke() {
    VIPC_LOCK_AND_CHECK(obj, lk, Rights::REVOKE, true);
    if (obj->generation == 0xFFFF) return IpcError::ResourceBusy;  // generations used up
    ++obj->generation;
    return Endpoint(registry_, Capability::make(capability_.index(), obj->generation, Rights::ALL),
                    obj->id, obj->owner);
}

Result<EndpointStats> Endpoint::stats() const {
    VIPC_LOCK_AND_CHECK(obj, lk, 0, true);
    return obj->stats_locked();
}

#undef VIPC_LOCK_AND_CHECK

// The fast path, straight-line like seL4's: cheap checks, each unusual case leaves for the
// slow path (the general send), which handles everything.
Result<void> fast_ipc_send(Registry& registry, const SmallMessage& msg) {
    const Capability cap(msg.capability);
    EndpointObject* obj = VIPC_TRY(registry.resolve(cap, Rights::SEND));
    UniqueLock lk(obj->lock);
    VIPC_TRY(obj->check(cap, Rights::SEND));
    Message m(msg);
    m.set_sender(obj->platform().current_process());
    return obj->send(m, SendMode::Fast, Deadline::past(), lk);
}

Result<Message> call_reply(Registry& registry, const Message& request, Capability target,
                           Deadline deadline) {
    Endpoint endpoint = VIPC_TRY(registry.validate_capability(target, Rights::SEND));
    return endpoint.call(request, registry.platform().current_process(), deadline);
}

}  // namespace veridian::ipc
