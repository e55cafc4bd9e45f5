// SPDX-License-Identifier: MIT OR Apache-2.0
// User program "adversary": a process that forges handles and passes bad pointers, the
// process it tries to reach, a server that faults while its clients wait, and a process
// that exits with its endpoints open and its callers waiting.
//
// Start arguments: the role, then up to three role arguments (below).
#include "vipc_user.hpp"

namespace {

using namespace vipc_user;

enum Role : uint64_t {
    FORGER = 0,             // (own endpoint, all rights; the victim's handle value; own
                            //  SEND-only handle to the victim's endpoint)
    VICTIM = 1,             // (endpoint): the one message it receives must be the legitimate one
    FAULTING_SERVER = 2,    // (endpoint, fault kind, clients): take one call, wait, fault
    EXITER = 3,             // (endpoint E, endpoint F, callers on E): take one call, wait, exit
    TAKE_ONE_AND_EXIT = 4,  // (endpoint): take one call, exit without answering
    REVOKER = 5,            // (endpoint V, all rights; S, SEND): revoke V, signal on S, receive V
    STALE_CALLER = 6,       // (S, RECEIVE; a SEND handle to V made before the revoke)
    GRANTER = 7,            // (own endpoint X, all rights; Y, SEND; X, SEND only): pass X on Y
    GRANTEE = 8,            // (Y, RECEIVE): receive a handle to X on Y, send through it
};

constexpr uint64_t LEGITIMATE = 0x1E617;

int64_t forger(uint64_t own, uint64_t victims, uint64_t send_only) {
    Checker c;
    Message m;
    m.data[0] = 0xF0F0;
    // Handles that name nothing in this process's table.
    c.expect_status(fast_send(0, m), vipc_abi::ERR_INVALID_CAPABILITY, "handle 0");
    c.expect_status(fast_send(victims, m), vipc_abi::ERR_INVALID_CAPABILITY,
                    "another process's handle");
    c.expect_status(fast_send(send_only ^ (uint64_t{1} << 30), m), vipc_abi::ERR_INVALID_CAPABILITY,
                    "wrong check bits");
    c.expect_status(fast_send(send_only | (uint64_t{0xF} << 48), m),
                    vipc_abi::ERR_INVALID_CAPABILITY, "rights bits written into the handle");
    c.expect_status(fast_send((send_only & ~uint64_t{0xffffff}) | 15, m),
                    vipc_abi::ERR_INVALID_CAPABILITY, "an empty slot");
    c.expect_status(fast_send((send_only & ~uint64_t{0xffffff}) | 200, m),
                    vipc_abi::ERR_INVALID_CAPABILITY, "an index past the table");
    c.expect_status(call(victims, m), vipc_abi::ERR_INVALID_CAPABILITY,
                    "call through another process's handle");
    // Random bit patterns: none may be accepted.
    uint64_t x = 0x9E3779B97F4A7C15ull, accepted = 0, tried = 0;
    for (int i = 0; i < 20000; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const uint64_t h = (i & 1) ? x : (x & 0xffffff);  // half of them shaped like handles
        if (h == own || h == send_only) continue;
        ++tried;
        if (fast_send(h, m) != vipc_abi::ERR_INVALID_CAPABILITY) ++accepted;
    }
    c.expect(accepted == 0, "random handle values were refused");
    // Rights: SEND only cannot receive, close or revoke; derive cannot add rights.
    c.expect_status(receive(send_only, m), vipc_abi::ERR_PERMISSION_DENIED, "receive, SEND only");
    c.expect_status(close(send_only), vipc_abi::ERR_PERMISSION_DENIED, "close, SEND only");
    uint64_t unused = 0;
    c.expect_status(revoke(send_only, unused), vipc_abi::ERR_PERMISSION_DENIED,
                    "revoke, SEND only");
    // A handle with no rights at all cannot call, not even with a receiver parked.
    uint64_t none = 0;
    c.expect_status(derive(send_only, vipc_abi::RIGHT_RECEIVE, none), 0, "derive no rights");
    c.expect_status(call(none, m), vipc_abi::ERR_PERMISSION_DENIED, "call without SEND");
    c.expect_status(fast_send(none, m), vipc_abi::ERR_PERMISSION_DENIED, "send without SEND");
    uint64_t raised = 0;
    c.expect_status(derive(send_only, 0xF, raised), 0, "derive");
    c.expect_status(receive(raised, m), vipc_abi::ERR_PERMISSION_DENIED,
                    "receive through a derived handle asking for every right");
    // Revocation: a derived copy stops working, the revoker's own handle keeps working.
    uint64_t copy = 0;
    c.expect_status(derive(own, vipc_abi::RIGHT_SEND, copy), 0, "derive a SEND copy");
    c.expect_status(fast_send(copy, m), 0, "send through the copy");
    const uint64_t revoked_own = own;
    c.expect_status(revoke(revoked_own, own), 0, "revoke");
    c.expect_status(fast_send(copy, m), vipc_abi::ERR_INVALID_CAPABILITY,
                    "send through a revoked copy");
    c.expect_status(fast_send(revoked_own, m), vipc_abi::ERR_INVALID_CAPABILITY,
                    "send through the handle revoke replaced");
    c.expect_status(fast_send(own, m), 0, "send through the revoker's fresh handle");
    // Reply handles cannot be made up, and endpoint handles are not reply handles.
    c.expect_status(reply(0x80000101, m), vipc_abi::ERR_INVALID_CAPABILITY, "a made-up reply");
    c.expect_status(reply(own, m), vipc_abi::ERR_INVALID_CAPABILITY, "an endpoint as a reply");
    // A capability in a message must be a handle of the sender's own space.
    Message with_cap = m;
    with_cap.flags = vipc_abi::FLAG_HAS_CAPABILITY;
    c.expect_status(fast_send(own, with_cap), vipc_abi::ERR_INVALID_CAPABILITY,
                    "HAS_CAPABILITY with a made-up handle");
    // Pointers outside the user range, and absurd lengths.
    const char text[] = "ok";
    c.expect_status(debug_print(reinterpret_cast<const void*>(0x100000), 8),
                    vipc_abi::ERR_INVALID_MEMORY_REGION, "print from kernel memory");
    c.expect_status(debug_print(reinterpret_cast<const void*>(vipc_abi::USER_STACK_TOP - 4), 8),
                    vipc_abi::ERR_INVALID_MEMORY_REGION, "print across the end of the range");
    c.expect_status(debug_print(reinterpret_cast<const void*>(~uint64_t{0} - 8), 16),
                    vipc_abi::ERR_INVALID_MEMORY_REGION, "print wrapping around");
    c.expect_status(debug_print(reinterpret_cast<const void*>(vipc_abi::USER_STACK_TOP + 8192), 4),
                    vipc_abi::ERR_INVALID_MEMORY_REGION, "print from unmapped memory");
    c.expect_status(debug_print(text, uint64_t{1} << 40), vipc_abi::ERR_MESSAGE_TOO_LARGE,
                    "print 1 TiB");
    c.expect_status(debug_print(text, 2), 0, "print two bytes");
    Registers r;
    c.expect_status(raw_syscall(200, r), vipc_abi::ERR_INVALID_MESSAGE, "an unknown system call");
    // Finally the one legitimate message to the victim.
    Message legit;
    legit.data[0] = LEGITIMATE;
    c.expect_status(send(send_only, legit), 0, "the legitimate send");
    Line() << "forger: " << tried << " random handle values tried, " << accepted << " accepted; "
           << c.failures() << " checks failed";
    return c.exit_code();
}

int64_t victim(uint64_t endpoint) {
    Message m;
    if (int64_t s = receive(endpoint, m); s != 0 || m.data[0] != LEGITIMATE) {
        Line() << "victim: expected only the legitimate message, got status " << s;
        return 1;
    }
    EndpointStats st;
    if (stats(endpoint, st) != 0 || st.queued != 0) {
        Line() << "victim: something else reached the endpoint";
        return 1;
    }
    return 0;
}

// Revokes V while a stale handle to it is held elsewhere, then parks in receive on V with
// its fresh handle: a call through the stale handle must not reach it (on any path).
int64_t revoker(uint64_t v, uint64_t s) {
    Checker c;
    const uint64_t old = v;
    c.expect_status(revoke(old, v), 0, "revoke");
    Message ready;
    c.expect_status(fast_send(s, ready), 0, "signal");
    Message m;
    // Woken only when V's owner (the stale caller) exits and V closes.
    c.expect_status(receive(v, m), vipc_abi::ERR_ENDPOINT_NOT_FOUND, "receive until V closes");
    return c.exit_code();
}

int64_t stale_caller(uint64_t s, uint64_t stale) {
    Message m;
    if (receive(s, m) != 0) return 1;
    // Its revoked handle cannot observe V, so give the revoker the CPU a few times: it only
    // has to reach its receive on V and park (the first yield suffices unless a timer tick
    // preempted it in between).
    for (int i = 0; i < 8; ++i)
        yield();
    Checker c;
    Message request;
    request.data[0] = 0xBAD;
    c.expect_status(call(stale, request), vipc_abi::ERR_INVALID_CAPABILITY,
                    "a call through a revoked handle while a receiver is parked");
    c.expect_status(fast_send(stale, request), vipc_abi::ERR_INVALID_CAPABILITY,
                    "a fast_send through a revoked handle while a receiver is parked");
    c.expect_status(send(stale, request), vipc_abi::ERR_INVALID_CAPABILITY,
                    "a send through a revoked handle while a receiver is parked");
    return c.exit_code();
}

constexpr uint64_t THROUGH_THE_GRANT = 0xC0FFEE;

// Passes a capability to its own endpoint X to the grantee in a message on Y: first one
// without GRANT (refused), then one with SEND|GRANT; then receives what the grantee sends
// through it.
int64_t granter(uint64_t x, uint64_t y, uint64_t x_send_only) {
    Checker c;
    Message m;
    m.flags = vipc_abi::FLAG_HAS_CAPABILITY;
    m.data[0] = x_send_only;
    c.expect_status(send(y, m), vipc_abi::ERR_PERMISSION_DENIED, "passing a handle without GRANT");
    uint64_t grantable = 0;
    c.expect_status(derive(x, vipc_abi::RIGHT_SEND | vipc_abi::RIGHT_GRANT, grantable), 0,
                    "derive SEND|GRANT");
    m.data[0] = grantable;
    c.expect_status(send(y, m), 0, "passing a handle with GRANT");
    Message got;
    c.expect_status(receive(x, got), 0, "receive on X");
    c.expect(got.data[1] == THROUGH_THE_GRANT, "the grantee's message arrived through X");
    return c.exit_code();
}

int64_t grantee(uint64_t y) {
    Checker c;
    Message m;
    c.expect_status(receive(y, m), 0, "receive the capability");
    c.expect((m.flags & vipc_abi::FLAG_HAS_CAPABILITY) != 0 && m.data[0] != 0, "a handle arrived");
    const uint64_t x = m.data[0];
    Message out;
    c.expect_status(receive(x, out), vipc_abi::ERR_PERMISSION_DENIED,
                    "the passed handle has SEND|GRANT only");
    out.data[1] = THROUGH_THE_GRANT;
    c.expect_status(send(x, out), 0, "send through the passed handle");
    return c.exit_code();
}

[[noreturn]] void fault(uint64_t kind) {
    switch (kind) {
        case 0: {  // page fault: the null page is the kernel's, supervisor-only
            volatile uint64_t* null_page;
            asm volatile("mov $8, %0" : "=r"(null_page));
            *null_page = 1;
            break;
        }
        case 1:  // general protection: a privileged instruction in ring 3
            asm volatile("cli");
            break;
        case 2:  // invalid opcode
            asm volatile("ud2");
            break;
        default: {  // divide error
            uint64_t zero = 0;
            asm volatile("" : "+r"(zero));
            asm volatile("divq %2" : : "a"(1), "d"(0), "r"(zero));
            break;
        }
    }
    exit(98);  // not reached: the kernel ends this process at the fault
}

int64_t faulting_server(uint64_t endpoint, uint64_t kind, uint64_t clients) {
    Message m;
    if (receive(endpoint, m) != 0 || m.handle == 0) return 1;
    // Wait until every other client's call is queued behind, and all await replies.
    for (;;) {
        EndpointStats st;
        if (stats(endpoint, st) != 0) return 1;
        if (st.queued == clients - 1 && st.awaiting_reply == clients) break;
        yield();
    }
    fault(kind);
}

int64_t exiter(uint64_t e, uint64_t f, uint64_t callers) {
    Message m;
    if (receive(e, m) != 0 || m.handle == 0) return 1;
    for (;;) {
        EndpointStats se, sf;
        if (stats(e, se) != 0 || stats(f, sf) != 0) return 1;
        if (se.queued == callers - 1 && se.awaiting_reply == callers && sf.blocked_receivers == 1)
            break;
        yield();
    }
    return 0;  // exits with E and F open, a reply owed and callers queued
}

}  // namespace

extern "C" int64_t user_main(uint64_t role, uint64_t a1, uint64_t a2, uint64_t a3) {
    switch (role) {
        case FORGER:
            return forger(a1, a2, a3);
        case VICTIM:
            return victim(a1);
        case FAULTING_SERVER:
            return faulting_server(a1, a2, a3);
        case EXITER:
            return exiter(a1, a2, a3);
        case GRANTER:
            return granter(a1, a2, a3);
        case GRANTEE:
            return grantee(a1);
        case REVOKER:
            return revoker(a1, a2);
        case STALE_CALLER:
            return stale_caller(a1, a2);
        case TAKE_ONE_AND_EXIT: {
            Message m;
            return receive(a1, m) == 0 && m.handle != 0 ? 0 : 1;
        }
        default:
            return 99;
    }
}
