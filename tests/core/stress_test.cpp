// SPDX-License-Identifier: MIT OR Apache-2.0
// Stress: 4 producers and 4 consumers on one endpoint, with random short deadlines on both
// sides, a mix of send_sync / send_async / fast_ipc_send and receive_sync / try_receive, and
// a close at a random moment. Checked afterwards:
//   - nothing lost:       every message whose send returned ok was received or counted in
//                         discarded_on_close (sent_ok == received + discarded), and what was
//                         received of each producer is a prefix 0..k-1 of its sequence;
//   - nothing duplicated: each (producer, seq) is received at most once;
//   - nothing reordered:  each consumer sees each producer's sequence numbers increase;
//   - nothing corrupted:  each message's check word matches its producer and sequence;
//   - nobody stuck:       every thread ends (a watchdog deadline turns a hang into a failure).
//
// VIPC_STRESS_SCALE (default 1.0) scales the 100,000 messages per producer, for slow
// builds (sanitizers). VIPC_STRESS_SEED replays a run's random choices (the interleaving of
// threads is the machine's and is not replayed).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace veridian::ipc {
namespace {

using test::CoreTest;
using test::kMillisecond;

constexpr int kProducers = 4;
constexpr int kConsumers = 4;
constexpr u64 kMessagesPerProducer = 100'000;
constexpr u32 kCapacity = 16;
constexpr u64 kMicrosecond = 1'000;
// A run that has not finished after this long is stuck (a lost wakeup, a waiter that was
// never woken by close): every thread gives up and the test fails.
constexpr u64 kWatchdog = 600'000 * kMillisecond;

double stress_scale() {
    const char* s = std::getenv("VIPC_STRESS_SCALE");
    if (s == nullptr) return 1.0;
    const double v = std::strtod(s, nullptr);
    return v > 0.0 && v <= 100.0 ? v : 1.0;
}

u64 stress_seed() {
    if (const char* s = std::getenv("VIPC_STRESS_SEED")) return std::strtoull(s, nullptr, 0);
    std::random_device device;
    return (u64{device()} << 32) | device();
}

u64 check_word(u64 producer, u64 seq) {
    return (producer * 0x9E3779B97F4A7C15ull) ^ ~seq;
}

struct Shared {
    explicit Shared(u64 per_producer) : messages_per_producer(per_producer) {
        for (auto& s : seen)
            s = std::make_unique<std::atomic<u8>[]>(per_producer);
    }
    const u64 messages_per_producer;
    Deadline watchdog = Deadline::never();
    std::unique_ptr<std::atomic<u8>[]> seen[kProducers];  // times each (producer, seq) arrived
    u64 sent_ok[kProducers] = {};                         // written by producer p only
    std::atomic<u64> received{0};
    std::atomic<u64> duplicates{0};
    std::atomic<u64> reordered{0};
    std::atomic<u64> corrupted{0};
    std::atomic<u64> out_of_range{0};
    std::atomic<u64> unexpected_errors{0};
    std::atomic<u64> timeouts{0};
    std::atomic<bool> stuck{false};
    std::atomic<int> producers_stopped_by_close{0};
    std::atomic<int> consumers_stopped_by_close{0};
};

using Stress = CoreTest;

TEST_F(Stress, FourProducersFourConsumersWithTimeoutsAndACloseLoseDuplicateAndReorderNothing) {
    const double scale = stress_scale();
    const u64 seed = stress_seed();
    u64 per_producer = static_cast<u64>(static_cast<double>(kMessagesPerProducer) * scale);
    if (per_producer < 100) per_producer = 100;
    const u64 total = per_producer * kProducers;
    std::mt19937_64 setup(seed);
    // Close once this many messages have been received: somewhere from a quarter of the way
    // in (producers still sending, some blocked on the full queue) to the very end.
    const u64 close_after = total / 4 + setup() % (total - total / 4 + 1);
    std::printf(
        "stress: seed=%llu (replay the random choices with VIPC_STRESS_SEED=%llu), "
        "scale=%g, %llu messages per producer, close after %llu received\n",
        static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed), scale,
        static_cast<unsigned long long>(per_producer),
        static_cast<unsigned long long>(close_after));
    RecordProperty("seed", std::to_string(seed));

    Endpoint e = make_endpoint(kCapacity);
    Shared shared(per_producer);
    shared.watchdog = platform.after_ns(kWatchdog);
    const auto started = std::chrono::steady_clock::now();

    // Start line: every thread waits for all the others, so they really run at once.
    std::atomic<int> ready{0};
    constexpr int kThreads = kProducers + kConsumers + 1;
    auto start_together = [&] {
        ready.fetch_add(1);
        while (ready.load() < kThreads)
            std::this_thread::yield();
    };

    {
        std::vector<std::jthread> threads;
        for (int p = 0; p < kProducers; ++p) {
            threads.emplace_back([&, p] {
                ThreadsPlatform::set_current_process(ProcessId{static_cast<u64>(1000 + p)});
                std::mt19937_64 rng(seed ^ (0x100 + static_cast<u64>(p)) * 0x9E3779B97F4A7C15ull);
                Endpoint sender = e.derive(Rights::SEND).value();
                start_together();
                u64 seq = 0;
                while (seq < shared.messages_per_producer) {
                    if (shared.watchdog.expired(platform.now_ns())) {
                        shared.stuck = true;
                        break;
                    }
                    SmallMessage m{};
                    m.capability = sender.capability().raw();
                    m.opcode = 1;
                    m.data[0] = static_cast<u64>(p);
                    m.data[1] = seq;
                    m.data[2] = check_word(static_cast<u64>(p), seq);
                    Result<void> r = ok();
                    const u64 choice = rng() % 16;
                    if (choice == 0) {
                        r = sender.send_async(Message(m));
                    } else if (choice == 1) {
                        r = fast_ipc_send(*sender.space(), m);
                    } else if (choice < 8) {
                        // Short deadlines, from already past to 50 µs.
                        const Deadline d = choice == 2
                                               ? Deadline::past()
                                               : platform.after_ns(rng() % (50 * kMicrosecond));
                        r = sender.send_sync(Message(m), d);
                    } else {
                        r = sender.send_sync(Message(m), platform.after_ns(100 * kMillisecond));
                    }
                    if (r) {
                        ++seq;  // accepted: the next message; refused: the same one again
                    } else if (r.error() == IpcError::Timeout) {
                        shared.timeouts.fetch_add(1);
                    } else if (r.error() == IpcError::EndpointNotFound) {
                        shared.producers_stopped_by_close.fetch_add(1);
                        break;
                    } else if (r.error() != IpcError::ChannelFull) {
                        shared.unexpected_errors.fetch_add(1);
                        break;
                    }
                }
                shared.sent_ok[p] = seq;
            });
        }
        for (int c = 0; c < kConsumers; ++c) {
            threads.emplace_back([&, c] {
                std::mt19937_64 rng(seed ^ (0x200 + static_cast<u64>(c)) * 0x9E3779B97F4A7C15ull);
                Endpoint receiver = e.derive(Rights::RECEIVE).value();
                std::int64_t last[kProducers];
                for (std::int64_t& l : last)
                    l = -1;
                start_together();
                for (;;) {
                    if (shared.watchdog.expired(platform.now_ns())) {
                        shared.stuck = true;
                        break;
                    }
                    Result<Message> r = IpcError::NotInitialized;
                    const u64 choice = rng() % 16;
                    if (choice < 2) {
                        r = receiver.try_receive();
                    } else if (choice < 8) {
                        const Deadline d = choice == 2
                                               ? Deadline::past()
                                               : platform.after_ns(rng() % (50 * kMicrosecond));
                        r = receiver.receive_sync(d);
                    } else {
                        r = receiver.receive_sync(platform.after_ns(100 * kMillisecond));
                    }
                    if (!r) {
                        if (r.error() == IpcError::EndpointNotFound) {
                            shared.consumers_stopped_by_close.fetch_add(1);
                            break;
                        }
                        if (r.error() == IpcError::Timeout) {
                            shared.timeouts.fetch_add(1);
                        } else if (r.error() == IpcError::ChannelEmpty) {
                            std::this_thread::yield();
                        } else {
                            shared.unexpected_errors.fetch_add(1);
                            break;
                        }
                        continue;
                    }
                    const SmallMessage& m = r->small_message();
                    const u64 p = m.data[0];
                    const u64 seq = m.data[1];
                    if (p >= kProducers || seq >= shared.messages_per_producer) {
                        shared.out_of_range.fetch_add(1);
                        continue;
                    }
                    if (m.data[2] != check_word(p, seq)) shared.corrupted.fetch_add(1);
                    if (shared.seen[p][seq].fetch_add(1) != 0) shared.duplicates.fetch_add(1);
                    if (static_cast<std::int64_t>(seq) <= last[p]) shared.reordered.fetch_add(1);
                    last[p] = static_cast<std::int64_t>(seq);
                    shared.received.fetch_add(1);
                }
            });
        }
        // The closer.
        threads.emplace_back([&] {
            start_together();
            while (shared.received.load() < close_after) {
                if (shared.watchdog.expired(platform.now_ns())) {
                    shared.stuck = true;
                    break;
                }
                std::this_thread::yield();
            }
            if (!e.close()) shared.unexpected_errors.fetch_add(1);
        });
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    const EndpointStats s = stats_of(e);
    u64 sent_ok = 0;
    for (u64 n : shared.sent_ok)
        sent_ok += n;
    std::printf(
        "stress: %.2f s; sent ok %llu, received %llu, discarded on close %llu, "
        "timeouts %llu, blocked %llu, fast-path hits %llu, producers stopped by close "
        "%d\n",
        seconds, static_cast<unsigned long long>(sent_ok),
        static_cast<unsigned long long>(shared.received.load()),
        static_cast<unsigned long long>(s.discarded_on_close),
        static_cast<unsigned long long>(shared.timeouts.load()),
        static_cast<unsigned long long>(s.blocked),
        static_cast<unsigned long long>(s.fast_path_hits),
        shared.producers_stopped_by_close.load());

    ASSERT_FALSE(shared.stuck.load()) << "a thread was still running at the watchdog deadline";
    EXPECT_EQ(shared.unexpected_errors.load(), 0u);
    EXPECT_EQ(shared.out_of_range.load(), 0u);
    EXPECT_EQ(shared.corrupted.load(), 0u);
    EXPECT_EQ(shared.duplicates.load(), 0u);
    EXPECT_EQ(shared.reordered.load(), 0u);
    EXPECT_EQ(shared.consumers_stopped_by_close.load(), kConsumers);
    EXPECT_GE(shared.received.load(), close_after);

    // Nothing lost, counted two ways.
    EXPECT_EQ(sent_ok, shared.received.load() + s.discarded_on_close);
    EXPECT_EQ(s.sent, sent_ok);
    EXPECT_EQ(s.received, shared.received.load());
    // What arrived of each producer is exactly its first k messages (the queue is FIFO and
    // close discards its tail), and nothing it was refused.
    for (int p = 0; p < kProducers; ++p) {
        u64 count = 0;
        u64 end = 0;
        for (u64 seq = 0; seq < per_producer; ++seq) {
            if (shared.seen[p][seq].load() != 0) {
                ++count;
                end = seq + 1;
            }
        }
        EXPECT_EQ(count, end) << "producer " << p << " has a gap in what was received";
        EXPECT_LE(end, shared.sent_ok[p]) << "producer " << p << ": a refused message arrived";
    }
}

// Calls racing a close: 8 callers through one endpoint, 2 servers replying, random short
// deadlines on the calls and a close at a random moment. Every call ends (reply, Timeout or
// EndpointNotFound), every reply reaches the caller that made the request, and a reply the
// server was told was delivered is received by exactly one caller.
TEST_F(Stress, CallersRacingTimeoutsAndACloseEachGetTheirOwnReplyOrAnError) {
    constexpr int kCallers = 8;
    constexpr int kServers = 2;
    const double scale = stress_scale();
    const u64 seed = stress_seed();
    u64 calls_per_caller = static_cast<u64>(20'000.0 * scale);
    if (calls_per_caller < 50) calls_per_caller = 50;
    std::mt19937_64 setup(seed);
    const u64 total = calls_per_caller * kCallers;
    const u64 close_after = total / 4 + setup() % (total - total / 4 + 1);
    std::printf("stress: seed=%llu, scale=%g, %llu calls per caller, close after %llu replies\n",
                static_cast<unsigned long long>(seed), scale,
                static_cast<unsigned long long>(calls_per_caller),
                static_cast<unsigned long long>(close_after));
    RecordProperty("seed", std::to_string(seed));

    Endpoint e = make_endpoint(8);
    const Deadline watchdog = platform.after_ns(kWatchdog);
    std::atomic<u64> replies_received{0};
    std::atomic<u64> replies_delivered{0};
    std::atomic<u64> replies_to_gone_callers{0};
    std::atomic<u64> caller_timeouts{0};
    std::atomic<u64> wrong_replies{0};
    std::atomic<u64> unexpected_errors{0};
    std::atomic<int> callers_done{0};
    std::atomic<bool> stuck{false};
    {
        std::vector<std::jthread> threads;
        for (int c = 0; c < kCallers; ++c) {
            threads.emplace_back([&, c] {
                ThreadsPlatform::set_current_process(ProcessId{static_cast<u64>(3000 + c)});
                std::mt19937_64 rng(seed ^ (0x300 + static_cast<u64>(c)) * 0x9E3779B97F4A7C15ull);
                Endpoint caller = e.derive(Rights::SEND).value();
                for (u64 i = 0; i < calls_per_caller; ++i) {
                    if (watchdog.expired(platform.now_ns())) {
                        stuck = true;
                        break;
                    }
                    const u64 tag = (static_cast<u64>(c) << 32) | i;
                    Message request = Message::small(0, 7);
                    request.small_message().data[0] = tag;
                    const Deadline d = rng() % 4 == 0
                                           ? platform.after_ns(rng() % (50 * kMicrosecond))
                                           : platform.after_ns(100 * kMillisecond);
                    Result<Message> reply = caller.call(request, d);
                    if (reply) {
                        replies_received.fetch_add(1);
                        if (reply->small_message().data[0] != ~tag ||
                            (reply->flags() & MessageFlags::IS_REPLY) == 0) {
                            wrong_replies.fetch_add(1);
                        }
                    } else if (reply.error() == IpcError::Timeout) {
                        caller_timeouts.fetch_add(1);
                    } else if (reply.error() == IpcError::EndpointNotFound) {
                        break;
                    } else {
                        unexpected_errors.fetch_add(1);
                        break;
                    }
                }
                callers_done.fetch_add(1);
            });
        }
        for (int s = 0; s < kServers; ++s) {
            threads.emplace_back([&] {
                Endpoint server = e.derive(Rights::RECEIVE).value();
                for (;;) {
                    if (watchdog.expired(platform.now_ns())) {
                        stuck = true;
                        break;
                    }
                    Result<Message> request =
                        server.receive_sync(platform.after_ns(100 * kMillisecond));
                    if (!request) {
                        if (request.error() == IpcError::Timeout) continue;
                        if (request.error() != IpcError::EndpointNotFound) {
                            unexpected_errors.fetch_add(1);
                        }
                        break;
                    }
                    Message response = Message::small(0, 8);
                    response.small_message().data[0] = ~request->small_message().data[0];
                    Result<void> r = server.reply(*request, response);
                    if (r) {
                        replies_delivered.fetch_add(1);
                    } else if (r.error() == IpcError::ProcessNotFound) {
                        replies_to_gone_callers.fetch_add(1);  // its caller timed out
                    } else if (r.error() == IpcError::EndpointNotFound) {
                        break;
                    } else {
                        unexpected_errors.fetch_add(1);
                    }
                }
            });
        }
        threads.emplace_back([&] {
            while (replies_received.load() < close_after && callers_done.load() < kCallers) {
                if (watchdog.expired(platform.now_ns())) {
                    stuck = true;
                    break;
                }
                std::this_thread::yield();
            }
            if (!e.close()) unexpected_errors.fetch_add(1);
        });
    }
    std::printf(
        "stress: %llu replies received, %llu caller timeouts, %llu replies to callers "
        "that had timed out\n",
        static_cast<unsigned long long>(replies_received.load()),
        static_cast<unsigned long long>(caller_timeouts.load()),
        static_cast<unsigned long long>(replies_to_gone_callers.load()));
    ASSERT_FALSE(stuck.load()) << "a thread was still running at the watchdog deadline";
    EXPECT_EQ(unexpected_errors.load(), 0u);
    EXPECT_EQ(wrong_replies.load(), 0u);
    EXPECT_EQ(replies_delivered.load(), replies_received.load());
    EXPECT_LE(replies_to_gone_callers.load(), caller_timeouts.load());
    const EndpointStats st = stats_of(e);
    EXPECT_EQ(st.waiting_callers, 0u);
    EXPECT_EQ(st.waiting_senders, 0u);
    EXPECT_EQ(st.waiting_receivers, 0u);
}

}  // namespace
}  // namespace veridian::ipc
