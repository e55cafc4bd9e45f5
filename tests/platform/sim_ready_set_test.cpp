// SPDX-License-Identifier: MIT OR Apache-2.0
// Seeded scenarios of the server's ready set (src/posix/ready_set.hpp) on the deterministic
// simulator: the very ReadySet code the server runs, between simulated client processes that
// publish into their own little rings and mark themselves as the runtime's clients do
// (notice_after_publish), and one or two simulated receiver threads that take from the set
// under one lock, as the server's receivers do.
//
// A member whose message a receiver is handling is Deferred to the others (the server does the
// same for a connection whose view is out), so one producer's messages are handled one at a
// time, in order, even with two receivers.
//
// Each seed picks: 1-6 producers with 0-24 messages each; 0-140 idle members added first (so
// producers sit at slots that cross bits words); one or two receivers; a spin budget; and a
// hostile client: none; one that sets every bit and summary bit of the map; one that keeps
// ringing the bell; one that marks its own slot forever without sending; or one that erases
// the whole map (honest marks lost: the set's sweep and the clients' later marks must find
// them); and how many words the receivers' sleep can wait on at once: 1 (a kernel without
// futex_waitv: the bell alone, every polled member demoted before each sleep), or 2, 3, 5 or
// 128 (futex_waitv: the private word, the bell and up to 1, 2, 4 or 126 polled tails, the rest
// demoted). The sim waits on one word at a time, so futex_waitv is modelled: a sleeper
// registers its words, and every wake in the scenario (the test's SharedWords::wake_all) also
// wakes a registered sleeper whose set holds the word; wakers change the word before they
// wake, as they do on Linux.
// Afterwards:
//   - the run ended before the horizon, no waiter sleeps forever (the sim reports a
//     deadlock otherwise), no sleeper is left announced;
//   - per producer, what the receivers took is exactly its messages 0..n-1, in order, each
//     once (no loss, no duplicate, no reorder), and no two receivers held one producer's
//     message at the same time;
//   - no wake is lost: with no hostile client and no budget spent (nothing muted), no
//     sleep ran out its slice.
//
// Seeds 1..N, N = $VIPC_SIM_SEEDS (default 10,000); VIPC_SIM_SEED=<n> replays one.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "platform/sim_shared_words.hpp"
#include "posix/ready_set.hpp"
#include "sim_seeds.hpp"
#include "veridian/ipc/platform/sim.hpp"

namespace veridian::ipc {
namespace {

using namespace posix::detail;

// This test's random choices (sim_seeds.hpp).
struct Rng : sim_test::Rng {
    explicit Rng(u64 seed) : sim_test::Rng(seed, 11) {}
};

constexpr u64 HORIZON_NS = 20'000'000'000;  // virtual

enum class Hostile : u8 { None, SetsEveryBit, RingsBell, MarksItself, ErasesMap };

struct Cast {
    u32 producers = 1;
    u32 messages[6] = {};
    u32 idle = 0;
    u32 receivers = 1;
    u32 spin_ns = 0;
    Hostile hostile = Hostile::None;
    u32 hostile_rounds = 0;
    u32 capacity = 1;  // words one sleep waits on

    std::string describe() const {
        static const char* names[] = {"none", "sets every bit", "rings the bell",
                                      "marks itself without sending", "erases the map"};
        std::string text = std::to_string(producers) + " producer(s) with";
        for (u32 p = 0; p < producers; ++p)
            text += " " + std::to_string(messages[p]);
        text += " messages, " + std::to_string(idle) + " idle members, " +
                std::to_string(receivers) + " receiver(s), spin " + std::to_string(spin_ns) +
                " ns, hostile client: " + names[static_cast<int>(hostile)] + " (" +
                std::to_string(hostile_rounds) + " rounds), sleeps on " + std::to_string(capacity) +
                " word(s)";
        return text;
    }
};

Cast choose_cast(u64 seed) {
    Rng rng(seed);
    Cast c;
    c.producers = static_cast<u32>(rng.between(1, 6));
    for (u32 p = 0; p < c.producers; ++p)
        c.messages[p] = static_cast<u32>(rng.between(0, 24));
    c.idle = rng.between(0, 3) == 0 ? 0 : static_cast<u32>(rng.between(0, 140));
    c.receivers = static_cast<u32>(rng.between(1, 2));
    c.spin_ns = rng.between(0, 1) == 0 ? 0 : 2000;
    c.hostile = rng.between(0, 1) == 0 ? Hostile::None : static_cast<Hostile>(rng.between(1, 4));
    c.hostile_rounds = static_cast<u32>(rng.between(1, 40));
    static const u32 capacities[] = {1, 2, 3, 5, 128};
    c.capacity = capacities[rng.between(0, 4)];
    return c;
}

// One simulated client's ring, reduced to what the ready set looks at: a count of published
// messages (the producer's), the tail word it wakes when polled, and the server's arm word.
// The consumer side (taken, held) is private to the receivers, under their lock.
struct SimMember final : ReadyMember {
    std::atomic<u32> published{0};  // written by the producer, publish_order()
    std::atomic<u32> tail{0};       // the futex word it wakes while polled
    std::atomic<u32> arm_word{0};   // written by the server
    // Taken (written under the receivers' lock) and held (receivers handling one of its
    // messages right now: let go without the lock, as a server's view is finished while
    // another receiver sleeps holding the receive lock).
    std::atomic<u32> taken{0};
    std::atomic<u32> held{0};
    u64 checks = 0;

    SimMember() {
        arm = &arm_word;
        wake_word = &tail;
    }
    ReadyCheck check_ready(u64, u64* retry_at) override {
        ++checks;
        if (published.load(std::memory_order_acquire) == taken.load()) return ReadyCheck::Empty;
        if (held.load() != 0) {
            *retry_at = 0;  // until the holder lets go (it rings the bell: no private word here)
            return ReadyCheck::Deferred;
        }
        return ReadyCheck::Work;
    }
};

// The receivers' lock: a sim-aware mutex (every wait a switch point).
class SimLock {
public:
    SimLock(SimPlatform& sim, platform::SharedWords& words) : sim_(sim), words_(words) {}
    void lock() {
        while (word_.exchange(1) != 0)
            (void)sim_.wait(&word_, 1, Deadline::never());
    }
    void unlock() {
        word_.store(0);
        words_.wake_all(&word_);
    }

private:
    SimPlatform& sim_;
    platform::SharedWords& words_;
    std::atomic<u32> word_{0};
};

// futex_waitv over the sim: the sleepers registered by SimWaiter, woken through
// ModelWords::wake_all.
struct WaitvSleeper {
    const std::atomic<u32>* const* words = nullptr;
    u32 count = 0;
    bool active = false;
    std::atomic<u32> any{0};  // the one word the sim really waits on
};

// The scenario's SharedWords: the sim's, except that a wake also reaches registered sleepers.
class ModelWords final : public platform::SharedWords {
public:
    explicit ModelWords(SimPlatform& sim) : SharedWords(true), sim_(sim), inner_(sim) {}
    WaitResult wait(const std::atomic<u32>* word, u32 expected, Deadline deadline) override {
        return inner_.wait(word, expected, deadline);
    }
    void wake_all(const std::atomic<u32>* word) override {
        // Decide first (no switch point in between), then wake: the word already changed.
        WaitvSleeper* hit[4] = {};
        u32 hits = 0;
        for (WaitvSleeper* s : sleepers) {
            if (!s->active) continue;
            for (u32 i = 0; i < s->count; ++i) {
                if (s->words[i] == word) {
                    hit[hits++] = s;
                    break;
                }
            }
        }
        inner_.wake_all(word);
        for (u32 i = 0; i < hits; ++i) {
            hit[i]->any.fetch_add(1);
            inner_.wake_all(&hit[i]->any);
        }
    }
    u64 now_ns() override { return inner_.now_ns(); }
    void heavy_barrier() override { inner_.heavy_barrier(); }
    u32 cpu_hint() override { return 0; }
    bool single_cpu() override { return false; }
    void yield() override { sim_.yield(); }
    void relax() override { sim_.yield(); }

    std::vector<WaitvSleeper*> sleepers;  // fixed before the run (at most 4)

private:
    SimPlatform& sim_;
    platform::SimSharedWords inner_;
};

// The sleeping side: one word (no futex_waitv: no private word either), or the model of
// futex_waitv on up to `capacity` words with a private word.
class SimWaiter final : public ReadyWaiter {
public:
    SimWaiter(SimPlatform& sim, std::atomic<u32>& waiting, u32 capacity,
              const std::atomic<u32>* private_word, WaitvSleeper& sleeper)
        : sim_(sim),
          waiting_(waiting),
          capacity_(capacity),
          private_(private_word),
          sleeper_(sleeper) {}
    Result<void> check() override { return ok(); }
    std::atomic<u32>& waiting() override { return waiting_; }
    const std::atomic<u32>* private_word() override { return capacity_ > 1 ? private_ : nullptr; }
    long sleep(const std::atomic<u32>* const* words, const u32* values, u32 count,
               u64 until_ns) override {
        if (count > capacity_) {
            failure = "the set asked to sleep on " + std::to_string(count) + " words, more than " +
                      std::to_string(capacity_);
            return -1;
        }
        if (count == 0) {
            (void)sim_.wait(&nothing_, 0, Deadline::at(until_ns));
            return -1;
        }
        if (capacity_ == 1) {
            const WaitResult r = sim_.wait(const_cast<std::atomic<u32>*>(words[0]), values[0],
                                           Deadline::at(until_ns));
            return r == WaitResult::TimedOut ? -1 : 0;
        }
        // futex_waitv: register, compare every word, sleep; report a word that changed.
        sleeper_.words = words;
        sleeper_.count = count;
        const u32 any = sleeper_.any.load();
        sleeper_.active = true;
        long which = -1;
        for (u32 i = 0; i < count && which < 0; ++i)
            if (words[i]->load() != values[i]) which = i;
        if (which < 0) (void)sim_.wait(&sleeper_.any, any, Deadline::at(until_ns));
        sleeper_.active = false;
        for (u32 i = 0; i < count && which < 0; ++i)
            if (words[i]->load() != values[i]) which = i;
        return which;
    }
    u32 sleep_capacity() override { return capacity_; }
    std::string failure;

private:
    SimPlatform& sim_;
    std::atomic<u32>& waiting_;
    u32 capacity_;
    const std::atomic<u32>* private_;
    WaitvSleeper& sleeper_;
    std::atomic<u32> nothing_{0};
};

std::string run_seed(u64 seed, const Cast& cast) {
    SimPlatform::Options options;
    options.max_tick_ns = 500;  // time passes while tasks run: budgets' windows end
    SimPlatform sim(seed, options);
    ModelWords words(sim);

    const u32 slots = 64 * 4 + 17;  // several bits words, a partial last one
    std::vector<u64> page(ReadyMap::bytes_for(slots) / 8, 0);
    const ReadyMap map = ReadyMap::over(page.data(), slots);
    std::atomic<u32> waiting{0};

    ReadySet set;
    set.attach(words, map);
    std::vector<std::unique_ptr<SimMember>> idle(cast.idle);
    for (auto& m : idle) {
        m = std::make_unique<SimMember>();
        (void)set.add(*m);
        set.list(*m);
    }
    std::vector<std::unique_ptr<SimMember>> producers(cast.producers);
    for (auto& m : producers) {
        m = std::make_unique<SimMember>();
        (void)set.add(*m);
        set.list(*m);
    }
    SimMember hostile_member;
    if (cast.hostile == Hostile::MarksItself) {
        (void)set.add(hostile_member);
        set.list(hostile_member);
    }

    u32 total = 0;
    for (u32 p = 0; p < cast.producers; ++p)
        total += cast.messages[p];

    SimLock lock(sim, words);
    // One waiter per receiver (their sleeps never overlap: the lock), one registration.
    WaitvSleeper sleeper;
    words.sleepers.push_back(&sleeper);
    std::atomic<u32> private_word{0};  // the receivers' own: bumped when a hold ends
    SimWaiter waiter(sim, waiting, cast.capacity, &private_word, sleeper);
    u32 consumed = 0;  // under lock
    std::string problem;
    std::vector<std::vector<u32>> log(cast.producers);  // what was taken, per producer

    auto producer = [&](u32 p) {
        SimMember& m = *producers[p];
        for (u32 i = 0; i < cast.messages[p]; ++i) {
            sim.yield();
            words.publish(m.published, i + 1);
            if (notice_after_publish(words, m.arm_word, map, m.slot, waiting) ==
                ReadyNotice::OwnWord) {
                m.tail.store(i + 1, std::memory_order_seq_cst);
                words.wake_all(&m.tail);
            }
        }
    };
    auto receiver = [&](u32 r) {
        SpinBudget spin(cast.spin_ns);
        for (;;) {
            lock.lock();
            if (consumed == total || !problem.empty()) {
                lock.unlock();
                return;
            }
            auto got = set.wait_ready(waiter, spin, Blocking::Yes, Deadline::at(HORIZON_NS));
            if (!got) {
                problem = "receiver " + std::to_string(r) + ": wait_ready ended with " +
                          error_name(got.error());
                lock.unlock();
                return;
            }
            auto* m = static_cast<SimMember*>(*got);
            u32 p = 0;
            while (p < cast.producers && producers[p].get() != m)
                ++p;
            if (p == cast.producers) {
                problem = "receiver " + std::to_string(r) + " was handed a member that never " +
                          "published (slot " + std::to_string(m->slot) + ")";
                lock.unlock();
                return;
            }
            // Take one message (the set hands out members whose check found work).
            const u32 index = m->taken.load();
            m->taken.store(index + 1);
            log[p].push_back(index);
            ++consumed;
            if (m->held.fetch_add(1) != 0) problem = "two receivers held one producer's messages";
            lock.unlock();
            sim.yield();  // handle it outside the lock
            // Let go (without the lock: another receiver may sleep holding it). One asleep
            // meanwhile skipped this producer's next messages: make it look through the
            // private word (the bell when the sleep has no private word); it reads both
            // before it checks `held`.
            m->held.store(0);
            if (m->published.load() != m->taken.load()) {
                std::atomic<u32>* word = cast.capacity > 1 ? &private_word : map.bell;
                word->fetch_add(1);
                words.wake_all(word);
            }
        }
    };
    auto hostile = [&] {
        for (u32 round = 0; round < cast.hostile_rounds; ++round) {
            sim.yield();
            switch (cast.hostile) {
                case Hostile::SetsEveryBit:
                    for (u32 w = 0; w < map.bits_words; ++w)
                        map.bits[w].fetch_or(~u64{0});
                    for (u32 k = 0; k < map.summary_words; ++k)
                        map.summary[k].fetch_or(~u64{0});
                    map.bell->fetch_add(1);
                    words.wake_all(map.bell);
                    break;
                case Hostile::RingsBell:
                    map.bell->fetch_add(1);
                    words.wake_all(map.bell);
                    break;
                case Hostile::MarksItself:
                    mark_ready(map, hostile_member.slot);
                    map.bell->fetch_add(1);
                    words.wake_all(map.bell);
                    break;
                case Hostile::ErasesMap:
                    for (u32 w = 0; w < map.bits_words; ++w)
                        map.bits[w].store(0);
                    for (u32 k = 0; k < map.summary_words; ++k)
                        map.summary[k].store(0);
                    break;
                case Hostile::None:
                    break;
            }
        }
    };

    for (u32 p = 0; p < cast.producers; ++p)
        sim.spawn(ProcessId{10 + p}, [&, p] { producer(p); });
    for (u32 r = 0; r < cast.receivers; ++r)
        sim.spawn(ProcessId{1}, [&, r] { receiver(r); });
    if (cast.hostile != Hostile::None) sim.spawn(ProcessId{99}, hostile);
    const SimPlatform::RunResult run = sim.run();

    std::string problems;
    if (!run.ok) problems += "\n  - the run failed: " + run.failure;
    if (run.end_time_ns >= HORIZON_NS) problems += "\n  - a party was still busy at the horizon";
    if (!problem.empty()) problems += "\n  - " + problem;
    if (!waiter.failure.empty()) problems += "\n  - " + waiter.failure;
    if (waiting.load() != 0) problems += "\n  - a receiver is left announced";
    for (u32 p = 0; p < cast.producers; ++p) {
        const std::vector<u32>& got = log[p];
        if (got.size() != cast.messages[p]) {
            problems += "\n  - producer " + std::to_string(p) + ": took " +
                        std::to_string(got.size()) + " of " + std::to_string(cast.messages[p]);
        }
        for (u32 i = 0; i < got.size(); ++i) {
            if (got[i] != i) {
                problems += "\n  - producer " + std::to_string(p) + ": message " +
                            std::to_string(i) + " was taken as " + std::to_string(got[i]);
                break;
            }
        }
    }
    if (cast.hostile == Hostile::None && set.mutes() == 0 && run.timeouts != 0) {
        problems += "\n  - " + std::to_string(run.timeouts) +
                    " sleep(s) ran out their slice with nothing muted (a lost wake)";
    }
    return problems;
}

TEST(SimReadySet, ProducersAndReceiversDeliverEveryMarkExactlyOnceInOrder) {
    sim_test::run_seeds(10'000, "ready set scenarios", "./sim_ready_set_test", [](u64 seed) {
        const Cast cast = choose_cast(seed);
        return sim_test::SeedOutcome{cast.describe(), run_seed(seed, cast)};
    });
}

}  // namespace
}  // namespace veridian::ipc
