// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc core: the endpoint's operations and their wait/wake protocols.
//
// Every blocking operation follows the same numbered protocol (after Zircon's channel):
//   (0) resolve the handle in the caller's space (Resolver::resolve: table -> entry -> slot),
//       take the endpoint lock and check the entry (EndpointObject::check: the entry is
//       still the filling the handle names, at the slot's generation, with the rights);
//   (1) complete at once if possible: hand off to a blocked party, or use the queue;
//   (2) otherwise register a Waiter on this stack in the right list, and release the lock;
//   (3) wait on the Waiter's own word until it leaves WAITING. It leaves in one of three
//       ways, each decided under the endpoint lock, so exactly one happens:
//       (3A) a peer completed it: removed it from the list, wrote or took its message,
//            set DONE;
//       (3B) close removed it and set CLOSED;
//       (3C) its deadline passed: it takes the lock itself; if it is still WAITING it
//            removes itself (TIMED_OUT), else 3A, 3B or 3D won the race and stands;
//       (3D) the entry it was checked through stopped being live (revoke, release, a move,
//            revoke_all, its space's teardown): whoever killed the entry did so under this
//            endpoint's lock and, in the same critical section, removed every waiter whose
//            `via` entry no longer carries its `via_key` and set REVOKED. Because the check
//            in (0) and the registration in (2) happen under that same lock hold, a waiter
//            is either registered before the kill (and found by it) or checked after it
//            (and refused with InvalidCapability): none parks through a dead entry;
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

Result<void> EndpointObject::check(const CapabilityEntry* entry, u64 key, u16 rights,
                                   bool allow_closed) const {
    // SYNC POINT: the acquire pairs with the release store of `key` at the filling; every
    // later change to a live entry naming this slot is made under `lock`, which we hold.
    if (VIPC_UNLIKELY(entry->key.load(std::memory_order_acquire) != key)) {
        return IpcError::InvalidCapability;
    }
    const u64 t = entry->target.load(std::memory_order_relaxed);
    if (VIPC_UNLIKELY(!registered || CapabilityEntry::slot_of(t) != index ||
                      CapabilityEntry::generation_of(t) != generation)) {
        return IpcError::InvalidCapability;
    }
    if (VIPC_UNLIKELY((CapabilityEntry::rights_of(t) & rights) != rights)) {
        return IpcError::PermissionDenied;
    }
    if (VIPC_UNLIKELY(!active && !allow_closed)) return IpcError::EndpointNotFound;
    return ok();
}

void EndpointObject::link_entry(CapabilityEntry* e) {
    e->endpoint_prev = nullptr;
    e->endpoint_next = entries;
    if (entries != nullptr) entries->endpoint_prev = e;
    entries = e;
}

void EndpointObject::kill_entry(CapabilityEntry* e) {
    (e->endpoint_prev != nullptr ? e->endpoint_prev->endpoint_next : entries) = e->endpoint_next;
    if (e->endpoint_next != nullptr) e->endpoint_next->endpoint_prev = e->endpoint_prev;
    e->endpoint_next = e->endpoint_prev = nullptr;
    e->parent = e->first_child = e->next_sibling = e->prev_sibling = nullptr;
    e->key.store(0, std::memory_order_release);
    e->space->dead_.fetch_add(1, std::memory_order_relaxed);
    // SYNC POINT: the last touch of the entry under this lock; the release pairs with the
    // acquire load of `state` by the space's sweeper, which may then reuse the entry.
    e->state.store(CapabilityEntry::DEAD, std::memory_order_release);
}

namespace {
void unlink_from_siblings(CapabilityEntry* e) {
    if (e->prev_sibling != nullptr) {
        e->prev_sibling->next_sibling = e->next_sibling;
    } else if (e->parent != nullptr) {
        e->parent->first_child = e->next_sibling;
    }
    if (e->next_sibling != nullptr) e->next_sibling->prev_sibling = e->prev_sibling;
    e->parent = e->next_sibling = e->prev_sibling = nullptr;
}

void add_child(CapabilityEntry* parent, CapabilityEntry* c) {
    c->parent = parent;
    c->prev_sibling = nullptr;
    c->next_sibling = parent->first_child;
    if (c->next_sibling != nullptr) c->next_sibling->prev_sibling = c;
    parent->first_child = c;
}
}  // namespace

void EndpointObject::revoke_subtree(CapabilityEntry* root) {
    unlink_from_siblings(root);
    // Post-order, without a stack: an entry's links are read before it is killed and never
    // after, and a parent is killed only after all of its children.
    CapabilityEntry* n = root;
    while (n->first_child != nullptr)
        n = n->first_child;
    for (;;) {
        CapabilityEntry* next = nullptr;
        if (n != root) {
            if (n->next_sibling != nullptr) {
                next = n->next_sibling;
                while (next->first_child != nullptr)
                    next = next->first_child;
            } else {
                next = n->parent;
            }
        }
        const bool last = n == root;
        kill_entry(n);
        if (last) break;
        n = next;
    }
}

void EndpointObject::release_entry(CapabilityEntry* e) {
    CapabilityEntry* parent = e->parent;
    unlink_from_siblings(e);
    CapabilityEntry* c = e->first_child;
    e->first_child = nullptr;
    while (c != nullptr) {
        CapabilityEntry* next = c->next_sibling;
        c->parent = c->next_sibling = c->prev_sibling = nullptr;
        if (parent != nullptr) add_child(parent, c);  // else it becomes a root
        c = next;
    }
    kill_entry(e);
}

void EndpointObject::adopt_entry(CapabilityEntry* parent, CapabilityEntry* child) {
    add_child(parent, child);
}

void EndpointObject::replace_entry(CapabilityEntry* old, CapabilityEntry* replacement) {
    replacement->parent = old->parent;
    replacement->prev_sibling = old->prev_sibling;
    replacement->next_sibling = old->next_sibling;
    if (old->prev_sibling != nullptr) {
        old->prev_sibling->next_sibling = replacement;
    } else if (old->parent != nullptr) {
        old->parent->first_child = replacement;
    }
    if (old->next_sibling != nullptr) old->next_sibling->prev_sibling = replacement;
    replacement->first_child = old->first_child;
    for (CapabilityEntry* c = old->first_child; c != nullptr; c = c->next_sibling) {
        c->parent = replacement;
    }
    old->parent = old->first_child = old->next_sibling = old->prev_sibling = nullptr;
    kill_entry(old);
}

void EndpointObject::kill_all_entries() {
    while (entries != nullptr)
        kill_entry(entries);
}

u32 EndpointObject::wake_revoked_locked() {
    u32 woken = 0;
    Platform& p = platform();
    WaiterList* lists[] = {&receivers, &senders, &callers};
    for (WaiterList* list : lists) {
        for (Waiter* w = list->first(); w != nullptr;) {
            Waiter* next = w->next;
            if (w->via != nullptr && w->via->key.load(std::memory_order_relaxed) != w->via_key) {
                list->remove(w);
                // (3D) After this store the waiter is not touched again (as in close).
                p.wake_one(complete(w, Waiter::REVOKED));
                ++woken;
            }
            w = next;
        }
    }
    return woken;
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

Result<void> EndpointObject::send(Message msg, SendMode mode, Deadline deadline,
                                  const CapabilityEntry* via, u64 key, UniqueLock& lk) {
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
    w.via = via;
    w.via_key = key;
    senders.push_back(&w);
    switch (park(w, senders, deadline, lk)) {
        case Waiter::DONE:
            return ok();
        case Waiter::CLOSED:
            return IpcError::EndpointNotFound;
        case Waiter::REVOKED:
            return IpcError::InvalidCapability;
        default:
            return IpcError::Timeout;
    }
}

Result<Message> EndpointObject::receive(bool block, Deadline deadline, const CapabilityEntry* via,
                                        u64 key, UniqueLock& lk) {
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
    w.via = via;
    w.via_key = key;
    receivers.push_back(&w);
    switch (park(w, receivers, deadline, lk)) {
        case Waiter::DONE:
            return w.message;
        case Waiter::CLOSED:
            return IpcError::EndpointNotFound;
        case Waiter::REVOKED:
            return IpcError::InvalidCapability;
        default:
            return IpcError::Timeout;
    }
}

Result<Message> EndpointObject::call(Message request, Deadline deadline, const CapabilityEntry* via,
                                     u64 key, UniqueLock& lk) {
    // (2, first) Register for the reply before the request can reach a server, so that a
    // reply can never arrive before its caller is findable.
    Waiter reply_waiter;
    reply_waiter.txid = next_txid++;
    reply_waiter.via = via;
    reply_waiter.via_key = key;
    callers.push_back(&reply_waiter);
    request.set_transaction_id(reply_waiter.txid);
    request.set_flags(request.flags() & ~MessageFlags::IS_REPLY);

    // (1) Send the request like send_sync (it may block while the queue is full; a
    // revocation then wakes both of our waiters, and the send reports it).
    Result<void> sent = send(request, SendMode::Sync, deadline, via, key, lk);
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
        case Waiter::REVOKED:
            return IpcError::InvalidCapability;
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

using detail::CapabilityEntry;
using detail::CapabilityOps;
using detail::EndpointObject;
using detail::Resolved;
using detail::Resolver;
using detail::SendMode;

namespace {

constexpr u32 kCapabilityFlags = MessageFlags::HAS_CAPABILITY | MessageFlags::MOVE_CAPABILITY;

// A message about to be sent through `space`: when it carries a capability, checks GRANT on
// it (PermissionDenied, nothing sent) and records the sender's space for the receiver's
// side; otherwise clears what a sender may have left in the transit fields.
Result<void> prepare_transit_slow(CapabilitySpace& space, Message& m) {
    CoreMessageAccess::set_transit(m, 0, 0);
    if ((m.flags() & MessageFlags::HAS_CAPABILITY) == 0) {
        m.set_flags(m.flags() & ~MessageFlags::MOVE_CAPABILITY);
        return ok();
    }
    if (!m.is_small()) return IpcError::InvalidMessage;  // only data[0] of a small message
    const Resolved r = VIPC_TRY(Resolver::resolve(&space, Capability(m.small_message().data[0])));
    {
        MutexLock lk(r.object->lock);
        VIPC_TRY(r.object->check(r.entry, r.key, Rights::GRANT, true));
    }
    CoreMessageAccess::set_transit(m, CapabilityOps::space_index(space),
                                   CapabilityOps::space_serial(space));
    return ok();
}

// The common case stays inline: no capability flag, nothing to do (the transit fields are
// read only when a capability flag is set, and every delivery clears them).
inline Result<void> prepare_transit(CapabilitySpace& space, Message& m) {
    if (VIPC_LIKELY((m.flags() & kCapabilityFlags) == 0)) return ok();
    return prepare_transit_slow(space, m);
}

}  // namespace

// On the receiving side, with no lock held: a carried capability is installed in the
// receiver's space and data[0] rewritten to its handle there; if it cannot be (revoked,
// GRANT lost, sender's space gone, table full), data[0] becomes 0 and the flags are cleared.
// A message whose capability flag the core did not stamp never passes a handle on.
namespace {
void deliver_transit(CapabilitySpace& receiver, Message& m) {
    const u64 serial = CoreMessageAccess::transit_serial(m);
    const u32 from_index = CoreMessageAccess::transit_space(m);
    CoreMessageAccess::set_transit(m, 0, 0);
    const bool move = (m.flags() & MessageFlags::MOVE_CAPABILITY) != 0;
    if (m.is_small() && serial != 0 && (m.flags() & MessageFlags::HAS_CAPABILITY) != 0) {
        if (CapabilitySpace* from =
                CapabilityOps::space_at(receiver.registry(), from_index, serial)) {
            Result<Endpoint> installed = CapabilityOps::install(
                receiver, *from, Capability(m.small_message().data[0]), Rights::GRANT, Rights::ALL,
                0, move ? detail::Placement::ReplaceOf : detail::Placement::ChildOf, serial);
            if (installed) {
                m.small_message().data[0] = installed->capability().raw();
                m.set_flags(m.flags() & ~MessageFlags::MOVE_CAPABILITY);
                return;
            }
        }
    }
    if (m.is_small()) m.small_message().data[0] = 0;
    m.set_flags(m.flags() & ~kCapabilityFlags);
}

// Called with no lock held, on what an operation is about to return.
inline void delivered(CapabilitySpace* receiver, Result<Message>& r) {
    if (VIPC_UNLIKELY(r.has_value() && (r->flags() & kCapabilityFlags) != 0)) {
        deliver_transit(*receiver, *r);
    }
}
}  // namespace

// Each handle operation: (0) resolve the handle in this space, lock the slot, check the
// entry, then run the object's operation, which releases the lock.
#define VIPC_LOCK_AND_CHECK(res, lk, rights, allow_closed)                 \
    const Resolved res = VIPC_TRY(Resolver::resolve(space_, capability_)); \
    UniqueLock lk(res.object->lock);                                       \
    VIPC_TRY(res.object->check(res.entry, res.key, rights, allow_closed))

// The core's stamp on every message it sends: who sent it and through which badge.
#define VIPC_STAMP(m, res)            \
    (m).set_sender(space_->holder()); \
    (m).set_badge((res).entry->badge.load(std::memory_order_relaxed))

Registry* Endpoint::registry() const {
    return space_ != nullptr ? &space_->registry() : nullptr;
}

bool Endpoint::is_active() const {
    auto r = Resolver::resolve(space_, capability_);
    if (!r) return false;
    MutexLock lk(r->object->lock);
    return r->object->check(r->entry, r->key, 0).has_value();
}

Result<CapabilityInfo> Endpoint::info() const {
    VIPC_LOCK_AND_CHECK(res, lk, 0, true);
    const u64 t = res.entry->target.load(std::memory_order_relaxed);
    return CapabilityInfo{res.object->id, CapabilityEntry::rights_of(t),
                          res.entry->badge.load(std::memory_order_relaxed)};
}

Result<Endpoint> Endpoint::derive(u16 rights_to_keep, Badge badge) const {
    if (space_ == nullptr) return IpcError::InvalidCapability;
    return CapabilityOps::install(*space_, *space_, capability_, 0, rights_to_keep, badge,
                                  detail::Placement::ChildOf);
}

Result<Endpoint> Endpoint::transfer(CapabilitySpace& to, TransferMode mode, u16 rights_to_keep,
                                    Badge badge) const {
    if (space_ == nullptr) return IpcError::InvalidCapability;
    return CapabilityOps::install(
        to, *space_, capability_, Rights::GRANT, rights_to_keep, badge,
        mode == TransferMode::Move ? detail::Placement::ReplaceOf : detail::Placement::ChildOf);
}

Result<Endpoint> Endpoint::transfer(ProcessId to, TransferMode mode, u16 rights_to_keep,
                                    Badge badge) const {
    if (space_ == nullptr) return IpcError::InvalidCapability;
    CapabilitySpace* target = VIPC_TRY(space_->registry().space(to));
    return transfer(*target, mode, rights_to_keep, badge);
}

Result<void> Endpoint::revoke() const {
    if (space_ == nullptr) return IpcError::InvalidCapability;
    return CapabilityOps::kill(*space_, capability_, CapabilityOps::Kill::Subtree);
}

Result<void> Endpoint::release() const {
    if (space_ == nullptr) return IpcError::InvalidCapability;
    return CapabilityOps::kill(*space_, capability_, CapabilityOps::Kill::Alone);
}

Result<Endpoint> Endpoint::revoke_all() const {
    if (space_ == nullptr) return IpcError::InvalidCapability;
    return CapabilityOps::revoke_all(*space_, capability_);
}

Result<void> Endpoint::bind(ProcessId target) {
    VIPC_LOCK_AND_CHECK(res, lk, 0, false);
    if (res.object->bound) return IpcError::EndpointBusy;
    res.object->bound = true;
    res.object->bound_to = target;
    return ok();
}

Result<void> Endpoint::send_sync(const Message& msg, Deadline deadline) {
    if (space_ == nullptr) return IpcError::InvalidCapability;
    Message m = msg;
    VIPC_TRY(prepare_transit(*space_, m));
    VIPC_LOCK_AND_CHECK(res, lk, Rights::SEND, false);
    VIPC_STAMP(m, res);
    m.set_transaction_id(0);
    return res.object->send(m, SendMode::Sync, deadline, res.entry, res.key, lk);
}

Result<Message> Endpoint::receive_sync(Deadline deadline) {
    VIPC_LOCK_AND_CHECK(res, lk, Rights::RECEIVE, false);
    Result<Message> r = res.object->receive(true, deadline, res.entry, res.key, lk);
    delivered(space_, r);  // the lock is released: receive returned with it unlocked
    return r;
}

Result<void> Endpoint::send_async(const Message& msg) {
    if (space_ == nullptr) return IpcError::InvalidCapability;
    Message m = msg;
    VIPC_TRY(prepare_transit(*space_, m));
    VIPC_LOCK_AND_CHECK(res, lk, Rights::SEND, false);
    VIPC_STAMP(m, res);
    m.set_transaction_id(0);
    return res.object->send(m, SendMode::Async, Deadline::past(), res.entry, res.key, lk);
}

Result<Message> Endpoint::try_receive() {
    VIPC_LOCK_AND_CHECK(res, lk, Rights::RECEIVE, false);
    Result<Message> r = res.object->receive(false, Deadline::past(), res.entry, res.key, lk);
    delivered(space_, r);
    return r;
}

Result<void> Endpoint::close() {
    VIPC_LOCK_AND_CHECK(res, lk, Rights::REVOKE, true);
    res.object->close_locked();
    return ok();
}

Result<Message> Endpoint::call(const Message& request, Deadline deadline) {
    if (space_ == nullptr) return IpcError::InvalidCapability;
    Message m = request;
    VIPC_TRY(prepare_transit(*space_, m));
    VIPC_LOCK_AND_CHECK(res, lk, Rights::SEND, false);
    VIPC_STAMP(m, res);
    Result<Message> r = res.object->call(m, deadline, res.entry, res.key, lk);
    delivered(space_, r);
    return r;
}

Result<void> Endpoint::reply(const Message& request, const Message& response) {
    if (space_ == nullptr) return IpcError::InvalidCapability;
    Message m = response;
    VIPC_TRY(prepare_transit(*space_, m));
    VIPC_LOCK_AND_CHECK(res, lk, Rights::RECEIVE, false);
    VIPC_STAMP(m, res);
    return res.object->reply(request, m, lk);
}

Result<void> Endpoint::fast_send(const SmallMessage& msg) {
    if (space_ == nullptr) return IpcError::InvalidCapability;
    SmallMessage m = msg;
    m.capability = capability_.raw();
    return fast_ipc_send(*space_, m);
}

Result<EndpointStats> Endpoint::stats() const {
    VIPC_LOCK_AND_CHECK(res, lk, 0, true);
    return res.object->stats_locked();
}

#undef VIPC_STAMP
#undef VIPC_LOCK_AND_CHECK

// The fast path, straight-line like seL4's: cheap checks, each unusual case leaves for the
// slow path (the general send), which handles everything.
Result<void> fast_ipc_send(CapabilitySpace& from, const SmallMessage& msg) {
    if (VIPC_UNLIKELY((msg.flags & kCapabilityFlags) != 0)) return IpcError::InvalidMessage;
    const Resolved res = VIPC_TRY(Resolver::resolve(&from, Capability(msg.capability)));
    UniqueLock lk(res.object->lock);
    VIPC_TRY(res.object->check(res.entry, res.key, Rights::SEND));
    Message m(msg);
    m.set_sender(from.holder());
    m.set_badge(res.entry->badge.load(std::memory_order_relaxed));
    return res.object->send(m, SendMode::Fast, Deadline::past(), res.entry, res.key, lk);
}

Result<Message> call_reply(CapabilitySpace& from, const Message& request, Capability target,
                           Deadline deadline) {
    Endpoint endpoint = VIPC_TRY(from.endpoint(target, Rights::SEND));
    return endpoint.call(request, deadline);
}

}  // namespace veridian::ipc
