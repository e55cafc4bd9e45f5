// SPDX-License-Identifier: MIT OR Apache-2.0
// Revocation under the seeded simulator: senders, receivers and callers (in their send and
// in their reply phase) are blocked, or about to block, through entries that a revoker task
// then revokes. Over many seeds (one interleaving each), every party that went through a
// revoked entry ends with InvalidCapability, none of their messages is delivered, a party
// blocked through an entry that was not revoked is not disturbed, and nobody is left parked
// (the sim reports a waiter that would sleep forever as a deadlock). A second scenario has
// a holder forging, raising and reviving handles while its entry is revoked under it
// (a tenth as many seeds).
//
// VIPC_SIM_SEEDS=<n> sets the number of seeds (10,000 by default; ctest runs fewer under
// ThreadSanitizer and says so); VIPC_SIM_SEED=<n> replays one. A failure prints its seed.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "veridian/ipc.hpp"

namespace veridian::ipc {
namespace {

u64 env_u64(const char* name, u64 fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

std::string name(const Result<void>& r) {
    return r ? "ok" : error_name(r.error());
}
std::string name(const Result<Message>& r) {
    return r ? "ok" : error_name(r.error());
}

Message tagged(u64 tag) {
    Message m = Message::small(0, 1);
    m.small_message().data[0] = tag;
    return m;
}

constexpr u64 kPrefill = 1;
constexpr u64 kFromSender = 2;
constexpr u64 kFromSendPhaseCaller = 3;
constexpr u64 kFromReplyPhaseCaller = 4;
constexpr u64 kWake = 5;

struct World {
    explicit World(u64 seed) : sim(seed) {}
    SimPlatform sim;
    HeapAllocator allocator;
    Registry registry{sim, allocator, 8, 16};
};

// One seed. Returns "" or what went wrong.
std::string run_seed(u64 seed, bool* leaked) {
    auto w = std::make_unique<World>(seed);
    Registry& reg = w->registry;
    const ProcessId owner{1};
    // full: capacity 1 and full (senders and send-phase callers block); calls: nobody
    // receives (a caller blocks for its reply); empty: nobody sends (receivers block).
    Endpoint full = reg.create_endpoint(owner, 1).value();
    Endpoint calls = reg.create_endpoint(owner, 4).value();
    Endpoint empty = reg.create_endpoint(owner, 1).value();
    if (!full.send_async(tagged(kPrefill))) return "prefill failed";

    // The doomed entries (one per endpoint, held by process 2) and, below each, the entry
    // every party uses (in its own space). A seeded choice revokes either the doomed
    // ancestor (the party's entry goes as its descendant) or the party's entry itself.
    u64 choice = seed * 0x9E3779B97F4A7C15ull + 1;
    auto next = [&choice] {
        choice ^= choice >> 33;
        choice *= 0xFF51AFD7ED558CCDull;
        choice ^= choice >> 33;
        return choice;
    };
    auto doomed = [&](Endpoint& e) {
        return e.transfer(ProcessId{2}, TransferMode::Copy, Rights::ALL).value();
    };
    Endpoint doomed_full = doomed(full), doomed_calls = doomed(calls), doomed_empty = doomed(empty);
    Endpoint sender = doomed_full.transfer(ProcessId{10}, TransferMode::Copy, Rights::SEND).value();
    Endpoint send_caller =
        doomed_full.transfer(ProcessId{11}, TransferMode::Copy, Rights::SEND).value();
    Endpoint reply_caller =
        doomed_calls.transfer(ProcessId{12}, TransferMode::Copy, Rights::SEND).value();
    Endpoint receiver =
        doomed_empty.transfer(ProcessId{13}, TransferMode::Copy, Rights::RECEIVE).value();
    // Not derived from anything that is revoked: must be left alone.
    Endpoint survivor = empty.transfer(ProcessId{14}, TransferMode::Copy, Rights::RECEIVE).value();
    const bool revoke_ancestors = (next() & 1) != 0;
    const bool wait_until_parked = (next() % 4) != 0;  // else race the parties' checks

    Result<void> sent = IpcError::NotInitialized;
    Result<Message> send_called = IpcError::NotInitialized;
    Result<Message> reply_called = IpcError::NotInitialized;
    Result<Message> received = IpcError::NotInitialized;
    Result<Message> survived = IpcError::NotInitialized;
    std::string problem;

    w->sim.spawn(ProcessId{10}, [&] { sent = sender.send_sync(tagged(kFromSender)); });
    w->sim.spawn(ProcessId{11},
                 [&] { send_called = send_caller.call(tagged(kFromSendPhaseCaller)); });
    w->sim.spawn(ProcessId{12},
                 [&] { reply_called = reply_caller.call(tagged(kFromReplyPhaseCaller)); });
    w->sim.spawn(ProcessId{13}, [&] { received = receiver.receive_sync(); });
    w->sim.spawn(ProcessId{14}, [&] { survived = survivor.receive_sync(); });
    w->sim.spawn(owner, [&] {
        if (wait_until_parked) {
            // Observably parked: the endpoints' own counts of blocked parties.
            for (u32 i = 0;; ++i) {
                const EndpointStats f = full.stats().value_or(EndpointStats{});
                const EndpointStats c = calls.stats().value_or(EndpointStats{});
                const EndpointStats e = empty.stats().value_or(EndpointStats{});
                if (f.waiting_senders == 2 && c.waiting_callers == 1 && e.waiting_receivers == 2) {
                    break;
                }
                if (i == 100'000) {
                    problem = "the parties never all blocked";
                    return;
                }
                w->sim.yield();
            }
        }
        // Three revocations in a seeded order.
        Endpoint* targets[3];
        if (revoke_ancestors) {
            targets[0] = &doomed_full;
            targets[1] = &doomed_calls;
            targets[2] = &doomed_empty;
        } else {
            targets[0] = &sender;  // send_caller's entry goes with doomed_full below
            targets[1] = &reply_caller;
            targets[2] = &receiver;
        }
        const u64 r = next();
        for (u32 i = 0; i < 3; ++i)
            std::swap(targets[i], targets[i + (r >> (8 * i)) % (3 - i)]);
        for (Endpoint* t : targets) {
            if (Result<void> v = t->revoke(); !v) problem = "revoke failed: " + name(v);
        }
        if (!revoke_ancestors) {
            if (Result<void> v = send_caller.revoke(); !v) problem = "revoke failed: " + name(v);
        }
        // The survivor still receives (blocked or not yet).
        if (Result<void> v = empty.send_sync(tagged(kWake)); !v) {
            problem = "the wake message was refused: " + name(v);
        }
    });
    SimPlatform::RunResult run = w->sim.run();
    if (!run.ok) {
        *leaked = true;
        (void)w.release();  // its waiter lists may point into unwound stacks: never touch it
        return "sim: " + run.failure;
    }
    if (!problem.empty()) return problem;
    auto expect_invalid = [&](const char* who, const std::string& got) -> std::string {
        return got == "InvalidCapability" ? "" : std::string(who) + " ended with " + got;
    };
    for (const std::string& p : {expect_invalid("the blocked sender", name(sent)),
                                 expect_invalid("the send-phase caller", name(send_called)),
                                 expect_invalid("the reply-phase caller", name(reply_called)),
                                 expect_invalid("the receiver", name(received))}) {
        if (!p.empty()) return p;
    }
    if (!survived || survived->small_message().data[0] != kWake) {
        return "the survivor got " + name(survived);
    }
    // Nothing sent through a revoked entry was delivered: `full` holds only the prefill;
    // `calls` holds at most the reply-phase caller's request (queued before the revoke),
    // and answering it finds its caller gone.
    Result<Message> first = full.try_receive();
    if (!first || first->small_message().data[0] != kPrefill) return "the prefill is gone";
    if (Result<Message> more = full.try_receive(); more) {
        return "a revoked sender's message was delivered (tag " +
               std::to_string(more->small_message().data[0]) + ")";
    }
    if (Result<Message> request = calls.try_receive(); request) {
        if (request->small_message().data[0] != kFromReplyPhaseCaller) return "a stray request";
        if (Result<void> r = calls.reply(*request, tagged(0));
            r || r.error() != IpcError::ProcessNotFound) {
            return "a reply to the revoked caller gave " + name(r);
        }
    }
    for (Endpoint* e : {&full, &calls, &empty}) {
        const EndpointStats s = e->stats().value_or(EndpointStats{});
        if (s.waiting_senders != 0 || s.waiting_receivers != 0 || s.waiting_callers != 0) {
            return "a waiter was left in a list";
        }
    }
    return "";
}

// One seed of forging under the sim: a prober (process 2) holding a SEND entry writes forged,
// raised and revived handles while the owner revokes the entry its own came from at a seeded
// moment. No forged or raised handle is ever accepted; once a send through the real handle
// has failed with InvalidCapability, no later use of it or of a neighbour succeeds.
std::string run_forging_seed(u64 seed, bool* leaked) {
    auto w = std::make_unique<World>(seed);
    Registry& reg = w->registry;
    Endpoint e = reg.create_endpoint(ProcessId{1}, 64).value();
    Endpoint parent = e.derive(Rights::SEND | Rights::GRANT).value();
    Endpoint mine = parent.transfer(ProcessId{2}, TransferMode::Copy, Rights::SEND).value();
    CapabilitySpace& space = *mine.space();
    const Capability real = mine.capability();
    std::string problem;
    u64 accepted_real = 0;
    w->sim.spawn(ProcessId{2}, [&] {
        bool revoked_seen = false;
        for (u32 i = 0; i < 12 && problem.empty(); ++i) {
            const Capability forged[] = {Capability(real.raw() | (u64{Rights::ALL} << 48)) == real
                                             ? Capability(real.raw() ^ (u64{Rights::ALL} << 48))
                                             : Capability(real.raw() | (u64{Rights::ALL} << 48)),
                                         Capability::make(real.index(), real.check() + 1),
                                         Capability::make(real.index(), real.check() - 1),
                                         Capability::make(real.index() + 1, real.check()),
                                         e.capability(),
                                         Capability(0)};
            for (const Capability& f : forged) {
                SmallMessage m{f.raw(), 2, 0, {0, 0, 0, 0}};
                if (fast_ipc_send(space, m) ||
                    reg.validate_capability(space, f, Rights::SEND).has_value()) {
                    problem = "a forged handle was accepted";
                }
            }
            if (reg.validate_capability(space, real, Rights::RECEIVE).has_value()) {
                problem = "the SEND entry gave RECEIVE";
            }
            SmallMessage m{real.raw(), 3, 0, {0, 0, 0, 0}};
            Result<void> r = fast_ipc_send(space, m);
            if (r) {
                if (revoked_seen) problem = "a revoked handle came back";
                ++accepted_real;
            } else if (r.error() == IpcError::InvalidCapability) {
                revoked_seen = true;
            } else {
                problem = std::string("the real handle gave ") + error_name(r.error());
            }
            w->sim.yield();
        }
    });
    w->sim.spawn(ProcessId{1}, [&] {
        for (u64 k = 0, n = seed % 8; k < n; ++k)
            w->sim.yield();
        if (!parent.revoke()) problem = "revoke failed";
    });
    SimPlatform::RunResult run = w->sim.run();
    if (!run.ok) {
        *leaked = true;
        (void)w.release();
        return "sim: " + run.failure;
    }
    if (!problem.empty()) return problem;
    // Exactly the sends accepted before the revoke reached the endpoint.
    const EndpointStats st = e.stats().value_or(EndpointStats{});
    if (st.queued != accepted_real) return "accepted and queued counts differ";
    if (mine.send_async(tagged(1)).has_value()) return "the revoked entry still sends";
    return "";
}

TEST(RevokeSim, ForgedRaisedAndRevivedHandlesAreNeverAccepted) {
    const u64 one = env_u64("VIPC_SIM_SEED", 0);
    const u64 seeds = one != 0 ? 1 : env_u64("VIPC_SIM_SEEDS", 10'000) / 10;
    u64 failures = 0;
    bool leaked = false;
    for (u64 i = 0; i < seeds; ++i) {
        const u64 seed = one != 0 ? one : i + 1;
        const std::string problem = run_forging_seed(seed, &leaked);
        if (!problem.empty()) {
            ADD_FAILURE() << "seed " << seed << " (replay with VIPC_SIM_SEED=" << seed
                          << "): " << problem;
            if (++failures == 5) break;
        }
    }
    std::printf("[   sim    ] RevokeSim forging: %llu seeds\n",
                static_cast<unsigned long long>(seeds));
    EXPECT_EQ(failures, 0u);
}

TEST(RevokeSim, BlockedPartiesThroughARevokedEntryAllWakeWithInvalidCapability) {
    const u64 one = env_u64("VIPC_SIM_SEED", 0);
    const u64 seeds = one != 0 ? 1 : env_u64("VIPC_SIM_SEEDS", 10'000);
    u64 failures = 0;
    bool leaked = false;
    for (u64 i = 0; i < seeds; ++i) {
        const u64 seed = one != 0 ? one : i + 1;
        const std::string problem = run_seed(seed, &leaked);
        if (!problem.empty()) {
            ADD_FAILURE() << "seed " << seed << " (replay with VIPC_SIM_SEED=" << seed
                          << "): " << problem;
            if (++failures == 5) break;
        }
    }
    std::printf("[   sim    ] RevokeSim: %llu seeds\n", static_cast<unsigned long long>(seeds));
    EXPECT_EQ(failures, 0u);
}

}  // namespace
}  // namespace veridian::ipc
