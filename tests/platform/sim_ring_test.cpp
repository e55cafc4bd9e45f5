// SPDX-License-Identifier: MIT OR Apache-2.0
// Seeded ring scenarios on the deterministic simulator: the posix runtime's data path (the
// record ring, Outbox, Inbox and park(), the very code the runtime runs) between two
// simulated processes that share two ring pages, one per direction.
//
// Each seed picks a geometry (depth 1-8, inline limit 0-500 bytes, so records of 1-9 lines
// wrap and pad often), a number of messages per direction (small messages and payloads of
// random sizes), a spin budget, and one ending: both producers close after their last
// message; a consumer closes early; or a process dies at a seed-chosen step (its tasks stop
// without closing; the other process's monitor task, woken by the simulated kernel, marks
// the peer dead and wakes its own waiters, as the runtime's peer-death monitor does).
// Afterwards:
//   - the run ended: no waiter sleeps forever (the sim reports a deadlock otherwise), every
//     task finished before the virtual-time horizon, and no announced sleeper is left
//     (every waiting flag is 0);
//   - no wake is lost: without a death, no sleep ran out its slice;
//   - per direction, what the consumer took is exactly the producer's messages 0..k-1 in
//     order, bytes intact (no loss, no duplicate, no reorder);
//   - nothing accepted is lost: unless the consumer stopped early, k equals the number of
//     sends that succeeded (what was sent before a close or a death stays readable).
//
// Seeds 1..N, N = $VIPC_SIM_SEEDS (default 10,000); VIPC_SIM_SEED=<n> replays one. A failure
// prints the seed, the cast and what went wrong.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "platform/sim_shared_words.hpp"
#include "posix/inbox.hpp"
#include "posix/outbox.hpp"
#include "sim_seeds.hpp"
#include "veridian/ipc/platform/sim.hpp"

namespace veridian::ipc {
namespace {

using namespace posix::detail;

// This test's random choices (sim_seeds.hpp).
struct Rng : sim_test::Rng {
    explicit Rng(u64 seed) : sim_test::Rng(seed, 7) {}
};

constexpr u64 HORIZON_NS = 10'000'000'000;  // virtual; real runs end far sooner

enum class Ending : u8 { Close, ConsumerCloses, ProcessDies };

struct Cast {
    u32 depth = 1;
    u32 max_inline = 0;
    u32 messages[2] = {0, 0};  // per direction: 0 = A→B, 1 = B→A
    u32 spin_ns = 0;
    Ending ending = Ending::Close;
    u32 who = 0;      // ConsumerCloses: the direction whose consumer closes; ProcessDies: 0 A, 1 B
    u32 at_step = 0;  // after how many messages
    u64 sizes_seed = 0;

    std::string describe() const {
        char text[256];
        static const char* endings[] = {"both producers close", "a consumer closes early",
                                        "a process dies"};
        std::snprintf(text, sizeof text,
                      "depth %u, inline limit %u, %u A->B and %u B->A messages, spin %u ns, %s "
                      "(%s %u, after %u)",
                      depth, max_inline, messages[0], messages[1], spin_ns,
                      endings[static_cast<int>(ending)],
                      ending == Ending::ProcessDies ? "process" : "direction", who, at_step);
        return text;
    }
};

Cast choose_cast(u64 seed) {
    Rng rng(seed);
    Cast c;
    c.depth = 1u << rng.between(0, 3);
    static const u32 limits[] = {0, 48, 200, 500};
    c.max_inline = limits[rng.between(0, 3)];
    c.messages[0] = static_cast<u32>(rng.between(0, 30));
    c.messages[1] = static_cast<u32>(rng.between(0, 30));
    c.spin_ns = rng.between(0, 1) == 0 ? 0 : 2000;
    c.ending = static_cast<Ending>(rng.between(0, 2));
    c.who = static_cast<u32>(rng.between(0, 1));
    c.at_step = static_cast<u32>(rng.between(0, 30));
    c.sizes_seed = rng.next();
    return c;
}

// Message i of a direction: a SmallMessage when the size is 0 modulo 5 (or no payload fits),
// else a payload of that size; its bytes derive from (direction, i).
usize size_of(const Cast& c, u32 direction, u32 i) {
    Rng rng(c.sizes_seed ^ (u64{direction} << 40) ^ i);
    return static_cast<usize>(rng.between(0, c.max_inline));
}
bool is_small(const Cast& c, u32 direction, u32 i) {
    return c.max_inline == 0 || size_of(c, direction, i) % 5 == 0;
}
std::byte byte_of(u32 direction, u32 i, usize k) {
    return static_cast<std::byte>((direction * 101 + i * 7 + k) & 0xFF);
}

// One direction's shared pages (data and ctl), as both simulated processes map them.
struct SharedRing {
    explicit SharedRing(const RingGeometry& g) : geometry(g) {
        data.reset(static_cast<u8*>(std::aligned_alloc(PAGE_BYTES, g.data_bytes)));
        ctl.reset(static_cast<u8*>(std::aligned_alloc(PAGE_BYTES, g.ctl_bytes)));
        std::memset(data.get(), 0, g.data_bytes);
        std::memset(ctl.get(), 0, g.ctl_bytes);
        header = new (data.get()) RingDataHeader{};
        control = new (ctl.get()) RingCtl{};
    }
    struct Free {
        void operator()(u8* p) const { std::free(p); }
    };
    RingGeometry geometry;
    std::unique_ptr<u8, Free> data, ctl;
    RingDataHeader* header;
    RingCtl* control;
};

// What each simulated process knows privately, and what the simulated kernel knows.
struct World {
    std::atomic<u32> dead[2] = {0, 0};            // kernel: the process is gone
    std::atomic<u32> hangup{0};                   // kernel: bumped when a process dies
    std::atomic<u32> peer_dead_seen[2] = {0, 0};  // process p's monitor saw its peer die
};

class Owner final : public OutboxOwner, public InboxOwner {
public:
    Owner(World& w, u32 process, const RingDataHeader* data, const RingCtl* ctl)
        : world_(w), process_(process), data_(data), ctl_(ctl) {}
    Result<void> check(bool) override {
        if (world_.dead[process_].load() != 0) return IpcError::ProcessNotFound;  // we died
        if (world_.peer_dead_seen[process_].load() != 0) return IpcError::EndpointNotFound;
        if (data_->closed.load() != 0 || ctl_->closed.load() != 0) {
            return IpcError::EndpointNotFound;
        }
        return ok();
    }
    void published() override {}
    int attachment_socket() override { return -1; }
    u32 peer_cpu() override { return 0; }
    std::atomic<u32>& parked_senders() override { return parked_; }

private:
    World& world_;
    u32 process_;
    const RingDataHeader* data_;
    const RingCtl* ctl_;
    std::atomic<u32> parked_{0};
};

struct Outcome {
    u32 pushed = 0;  // sends that succeeded
    u32 taken = 0;   // records the consumer took, all checked
    bool consumer_stopped_early = false;
    std::string problem;       // the consumer's
    std::string send_problem;  // the producer's
};

std::string run_seed(u64 seed, const Cast& cast) {
    SimPlatform::Options options;
    options.max_tick_ns = cast.spin_ns != 0 ? 500 : 0;  // a spinner must see time pass
    SimPlatform sim(seed, options);
    platform::SimSharedWords words(sim);
    const RingGeometry g = *RingGeometry::make(cast.depth, cast.max_inline, 0);
    SharedRing rings[2] = {SharedRing(g), SharedRing(g)};
    World world;
    Outcome out[2];
    const Deadline horizon = Deadline::at(HORIZON_NS);

    auto die = [&](u32 process) {
        if (world.dead[process].exchange(1) == 0) {
            world.hangup.fetch_add(1);
            words.wake_all(&world.hangup);
        }
    };
    auto producer = [&](u32 direction) {
        const u32 process = direction;  // A produces direction 0, B direction 1
        SharedRing& r = rings[direction];
        Owner owner(world, process, r.header, r.control);
        Outbox outbox;
        {
            DeadlineLock lock(outbox.mu);
            outbox.attach(words, g, r.header, r.control, cast.spin_ns);
        }
        std::vector<std::byte> payload(cast.max_inline);
        for (u32 i = 0; i < cast.messages[direction]; ++i) {
            if (cast.ending == Ending::ProcessDies && cast.who == process && i == cast.at_step) {
                die(process);
                return;
            }
            if (world.dead[process].load() != 0) return;
            OutgoingRecord rec;
            Message small;
            if (is_small(cast, direction, i)) {
                SmallMessage m{};
                m.capability = i;
                m.opcode = 1;
                m.data[0] = direction;
                small = Message(m);
                rec.message = &small;
            } else {
                const usize size = size_of(cast, direction, i);
                for (usize k = 0; k < size; ++k)
                    payload[k] = byte_of(direction, i, k);
                rec.kind = OutgoingRecord::Kind::Payload;
                rec.capability = i;
                rec.opcode = 2;
                rec.payload = std::span<const std::byte>(payload.data(), size);
            }
            auto sent = outbox.send(owner, rec, Blocking::Yes, horizon);
            if (!sent) {
                if (sent.error() != IpcError::EndpointNotFound &&
                    sent.error() != IpcError::ProcessNotFound) {
                    out[direction].send_problem = std::string("send ") + std::to_string(i) +
                                                  " ended with " + error_name(sent.error());
                }
                return;
            }
            ++out[direction].pushed;
        }
        if (cast.ending == Ending::ProcessDies && cast.who == process) {
            die(process);  // after its last message, before closing
            return;
        }
        if (world.dead[process].load() == 0) close_producer_side(words, r.header, 1);
    };
    auto consumer = [&](u32 direction) {
        const u32 process = 1 - direction;
        SharedRing& r = rings[direction];
        Owner owner(world, process, r.header, r.control);
        Inbox inbox;
        inbox.attach(words, g, r.header, r.control, cast.spin_ns);
        for (;;) {
            if (cast.ending == Ending::ProcessDies && cast.who == process &&
                out[direction].taken == cast.at_step) {
                die(process);
            }
            if (cast.ending == Ending::ConsumerCloses && cast.who == direction &&
                out[direction].taken == cast.at_step) {
                out[direction].consumer_stopped_early = true;
                close_consumer_side(words, r.control, 1);
                return;
            }
            auto rec = inbox.next(owner, Blocking::Yes, horizon);
            if (!rec) {
                if (rec.error() == IpcError::ProcessNotFound) {
                    out[direction].consumer_stopped_early = true;  // we died
                } else if (rec.error() != IpcError::EndpointNotFound) {
                    out[direction].problem =
                        std::string("consumer ended with ") + error_name(rec.error());
                }
                return;
            }
            const u32 i = out[direction].taken;
            if (is_small(cast, direction, i)) {
                auto m = RecordConsumer::to_message(*rec);
                if (!m || !m->is_small() || m->small_message().capability != i ||
                    m->small_message().data[0] != direction) {
                    out[direction].problem =
                        "message " + std::to_string(i) + " is not the small message sent";
                    return;
                }
            } else {
                const usize size = size_of(cast, direction, i);
                bool same = rec->kind == RecordKind::Payload && rec->payload_head.capability == i &&
                            rec->payload_head.length == size;
                for (usize k = 0; same && k < size; ++k)
                    same = rec->payload[k] == byte_of(direction, i, k);
                if (!same) {
                    out[direction].problem =
                        "message " + std::to_string(i) + " is not the payload sent";
                    return;
                }
            }
            inbox.finish(*rec);
            ++out[direction].taken;
        }
    };
    auto monitor = [&](u32 process) {
        // The peer-death monitor of `process`: woken by the kernel's hang-up.
        for (;;) {
            const u32 h = world.hangup.load();
            if (world.dead[1 - process].load() != 0) break;
            if (world.dead[process].load() != 0) return;  // we died ourselves
            // Everyone else done and nobody died: nothing to watch any more.
            if (h == world.hangup.load() &&
                sim.wait(&world.hangup, h, horizon) == WaitResult::TimedOut) {
                return;
            }
        }
        world.peer_dead_seen[process].store(1);
        // Wake our waiters: the consumer of the peer's ring, the producer of ours.
        words.wake_all(&rings[1 - process].header->tail);
        words.wake_all(&rings[process].control->space_wake);
    };

    sim.spawn(ProcessId{1}, [&] { producer(0); });
    sim.spawn(ProcessId{2}, [&] { consumer(0); });
    sim.spawn(ProcessId{2}, [&] { producer(1); });
    sim.spawn(ProcessId{1}, [&] { consumer(1); });
    const bool deaths = cast.ending == Ending::ProcessDies;
    if (deaths) {
        sim.spawn(ProcessId{1}, [&] { monitor(0); });
        sim.spawn(ProcessId{2}, [&] { monitor(1); });
    }
    const SimPlatform::RunResult run = sim.run();

    std::string problems;
    if (!run.ok) problems += "\n  - the run failed: " + run.failure;
    if (run.end_time_ns >= HORIZON_NS) problems += "\n  - a party was still busy at the horizon";
    // Every wait sleeps in slices; without a death every sleep must end by a wake (each
    // state change a sleeper waits for changes its futex word and wakes it): a slice that
    // ran out is a lost wake. A death is noticed by the other process's monitor, which
    // cannot write the peer's pages: there a waiter may sleep out one slice (documented).
    if (cast.ending != Ending::ProcessDies && run.timeouts != 0) {
        problems +=
            "\n  - " + std::to_string(run.timeouts) + " sleep(s) ran out their slice (a lost wake)";
    }
    for (u32 d = 0; d < 2; ++d) {
        const Outcome& o = out[d];
        const std::string dir = d == 0 ? "A->B" : "B->A";
        if (!o.problem.empty()) problems += "\n  - " + dir + ": " + o.problem;
        if (!o.send_problem.empty()) problems += "\n  - " + dir + ": " + o.send_problem;
        if (o.taken > o.pushed) {
            problems += "\n  - " + dir + ": took " + std::to_string(o.taken) + " of " +
                        std::to_string(o.pushed) + " sent (a duplicate)";
        }
        if (!o.consumer_stopped_early && o.taken != o.pushed) {
            problems += "\n  - " + dir + ": took " + std::to_string(o.taken) + " of " +
                        std::to_string(o.pushed) + " sent (lost)";
        }
        if (rings[d].header->waiting_for_space.load() != 0 ||
            rings[d].control->waiting_for_data.load() != 0) {
            problems += "\n  - " + dir + ": a sleeper is left announced";
        }
    }
    return problems;
}

TEST(SimRing, TwoProcessesStreamBothWaysThroughCloseAndDeath) {
    sim_test::run_seeds(10'000, "ring scenarios", "./sim_ring_test", [](u64 seed) {
        const Cast cast = choose_cast(seed);
        return sim_test::SeedOutcome{cast.describe(), run_seed(seed, cast)};
    });
}

}  // namespace
}  // namespace veridian::ipc
