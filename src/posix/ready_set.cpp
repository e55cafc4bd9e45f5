// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: the server's ready set (see ready_set.hpp for the layout, the
// trust rules and the protocol steps named below).
#include "posix/ready_set.hpp"

#include <algorithm>
#include <bit>

namespace veridian::ipc::posix::detail {

namespace {
constexpr usize round_to_line(usize bytes) {
    return (bytes + 63) & ~usize{63};
}
constexpr u32 words_for_bits(u32 bits) {
    return (bits + 63) / 64;
}
}  // namespace

usize ReadyMap::bytes_for(u32 slots) {
    const u32 w = words_for_bits(slots);
    const u32 s = words_for_bits(w);
    return 64 + round_to_line(usize{s} * 8) + round_to_line(usize{w} * 8);
}

ReadyMap ReadyMap::over(void* base, u32 slots) {
    ReadyMap m;
    auto* bytes = static_cast<u8*>(base);
    m.slots = slots;
    m.bits_words = words_for_bits(slots);
    m.summary_words = words_for_bits(m.bits_words);
    m.bell = reinterpret_cast<std::atomic<u32>*>(bytes);
    m.summary = reinterpret_cast<std::atomic<u64>*>(bytes + 64);
    m.bits =
        reinterpret_cast<std::atomic<u64>*>(bytes + 64 + round_to_line(usize{m.summary_words} * 8));
    return m;
}

void mark_ready(const ReadyMap& map, u32 slot) {
    const u32 w = slot / 64;
    map.bits[w].fetch_or(u64{1} << (slot % 64), std::memory_order_seq_cst);
    map.summary[w / 64].fetch_or(u64{1} << (w % 64), std::memory_order_seq_cst);
}

ReadyNotice notice_after_publish(SharedWords& words, const std::atomic<u32>& arm,
                                 const ReadyMap& map, u32 slot, const std::atomic<u32>& waiting) {
    // (M1)
    const bool armed = words.announced(arm);
    // (M2) bit, then summary
    if (armed && map.valid() && slot < map.slots) mark_ready(map, slot);
    // (M3)
    if (!words.announced(waiting)) return ReadyNotice::None;
    if (!armed) return ReadyNotice::OwnWord;
    if (map.valid()) {
        map.bell->fetch_add(1, std::memory_order_seq_cst);
        words.wake_all(map.bell);
    }
    return ReadyNotice::Bell;
}

void ReadySet::attach(SharedWords& words, const ReadyMap& map) {
    words_ = &words;
    map_ = map;
    by_slot_ = std::make_unique<std::atomic<ReadyMember*>[]>(map.slots);
    for (u32 s = 0; s < map.slots; ++s)
        by_slot_[s].store(nullptr, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(slots_mu_);
    free_slots_.clear();
    free_slots_.reserve(map.slots);
    for (u32 s = map.slots; s > 0; --s)
        free_slots_.push_back(s - 1);  // pop_back hands out slot 0 first
    polled_.reserve(READY_MAX_POLLED + 1);
    sleep_words_.reserve(READY_MAX_POLLED + 2);
    sleep_values_.reserve(READY_MAX_POLLED + 2);
    sleep_members_.reserve(READY_MAX_POLLED + 2);
}

Result<u32> ReadySet::add(ReadyMember& member) {
    u32 slot = 0;
    {
        std::lock_guard<std::mutex> lock(slots_mu_);
        if (free_slots_.empty()) return IpcError::ResourceBusy;
        slot = free_slots_.back();
        free_slots_.pop_back();
    }
    member.slot = slot;
    member.mode = ReadyMode::Armed;
    member.muted_until = 0;
    member.last_work = 0;
    // Before the client learns of the connection (the handshake reply carries the order).
    member.arm->store(1, std::memory_order_seq_cst);
    return slot;
}

void ReadySet::list(ReadyMember& member) {
    // SYNC POINT: release, paired with the acquire of harvest() and of the sweep: they see
    // the member (and its owner's fields) as written before this.
    by_slot_[member.slot].store(&member, std::memory_order_release);
    members_count_.fetch_add(1, std::memory_order_relaxed);
}

void ReadySet::remove(ReadyMember& member) {
    if (member.mode == ReadyMode::Free) return;
    if (member.mode == ReadyMode::Polled) unlist(member);
    std::erase(rechecks_, &member);
    if (by_slot_[member.slot].load(std::memory_order_relaxed) == &member) {
        by_slot_[member.slot].store(nullptr, std::memory_order_relaxed);
        members_count_.fetch_sub(1, std::memory_order_relaxed);
    }
    member.mode = ReadyMode::Free;
    std::lock_guard<std::mutex> lock(slots_mu_);
    free_slots_.push_back(member.slot);
}

void ReadySet::unlist(ReadyMember& m) {
    const u32 i = m.polled_at;
    ReadyMember* last = polled_.back();
    polled_[i] = last;
    last->polled_at = i;
    polled_.pop_back();
}

void ReadySet::promote(ReadyMember& m, u64 now) {
    // Relaxed: a client that still reads arm = 1 marks once more (one check), and rings the
    // bell instead of its tail; both reach us.
    m.arm->store(0, std::memory_order_relaxed);
    m.mode = ReadyMode::Polled;
    m.polled_at = static_cast<u32>(polled_.size());
    m.last_work = now;
    polled_.push_back(&m);
    count(promotions_);
}

void ReadySet::demote(ReadyMember& m) {
    // (S1): paired with (M1) through the heavy barrier that follows (see SYNC POINT (arm)).
    m.arm->store(1, std::memory_order_seq_cst);
    unlist(m);
    m.mode = ReadyMode::Armed;
    rechecks_.push_back(&m);
    count(demotions_);
}

bool ReadySet::summary_marked() const {
    for (u32 k = 0; k < map_.summary_words; ++k) {
        if (map_.summary[k].load(std::memory_order_relaxed) != 0) return true;
    }
    return false;
}

bool ReadySet::any_pending(u64 now) {
    for (ReadyMember* m : polled_) {
        u64 retry = 0;
        if (m->check_ready(now, &retry) == ReadyCheck::Work) return true;
    }
    return !map_muted(now) && summary_marked();
}

void ReadySet::harvest(u64 now) {
    // (R1)
    for (u32 k = 0; k < map_.summary_words; ++k) {
        if (map_.summary[k].load(std::memory_order_relaxed) == 0) continue;
        u64 summary = map_.summary[k].exchange(0, std::memory_order_acq_rel);
        while (summary != 0) {
            const u32 j = static_cast<u32>(std::countr_zero(summary));
            summary &= summary - 1;
            const u32 w = k * 64 + j;
            if (w >= map_.bits_words) {
                count(bogus_marks_);
                (void)bogus_.allow(now);
                continue;
            }
            u64 bits = map_.bits[w].exchange(0, std::memory_order_acq_rel);
            if (w == map_.bits_words - 1 && map_.slots % 64 != 0) {
                bits &= (u64{1} << (map_.slots % 64)) - 1;  // no slot beyond the last
            }
            if (bits == 0) {
                count(bogus_marks_);
                (void)bogus_.allow(now);
            }
            while (bits != 0) {
                if (bogus_.spent(now)) {
                    // Over budget: leave what we did not read for the next window.
                    map_.bits[w].fetch_or(bits, std::memory_order_seq_cst);
                    map_.summary[k].fetch_or(summary | (u64{1} << j), std::memory_order_seq_cst);
                    map_muted_until_ = bogus_.window_end();
                    count(mutes_);
                    return;
                }
                const u32 b = static_cast<u32>(std::countr_zero(bits));
                bits &= bits - 1;
                ReadyMember* m = by_slot_[w * 64 + b].load(std::memory_order_acquire);
                if (m != nullptr && m->mode == ReadyMode::Armed) {
                    u64 retry = 0;
                    if (m->check_ready(now, &retry) != ReadyCheck::Empty) {
                        promote(*m, now);
                        continue;
                    }
                }
                count(bogus_marks_);
                (void)bogus_.allow(now);
            }
        }
        if (bogus_.spent(now)) {
            map_muted_until_ = bogus_.window_end();
            count(mutes_);
            return;
        }
    }
}

void ReadySet::shed_polled(u64 now) {
    // (R3): demote the idlest down to three quarters of the bound, then one barrier and the
    // re-checks of (S3).
    std::vector<ReadyMember*> by_age(polled_);
    std::sort(by_age.begin(), by_age.end(), [](const ReadyMember* a, const ReadyMember* b) {
        return a->last_work < b->last_work;
    });
    const usize keep = READY_MAX_POLLED * 3 / 4;
    for (usize i = 0; i + keep < by_age.size(); ++i)
        demote(*by_age[i]);
    words_->heavy_barrier();
    for (ReadyMember* m : rechecks_) {
        u64 retry = 0;
        if (m->check_ready(now, &retry) != ReadyCheck::Empty) promote(*m, now);
    }
    rechecks_.clear();
}

ReadyMember* ReadySet::next(u64 now, u64* retry_at) {
    if (!map_muted(now) && summary_marked()) harvest(now);
    // (R2)
    const u32 n = static_cast<u32>(polled_.size());
    if (rr_next_ >= n) rr_next_ = 0;
    ReadyMember* found = nullptr;
    for (u32 k = 0, i = rr_next_; k < n; ++k, i = i + 1 == n ? 0 : i + 1) {
        ReadyMember* m = polled_[i];
        u64 retry = 0;
        const ReadyCheck c = m->check_ready(now, &retry);
        if (c == ReadyCheck::Work) {
            m->last_work = now;
            rr_next_ = i + 1;
            found = m;
            break;
        }
        if (c == ReadyCheck::Deferred) {
            m->last_work = now;  // it has something: stays polled
            if (retry != 0 && retry < *retry_at) *retry_at = retry;
        }
    }
    // (R3)
    if (polled_.size() > READY_MAX_POLLED) shed_polled(now);
    return found;
}

Result<ReadyMember*> ReadySet::wait_ready(ReadyWaiter& waiter, SpinBudget& spin, Blocking blocking,
                                          Deadline deadline) {
    SharedWords& words = *words_;
    ReadyMember* woken_by = nullptr;  // whose tail ended the last sleep
    bool woken_by_bell = false;
    for (;;) {
        const u64 now = words.now_ns();
        bool spurious = false;
        if (woken_by != nullptr) {
            // (S5) a wake by one member's tail: does its ring have anything?
            u64 retry = 0;
            if (woken_by->mode == ReadyMode::Polled &&
                woken_by->check_ready(now, &retry) == ReadyCheck::Empty) {
                spurious = true;
                if (!woken_by->wakes.allow(now)) {
                    woken_by->muted_until = woken_by->wakes.window_end();
                    count(mutes_);
                }
            }
            woken_by = nullptr;
        }
        // The pass
        u64 retry_at = ~u64{0};
        if (ReadyMember* m = next(now, &retry_at)) return m;
        if (woken_by_bell) {
            // (S5) the bell cannot say who rang it: the pass was its check
            spurious = true;
            if (!bell_.allow(now)) {
                bell_muted_until_ = bell_.window_end();
                count(mutes_);
            }
            woken_by_bell = false;
        }
        if (spurious) count(spurious_wakes_);
        VIPC_TRY(waiter.check());
        if (blocking == Blocking::No) return IpcError::ChannelEmpty;
        if (!deadline.is_never() && deadline.expired(now)) return IpcError::Timeout;
        // Spin on the same set, unless a wake just proved spurious (spinning is what a
        // hammering client would buy our CPU with).
        if (!spurious && spin.spin(
                             words, [&] { return any_pending(words.now_ns()); }, waiter.peer_cpu(),
                             words.cpu_hint())) {
            continue;
        }
        // (S1) demote the idle ones and what the sleep cannot hold; pick the swept slots
        const std::atomic<u32>* private_word = waiter.private_word();
        const u32 capacity = waiter.sleep_capacity();
        const u32 fixed = private_word != nullptr ? 2 : 1;
        const u32 tails = capacity > fixed ? std::min(capacity - fixed, READY_MAX_POLLED) : 0;
        for (usize i = 0; i < polled_.size();) {
            ReadyMember* m = polled_[i];
            if (m->last_work + READY_IDLE_NS < now) {
                demote(*m);  // moves the last one to i
            } else {
                ++i;
            }
        }
        if (polled_.size() > tails) {
            std::vector<ReadyMember*> by_age(polled_);
            std::sort(by_age.begin(), by_age.end(), [](const ReadyMember* a, const ReadyMember* b) {
                return a->last_work < b->last_work;
            });
            for (usize i = 0; i + tails < by_age.size(); ++i)
                demote(*by_age[i]);
        }
        for (u32 k = 0; k < READY_SWEEP_PER_SLEEP && map_.slots != 0; ++k) {
            ReadyMember* m = by_slot_[sweep_next_].load(std::memory_order_acquire);
            sweep_next_ = sweep_next_ + 1 == map_.slots ? 0 : sweep_next_ + 1;
            if (m != nullptr && m->mode == ReadyMode::Armed &&
                std::find(rechecks_.begin(), rechecks_.end(), m) == rechecks_.end()) {
                rechecks_.push_back(m);
            }
        }
        // (S2) announce
        waiter.waiting().store(1, std::memory_order_seq_cst);
        words.heavy_barrier();
        // (S3) the words to sleep on, each read before the check it guards
        sleep_words_.clear();
        sleep_values_.clear();
        sleep_members_.clear();
        u64 until = now + sleep_slice_ns(words, deadline);
        if (retry_at < until) until = retry_at;
        if (private_word != nullptr) {
            sleep_words_.push_back(private_word);
            sleep_values_.push_back(private_word->load(std::memory_order_seq_cst));
            sleep_members_.push_back(nullptr);
        }
        const u32 bell = map_.bell->load(std::memory_order_seq_cst);
        if (bell_muted_until_ <= now) {
            sleep_words_.push_back(map_.bell);
            sleep_values_.push_back(bell);
            sleep_members_.push_back(nullptr);
        } else if (bell_muted_until_ < until) {
            until = bell_muted_until_;
        }
        bool anything = !waiter.check();
        for (ReadyMember* m : polled_) {
            if (anything) break;
            const u32 tail = m->wake_word->load(std::memory_order_seq_cst);
            u64 retry = 0;
            const ReadyCheck c = m->check_ready(now, &retry);
            if (c == ReadyCheck::Work) {
                anything = true;
                break;
            }
            if (c == ReadyCheck::Deferred && retry != 0 && retry < until) until = retry;
            if (m->muted_until > now) {
                if (m->muted_until < until) until = m->muted_until;
                continue;
            }
            sleep_words_.push_back(m->wake_word);
            sleep_values_.push_back(tail);
            sleep_members_.push_back(m);
        }
        // Every one of them, whatever was found already: a demoted member whose client read
        // arm = 0 before (S1) did not mark, so this check is the only look it gets.
        for (ReadyMember* m : rechecks_) {
            u64 retry = 0;
            const ReadyCheck c = m->check_ready(now, &retry);
            if (c == ReadyCheck::Work) {
                // Back to polled; it is not in this sleep's words, so look again first.
                promote(*m, now);
                anything = true;
            } else if (c == ReadyCheck::Deferred) {
                // Back to polled without its tail in this sleep: nothing of it can be taken
                // before its deferral ends, which moves the private word or is retry_at.
                promote(*m, now);
                if (retry != 0 && retry < until) until = retry;
            }
        }
        rechecks_.clear();
        if (!anything && !map_muted(now) && summary_marked()) anything = true;
        if (map_muted(now) && map_muted_until_ < until) until = map_muted_until_;
        if (anything) {
            waiter.waiting().store(0, std::memory_order_relaxed);
            continue;
        }
        // (S4) sleep
        long r = -1;
        if (until > now) {
            r = waiter.sleep(sleep_words_.data(), sleep_values_.data(),
                             static_cast<u32>(sleep_words_.size()), until);
        }
        // (S5) unannounce; attribute the wake. A sleep that returned without naming a word
        // (a value differed already: futex_waitv does not say which) is attributed to a word
        // that moved, a polled tail first, so that a hammered word is budgeted all the same.
        waiter.waiting().store(0, std::memory_order_relaxed);
        if (r < 0 && words.now_ns() < until) {
            for (usize i = 0; i < sleep_words_.size(); ++i) {
                if (sleep_words_[i]->load(std::memory_order_relaxed) == sleep_values_[i]) continue;
                if (r < 0 || sleep_members_[i] != nullptr) r = static_cast<long>(i);
                if (sleep_members_[i] != nullptr) break;
            }
        }
        if (r >= 0 && static_cast<usize>(r) < sleep_words_.size()) {
            woken_by = sleep_members_[static_cast<usize>(r)];
            woken_by_bell = sleep_words_[static_cast<usize>(r)] == map_.bell;
        }
    }
}

}  // namespace veridian::ipc::posix::detail
