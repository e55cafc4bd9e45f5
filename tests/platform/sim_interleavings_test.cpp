// SPDX-License-Identifier: MIT OR Apache-2.0
// Seeded interleavings of the core's endpoints on the deterministic simulation platform.
//
// Each seed builds one endpoint with a small queue (1-4 places) and a seed-chosen cast of
// parties on it: synchronous senders (with and without deadlines), asynchronous and
// fast-path senders (retrying when the queue is full), callers (Endpoint::call and
// call_reply), receivers that block with deadlines or poll with try_receive and answer every
// request, and a closer that closes the endpoint at a seed-chosen moment (in a quarter of the
// seeds it removes it from the registry instead, which closes it, retires the slot and frees
// the queue while the others may still be using their handles). The sim then picks
// one interleaving of all of them (with spurious wakes, and sometimes a clock that ticks
// while tasks run so that deadlines race with wakes). Afterwards every seed is checked:
//
//   - the run ended: no waiter sleeps forever (the sim reports a deadlock otherwise) and no
//     party was still busy at the virtual-time horizon (a lost wakeup hidden by a poller);
//   - no message is lost: everything a send accepted was received exactly once or counted in
//     EndpointStats::discarded_on_close; a send that returned an error was never received;
//   - none is duplicated, and none reordered: each receiver sees every sender's messages in
//     the order they were sent (the queue is FIFO per sender);
//   - every call gets its own reply (matched by transaction id) or an error, and a reply
//     that succeeded reached a call that succeeded;
//   - every operation ends with an error kind it may give: Timeout only with a deadline and
//     never before it, EndpointNotFound only once the close has begun (InvalidCapability
//     too once the endpoint was removed), ChannelFull only from the non-blocking sends,
//     ProcessNotFound from reply only to a caller that timed out;
//   - a closed endpoint ends with an empty queue, no waiter left and counters that add up;
//     a removed one answers stats() with InvalidCapability.
//
// Seeds: each scenario runs seeds 1..N, N = $VIPC_SIM_SEEDS if set, else its default (the
// defaults add up to 20,000 interleavings). A failure prints the scenario, the seed, the
// cast and what went wrong, and stops that scenario. To replay one seed:
//
//   VIPC_SIM_SEED=1234 ./sim_interleavings_test --gtest_filter='SimInterleavings.Calls*'
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sim_seeds.hpp"
#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/registry.hpp"
#include "veridian/ipc/platform/sim.hpp"
#include "veridian/ipc/platform/threads.hpp"

namespace veridian::ipc {
namespace {

// ---------------------------------------------------------------------------------------
// Seeds and parameters.

// The test's own seeded generator (splitmix64), so parameters are the same on every machine.
class TestRandom {
public:
    explicit TestRandom(u64 seed) : state_(seed) {}
    u64 next() {
        state_ += 0x9E3779B97F4A7C15ull;
        u64 z = state_;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // In [lo, hi].
    u64 between(u64 lo, u64 hi) { return lo + next() % (hi - lo + 1); }
    bool percent(u32 p) { return next() % 100 < p; }

private:
    u64 state_;
};

using sim_test::env_u64;

// The virtual time by which every party must have finished. Real runs end within a few
// hundred microseconds of virtual time; a party still busy at the horizon means something
// never happened (e.g. a lost wakeup that a polling receiver keeps from looking like a
// deadlock).
constexpr u64 HORIZON_NS = 20'000'000;

constexpr u32 MESSAGE_OPCODE = 0x5EED;
constexpr u32 REPLY_OPCODE = 0x5EEE;

enum class CloseMode : u8 {
    AtVirtualTime,       // sleep until a seed-chosen virtual time, then close
    AfterYields,         // yield a seed-chosen number of times, then close
    AfterSendersFinish,  // close as soon as every sending party is done
    AfterDrained,        // ... and nothing is queued any more: nothing may be discarded
};

const char* close_mode_name(CloseMode m) {
    switch (m) {
        case CloseMode::AtVirtualTime:
            return "at-virtual-time";
        case CloseMode::AfterYields:
            return "after-yields";
        case CloseMode::AfterSendersFinish:
            return "after-senders-finish";
        case CloseMode::AfterDrained:
            return "after-drained";
    }
    return "?";
}

// Which kinds of parties a scenario may cast, and how many seeds it runs by default.
struct Scenario {
    const char* name;
    u64 default_seeds;
    u32 max_sync_senders;
    u32 max_async_senders;
    u32 max_fast_senders;
    u32 max_callers;
    u32 max_sync_receivers;
    u32 max_polling_receivers;
    // Every blocking operation gets a short deadline and the clock ticks while tasks run,
    // so deadlines pass in the middle of hand-offs, replies and closes.
    bool racing_deadlines = false;
};

struct Cast {
    u32 capacity = 1;
    u32 sync_senders = 0;
    u32 async_senders = 0;
    u32 fast_senders = 0;
    u32 callers = 0;
    u32 sync_receivers = 0;
    u32 polling_receivers = 0;
    u32 messages_per_sender = 1;
    CloseMode close_mode = CloseMode::AfterSendersFinish;
    u64 close_at_ns = 0;
    u32 close_after_yields = 0;
    u32 deadline_percent = 0;  // how often a blocking operation gets a finite deadline
    // The closer removes the endpoint from the registry (close, then the slot is retired
    // and its queue freed) instead of only closing it. Parties that come later get
    // InvalidCapability (their token is stale), and the endpoint's counters are gone.
    bool remove = false;
    SimPlatform::Options sim;

    std::string describe() const {
        char text[512];
        std::snprintf(text, sizeof text,
                      "capacity=%u sync_senders=%u async_senders=%u fast_senders=%u callers=%u "
                      "sync_receivers=%u polling_receivers=%u messages_per_sender=%u "
                      "%s=%s(t=%llu, yields=%u) deadline_percent=%u spurious_permille=%u "
                      "max_tick_ns=%llu (pids: senders and callers 100.., receivers "
                      "200.., closer 1)",
                      capacity, sync_senders, async_senders, fast_senders, callers, sync_receivers,
                      polling_receivers, messages_per_sender, remove ? "remove" : "close",
                      close_mode_name(close_mode), static_cast<unsigned long long>(close_at_ns),
                      close_after_yields, deadline_percent, sim.spurious_wake_permille,
                      static_cast<unsigned long long>(sim.max_tick_ns));
        return text;
    }
};

Cast choose_cast(const Scenario& scenario, u64 seed) {
    TestRandom random(seed * 0x2545F4914F6CDD1Dull + 0x1234567);
    Cast c;
    c.capacity = static_cast<u32>(random.between(1, 4));
    c.sync_senders = static_cast<u32>(random.between(0, scenario.max_sync_senders));
    c.async_senders = static_cast<u32>(random.between(0, scenario.max_async_senders));
    c.fast_senders = static_cast<u32>(random.between(0, scenario.max_fast_senders));
    c.callers = static_cast<u32>(random.between(0, scenario.max_callers));
    if (c.sync_senders + c.async_senders + c.fast_senders + c.callers == 0) {
        // At least one sending party of the first kind the scenario has.
        if (scenario.max_sync_senders > 0) {
            c.sync_senders = 1;
        } else if (scenario.max_async_senders > 0) {
            c.async_senders = 1;
        } else if (scenario.max_fast_senders > 0) {
            c.fast_senders = 1;
        } else {
            c.callers = 1;
        }
    }
    c.sync_receivers = static_cast<u32>(random.between(0, scenario.max_sync_receivers));
    c.polling_receivers = static_cast<u32>(random.between(0, scenario.max_polling_receivers));
    if (c.sync_receivers + c.polling_receivers == 0) {
        if (scenario.max_sync_receivers > 0) {
            c.sync_receivers = 1;
        } else {
            c.polling_receivers = 1;
        }
    }
    c.messages_per_sender = static_cast<u32>(random.between(1, 6));
    c.close_mode = static_cast<CloseMode>(random.between(0, 3));
    c.close_at_ns = random.between(0, 30'000);
    c.close_after_yields = static_cast<u32>(random.between(0, 200));
    static constexpr u32 deadline_percents[] = {0, 30, 70, 100};
    c.deadline_percent = deadline_percents[random.between(0, 3)];
    static constexpr u32 spurious[] = {0, 20, 100};
    c.sim.spurious_wake_permille = spurious[random.between(0, 2)];
    c.sim.max_tick_ns = random.percent(50) ? 0 : random.between(1, 200);
    c.remove = random.percent(25);
    if (scenario.racing_deadlines) {
        c.deadline_percent = 100;
        c.sim.max_tick_ns = random.between(20, 200);
    }
    return c;
}

// ---------------------------------------------------------------------------------------
// What the parties record.

enum class SendKind : u8 { Sync, Async, Fast, Call };

const char* send_kind_name(SendKind k) {
    switch (k) {
        case SendKind::Sync:
            return "send_sync";
        case SendKind::Async:
            return "send_async";
        case SendKind::Fast:
            return "fast_ipc_send";
        case SendKind::Call:
            return "call";
    }
    return "?";
}

// One attempt to send a message (or make a call). (party, seq) names it; every attempt gets
// a fresh seq, so a retry after ChannelFull is a different message.
struct Attempt {
    u32 party = 0;
    u32 seq = 0;
    SendKind kind = SendKind::Sync;
    bool ok = false;
    IpcError error = IpcError::NotInitialized;
};

// One message a receiver took, in the order that receiver took them.
struct Receipt {
    u32 receiver = 0;
    u32 party = 0;
    u32 seq = 0;
    TransactionId txid = 0;
    bool reply_ok = false;
    IpcError reply_error = IpcError::NotInitialized;
};

using Key = std::pair<u32, u32>;  // (party, seq)

// A futex-style counter that parties bump when they make progress, so the closer can wait
// for a condition without polling.
struct Progress {
    std::atomic<u32> word{0};
    void bump(Platform& platform) {
        word.fetch_add(1);
        platform.wake_all(&word);
    }
};

// Everything one seed's run needs. It lives on the heap: when the sim reports a deadlock the
// registry's waiter lists may point into unwound stacks, so it is then kept aside, never
// touched or destroyed (keep_forever; see sim.hpp).
struct World {
    World(u64 seed, const Cast& cast)
        : sim(seed, cast.sim), registry(sim, allocator, /*max_endpoints=*/4) {}

    HeapAllocator allocator;
    SimPlatform sim;
    Registry registry;
    Endpoint endpoint;

    Progress progress;
    u32 sending_parties_done = 0;
    bool close_started = false;
    bool removing = false;  // the closer removes the endpoint instead of closing it

    std::vector<Attempt> attempts;
    std::vector<Receipt> receipts;
    std::vector<std::string> problems;

    void problem(std::string text) {
        if (problems.size() < 20) problems.push_back(std::move(text));
    }
};

std::string error_string(IpcError e) {
    return error_name(e);
}

// The errors that say "the endpoint is gone": EndpointNotFound after a close, and also
// InvalidCapability once it was removed from the registry.
bool is_gone_error(const World& w, IpcError e) {
    return e == IpcError::EndpointNotFound || (w.removing && e == IpcError::InvalidCapability);
}

// Checks that an operation that said the endpoint is gone ran after the close began.
void check_gone_error(World& w, const std::string& what, IpcError e) {
    if (!w.close_started) {
        w.problem(what + " returned " + error_string(e) + " before any close");
    }
}

// Sleeps `ns` of virtual time (a wait on a private word with a deadline).
void sleep_for(SimPlatform& sim, u64 ns) {
    std::atomic<u32> word{0};
    const Deadline until = sim.after_ns(ns);
    while (sim.wait(&word, 0, until) != WaitResult::TimedOut) {
    }
}

// A deadline for one blocking operation: never, already past, or a little in the future.
Deadline choose_deadline(World& w, TestRandom& random, u32 deadline_percent) {
    if (!random.percent(deadline_percent)) return Deadline::never();
    if (random.percent(10)) return Deadline::past();
    return w.sim.after_ns(random.percent(50) ? random.between(1, 3000)
                                             : random.between(3000, 30000));
}

// Checks the kind of a blocking operation's error; `what` names the operation.
void check_blocking_error(World& w, const std::string& what, IpcError e, Deadline deadline) {
    if (e == IpcError::Timeout) {
        if (deadline.is_never()) {
            w.problem(what + " without a deadline returned Timeout");
        } else if (w.sim.now_ns() < deadline.ns()) {
            w.problem(what + " returned Timeout at t=" + std::to_string(w.sim.now_ns()) +
                      " before its deadline " + std::to_string(deadline.ns()));
        }
    } else if (is_gone_error(w, e)) {
        check_gone_error(w, what, e);
    } else {
        w.problem(what + " returned " + error_string(e));
    }
}

Message make_message(u32 party, u32 seq, SendKind kind) {
    Message m = Message::small(0, MESSAGE_OPCODE);
    SmallMessage& s = m.small_message();
    s.data[0] = party;
    s.data[1] = seq;
    s.data[2] = static_cast<u64>(kind);
    s.data[3] = (u64{party} << 32) ^ seq ^ 0xA5A5A5A5ull;
    return m;
}

bool past_horizon(World& w, const char* who) {
    if (w.sim.now_ns() <= HORIZON_NS) return false;
    w.problem(std::string(who) + " still busy at the virtual-time horizon (t=" +
              std::to_string(w.sim.now_ns()) + "ns): something it waits for never happened");
    return true;
}

// ---------------------------------------------------------------------------------------
// The parties.

void sending_party_done(World& w) {
    ++w.sending_parties_done;
    w.progress.bump(w.sim);
}

void run_sync_sender(World& w, const Cast& c, u32 party, u64 seed) {
    TestRandom random(seed ^ (u64{party} << 48) ^ 0x51);
    Endpoint ep = w.endpoint.derive(Rights::SEND).value_or(Endpoint());  // null once removed
    for (u32 seq = 0; seq < c.messages_per_sender; ++seq) {
        const Deadline deadline = choose_deadline(w, random, c.deadline_percent);
        Result<void> r = ep.send_sync(make_message(party, seq, SendKind::Sync), deadline);
        w.attempts.push_back(
            {party, seq, SendKind::Sync, r.has_value(), r ? IpcError::NotInitialized : r.error()});
        if (!r) check_blocking_error(w, "send_sync", r.error(), deadline);
    }
    sending_party_done(w);
}

// Asynchronous and fast-path senders: never block; on ChannelFull they sleep a little and
// try again with a new message, a few times.
void run_nonblocking_sender(World& w, const Cast& c, u32 party, u64 seed, SendKind kind) {
    TestRandom random(seed ^ (u64{party} << 48) ^ 0x52);
    Endpoint ep = w.endpoint.derive(Rights::SEND).value_or(Endpoint());  // null once removed
    u32 seq = 0;
    for (u32 i = 0; i < c.messages_per_sender; ++i) {
        for (u32 attempt = 0; attempt < 4; ++attempt, ++seq) {
            Result<void> r = IpcError::NotInitialized;
            if (kind == SendKind::Async) {
                r = ep.send_async(make_message(party, seq, kind));
            } else {
                SmallMessage m = make_message(party, seq, kind).small_message();
                m.capability = ep.capability().raw();
                r = fast_ipc_send(*w.endpoint.space(), m);
            }
            w.attempts.push_back(
                {party, seq, kind, r.has_value(), r ? IpcError::NotInitialized : r.error()});
            if (r) {
                ++seq;
                break;
            }
            if (is_gone_error(w, r.error())) {
                check_gone_error(w, send_kind_name(kind), r.error());
                ++seq;
                break;
            }
            if (r.error() != IpcError::ChannelFull) {
                w.problem(std::string(send_kind_name(kind)) + " returned " +
                          error_string(r.error()));
            }
            sleep_for(w.sim, random.between(1, 3000));
        }
    }
    sending_party_done(w);
}

void run_caller(World& w, const Cast& c, u32 party, u64 seed) {
    TestRandom random(seed ^ (u64{party} << 48) ^ 0x53);
    Endpoint ep = w.endpoint.derive(Rights::SEND).value_or(Endpoint());  // null once removed
    for (u32 seq = 0; seq < c.messages_per_sender; ++seq) {
        const Deadline deadline = choose_deadline(w, random, c.deadline_percent);
        const Message request = make_message(party, seq, SendKind::Call);
        Result<Message> r = random.percent(50) ? ep.call(request, deadline)
                                               : call_reply(*w.endpoint.space(), request,
                                                            ep.capability(), deadline);
        w.attempts.push_back(
            {party, seq, SendKind::Call, r.has_value(), r ? IpcError::NotInitialized : r.error()});
        if (!r) {
            check_blocking_error(w, "call", r.error(), deadline);
            continue;
        }
        // Its own reply: the server echoes (party, seq) and the transaction id it saw.
        const Message& reply = *r;
        if (!reply.is_small() || reply.opcode() != REPLY_OPCODE) {
            w.problem("call got a reply that is not a reply message");
            continue;
        }
        const SmallMessage& s = reply.small_message();
        if (s.data[0] != party || s.data[1] != seq) {
            w.problem("call (" + std::to_string(party) + "," + std::to_string(seq) +
                      ") got the reply meant for (" + std::to_string(s.data[0]) + "," +
                      std::to_string(s.data[1]) + ")");
        }
        if ((reply.flags() & MessageFlags::IS_REPLY) == 0) {
            w.problem("a reply arrived without the IS_REPLY flag");
        }
        if (reply.transaction_id() == 0 || reply.transaction_id() != s.data[2]) {
            w.problem("a reply's transaction id " + std::to_string(reply.transaction_id()) +
                      " differs from its request's " + std::to_string(s.data[2]));
        }
    }
    sending_party_done(w);
}

// What a receiver does with one message it took: log it and answer it if it is a request.
void handle_received(World& w, Endpoint& ep, TestRandom& random, u32 receiver, const Message& m) {
    if (!m.is_small() || m.opcode() != MESSAGE_OPCODE) {
        w.problem("received a message that no party sent (opcode " + std::to_string(m.opcode()) +
                  ")");
        return;
    }
    const SmallMessage& s = m.small_message();
    const u32 party = static_cast<u32>(s.data[0]);
    const u32 seq = static_cast<u32>(s.data[1]);
    if (s.data[3] != ((u64{party} << 32) ^ seq ^ 0xA5A5A5A5ull)) {
        w.problem("received a corrupted message");
        return;
    }
    Receipt receipt{receiver, party, seq, m.transaction_id(), false, IpcError::NotInitialized};
    const bool is_request = static_cast<SendKind>(s.data[2]) == SendKind::Call;
    if (is_request != (m.transaction_id() != 0)) {
        w.problem("a request without a transaction id, or a message with one");
    }
    if (is_request) {
        // Sometimes answer late, so callers' deadlines race with the reply.
        const u64 delay = random.next() % 10;
        if (delay < 2) {
            sleep_for(w.sim, random.between(1, 5000));
        } else if (delay < 4) {
            for (u64 i = random.between(1, 20); i > 0; --i)
                w.sim.yield();
        }
        Message response = Message::small(0, REPLY_OPCODE);
        response.small_message().data[0] = party;
        response.small_message().data[1] = seq;
        response.small_message().data[2] = m.transaction_id();
        Result<void> r = ep.reply(m, response);
        receipt.reply_ok = r.has_value();
        if (!r) {
            receipt.reply_error = r.error();
            if (is_gone_error(w, r.error())) {
                check_gone_error(w, "reply", r.error());
            } else if (r.error() != IpcError::ProcessNotFound) {
                w.problem("reply returned " + error_string(r.error()));
            }
        }
    }
    w.receipts.push_back(receipt);
    w.progress.bump(w.sim);
}

void run_sync_receiver(World& w, const Cast& c, u32 receiver, u64 seed) {
    TestRandom random(seed ^ (u64{receiver} << 40) ^ 0x54);
    Endpoint ep = w.endpoint.derive(Rights::RECEIVE).value_or(Endpoint());  // null once removed
    for (;;) {
        if (past_horizon(w, "a receiver")) return;
        const Deadline deadline = choose_deadline(w, random, c.deadline_percent);
        Result<Message> r = ep.receive_sync(deadline);
        if (r) {
            handle_received(w, ep, random, receiver, *r);
            continue;
        }
        check_blocking_error(w, "receive_sync", r.error(), deadline);
        if (r.error() != IpcError::Timeout) return;
        if (deadline == Deadline::past()) sleep_for(w.sim, random.between(1, 3000));
    }
}

void run_polling_receiver(World& w, u32 receiver, u64 seed) {
    TestRandom random(seed ^ (u64{receiver} << 40) ^ 0x55);
    Endpoint ep = w.endpoint.derive(Rights::RECEIVE).value_or(Endpoint());  // null once removed
    for (;;) {
        if (past_horizon(w, "a polling receiver")) return;
        Result<Message> r = ep.try_receive();
        if (r) {
            handle_received(w, ep, random, receiver, *r);
            continue;
        }
        if (r.error() == IpcError::ChannelEmpty) {
            sleep_for(w.sim, random.between(1, 5000));
            continue;
        }
        if (is_gone_error(w, r.error())) {
            check_gone_error(w, "try_receive", r.error());
        } else {
            w.problem("try_receive returned " + error_string(r.error()));
        }
        return;
    }
}

void run_closer(World& w, const Cast& c, u32 sending_parties) {
    Endpoint ep = w.endpoint.derive(Rights::REVOKE).value_or(Endpoint());  // null once removed
    auto wait_until = [&](auto condition) {
        for (;;) {
            const u32 seen = w.progress.word.load();
            if (condition()) return true;
            if (w.sim.wait(&w.progress.word, seen, Deadline::at(HORIZON_NS)) ==
                    WaitResult::TimedOut &&
                !condition()) {
                return false;
            }
        }
    };
    switch (c.close_mode) {
        case CloseMode::AtVirtualTime:
            sleep_for(w.sim, c.close_at_ns);
            break;
        case CloseMode::AfterYields:
            for (u32 i = 0; i < c.close_after_yields; ++i)
                w.sim.yield();
            break;
        case CloseMode::AfterSendersFinish:
            if (!wait_until([&] { return w.sending_parties_done == sending_parties; })) {
                w.problem("the sending parties never finished (" +
                          std::to_string(w.sending_parties_done) + " of " +
                          std::to_string(sending_parties) + ")");
            }
            break;
        case CloseMode::AfterDrained:
            if (!wait_until([&] {
                    if (w.sending_parties_done != sending_parties) return false;
                    Result<EndpointStats> s = ep.stats();
                    return s && s->queued == 0;
                })) {
                w.problem("the queue was never drained");
            }
            break;
    }
    w.close_started = true;
    if (c.remove) {
        Result<void> r = w.registry.remove_endpoint(w.endpoint.id(), w.endpoint.owner());
        if (!r) w.problem("remove_endpoint returned " + error_string(r.error()));
    } else {
        Result<void> r = ep.close();
        if (!r) w.problem("close returned " + error_string(r.error()));
    }
}

// ---------------------------------------------------------------------------------------
// The checks after a run.

void check_outcome(World& w, const Cast& c, const SimPlatform::RunResult& run) {
    if (!run.ok) w.problem("the run failed: " + run.failure);

    std::map<Key, const Attempt*> attempts;
    for (const Attempt& a : w.attempts)
        attempts[{a.party, a.seq}] = &a;

    // Received at most once; only what a party sent; FIFO per sender within each receiver.
    std::map<Key, const Receipt*> received;
    std::map<std::pair<u32, u32>, u32> last_seq;  // (receiver, party) -> seq + 1
    u64 plain_received = 0;
    std::map<TransactionId, Key> txids;
    for (const Receipt& r : w.receipts) {
        const Key key{r.party, r.seq};
        const std::string name = "(" + std::to_string(r.party) + "," + std::to_string(r.seq) + ")";
        if (!received.emplace(key, &r).second) w.problem("message " + name + " received twice");
        auto it = attempts.find(key);
        if (it == attempts.end()) {
            w.problem("message " + name + " received but never sent");
            continue;
        }
        const Attempt& a = *it->second;
        if (a.kind == SendKind::Call) {
            // A request may be taken and then its caller time out or see the close.
            if (!a.ok && a.error != IpcError::Timeout && !is_gone_error(w, a.error)) {
                w.problem("request " + name + " received although call returned " +
                          error_string(a.error));
            }
            if (!txids.emplace(r.txid, key).second) {
                w.problem("two requests carry transaction id " + std::to_string(r.txid));
            }
            if (r.reply_ok && !a.ok) {
                w.problem("reply to " + name + " succeeded but the call returned " +
                          error_string(a.error));
            }
            if (!r.reply_ok && r.reply_error == IpcError::ProcessNotFound &&
                (a.ok || a.error != IpcError::Timeout)) {
                w.problem("reply to " + name +
                          " found no caller although the call did not time out");
            }
        } else {
            ++plain_received;
            if (!a.ok) {
                w.problem("message " + name + " received although " + send_kind_name(a.kind) +
                          " returned " + error_string(a.error));
            }
        }
        u32& last = last_seq[{r.receiver, r.party}];
        if (r.seq + 1 <= last) {
            w.problem("receiver " + std::to_string(r.receiver) + " got " + name + " after seq " +
                      std::to_string(last - 1) + " of the same sender");
        }
        last = r.seq + 1;
    }

    // Every call that succeeded was answered by exactly one successful reply.
    u64 plain_accepted = 0;
    u64 calls_failed_unreceived = 0;
    u64 fast_checked = 0;  // fast sends that got past the capability check
    u64 fast_ok = 0;
    for (const Attempt& a : w.attempts) {
        const Key key{a.party, a.seq};
        const std::string name = "(" + std::to_string(a.party) + "," + std::to_string(a.seq) + ")";
        if (a.kind == SendKind::Call) {
            auto it = received.find(key);
            if (a.ok && (it == received.end() || !it->second->reply_ok)) {
                w.problem("call " + name + " succeeded without a successful reply");
            }
            // A failed call's request may still have been queued, then discarded by close.
            if (!a.ok && it == received.end()) ++calls_failed_unreceived;
            continue;
        }
        if (a.kind == SendKind::Fast && (a.ok || a.error == IpcError::ChannelFull)) ++fast_checked;
        if (a.kind == SendKind::Fast && a.ok) ++fast_ok;
        if (a.ok) ++plain_accepted;
    }

    Result<EndpointStats> stats_result = w.endpoint.stats();
    if (c.remove) {
        // A removed endpoint's counters are gone with it; its handles are stale.
        if (stats_result || stats_result.error() != IpcError::InvalidCapability) {
            w.problem("stats() of a removed endpoint did not give InvalidCapability");
        }
        return;
    }
    if (!stats_result) {
        w.problem("stats() returned " + error_string(stats_result.error()));
        return;
    }
    const EndpointStats& s = *stats_result;
    // Nothing lost: what was accepted and not received was discarded by the close. The
    // request of a call that failed and was never received may have been discarded too (or
    // never queued).
    const u64 unreceived = plain_accepted - plain_received;
    if (s.discarded_on_close < unreceived ||
        s.discarded_on_close > unreceived + calls_failed_unreceived) {
        w.problem(std::to_string(plain_accepted) + " messages accepted, " +
                  std::to_string(plain_received) + " received, but " +
                  std::to_string(s.discarded_on_close) +
                  " discarded on close (failed calls whose request nobody took: " +
                  std::to_string(calls_failed_unreceived) + ")");
    }
    if (c.close_mode == CloseMode::AfterDrained && s.discarded_on_close != 0) {
        w.problem("the close after the queue drained discarded " +
                  std::to_string(s.discarded_on_close) + " messages");
    }
    if (s.active || s.queued != 0 || s.waiting_senders != 0 || s.waiting_receivers != 0 ||
        s.waiting_callers != 0) {
        w.problem("after the close: active=" + std::to_string(s.active) +
                  " queued=" + std::to_string(s.queued) +
                  " waiting senders/receivers/callers=" + std::to_string(s.waiting_senders) + "/" +
                  std::to_string(s.waiting_receivers) + "/" + std::to_string(s.waiting_callers));
    }
    if (s.sent != s.received + s.discarded_on_close) {
        w.problem("counters: sent " + std::to_string(s.sent) + " != received " +
                  std::to_string(s.received) + " + discarded " +
                  std::to_string(s.discarded_on_close));
    }
    if (s.fast_path_hits + s.slow_path != fast_checked || s.fast_path_hits > fast_ok) {
        w.problem("fast path counters: hits " + std::to_string(s.fast_path_hits) + " + slow " +
                  std::to_string(s.slow_path) + " for " + std::to_string(fast_checked) +
                  " checked fast sends (" + std::to_string(fast_ok) + " accepted)");
    }
}

// What a scenario's seeds exercised, summed over its seeds (the endpoint's counters and
// the parties' outcomes), so a run shows that the interesting paths were taken.
struct Coverage {
    u64 switches = 0;
    u64 spurious_wakes = 0;
    u64 blocked = 0;
    u64 timed_out = 0;
    u64 full = 0;
    u64 discarded = 0;
    u64 fast_path_hits = 0;
    u64 gone_errors = 0;  // sends and calls that found the endpoint closed or removed
    u64 replies_to_gone_callers = 0;
    u64 calls_ok = 0;
    u64 removals = 0;      // seeds whose endpoint was removed (no counters: not summed above)
    u64 stale_errors = 0;  // operations that met the removed endpoint's stale token

    void add(const World& w, const SimPlatform::RunResult& run, const EndpointStats* s) {
        switches += run.switches;
        spurious_wakes += run.spurious_wakes;
        if (s != nullptr) {
            blocked += s->blocked;
            timed_out += s->timed_out;
            full += s->full;
            discarded += s->discarded_on_close;
            fast_path_hits += s->fast_path_hits;
        } else {
            ++removals;
        }
        for (const Attempt& a : w.attempts) {
            if (!a.ok && is_gone_error(w, a.error)) ++gone_errors;
            if (!a.ok && a.error == IpcError::InvalidCapability) ++stale_errors;
            if (a.ok && a.kind == SendKind::Call) ++calls_ok;
        }
        for (const Receipt& r : w.receipts) {
            if (!r.reply_ok && r.reply_error == IpcError::ProcessNotFound) {
                ++replies_to_gone_callers;
            }
        }
    }

    std::string describe() const {
        char text[512];
        std::snprintf(text, sizeof text,
                      "%llu switch points, %llu spurious wakes; blocked %llu, timed out %llu, "
                      "found full %llu, discarded on close %llu, fast-path hand-offs %llu, "
                      "sends/calls that found it closed %llu, calls answered %llu, replies "
                      "to callers gone %llu; removed instead of closed in %llu seeds (stale "
                      "token errors %llu)",
                      ull(switches), ull(spurious_wakes), ull(blocked), ull(timed_out), ull(full),
                      ull(discarded), ull(fast_path_hits), ull(gone_errors), ull(calls_ok),
                      ull(replies_to_gone_callers), ull(removals), ull(stale_errors));
        return text;
    }
    static unsigned long long ull(u64 v) { return static_cast<unsigned long long>(v); }
};

// Keeps a World whose run deadlocked alive, reachable and untouched until the process ends.
void keep_forever(std::unique_ptr<World> world) {
    static auto* graveyard = new std::vector<std::unique_ptr<World>>();
    graveyard->push_back(std::move(world));
}

// Runs one seed of a scenario; returns what went wrong (empty when every check held).
std::string run_seed(const Scenario& scenario, u64 seed, Coverage* coverage) {
    const Cast cast = choose_cast(scenario, seed);
    auto world = std::make_unique<World>(seed, cast);
    World& w = *world;
    Result<Endpoint> endpoint = w.registry.create_endpoint(ProcessId{1}, cast.capacity);
    if (!endpoint) return "create_endpoint returned " + error_string(endpoint.error());
    w.endpoint = *endpoint;
    w.removing = cast.remove;

    u32 party = 0;
    const u32 sending_parties =
        cast.sync_senders + cast.async_senders + cast.fast_senders + cast.callers;
    for (u32 i = 0; i < cast.sync_senders; ++i, ++party) {
        w.sim.spawn(ProcessId{100 + party},
                    [&w, &cast, party, seed] { run_sync_sender(w, cast, party, seed); });
    }
    for (u32 i = 0; i < cast.async_senders; ++i, ++party) {
        w.sim.spawn(ProcessId{100 + party}, [&w, &cast, party, seed] {
            run_nonblocking_sender(w, cast, party, seed, SendKind::Async);
        });
    }
    for (u32 i = 0; i < cast.fast_senders; ++i, ++party) {
        w.sim.spawn(ProcessId{100 + party}, [&w, &cast, party, seed] {
            run_nonblocking_sender(w, cast, party, seed, SendKind::Fast);
        });
    }
    for (u32 i = 0; i < cast.callers; ++i, ++party) {
        w.sim.spawn(ProcessId{100 + party},
                    [&w, &cast, party, seed] { run_caller(w, cast, party, seed); });
    }
    u32 receiver = 0;
    for (u32 i = 0; i < cast.sync_receivers; ++i, ++receiver) {
        w.sim.spawn(ProcessId{200 + receiver},
                    [&w, &cast, receiver, seed] { run_sync_receiver(w, cast, receiver, seed); });
    }
    for (u32 i = 0; i < cast.polling_receivers; ++i, ++receiver) {
        w.sim.spawn(ProcessId{200 + receiver},
                    [&w, receiver, seed] { run_polling_receiver(w, receiver, seed); });
    }
    w.sim.spawn(ProcessId{1},
                [&w, &cast, sending_parties] { run_closer(w, cast, sending_parties); });

    const SimPlatform::RunResult run = w.sim.run();
    if (run.deadlock) {
        // The registry may hold waiters of unwound stacks: leave it alone (see sim.hpp).
        std::string text = "\n  - the run failed: " + run.failure;
        for (const std::string& p : w.problems)
            text += "\n  - " + p;
        keep_forever(std::move(world));
        return text;
    }
    check_outcome(w, cast, run);
    Result<EndpointStats> stats = w.endpoint.stats();
    coverage->add(w, run, stats ? &*stats : nullptr);
    if (w.problems.empty()) return "";
    std::string text;
    for (const std::string& p : w.problems)
        text += "\n  - " + p;
    return text;
}

// Runs a scenario's seeds (or the one seed named by VIPC_SIM_SEED) and fails at the first
// seed whose checks do not hold.
void run_scenario(const Scenario& scenario) {
    bool replay = false;
    const u64 only_seed = env_u64("VIPC_SIM_SEED", 0, &replay);
    const u64 count = replay ? 1 : env_u64("VIPC_SIM_SEEDS", scenario.default_seeds);
    if (count == 0) GTEST_SKIP() << "VIPC_SIM_SEEDS=0: no interleavings run";

    const auto start = std::chrono::steady_clock::now();
    Coverage coverage;
    u64 ran = 0;
    for (u64 i = 0; i < count; ++i) {
        const u64 seed = replay ? only_seed : i + 1;
        const std::string failure = run_seed(scenario, seed, &coverage);
        ++ran;
        if (!failure.empty()) {
            ADD_FAILURE() << "scenario " << scenario.name << ", seed " << seed
                          << "\n  cast: " << choose_cast(scenario, seed).describe()
                          << "\n  what went wrong:" << failure
                          << "\n  replay: VIPC_SIM_SEED=" << seed
                          << " ./sim_interleavings_test --gtest_filter='SimInterleavings."
                          << scenario.name << "'";
            break;
        }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("[   sim    ] %s: %llu interleavings in %.2f s: %s\n", scenario.name,
                static_cast<unsigned long long>(ran), seconds, coverage.describe().c_str());
    ::testing::Test::RecordProperty("interleavings", std::to_string(ran));
    ::testing::Test::RecordProperty("switch_points", std::to_string(coverage.switches));
}

// name, default seeds, max of: sync senders, async senders, fast senders, callers,
// sync receivers, polling receivers; racing deadlines. The defaults add up to 20,000.
constexpr Scenario SYNC_SENDERS_AND_RECEIVERS{"SyncSendersAndReceivers", 4000, 3, 0, 0, 0, 2, 0};
constexpr Scenario ASYNC_AND_FAST_SENDERS{"AsyncAndFastSenders", 4000, 0, 2, 2, 0, 1, 2};
constexpr Scenario CALLS_AND_REPLIES{"CallsAndReplies", 4000, 0, 0, 0, 4, 2, 1};
constexpr Scenario EVERYTHING_ON_ONE_ENDPOINT{"EverythingOnOneEndpoint", 4000, 2, 1, 1, 2, 2, 1};
constexpr Scenario DEADLINES_RACING_WAKES{"DeadlinesRacingWakes", 4000, 2, 1, 1, 2, 2, 0, true};

TEST(SimInterleavings, SyncSendersAndReceivers) {
    run_scenario(SYNC_SENDERS_AND_RECEIVERS);
}
TEST(SimInterleavings, AsyncAndFastSenders) {
    run_scenario(ASYNC_AND_FAST_SENDERS);
}
TEST(SimInterleavings, CallsAndReplies) {
    run_scenario(CALLS_AND_REPLIES);
}
TEST(SimInterleavings, EverythingOnOneEndpoint) {
    run_scenario(EVERYTHING_ON_ONE_ENDPOINT);
}
TEST(SimInterleavings, DeadlinesRacingWakes) {
    run_scenario(DEADLINES_RACING_WAKES);
}

}  // namespace
}  // namespace veridian::ipc
