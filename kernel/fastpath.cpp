// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the IPC fast path, shaped like seL4's fastpath_call / fastpath_reply_recv.
//
// A call to an endpoint on which a server is parked in receive, and the server's
// reply_receive back to a caller parked awaiting that reply, are done here in one straight
// function each: checks first, each of which leaves for the general path (return nullptr,
// nothing changed) when anything is unusual; then, past the POINT OF NO RETURN, the six
// message registers are copied into the other side's saved user frame, the reply slot is
// filled (call) or consumed (reply), and the CPU switches directly to the other process —
// its kernel stack, TSS and address space — without the run queue. syscall_entry then
// leaves through sysretq into the other process.
//
// Everything per-CPU comes from this_cpu() (the GS base): no global "current".
#include "abi.hpp"
#include "kernel_objects.hpp"
#include "syscall.hpp"
#include "task.hpp"

namespace vipc_kernel {

namespace MessageFlags = veridian::ipc::MessageFlags;
namespace Rights = veridian::ipc::Rights;

namespace {
constexpr std::uint64_t HAS_CAPABILITY_BIT = std::uint64_t{MessageFlags::HAS_CAPABILITY} << 32;
constexpr std::uint64_t IS_REPLY_BIT = std::uint64_t{MessageFlags::IS_REPLY} << 32;
}  // namespace

InterruptFrame* fastpath_call(InterruptFrame* f) {
    PerCpu& cpu = this_cpu();
    Task* caller = cpu.current;
    // Check 1: the handle names an entry of the caller's own table, with SEND.
    HandleEntry* e = caller->handles.lookup(f->rdi);
    if (e == nullptr || (e->rights & Rights::SEND) == 0) return nullptr;
    // Check 2: the core confirmed the entry after the last revocation anywhere, and its
    // endpoint still exists and is open.
    KernelEndpoint* k = e->kernel_endpoint;
    if (e->confirmed_at != revocation_count() || k->id != e->id || k->closed) return nullptr;
    // Check 3: no capability travels with the message.
    if ((f->rsi & HAS_CAPABILITY_BIT) != 0) return nullptr;
    // Check 4: a server is parked in receive (then the core's queue is empty: nobody is
    // ahead of this message).
    Task* server = k->receivers.front();
    if (server == nullptr) return nullptr;
    // Check 5: the server has a free reply slot (taking it is the last check: nothing
    // else has changed if there is none).
    ReplySlot* r = reply_slot_alloc(server);
    if (r == nullptr) return nullptr;

    // ---- POINT OF NO RETURN: from here the call completes on the fast path. ----
    k->receivers.pop_front();
    ++caller->call_seq;
    r->client = caller;
    r->call_seq = caller->call_seq;
    r->endpoint = k;
    // The message registers into the server's saved frame (the receive registers).
    InterruptFrame* sf = server->user_frame();
    sf->rax = 0;
    sf->rdi = reply_slot_handle(server, r);
    sf->rsi = f->rsi & ~IS_REPLY_BIT;
    sf->rdx = f->rdx;
    sf->r10 = f->r10;
    sf->r8 = f->r8;
    sf->r9 = f->r9;
    sf->r12 = caller->pid.value;
    sf->r13 = e->badge;
    server->park = IpcPark::None;
    server->parked_on = nullptr;
    // The caller parks awaiting the reply, with only its user frame saved.
    caller->call_state = CallState::Pending;
    caller->call_endpoint = k;
    caller->park = IpcPark::Reply;
    caller->state = TaskState::Blocked;
    caller->saved_frame = f;
    // Switch: kernel stack, TSS.rsp0, address space, current.
    activate(cpu, server);
    ++k->fast_calls;
    count_direct_switch();
    count_fast_call();
    return sf;
}

InterruptFrame* fastpath_reply_receive(InterruptFrame* f) {
    PerCpu& cpu = this_cpu();
    Task* server = cpu.current;
    // Check 1: the reply handle names a used reply slot of this server...
    ReplySlot* r = reply_slot_lookup(server, f->rdi);
    if (r == nullptr) return nullptr;
    // ...whose caller is parked awaiting exactly that call.
    Task* client = r->client;
    if (client->park != IpcPark::Reply || client->call_state != CallState::Pending ||
        client->call_seq != r->call_seq) {
        return nullptr;
    }
    // Check 2: the receive handle (r12) names an entry of the server's table, with RECEIVE.
    HandleEntry* e = server->handles.lookup(f->r12);
    if (e == nullptr || (e->rights & Rights::RECEIVE) == 0) return nullptr;
    // Check 3: the core confirmed the entry after the last revocation anywhere, and its
    // endpoint still exists and is open.
    KernelEndpoint* k = e->kernel_endpoint;
    if (e->confirmed_at != revocation_count() || k->id != e->id || k->closed) return nullptr;
    // Check 4: nothing can be in the core's queue (else the server must take it first).
    if (!k->known_empty()) return nullptr;
    // Check 5: no capability travels with the reply.
    if ((f->rsi & HAS_CAPABILITY_BIT) != 0) return nullptr;

    // ---- POINT OF NO RETURN: from here the reply and the receive complete here. ----
    *r = ReplySlot{};  // the reply capability is one-shot
    InterruptFrame* cf = client->user_frame();
    cf->rax = 0;
    cf->rdi = 0;
    cf->rsi = (f->rsi & ~HAS_CAPABILITY_BIT) | IS_REPLY_BIT;
    cf->rdx = f->rdx;
    cf->r10 = f->r10;
    cf->r8 = f->r8;
    cf->r9 = f->r9;
    cf->r12 = server->pid.value;
    cf->r13 = 0;
    client->call_state = CallState::Done;
    client->call_endpoint = nullptr;
    client->park = IpcPark::None;
    // The server parks in receive on the endpoint. Its frame now reads as a plain receive,
    // so that a restart (general path, S2) executes a receive and not the reply again.
    f->rax = vipc_abi::SYS_RECEIVE;
    f->rdi = f->r12;
    server->park = IpcPark::Receive;
    server->parked_on = k;
    server->state = TaskState::Blocked;
    server->wait_deadline = veridian::ipc::Deadline::never();
    server->saved_frame = f;
    k->receivers.push_back(server);
    // Switch straight back to the caller.
    activate(cpu, client);
    ++k->fast_replies;
    count_direct_switch();
    count_fast_reply_receive();
    return cf;
}

}  // namespace vipc_kernel
