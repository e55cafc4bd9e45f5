// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: system-call dispatch, the general IPC path over the core, and teardown.
//
// The general path is the core's code: a message goes through the core's Endpoint
// (send_sync, fast_ipc_send, try_receive, receive_sync, close, revoke). What the kernel adds
// is what a process needs beyond a library call:
//   - a receive on an empty endpoint parks the process at the IPC level (its user frame
//     only, on the endpoint's receivers list) instead of blocking inside the core, so that
//     the fast path can hand it a call later without touching the core;
//   - a call's request carries a call token (the caller's task slot and call number) in
//     the message's capability word; the receiver gets a one-shot reply slot for it, and
//     the reply is written straight into the caller's user frame.
//
// The receive/send protocol (interrupts off throughout each step):
//   R1. receive: resolve the handle (RECEIVE), try_receive on the core. A message: done.
//   R2. ChannelEmpty: the queue is empty now (note_empty), and park on the
//       endpoint's receivers (Blocked, no wait key, no deadline) with the frame unchanged
//       (rax still the call number).
//   S1. send/call: resolve (SEND), hand the message to the core, count it (note_sent)
//       (send_sync; it may block there while the queue is full).
//   S2. then wake one parked receiver: remove it from the list and, on its behalf, take a
//       message from the core through its own handle (R1 for it) and complete the receive
//       into its frame; make it ready. (The fast path instead writes the registers straight
//       into its frame, without the core.)
//   C1. close / teardown of the owner: every parked receiver is made ready with
//       EndpointNotFound in rax, every caller still awaiting a reply through the endpoint
//       gets EndpointNotFound (fail_call), then the core's close wakes whoever blocks
//       inside the core.
// A call's reply protocol:
//   P1. call: the caller becomes Pending with a new call number before S1.
//   P2. the receiver of the request gets a reply slot {caller, call number} (R1 or F).
//   P3. reply: a slot whose caller is still Pending with that number writes the reply into
//       the caller's user frame, marks it Done and, if it is parked awaiting the reply,
//       makes it ready. The slot is freed either way (one-shot).
//   P4. the caller, after S1: Done already (replied, or failed by C1) -> return its frame
//       as written; else park awaiting the reply (P3 or C1 makes it ready).
#include "syscall.hpp"

#include "abi.hpp"
#include "kernel_objects.hpp"
#include "serial.hpp"
#include "task.hpp"

namespace vipc_kernel {

using veridian::ipc::Deadline;
using veridian::ipc::EndpointStats;
using veridian::ipc::IpcError;
using veridian::ipc::Message;
namespace MessageFlags = veridian::ipc::MessageFlags;
using veridian::ipc::Result;
namespace Rights = veridian::ipc::Rights;
using veridian::ipc::SmallMessage;

namespace {

SyscallStats g_stats;

void set_status(InterruptFrame* f, IpcError e) {
    f->rax = static_cast<std::uint64_t>(static_cast<std::int64_t>(veridian::ipc::error_code(e)));
}

InterruptFrame* fail(InterruptFrame* f, IpcError e) {
    set_status(f, e);
    return f;
}

InterruptFrame* succeed(InterruptFrame* f) {
    f->rax = 0;
    return f;
}

// Resolves the handle in the caller's table or returns the error in rax.
#define VIPC_RESOLVE_OR_FAIL(entry, task, handle, rights)        \
    HandleEntry* entry;                                          \
    {                                                            \
        auto resolved = (task)->handles.resolve(handle, rights); \
        if (!resolved) return fail(f, resolved.error());         \
        entry = *resolved;                                       \
    }

// A message with HAS_CAPABILITY carries a handle of the sender's space in data[0]: only
// the core may move it (it needs GRANT, and the receiver gets a handle of its own space),
// so such a message never takes a hand-off that bypasses the core.
bool carries_capability(const InterruptFrame* f) {
    return ((f->rsi >> 32) & MessageFlags::HAS_CAPABILITY) != 0;
}

// The message in a frame's six registers, as the core carries it. The kernel owns the
// capability word (a call token or 0) and the IS_REPLY flag.
Message message_from_frame(const InterruptFrame* f, std::uint64_t call_token) {
    const auto flags = static_cast<std::uint32_t>(f->rsi >> 32);
    return Message(SmallMessage{call_token,
                                static_cast<std::uint32_t>(f->rsi),
                                flags & ~MessageFlags::IS_REPLY,
                                {f->rdx, f->r10, f->r8, f->r9}});
}

// Writes a received message into a frame (the receive registers of abi.hpp).
void deliver(InterruptFrame* f, std::uint64_t reply_handle, std::uint64_t opcode_flags,
             const std::uint64_t data[4], std::uint64_t sender, veridian::ipc::Badge badge) {
    f->rax = 0;
    f->rdi = reply_handle;
    f->rsi = opcode_flags;
    f->rdx = data[0];
    f->r10 = data[1];
    f->r8 = data[2];
    f->r9 = data[3];
    f->r12 = sender;
    f->r13 = badge;
}

// A call token: bit 63 set, the caller's call number in bits 8-62, its task slot + 1 in
// bits 0-7. Every message the kernel hands to the core has 0 or a call token in its
// capability word (user registers never reach it).
constexpr std::uint64_t CALL_TOKEN_MARK = 1ull << 63;

std::uint64_t call_token(const Task* t) {
    return CALL_TOKEN_MARK | static_cast<std::uint64_t>(t - task_table() + 1) |
           ((t->call_seq << 8) & ~CALL_TOKEN_MARK);
}

std::uint64_t call_seq_of(std::uint64_t token) {
    return (token & ~CALL_TOKEN_MARK) >> 8;
}

Task* task_from_token(std::uint64_t token) {
    const std::uint64_t index = (token & 0xff) - 1;
    if ((token & CALL_TOKEN_MARK) == 0 || index >= MAX_TASKS) return nullptr;
    return &task_table()[index];
}

// P3/C1: the outcome of a Pending call is in its frame; wake it if it is parked.
void finish_call(Task* client) {
    client->call_state = CallState::Done;
    client->call_endpoint = nullptr;
    if (client->park == IpcPark::Reply) {
        client->park = IpcPark::None;
        make_ready(client);
    }
}

void fail_call(Task* client, IpcError e) {
    set_status(client->user_frame(), e);
    finish_call(client);
}

std::uint64_t reply_handle(const Task* server, const ReplySlot* r) {
    return REPLY_HANDLE_MARK | (std::uint64_t{r->tag} << 8) |
           static_cast<std::uint64_t>(r - server->replies + 1);
}

ReplySlot* lookup_reply(Task* server, std::uint64_t handle) {
    const std::uint64_t index = (handle & 0xff) - 1;
    if ((handle & ~(REPLY_HANDLE_MARK | 0xffffffull)) != 0 || (handle & REPLY_HANDLE_MARK) == 0 ||
        index >= REPLY_SLOTS) {
        return nullptr;
    }
    ReplySlot* r = &server->replies[index];
    if (!r->used || r->tag != ((handle >> 8) & 0xffff)) return nullptr;
    return r;
}

bool call_is_live(const ReplySlot& r) {
    return r.client->call_state == CallState::Pending && r.client->call_seq == r.call_seq;
}

// P2: the receiver's side of a message taken from the core.
void complete_receive(Task* self, InterruptFrame* f, KernelEndpoint* k, const Message& m) {
    const SmallMessage& s = m.small_message();
    std::uint64_t reply = 0;
    if (s.capability != 0) {
        Task* client = task_from_token(s.capability);
        if (client != nullptr && client->call_state == CallState::Pending &&
            (client->call_seq & (~CALL_TOKEN_MARK >> 8)) == call_seq_of(s.capability)) {
            if (ReplySlot* r = reply_slot_alloc(self)) {
                r->client = client;
                r->call_seq = client->call_seq;
                r->endpoint = k;
                reply = reply_handle(self, r);
            } else {
                fail_call(client, IpcError::EndpointBusy);  // the server holds too many
            }
        }
    }
    deliver(f, reply, s.opcode | (std::uint64_t{s.flags} << 32), s.data, m.sender().value,
            m.badge());
}

void park_receiver(Task* self, KernelEndpoint* k) {
    self->park = IpcPark::Receive;
    self->parked_on = k;
    self->state = TaskState::Blocked;
    self->wait_deadline = Deadline::never();
    k->receivers.push_back(self);
}

// S2: the first parked receiver takes the message now, on its own behalf: the core's
// try_receive through the receiver's own handle (its frame's rdi), then the receive
// completes into its frame and it is made ready. If the core has nothing for it after all
// (a receiver blocked inside the core took the message), it stays parked.
void wake_one_receiver(KernelEndpoint* k) {
    Task* t = k->receivers.pop_front();
    if (t == nullptr) return;
    t->park = IpcPark::None;
    t->parked_on = nullptr;
    InterruptFrame* tf = t->user_frame();
    auto e = t->handles.resolve(tf->rdi, Rights::RECEIVE);
    if (!e) {
        set_status(tf, e.error());
        make_ready(t);
        return;
    }
    auto m = (*e)->endpoint.try_receive();
    if (m) {
        k->note_taken();
        complete_receive(t, tf, k, *m);
    } else if (m.error() == IpcError::ChannelEmpty) {
        k->note_empty();
        park_receiver(t, k);
        return;
    } else {
        set_status(tf, m.error());
    }
    make_ready(t);
}

// The first parked receiver executes its receive again (after a revoke: whether its
// handle went stale is for its own receive to find out).
void restart_one_receiver(KernelEndpoint* k) {
    Task* t = k->receivers.pop_front();
    if (t == nullptr) return;
    t->park = IpcPark::None;
    t->parked_on = nullptr;
    t->user_frame()->rip -= 2;  // back over `syscall` (0f 05); rax still holds the number
    make_ready(t);
}

// C1.
void endpoint_closed(KernelEndpoint* k) {
    k->closed = true;
    k->note_empty();  // the core discarded the queue
    while (Task* t = k->receivers.pop_front()) {
        t->park = IpcPark::None;
        t->parked_on = nullptr;
        set_status(t->user_frame(), IpcError::EndpointNotFound);
        make_ready(t);
    }
    Task* tasks = task_table();
    for (std::uint32_t i = 0; i < MAX_TASKS; ++i) {
        Task& t = tasks[i];
        if (t.state != TaskState::Free && t.call_state == CallState::Pending &&
            t.call_endpoint == k) {
            fail_call(&t, IpcError::EndpointNotFound);
        }
    }
}

// --- the system calls ------------------------------------------------------------------

InterruptFrame* sys_debug_print(Task* self, InterruptFrame* f) {
    const std::uint64_t address = f->rdi, length = f->rsi;
    if (length > vipc_abi::DEBUG_PRINT_MAX_BYTES) return fail(f, IpcError::MessageTooLarge);
    if (!user_range_ok(address, length)) return fail(f, IpcError::InvalidMemoryRegion);
    // Copied out first (the range is mapped in the loaded address space); control bytes
    // are shown as '.', so a process cannot start a line of its own.
    char text[vipc_abi::DEBUG_PRINT_MAX_BYTES + 1];
    const auto* user = reinterpret_cast<const volatile char*>(address);
    for (std::uint64_t i = 0; i < length; ++i) {
        const char c = user[i];
        text[i] = (c < 0x20 || c == 0x7f) ? '.' : c;
    }
    text[length] = '\0';
    kprint("  [", self->name, "] ", text, "\n");
    return succeed(f);
}

InterruptFrame* sys_receive(Task* self, InterruptFrame* f, std::uint64_t handle,
                            std::uint64_t timeout_ns) {
    VIPC_RESOLVE_OR_FAIL(e, self, handle, Rights::RECEIVE);
    KernelEndpoint* k = e->kernel_endpoint;
    if (timeout_ns != 0) {
        // A deadline: the core's blocking receive, which ends with Timeout.
        ++k->core_receivers;
        auto m = e->endpoint.receive_sync(kernel_platform().after_ns(timeout_ns));
        --k->core_receivers;
        if (m) k->queue_uncertain = true;  // from the queue, or handed over: not known
        if (!m) return fail(f, m.error());
        complete_receive(self, f, k, *m);
        return f;
    }
    // R1. When the kernel knows the queue is empty and the handle is one the fast path
    // would accept, there is nothing to ask the core: park at once.
    if (k->known_empty() && e->confirmed_at == revocation_count() && !k->closed) {
        park_receiver(self, k);
        return switch_task(f);
    }
    auto m = e->endpoint.try_receive();
    if (m) {
        k->note_taken();
        complete_receive(self, f, k, *m);
        return f;
    }
    if (m.error() != IpcError::ChannelEmpty) return fail(f, m.error());
    k->note_empty();  // R2
    park_receiver(self, k);
    return switch_task(f);
}

InterruptFrame* sys_send(Task* self, InterruptFrame* f, std::uint64_t timeout_ns) {
    VIPC_RESOLVE_OR_FAIL(e, self, f->rdi, Rights::SEND);
    KernelEndpoint* k = e->kernel_endpoint;
    const Message m = message_from_frame(f, 0);
    const Deadline deadline =
        timeout_ns != 0 ? kernel_platform().after_ns(timeout_ns) : Deadline::never();
    if (auto r = e->endpoint.send_sync(m, deadline); !r) return fail(f, r.error());
    k->note_sent();
    wake_one_receiver(k);  // S2
    return succeed(f);
}

InterruptFrame* sys_fast_send(Task* self, InterruptFrame* f) {
    VIPC_RESOLVE_OR_FAIL(e, self, f->rdi, Rights::SEND);
    KernelEndpoint* k = e->kernel_endpoint;
    const Message m = message_from_frame(f, 0);
    // A parked receiver, and a handle the fast path would accept (not revoked since it was
    // made; the endpoint open), and no capability: the registers go straight into the
    // receiver's frame. Anything else is the core's to decide.
    Task* receiver = e->confirmed_at == revocation_count() && !k->closed && !carries_capability(f)
                         ? k->receivers.pop_front()
                         : nullptr;
    if (receiver != nullptr) {
        receiver->park = IpcPark::None;
        receiver->parked_on = nullptr;
        const SmallMessage& s = m.small_message();
        deliver(receiver->user_frame(), 0, s.opcode | (std::uint64_t{s.flags} << 32), s.data,
                self->pid.value, e->badge);
        make_ready(receiver);
        return succeed(f);
    }
    // Otherwise the core queues it, or says ChannelFull; it never blocks.
    if (const auto r = e->endpoint.send_async(m); !r) return fail(f, r.error());
    k->note_sent();
    wake_one_receiver(k);  // a receiver parked through a handle the hand-off would not use
    return succeed(f);
}

InterruptFrame* sys_call(Task* self, InterruptFrame* f) {
    VIPC_RESOLVE_OR_FAIL(e, self, f->rdi, Rights::SEND);
    KernelEndpoint* k = e->kernel_endpoint;
    ++self->call_seq;  // P1
    const Message m = message_from_frame(f, call_token(self));
    self->call_state = CallState::Pending;
    self->call_endpoint = k;
    const auto sent = e->endpoint.send_sync(m, Deadline::never());
    if (sent) {
        // Counted and a parked receiver woken even if the call is already answered: the
        // count must match what entered the queue (kernel_objects.hpp).
        k->note_sent();
        wake_one_receiver(k);  // S2
    }
    if (self->call_state == CallState::Done) return f;  // P4: replied, or failed by C1
    if (!sent) {
        self->call_state = CallState::None;
        self->call_endpoint = nullptr;
        return fail(f, sent.error());
    }
    self->park = IpcPark::Reply;  // P4
    self->state = TaskState::Blocked;
    self->wait_deadline = Deadline::never();
    return switch_task(f);
}

// P3. Not a system call on its own: reply and reply_receive.
Result<void> reply_general(Task* self, const InterruptFrame* f) {
    ReplySlot* r = lookup_reply(self, f->rdi);
    if (r == nullptr) return IpcError::InvalidCapability;
    // A reply goes straight into the caller's frame, not through the core: no capability.
    if (carries_capability(f)) return IpcError::InvalidMessage;
    const ReplySlot slot = *r;
    *r = ReplySlot{};                                           // one-shot
    if (!call_is_live(slot)) return IpcError::ProcessNotFound;  // the caller is gone
    const std::uint64_t data[4] = {f->rdx, f->r10, f->r8, f->r9};
    const std::uint64_t flags = (f->rsi >> 32) | MessageFlags::IS_REPLY;
    deliver(slot.client->user_frame(), 0, (f->rsi & 0xffffffffu) | (flags << 32), data,
            self->pid.value, 0);
    finish_call(slot.client);
    return veridian::ipc::ok();
}

InterruptFrame* sys_reply(Task* self, InterruptFrame* f) {
    const auto r = reply_general(self, f);
    return r ? succeed(f) : fail(f, r.error());
}

InterruptFrame* sys_reply_receive(Task* self, InterruptFrame* f) {
    if (const auto r = reply_general(self, f); !r) return fail(f, r.error());
    // From here on this is a receive: a restart (S2) must execute a receive, not the reply.
    f->rax = vipc_abi::SYS_RECEIVE | (f->rax & vipc_abi::GENERAL_PATH_FLAG);
    f->rdi = f->r12;
    return sys_receive(self, f, f->rdi, 0);
}

InterruptFrame* sys_close(Task* self, InterruptFrame* f) {
    VIPC_RESOLVE_OR_FAIL(e, self, f->rdi, Rights::REVOKE);
    if (auto r = e->endpoint.close(); !r) return fail(f, r.error());
    endpoint_closed(e->kernel_endpoint);
    return succeed(f);
}

InterruptFrame* sys_derive(Task* self, InterruptFrame* f) {
    auto h = self->handles.derive(f->rdi, static_cast<std::uint16_t>(f->rsi & Rights::ALL), f->rdx);
    if (!h) return fail(f, h.error());
    f->rdi = *h;
    return succeed(f);
}

// The endpoint owner's revoke (revoke_all: needs REVOKE): every entry of the endpoint in
// every space goes, the caller gets a fresh one (its handle in rdi).
InterruptFrame* sys_revoke(Task* self, InterruptFrame* f) {
    VIPC_RESOLVE_OR_FAIL(e, self, f->rdi, Rights::REVOKE);
    KernelEndpoint* k = e->kernel_endpoint;
    auto fresh = e->endpoint.revoke_all();
    count_revocation();  // before anything else can use a mirror slot
    if (!fresh) return fail(f, fresh.error());
    k->endpoint = *fresh;
    auto h = self->handles.adopt(k, *fresh);
    // Receivers parked through now-stale handles try again and get InvalidCapability.
    while (!k->receivers.empty())
        restart_one_receiver(k);
    if (!h) return fail(f, h.error());
    f->rdi = *h;
    return succeed(f);
}

InterruptFrame* sys_endpoint_stats(Task* self, InterruptFrame* f) {
    VIPC_RESOLVE_OR_FAIL(e, self, f->rdi, 0);
    KernelEndpoint* k = e->kernel_endpoint;
    auto s = e->endpoint.stats();
    if (!s) return fail(f, s.error());
    std::uint64_t parked = 0;
    for (Task* t = k->receivers.front(); t != nullptr; t = t->next)
        ++parked;
    std::uint64_t awaiting_reply = 0;
    Task* tasks = task_table();
    for (std::uint32_t i = 0; i < MAX_TASKS; ++i) {
        if (tasks[i].state != TaskState::Free && tasks[i].park == IpcPark::Reply &&
            tasks[i].call_endpoint == k) {
            ++awaiting_reply;
        }
    }
    f->rsi = s->queued;
    f->rdx = s->waiting_senders;
    f->r10 = s->waiting_receivers + parked;
    f->r8 = awaiting_reply;
    return succeed(f);
}

// Tears down the current process (it is running, so it is parked nowhere and awaits no
// reply): (1) its endpoints close as in C1 and leave the registry; (2) every caller it
// holds a reply slot for gets EndpointNotFound; (3) its handles go; (4) its frames are
// freed (after loading the kernel's address space); (5) the slot is Free.
InterruptFrame* teardown(InterruptFrame* f, ProcessEnd end, std::int64_t code,
                         std::uint64_t vector) {
    PerCpu& cpu = this_cpu();
    Task* self = cpu.current;
    KernelEndpoint* endpoints = kernel_endpoint_table();
    for (std::uint32_t i = 0; i < MAX_KERNEL_ENDPOINTS; ++i) {
        KernelEndpoint& k = endpoints[i];
        if (k.id != 0 && k.owner == self->pid) endpoint_closed(&k);
    }
    (void)kernel_registry().remove_process(self->pid);  // endpoints, then its space
    count_revocation();
    for (std::uint32_t i = 0; i < MAX_KERNEL_ENDPOINTS; ++i) {
        KernelEndpoint& k = endpoints[i];
        if (k.id != 0 && k.owner == self->pid) k.id = 0;  // entries naming it go stale
    }
    for (ReplySlot& r : self->replies) {
        if (r.used && call_is_live(r)) fail_call(r.client, IpcError::EndpointNotFound);
        r = ReplySlot{};
    }
    self->handles.clear();
    load_address_space(cpu, kernel_cr3());
    self->cr3 = kernel_cr3();
    address_space_destroy(self->space);
    if (self->outcome != nullptr) {
        self->outcome->end = end;
        self->outcome->exit_code = code;
        self->outcome->fault_vector = vector;
    }
    self->is_user = false;
    ++g_stats.processes_torn_down;
    return finish_current_task(f);
}

}  // namespace

ReplySlot* reply_slot_alloc(Task* server) {
    for (ReplySlot& r : server->replies) {
        if (!r.used) {
            r.used = true;
            r.tag = server->next_reply_tag;
            server->next_reply_tag = static_cast<std::uint16_t>(server->next_reply_tag * 5 + 0x3B);
            if (r.tag == 0) r.tag = 1;
            return &r;
        }
    }
    return nullptr;
}

std::uint64_t reply_slot_handle(const Task* server, const ReplySlot* r) {
    return reply_handle(server, r);
}

ReplySlot* reply_slot_lookup(Task* server, std::uint64_t handle) {
    return lookup_reply(server, handle);
}

InterruptFrame* user_fault(InterruptFrame* frame) {
    Task* self = this_cpu().current;
    std::uint64_t cr2;
    asm volatile("mov %%cr2, %0" : "=r"(cr2));
    kprint("  [kernel] process ", self->name, " (pid ", self->pid.value,
           ") ended by CPU exception ", frame->vector, " at rip=", Hex{frame->rip},
           " error=", Hex{frame->error_code}, " cr2=", Hex{cr2}, "\n");
    return teardown(frame, ProcessEnd::Faulted, 0, frame->vector);
}

SyscallStats syscall_stats() {
    return g_stats;
}

void count_fast_call() {
    ++g_stats.fast_calls;
}

void count_fast_reply_receive() {
    ++g_stats.fast_reply_receives;
}

}  // namespace vipc_kernel

extern "C" vipc_kernel::InterruptFrame* syscall_dispatch(vipc_kernel::InterruptFrame* f) {
    using namespace vipc_kernel;
    const std::uint64_t number = f->rax & vipc_abi::SYSCALL_NUMBER_MASK;
    if ((f->rax & vipc_abi::GENERAL_PATH_FLAG) == 0) {
        if (number == vipc_abi::SYS_CALL) {
            if (InterruptFrame* next = fastpath_call(f)) return next;
        } else if (number == vipc_abi::SYS_REPLY_RECEIVE) {
            if (InterruptFrame* next = fastpath_reply_receive(f)) return next;
        }
    }
    Task* self = this_cpu().current;
    ++g_stats.calls;
    switch (number) {
        case vipc_abi::SYS_DEBUG_PRINT:
            return sys_debug_print(self, f);
        case vipc_abi::SYS_EXIT:
            return teardown(f, ProcessEnd::Exited, static_cast<std::int64_t>(f->rdi), 0);
        case vipc_abi::SYS_YIELD:
            f->rax = 0;
            return switch_task(f);
        case vipc_abi::SYS_SEND:
            return sys_send(self, f, 0);
        case vipc_abi::SYS_SEND_DEADLINE:
            if (f->r12 == 0) return fail(f, IpcError::Timeout);
            return sys_send(self, f, f->r12);
        case vipc_abi::SYS_FAST_SEND:
            return sys_fast_send(self, f);
        case vipc_abi::SYS_RECEIVE:
            return sys_receive(self, f, f->rdi, 0);
        case vipc_abi::SYS_RECEIVE_DEADLINE:
            if (f->r12 == 0) return fail(f, IpcError::Timeout);
            return sys_receive(self, f, f->rdi, f->r12);
        case vipc_abi::SYS_CALL:
            return sys_call(self, f);
        case vipc_abi::SYS_REPLY:
            return sys_reply(self, f);
        case vipc_abi::SYS_REPLY_RECEIVE:
            return sys_reply_receive(self, f);
        case vipc_abi::SYS_CLOSE:
            return sys_close(self, f);
        case vipc_abi::SYS_DERIVE:
            return sys_derive(self, f);
        case vipc_abi::SYS_REVOKE:
            return sys_revoke(self, f);
        case vipc_abi::SYS_ENDPOINT_STATS:
            return sys_endpoint_stats(self, f);
        default:
            return fail(f, IpcError::InvalidMessage);
    }
}
