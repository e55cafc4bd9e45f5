// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime, internal: the server's ready set. A receive finds the
// connections that may hold a message in time proportional to their number, not to the
// number of connections; spinning and sleeping use the same set.
//
// Layer: posix (hosted). Not installed. Built on platform::SharedWords, so the simulator runs
// the same code (tests/platform/sim_ready_set_test.cpp).
//
// ## Layout
//
// Every connection is in one of two modes, chosen by the server and told to its client in a
// word only the server writes (`arm`, in the connection's c2s ctl page, read-only to the
// client):
//
//   Polled (arm 0)  recently busy: the server looks at its ring itself on every pass, and
//                   while it sleeps it waits on that ring's tail word (futex_waitv), so the
//                   client wakes it on its own word, attributably (as before: one client's
//                   spurious wakes mute that client only).
//   Armed  (arm 1)  idle: the server does not look at it. A client that publishes while
//                   armed marks its slot in the ready map, and rings the shared bell when
//                   the server sleeps.
//
// The ready map, in the server's doorbell memfd (every client maps it read-write):
//
//   +0     bell        u32: bumped and woken by a marking client that saw the server asleep
//   +64    summary[S]  u64: bit j of summary[k] set: bits[64 k + j] may be non-zero
//   +64+8S bits[W]     u64: bit b of bits[w] set: slot 64 w + b marked itself
//                      (W = ceil(slots / 64), S = ceil(W / 64), the summary padded to a line)
//
// 10,000 slots take 1.25 KiB of bits and 24 bytes of summary. A pass reads the S summary
// words (one line), and only under a set summary bit the bits word, and only under a set bit
// that one connection: O(polled + marked), whatever the number of connections.
//
// Why this layout, and not
//   - a ring of ready ids (io_uring's completion ring, multi-producer): every client would
//     write its head/tail indexes, so a liar could fill it with junk or stop honest clients
//     from enqueueing (full), and duplicates cost a slot each; a bitmap is idempotent (a
//     second mark is free), has a fixed size, and carries no index to lie about;
//   - per-connection ready words alone: finding them is the scan over every connection
//     this set removes;
//   - the kernel's ready list (epoll over per-connection sockets or eventfds): trustworthy
//     and attributable, but a system call per wake on both sides and nothing to spin on.
//   The map is shared, so it is a hint only: what a bit says is checked against the one
//   thing the server trusts, the connection's own ring (ReadyMember::check_ready), and the
//   mode lives in a word the client cannot write.
//
// ## Trust (every shared word may lie)
//   - bits set for other slots, or all of them: each set bit costs one check, and a pass
//     stops reading the map once READY_BOGUS_BUDGET checks in the current READY_WINDOW_NS
//     found nothing (the bits it did not read stay set; the next window reads them). So a
//     client that sets every bit buys at most READY_BOGUS_BUDGET checks per window;
//   - a client that marks itself forever without sending: its marks find an empty ring and
//     count against the same budget; it gets nothing but that rate-limited look. Polled
//     connections (the busy ones) never depend on the map, so they are not slowed at all;
//     an armed client's first message waits at most one window while the map is muted;
//   - bits or summary words cleared by a liar (an honest mark erased): the client marks
//     again with every later publish while it is armed, and each time the server prepares
//     to sleep it also checks READY_SWEEP_PER_SLEEP armed connections directly, round robin
//     over the slots, so an erased mark is found after at most slots / READY_SWEEP_PER_SLEEP
//     sleeps (degraded, never lost);
//   - the bell rung without a mark: a wake whose pass finds nothing is spurious and counted
//     against the bell's budget (READY_WAKE_BUDGET per window, then the bell is left out of
//     the sleep until the window ends); the tail word of a polled connection woken without
//     a record: that connection's own budget, then it is muted until the window ends (its
//     ring is still looked at on every pass);
//   - a slot index beyond `slots` in the map: never produced by a pass (bits beyond the last
//     slot are masked off); a slot whose connection is gone or was re-used: one check;
//   - the mode and slot words: written by the server only.
//
// ## The protocol
//
// Client (producer), after it published a record with publish_order() (record_ring.hpp
// (P5)), in notice_after_publish():
//   (M1) load arm (SharedWords::announced(): relaxed when a heavy barrier exists, seq_cst
//        otherwise)
//   (M2) armed: set the slot's bit (fetch_or, seq_cst), then its summary bit (fetch_or,
//        seq_cst). Bit before summary: a pass that reads the summary after the second store
//        finds the bit; one that read it between the two finds a summary bit for a word it
//        already emptied, which costs one load.
//   (M3) load ServerState::waiting (as (M1)); set: armed → bump the bell and wake it;
//        polled → store the tail word and wake it (RecordProducer::publish_tail).
//
// Server (consumer), one receiving thread at a time (the caller serializes: Server's
// receive lock):
//   pass, in next():
//   (R1) harvest: for each set summary bit, exchange the summary word to 0 and each bits
//        word it names to 0; each set bit names a slot: its member armed and check_ready()
//        finds work → promote it (arm = 0, relaxed: a client that still reads 1 marks once
//        more, which costs one check) and append it to the polled list; anything else is a
//        bogus mark, counted against the window's budget (over it: stop, put the unread bits
//        back, skip the map until the window ends)
//   (R2) look at the polled members round robin from the one after the last served: the
//        first whose check_ready() finds work is the answer
//   (R3) the polled list grew past READY_MAX_POLLED: demote the ones idle longest (as in
//        (S1)-(S3), with a heavy barrier of their own)
//   sleep, in wait_ready():
//   (S1) demote: members idle for READY_IDLE_NS, and every one beyond what the sleep can
//        wait on, get arm = 1 (seq_cst); the sweep picks READY_SWEEP_PER_SLEEP armed slots
//   (S2) announce: ServerState::waiting = 1 (seq_cst), then heavy_barrier()
//   (S3) read the words to sleep on, in this order: the private word, the bell, and for each
//        polled member its tail word, each followed by check_ready() of that member; then
//        check_ready() of every member demoted in (S1) and of the swept ones (work → back to
//        polled); then the summary. Anything found → unannounce, back to the pass
//   (S4) sleep on all those words (the bell unless muted; polled tails unless muted) until
//        one is woken or changes, a mute ends, one slice passes or the deadline
//   (S5) unannounce (waiting = 0); a wake by a polled member's tail whose ring has nothing
//        is spurious for that member; a wake by the bell whose pass finds nothing is
//        spurious for the bell (no spin after a spurious wake)
// SYNC POINT (arm): (S1)+(S2)+(S3) against (P5)+(M1). With a heavy barrier: either the
// barrier ran after the client's (P5) (then (S3) sees the record), or before its (M1) (then
// (M1) sees arm = 1 and the client marks). Without one, both sides are seq_cst and one of the
// two loads sees the other's store. Either way a demoted member's record is never left
// unseen.
// SYNC POINT (sleep): (S2)+(S3) against (M2)+(M3), the same argument: either (S3) sees the
// mark (summary) or the record (polled tail, check), or (M3) sees waiting = 1 and changes
// the word the server sleeps on before it wakes it; the futex compares the value read in
// (S3), so a wake between (S3) and (S4) is not lost.
// SYNC POINT (private word): whoever must make the sleeping receiver look again (a new
// member, a close, a released view) bumps the private word (seq_cst) after its change and
// wakes it; (S3) reads it first.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "platform/shared_words.hpp"
#include "posix/parking.hpp"
#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/mutex.hpp"
#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc::posix::detail {

using platform::SharedWords;

// The window of every budget below.
inline constexpr u64 READY_WINDOW_NS = 1'000'000;
// Marks per window that may find nothing before the map is skipped until the window ends.
inline constexpr u32 READY_BOGUS_BUDGET = 256;
// Wakes per window (of the bell; of one polled member's tail) that may find nothing.
inline constexpr u32 READY_WAKE_BUDGET = 4;
// A polled member that had no work for this long is demoted when the server sleeps.
inline constexpr u64 READY_IDLE_NS = 50'000'000;
// Most members polled at once: what one futex_waitv holds (128) less the bell and the
// private word.
inline constexpr u32 READY_MAX_POLLED = 126;
// Armed slots checked directly each time the server prepares to sleep (see Trust).
inline constexpr u32 READY_SWEEP_PER_SLEEP = 8;
// Largest number of slots a map may have (2^20: 128 KiB of bits).
inline constexpr u32 READY_MAX_SLOTS = 1u << 20;

// Counts events per window; false once the window's budget is spent.
class WindowBudget {
public:
    explicit WindowBudget(u32 budget = READY_WAKE_BUDGET) : budget_(budget) {}
    bool allow(u64 now) {
        if (now - window_start_ >= READY_WINDOW_NS) {
            window_start_ = now;
            spent_ = 0;
        }
        return ++spent_ <= budget_;
    }
    bool spent(u64 now) const { return now - window_start_ < READY_WINDOW_NS && spent_ >= budget_; }
    u64 window_end() const { return window_start_ + READY_WINDOW_NS; }

private:
    u32 budget_;
    u64 window_start_ = 0;
    u32 spent_ = 0;
};

// The ready map's words, over memory shared with every client (see Layout).
struct ReadyMap {
    std::atomic<u32>* bell = nullptr;
    std::atomic<u64>* summary = nullptr;
    std::atomic<u64>* bits = nullptr;
    u32 slots = 0;
    u32 summary_words = 0;
    u32 bits_words = 0;

    // Bytes of a map of `slots` slots (a multiple of 64).
    static usize bytes_for(u32 slots);
    // The map at `base` (64-byte aligned, bytes_for(slots) bytes, zeroed by its creator).
    static ReadyMap over(void* base, u32 slots);
    bool valid() const { return bell != nullptr; }
};

// What the client does after publishing a record (M1)-(M3); the caller does the wake that
// names its own tail word. `slot` is checked against the map (a slot beyond it: no mark,
// the bell is rung when the server sleeps).
enum class ReadyNotice : u8 { None, OwnWord, Bell };
ReadyNotice notice_after_publish(SharedWords& words, const std::atomic<u32>& arm,
                                 const ReadyMap& map, u32 slot, const std::atomic<u32>& waiting);
// (M2) alone: marks `slot` (no bounds beyond the map's).
void mark_ready(const ReadyMap& map, u32 slot);

// What check_ready() found.
enum class ReadyCheck : u8 {
    Empty,     // nothing to take
    Work,      // a record (or a corrupt ring: the taker finds out and breaks the connection)
    Deferred,  // something, but not now (rate-limited, or held by another receiver): stays
               // polled; *retry_at says when to look again (0: when the private word moves)
};

enum class ReadyMode : u8 { Free, Armed, Polled };

// One connection as the ready set sees it. The fields after the virtuals are the set's
// (written by add() before it publishes the member, then only under the receive lock); the
// owner sets arm and wake_word before add().
class ReadyMember {
public:
    // The one check a mark or a wake costs: the connection's own ring (and its rate limit).
    virtual ReadyCheck check_ready(u64 now, u64* retry_at) = 0;

    std::atomic<u32>* arm = nullptr;              // written by us, read by the client
    const std::atomic<u32>* wake_word = nullptr;  // the tail word the client wakes when polled

    // The set's private state.
    u32 slot = 0;
    ReadyMode mode = ReadyMode::Free;
    u32 polled_at = 0;    // index in the polled list while Polled
    u64 last_work = 0;    // when check_ready() last found work
    u64 muted_until = 0;  // tail wakes ignored until then
    WindowBudget wakes;

protected:
    ~ReadyMember() = default;
};

// What the receive loop needs from its owner (the Server, or a simulated one).
class ReadyWaiter {
public:
    // Between waits: ok, or the error the receive returns (closed).
    virtual Result<void> check() = 0;
    // ServerState::waiting.
    virtual std::atomic<u32>& waiting() = 0;
    // The process-private word (nullptr: none; the sleep then waits on the bell for that too).
    virtual const std::atomic<u32>* private_word() = 0;
    // Sleeps until one of words[i] is woken or differs from values[i], or until until_ns
    // (absolute, SharedWords' clock). Returns the index of the word woken, -1 otherwise.
    virtual long sleep(const std::atomic<u32>* const* words, const u32* values, u32 count,
                       u64 until_ns) = 0;
    // How many words sleep() can wait on at once (futex_waitv: 128; at least 1).
    virtual u32 sleep_capacity() = 0;
    // The peer's CPU hint for the spin (0: unknown).
    virtual u32 peer_cpu() { return 0; }

protected:
    ~ReadyWaiter() = default;
};

// The server's ready set. add() may be called from any thread (the server's acceptor lists a
// connection while a receiver sleeps); every other call is serialized by the owner (the
// receive lock), remove() included.
class ReadySet {
public:
    // The map (zeroed) and its slots; before first use.
    void attach(SharedWords& words, const ReadyMap& map);
    const ReadyMap& map() const { return map_; }

    // Gives the member a free slot and arms it (arm = 1), before its client learns of the
    // connection (so its first publish marks). ResourceBusy when every slot is taken. The
    // passes see it only after list(): call that once the owner's own fields are final, and
    // before the client learns of the connection.
    Result<u32> add(ReadyMember& member);
    void list(ReadyMember& member);
    // Takes the member out (its slot becomes free; a mark left for it costs one check).
    void remove(ReadyMember& member);

    // (R1)-(R3): a member with work, round robin; nullptr when none. Sets *retry_at to the
    // earliest time a Deferred member wants a look (unchanged when none).
    ReadyMember* next(u64 now, u64* retry_at);
    // For a spin: whether a pass may find something (polled rings, or a marked summary).
    bool any_pending(u64 now);

    // The whole receive wait, (S1)-(S5) around passes: a member with work, or the waiter's
    // error, or Timeout at the deadline, or ChannelEmpty when `blocking` is No and one pass
    // found nothing.
    Result<ReadyMember*> wait_ready(ReadyWaiter& waiter, SpinBudget& spin, Blocking blocking,
                                    Deadline deadline);

    // Statistics (for tests and stat).
    u32 polled() const { return static_cast<u32>(polled_.size()); }
    u32 members() const { return members_count_.load(std::memory_order_relaxed); }
    // Counters (written by the receive lock's holder; any thread may read them).
    u64 bogus_marks() const { return bogus_marks_.load(std::memory_order_relaxed); }
    u64 spurious_wakes() const { return spurious_wakes_.load(std::memory_order_relaxed); }
    u64 promotions() const { return promotions_.load(std::memory_order_relaxed); }
    u64 demotions() const { return demotions_.load(std::memory_order_relaxed); }
    // Times the map, the bell or a member was muted.
    u64 mutes() const { return mutes_.load(std::memory_order_relaxed); }
    bool map_muted(u64 now) const { return now < map_muted_until_; }

private:
    void harvest(u64 now);
    void promote(ReadyMember& m, u64 now);
    void demote(ReadyMember& m);
    void unlist(ReadyMember& m);
    bool summary_marked() const;
    // (S1) and (S3) for members demoted outside a sleep (R3).
    void shed_polled(u64 now);

    SharedWords* words_ = nullptr;
    ReadyMap map_{};
    // Slot → member (nullptr: free). Stored by add() (release) from any thread, read by the
    // passes (acquire); cleared by remove() under the receive lock.
    std::unique_ptr<std::atomic<ReadyMember*>[]> by_slot_;
    std::mutex slots_mu_;
    std::vector<u32> free_slots_ VIPC_GUARDED_BY(slots_mu_);
    std::atomic<u32> members_count_{0};
    std::vector<ReadyMember*> polled_;
    u32 rr_next_ = 0;
    std::vector<ReadyMember*> rechecks_;  // demoted or swept, to check after the barrier
    u32 sweep_next_ = 0;
    WindowBudget bogus_{READY_BOGUS_BUDGET};
    u64 map_muted_until_ = 0;
    WindowBudget bell_{READY_WAKE_BUDGET};
    u64 bell_muted_until_ = 0;
    // The words of one sleep, and whose each is (nullptr: the private word or the bell).
    std::vector<const std::atomic<u32>*> sleep_words_;
    std::vector<u32> sleep_values_;
    std::vector<ReadyMember*> sleep_members_;
    // One writer at a time (the receive lock): count() is a load and a store, no
    // read-modify-write.
    static void count(std::atomic<u64>& c) {
        c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    std::atomic<u64> bogus_marks_{0};
    std::atomic<u64> spurious_wakes_{0};
    std::atomic<u64> promotions_{0};
    std::atomic<u64> demotions_{0};
    std::atomic<u64> mutes_{0};
};

// The real ReadyWaiter::sleep is platform::futex_wait_any (futex_waitv).
using platform::futex_wait_any;
using platform::FUTEX_WAIT_ANY_MAX;

}  // namespace veridian::ipc::posix::detail
