// SPDX-License-Identifier: MIT OR Apache-2.0
// The bridge between two "hosts", with a real nats-server started by each test: host A is
// runtime directory A with the import bridge and the client (this process), host B is
// runtime directory B with the export bridge(s) and the server (in this process, or a peer
// process). The bridges are `vipc bridge` processes.
#include <sys/stat.h>

#include <cstring>
#include <optional>

#include "bridge/local_side.hpp"
#include "bridge/marker.hpp"
#include "bridge_harness.hpp"
#include "veridian/ipc/posix/region.hpp"

namespace veridian::ipc::bridge::test {
namespace {

using posix::test::OP_CALL;
using posix::test::OP_DATA;
using posix::test::OP_HOLD;

constexpr const char* kName = "sensors/imu";

class BridgeTest : public ::testing::Test {
protected:
    RuntimeDir host_a;
    RuntimeDir host_b;
};

// Counter `key` from a bridge's final "counters:" line (-1 when absent).
long long counter(const Process& p, const std::string& key) {
    for (auto it = p.lines().rbegin(); it != p.lines().rend(); ++it) {
        if (it->rfind("counters:", 0) != 0) continue;
        const usize at = it->find(" " + key + " ");
        if (at == std::string::npos) return -1;
        return std::atoll(it->c_str() + at + key.size() + 2);
    }
    return -1;
}

TEST_F(BridgeTest, CallsAndSendsCrossThroughImportAndExport) {
    NatsServer nats;
    ASSERT_TRUE(nats.ready());
    HostBServer server(kName, host_b.path());
    auto exporter = start_bridge("export", kName, host_b.path(), nats.url());
    ASSERT_TRUE(exporter->wait_for("exporting sensors/imu as NATS subject vipc.sensors.imu"));
    auto importer = start_bridge("import", kName, host_a.path(), nats.url());
    ASSERT_TRUE(importer->wait_for("importing sensors/imu"));

    Result<posix::Connection> c = connect_to(kName, host_a.path());
    ASSERT_TRUE(c) << posix::last_error_detail();
    for (u64 i = 0; i < 200; ++i) {
        Result<Message> r = check_reply(c->call(call_message(OP_CALL, i), posix::after_ms(2000)));
        ASSERT_TRUE(r) << i << ": " << error_name(r.error()) << " " << error_detail();
        ASSERT_TRUE(r->is_small());
        EXPECT_EQ(r->small_message().data[0], i + 1);
        EXPECT_EQ(r->opcode(), OP_CALL);
        // The reply comes from the local endpoint of host A: the import bridge.
        EXPECT_EQ(r->sender().value, static_cast<u64>(importer->pid()));
    }
    // A LargeMessage with inline bytes crosses whole.
    LargeMessage l{};
    l.header.opcode = OP_CALL;
    l.header.total_size = 64;
    for (int i = 0; i < 64; ++i)
        l.inline_data[i] = static_cast<u8>(200 - i);
    Result<Message> big = check_reply(c->call(Message(l), posix::after_ms(2000)));
    ASSERT_TRUE(big) << error_detail();
    ASSERT_TRUE(big->is_large());
    EXPECT_EQ(big->large_message().header.total_size, 64u);
    EXPECT_EQ(0, std::memcmp(big->large_message().inline_data, l.inline_data, 64));

    for (u64 i = 0; i < 1000; ++i)
        ASSERT_TRUE(c->send_sync(call_message(OP_DATA, i), posix::after_ms(2000)));
    const u64 give_up = now_ms() + 10'000;
    while (server.received() < 1000 && now_ms() < give_up)
        usleep(5000);
    EXPECT_EQ(server.received(), 1000u);
    EXPECT_EQ(server.out_of_order(), 0u);

    // Host B's server sees the export bridge as the sender (its real pid, not a made-up one),
    // and can tell that it is a bridge: the message came from another host.
    const std::set<u64> senders = server.call_senders();
    ASSERT_EQ(senders.size(), 1u);
    EXPECT_EQ(*senders.begin(), static_cast<u64>(exporter->pid()));
    Message probe = Message::small(0, 0);
    probe.set_sender(ProcessId{*senders.begin()});
    EXPECT_TRUE(is_bridge_sender(probe, kName, host_b.path()));
    probe.set_sender(ProcessId{static_cast<u64>(getpid())});
    EXPECT_FALSE(is_bridge_sender(probe, kName, host_b.path()));
    // Both hosts list their bridge.
    const auto a = list_bridges(host_a.path());
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].role, "import");
    EXPECT_EQ(a[0].subject, "vipc.sensors.imu");

    // `vipc ls` on each host shows the bridged name.
    for (const auto& [dir, text] :
         {std::pair{host_a.path(), std::string("sensors/imu  imported as vipc.sensors.imu")},
          std::pair{host_b.path(), std::string("sensors/imu  exported as vipc.sensors.imu")}}) {
        Process ls({VIPC_PATH, "ls"}, {"VIPC_RUNTIME_DIR=" + dir});
        EXPECT_TRUE(ls.wait_for(text, 5000)) << dir;
    }

    // SIGTERM stops both cleanly: exit 0, their counters printed, nothing left behind.
    EXPECT_EQ(importer->stop(), 0);
    EXPECT_EQ(exporter->stop(), 0);
    EXPECT_EQ(counter(*importer, "calls"), 201);
    EXPECT_EQ(counter(*importer, "sends"), 1000);
    EXPECT_EQ(counter(*exporter, "sends"), 1000);
    EXPECT_EQ(counter(*exporter, "errors"), 0);
    EXPECT_TRUE(list_bridges(host_a.path()).empty());
    EXPECT_TRUE(list_bridges(host_b.path()).empty());
    posix::ConnectOptions o;
    o.runtime_dir = host_a.path();
    Result<posix::Connection> gone = posix::Connection::connect(kName, o);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error(), IpcError::EndpointNotFound);
}

TEST_F(BridgeTest, NoExporterIsEndpointNotFound) {
    NatsServer nats;
    ASSERT_TRUE(nats.ready());
    auto importer = start_bridge("import", kName, host_a.path(), nats.url());
    ASSERT_TRUE(importer->wait_for("importing"));
    Result<posix::Connection> c = connect_to(kName, host_a.path());
    ASSERT_TRUE(c);
    const u64 t0 = now_ms();
    Result<Message> r = check_reply(c->call(call_message(OP_CALL, 1), posix::after_ms(5000)));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), IpcError::EndpointNotFound);
    EXPECT_NE(std::string(error_detail()).find("no exporter"), std::string::npos) << error_detail();
    // NATS answers "no responders" at once: no waiting for the deadline.
    EXPECT_LT(now_ms() - t0, 2000u);
}

TEST_F(BridgeTest, DeadlinesPropagateAsDurations) {
    NatsServer nats;
    ASSERT_TRUE(nats.ready());
    HostBServer server(kName, host_b.path());
    auto exporter = start_bridge("export", kName, host_b.path(), nats.url());
    ASSERT_TRUE(exporter->wait_for("exporting"));
    // The import bridge forwards 600 ms as the call's time (the runtime does not tell it the
    // local caller's deadline).
    auto importer =
        start_bridge("import", kName, host_a.path(), nats.url(), {"--call-timeout", "600"});
    ASSERT_TRUE(importer->wait_for("importing"));
    Result<posix::Connection> c = connect_to(kName, host_a.path());
    ASSERT_TRUE(c);
    ASSERT_TRUE(call_until_ok(*c, 1, 3000));

    // (1) The caller's own deadline, shorter: Timeout at that deadline, from call() itself.
    u64 t0 = posix::now_ns();
    Result<Message> r = c->call(call_message(OP_HOLD, 0), posix::after_ms(200));
    u64 took_ms = (posix::now_ns() - t0) / 1'000'000u;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), IpcError::Timeout);
    EXPECT_GE(took_ms, 200u);
    EXPECT_LT(took_ms, 200u + 1500u);  // generous bound on the wake

    // (2) A longer caller deadline: the remote side gives up at the forwarded duration and
    // its Timeout, with its detail, comes back.
    t0 = posix::now_ns();
    r = check_reply(c->call(call_message(OP_HOLD, 0), posix::after_ms(5000)));
    took_ms = (posix::now_ns() - t0) / 1'000'000u;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), IpcError::Timeout);
    EXPECT_NE(std::string(error_detail()).find("no answer within 600 ms"), std::string::npos)
        << error_detail();
    EXPECT_GE(took_ms, 600u);
    EXPECT_LT(took_ms, 5000u);
    EXPECT_EQ(server.held(), 2u);
    // The connection keeps working.
    ASSERT_TRUE(call_until_ok(*c, 5, 3000));
}

TEST_F(BridgeTest, TheCallersRemainingDeadlineCrosses) {
    NatsServer nats;
    ASSERT_TRUE(nats.ready());
    HostBServer server(kName, host_b.path());
    // Both bridges would allow 10 s: only the caller's deadline can make the call shorter.
    auto exporter = start_bridge("export", kName, host_b.path(), nats.url(),
                                 {"--call-timeout", "10000", "--stats-ms", "100"});
    ASSERT_TRUE(exporter->wait_for("exporting"));
    auto importer =
        start_bridge("import", kName, host_a.path(), nats.url(), {"--call-timeout", "10000"});
    ASSERT_TRUE(importer->wait_for("importing"));
    Result<posix::Connection> c = connect_to(kName, host_a.path());
    ASSERT_TRUE(c);
    ASSERT_TRUE(call_until_ok(*c, 1, 3000));

    // A LargeMessage call (its record carries the deadline) to a remote server that never
    // answers, with a 300 ms deadline.
    LargeMessage l{};
    l.header.opcode = OP_HOLD;
    l.header.total_size = 8;
    constexpr u64 kDeadlineMs = 300;
    const u64 t0 = posix::now_ns();
    Result<Message> r = check_reply(c->call(Message(l), posix::after_ms(kDeadlineMs)));
    const u64 took_ms = (posix::now_ns() - t0) / 1'000'000u;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), IpcError::Timeout);
    EXPECT_GE(took_ms, kDeadlineMs);
    EXPECT_LT(took_ms, kDeadlineMs + 1500u);  // generous bound on the wake
    // The remote server saw the caller's deadline (less the way there), not the bridges' 10 s.
    ASSERT_EQ(server.held(), 1u);
    const u64 remaining = server.last_held_remaining_ns();
    EXPECT_NE(remaining, ~u64{0}) << "the remote side saw no deadline";
    EXPECT_LE(remaining, kDeadlineMs * 1'000'000u);

    // The exporter's own call gave up at the forwarded duration (it counts the Timeout as a
    // call error), long before the bridges' 10 s.
    std::string line;
    EXPECT_TRUE(exporter->wait_for("errors 1 ", 3000, &line)) << line;
    // The connection keeps working.
    ASSERT_TRUE(call_until_ok(*c, 5, 3000));
}

TEST_F(BridgeTest, RemotePermissionDeniedStaysPermissionDenied) {
    NatsServer nats;
    ASSERT_TRUE(nats.ready());
    HostBServer server(kName, host_b.path());
    // The exporter may only send on the local endpoint: calls need RECEIVE too.
    auto exporter = start_bridge("export", kName, host_b.path(), nats.url(), {"--rights", "s"});
    ASSERT_TRUE(exporter->wait_for("exporting"));
    auto importer = start_bridge("import", kName, host_a.path(), nats.url());
    ASSERT_TRUE(importer->wait_for("importing"));
    Result<posix::Connection> c = connect_to(kName, host_a.path());
    ASSERT_TRUE(c);
    Result<Message> r = check_reply(c->call(call_message(OP_CALL, 1), posix::after_ms(3000)));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), IpcError::PermissionDenied);
    EXPECT_NE(std::string(error_detail()).find("remote"), std::string::npos);
    // One-way messages still go.
    ASSERT_TRUE(c->send_sync(call_message(OP_DATA, 0), posix::after_ms(2000)));
    const u64 give_up = now_ms() + 5000;
    while (server.received() < 1 && now_ms() < give_up)
        usleep(5000);
    EXPECT_EQ(server.received(), 1u);
}

TEST_F(BridgeTest, CapabilitiesAndRegionsDoNotCross) {
    NatsServer nats;
    ASSERT_TRUE(nats.ready());
    HostBServer server(kName, host_b.path());
    auto exporter = start_bridge("export", kName, host_b.path(), nats.url());
    ASSERT_TRUE(exporter->wait_for("exporting"));
    auto importer = start_bridge("import", kName, host_a.path(), nats.url());
    ASSERT_TRUE(importer->wait_for("importing"));
    Result<posix::Connection> c = connect_to(kName, host_a.path());
    ASSERT_TRUE(c);

    Result<posix::Region> region = posix::Region::create(4096);
    ASSERT_TRUE(region);
    LargeMessage l{};
    l.header.opcode = OP_CALL;
    Result<Message> r = check_reply(
        c->call(Message(l), *region, posix::Transfer::ShareReadOnly, posix::after_ms(3000)));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), IpcError::InvalidMemoryRegion);
    EXPECT_NE(std::string(error_detail()).find("region"), std::string::npos);

    // A one-way message with a capability cannot be refused to its sender: it is counted.
    posix::ServerOptions so = host_a.server_options();
    Result<posix::Server> other = posix::Server::publish("other", so);
    ASSERT_TRUE(other);
    Result<posix::MintedCapability> cap =
        other->mint_capability(Rights::SEND | Rights::RECEIVE | Rights::GRANT);
    ASSERT_TRUE(cap);
    ASSERT_TRUE(c->send_sync(call_message(OP_DATA, 0), cap->capability, posix::after_ms(2000)));
    // A message after it arrives; the one with the capability never does.
    ASSERT_TRUE(c->send_sync(call_message(OP_DATA, 1), posix::after_ms(2000)));
    const u64 give_up = now_ms() + 5000;
    while (server.received() < 1 && now_ms() < give_up)
        usleep(5000);
    EXPECT_EQ(server.received(), 1u);
    EXPECT_EQ(server.next_expected(), 2u);
    EXPECT_EQ(importer->stop(), 0);
    EXPECT_EQ(counter(*importer, "refused"), 1);
    EXPECT_GE(counter(*importer, "errors"), 1);
}

TEST_F(BridgeTest, QueueGroupSurvivesAnExporterKilledMidStream) {
    NatsServer nats;
    ASSERT_TRUE(nats.ready());
    HostBServer server(kName, host_b.path(), 256);
    auto first = start_bridge("export", kName, host_b.path(), nats.url());
    auto second = start_bridge("export", kName, host_b.path(), nats.url());
    ASSERT_TRUE(first->wait_for("exporting"));
    ASSERT_TRUE(second->wait_for("exporting"));
    const u32 window = 256;
    auto importer = start_bridge("import", kName, host_a.path(), nats.url(),
                                 {"--window", std::to_string(window)});
    ASSERT_TRUE(importer->wait_for("importing"));
    Result<posix::Connection> c = connect_to(kName, host_a.path());
    ASSERT_TRUE(c);

    // Calls are spread over both exporters.
    for (u64 i = 0; i < 100; ++i) {
        Result<Message> r = check_reply(c->call(call_message(OP_CALL, i), posix::after_ms(2000)));
        ASSERT_TRUE(r) << error_detail();
    }
    EXPECT_EQ(server.call_senders().size(), 2u);

    // A one-way stream goes to one of them; kill that one in the middle of it.
    const u64 total = 20'000;
    std::atomic<bool> sending_done{false};
    std::atomic<u64> send_failures{0};
    std::thread sender([&] {
        for (u64 i = 0; i < total; ++i) {
            if (!c->send_sync(call_message(OP_DATA, i), posix::after_ms(10'000)))
                send_failures.fetch_add(1);
        }
        sending_done.store(true);
    });
    u64 give_up = now_ms() + 20'000;
    while (server.received() < total / 4 && now_ms() < give_up)
        usleep(1000);
    const auto by_sender = server.send_senders();
    ASSERT_EQ(by_sender.size(), 1u);
    Process& victim = by_sender.begin()->first == static_cast<u64>(first->pid()) ? *first : *second;
    Process& survivor = &victim == first.get() ? *second : *first;
    victim.kill_now();

    // Calls keep working through the survivor (at most one in flight was lost).
    u64 ok = 0;
    for (u64 i = 0; i < 50; ++i) {
        if (check_reply(c->call(call_message(OP_CALL, i), posix::after_ms(2000)))) ++ok;
    }
    EXPECT_GE(ok, 49u);
    sender.join();
    EXPECT_EQ(send_failures.load(), 0u);
    give_up = now_ms() + 20'000;
    while (server.next_expected() < total && now_ms() < give_up)
        usleep(5000);
    // In order, the stream finished through the survivor, and what was lost with the killed
    // exporter is within the window and counted by the import bridge.
    EXPECT_EQ(server.out_of_order(), 0u);
    EXPECT_EQ(server.next_expected(), total);
    EXPECT_GT(server.send_senders()[static_cast<u64>(survivor.pid())], 0u);
    const u64 lost = total - server.received();
    EXPECT_LE(lost, window);
    EXPECT_EQ(importer->stop(), 0);
    EXPECT_GE(counter(*importer, "unconfirmed"), static_cast<long long>(lost));
    EXPECT_LE(counter(*importer, "unconfirmed"), static_cast<long long>(window));
    EXPECT_EQ(counter(*importer, "streams"), 2);
}

TEST_F(BridgeTest, NatsServerKilledAndRestartedMidCall) {
    NatsServer nats;
    ASSERT_TRUE(nats.ready());
    HostBServer server(kName, host_b.path());
    auto exporter = start_bridge("export", kName, host_b.path(), nats.url());
    ASSERT_TRUE(exporter->wait_for("exporting"));
    auto importer = start_bridge("import", kName, host_a.path(), nats.url());
    ASSERT_TRUE(importer->wait_for("importing"));
    Result<posix::Connection> c = connect_to(kName, host_a.path());
    ASSERT_TRUE(c);
    ASSERT_TRUE(call_until_ok(*c, 1, 3000));

    // A call in flight (held by the server) when NATS dies: it fails with a clear error
    // within its deadline.
    Result<Message> in_flight = IpcError::NotInitialized;
    std::string in_flight_detail;  // remote_error_detail() is per thread
    u64 took_ms = 0;
    std::thread caller([&] {
        const u64 t0 = posix::now_ns();
        in_flight = check_reply(c->call(call_message(OP_HOLD, 0), posix::after_ms(3000)));
        took_ms = (posix::now_ns() - t0) / 1'000'000u;
        in_flight_detail = error_detail();
    });
    u64 give_up = now_ms() + 5000;
    while (server.held() < 1 && now_ms() < give_up)
        usleep(1000);
    ASSERT_EQ(server.held(), 1u);
    nats.kill_now();
    caller.join();
    ASSERT_FALSE(in_flight);
    EXPECT_EQ(in_flight.error(), IpcError::EndpointNotFound);
    EXPECT_NE(in_flight_detail.find("NATS connection lost"), std::string::npos) << in_flight_detail;
    EXPECT_LT(took_ms, 3000u);

    // While NATS is down, calls fail at once, nothing hangs.
    Result<Message> down = check_reply(c->call(call_message(OP_CALL, 2), posix::after_ms(2000)));
    ASSERT_FALSE(down);

    // The same server comes back on the same port: both bridges reconnect by themselves.
    nats.start();
    ASSERT_TRUE(nats.ready());
    Result<Message> back = call_until_ok(*c, 7, 10'000);
    ASSERT_TRUE(back) << error_detail();
    EXPECT_EQ(back->small_message().data[0], 8u);
    // And one-way messages flow again.
    const u64 before = server.received();
    for (u64 i = 0; i < 100; ++i)
        ASSERT_TRUE(c->send_sync(call_message(OP_DATA, 1'000'000 + i), posix::after_ms(5000)));
    give_up = now_ms() + 10'000;
    while (server.received() < before + 100 && now_ms() < give_up)
        usleep(5000);
    EXPECT_EQ(server.received(), before + 100);
    EXPECT_EQ(importer->stop(), 0);
    EXPECT_EQ(exporter->stop(), 0);
    EXPECT_GE(counter(*importer, "reconnects"), 1);
    EXPECT_GE(counter(*exporter, "reconnects"), 1);
}

// The count of the one-way stream: 10^6 (about 0.5 s on the 2-core machine this was
// written on); VIPC_BRIDGE_STREAM_COUNT overrides it.
u64 stream_count() {
    if (const char* v = std::getenv("VIPC_BRIDGE_STREAM_COUNT"))
        return std::strtoull(v, nullptr, 10);
    return 1'000'000;
}

TEST_F(BridgeTest, OneWayStreamArrivesWholeInOrderWithBoundedMemory) {
    NatsServer nats;
    ASSERT_TRUE(nats.ready());
    HostBServer server(kName, host_b.path(), 1024);
    auto exporter =
        start_bridge("export", kName, host_b.path(), nats.url(), {}, {}, measured_memory_env());
    ASSERT_TRUE(exporter->wait_for("exporting"));
    auto importer =
        start_bridge("import", kName, host_a.path(), nats.url(),
                     {"--window", "1024", "--depth", "1024"}, {}, measured_memory_env());
    ASSERT_TRUE(importer->wait_for("importing"));
    Result<posix::Connection> c = connect_to(kName, host_a.path());
    ASSERT_TRUE(c);
    ASSERT_TRUE(call_until_ok(*c, 1, 3000));

    const u64 total = stream_count();
    u64 rss_import_early = 0, rss_export_early = 0;
    u64 rss_import_max = 0, rss_export_max = 0;
    const u64 t0 = posix::now_ns();
    for (u64 i = 0; i < total; ++i) {
        ASSERT_TRUE(c->send_sync(call_message(OP_DATA, i), posix::after_ms(30'000))) << i;
        if (i == total / 10) {
            rss_import_early = importer->rss_kib();
            rss_export_early = exporter->rss_kib();
        }
        if (i % 8192 == 0 && i > total / 10) {
            rss_import_max = std::max(rss_import_max, importer->rss_kib());
            rss_export_max = std::max(rss_export_max, exporter->rss_kib());
        }
    }
    const u64 give_up = now_ms() + 60'000;
    while (server.received() < total && now_ms() < give_up)
        usleep(2000);
    const double secs = static_cast<double>(posix::now_ns() - t0) / 1e9;
    EXPECT_EQ(server.received(), total);
    EXPECT_EQ(server.out_of_order(), 0u);
    EXPECT_EQ(server.next_expected(), total);
    std::printf(
        "stream: %llu messages in %.2f s (%.0f msgs/s); RSS KiB import %llu -> %llu, "
        "export %llu -> %llu\n",
        static_cast<unsigned long long>(total), secs, static_cast<double>(total) / secs,
        static_cast<unsigned long long>(rss_import_early),
        static_cast<unsigned long long>(rss_import_max),
        static_cast<unsigned long long>(rss_export_early),
        static_cast<unsigned long long>(rss_export_max));
    // Bounded memory: after the first tenth, neither bridge grows by more than 8 MiB while
    // the other nine tenths stream through (a queue that grew with the stream would).
    EXPECT_LT(rss_import_max, rss_import_early + 8 * 1024);
    EXPECT_LT(rss_export_max, rss_export_early + 8 * 1024);
    EXPECT_EQ(importer->stop(), 0);
    EXPECT_EQ(counter(*importer, "unconfirmed"), 0);
    EXPECT_EQ(counter(*importer, "sends"), static_cast<long long>(total));
}

TEST_F(BridgeTest, BackpressureReachesTheLocalSender) {
    NatsServer nats;
    ASSERT_TRUE(nats.ready());
    HostBServer server(kName, host_b.path(), 16);
    server.set_slow_us(2000);  // the remote receiver takes 2 ms per message
    auto exporter = start_bridge("export", kName, host_b.path(), nats.url());
    ASSERT_TRUE(exporter->wait_for("exporting"));
    auto importer = start_bridge("import", kName, host_a.path(), nats.url(),
                                 {"--window", "32", "--depth", "16"});
    ASSERT_TRUE(importer->wait_for("importing"));
    Result<posix::Connection> c = connect_to(kName, host_a.path());
    ASSERT_TRUE(c);
    // send_sync waits: when the 300th send_sync to a receiver that takes 2 ms a message
    // returns, what is not yet received is at most what the way holds: the local ring (16),
    // the import bridge's frame waiting for credit (at most the window, 32), the window of
    // published, unconfirmed messages (32), the remote ring (16) and the one being handled.
    // The import bridge waited for credit on the way (checked below).
    for (u64 i = 0; i < 300; ++i)
        ASSERT_TRUE(c->send_sync(call_message(OP_DATA, i), posix::after_ms(10'000)));
    EXPECT_GE(server.received() + 16u + 32u + 32u + 16u + 1u, 300u);
    // send_async never waits: once the window, the remote queue and the local ring are full,
    // it gets ChannelFull (instead of the bridge queueing without bound).
    u64 sent = 300;
    bool full = false;
    for (u64 i = 300; i < 10'000 && !full; ++i) {
        Result<void> r = c->send_async(call_message(OP_DATA, i));
        if (r) {
            ++sent;
        } else {
            ASSERT_EQ(r.error(), IpcError::ChannelFull);
            full = true;
        }
    }
    EXPECT_TRUE(full);
    // What was accepted is bounded by window + remote depth + local depth + one frame, and
    // all of it arrives, in order.
    EXPECT_LE(sent - 300, 32u + 16u + 16u + 2 * 256u);
    const u64 give_up = now_ms() + 20'000;
    while (server.received() < sent && now_ms() < give_up)
        usleep(5000);
    EXPECT_EQ(server.received(), sent);
    EXPECT_EQ(server.out_of_order(), 0u);
    EXPECT_EQ(importer->stop(), 0);
    EXPECT_GE(counter(*importer, "credit-waits"), 1);
}

TEST_F(BridgeTest, ClusterOfTwoServersWithBridgesOnDifferentOnes) {
    const int cluster_1 = free_port(), cluster_2 = free_port();
    NatsServer::Options o1, o2;
    o1.cluster_port = cluster_1;
    o1.routes = {cluster_2};
    o2.cluster_port = cluster_2;
    o2.routes = {cluster_1};
    NatsServer nats_1(o1), nats_2(o2);
    ASSERT_TRUE(nats_1.ready());
    ASSERT_TRUE(nats_2.ready());
    HostBServer server(kName, host_b.path());
    auto exporter = start_bridge("export", kName, host_b.path(), nats_1.url());
    ASSERT_TRUE(exporter->wait_for("exporting"));
    auto importer = start_bridge("import", kName, host_a.path(), nats_2.url());
    ASSERT_TRUE(importer->wait_for("importing"));
    Result<posix::Connection> c = connect_to(kName, host_a.path());
    ASSERT_TRUE(c);
    // The route between the servers carries the exporter's interest after a moment.
    ASSERT_TRUE(call_until_ok(*c, 1, 15'000)) << error_detail();
    for (u64 i = 0; i < 100; ++i) {
        Result<Message> r = check_reply(c->call(call_message(OP_CALL, i), posix::after_ms(2000)));
        ASSERT_TRUE(r) << error_detail();
        EXPECT_EQ(r->small_message().data[0], i + 1);
    }
    for (u64 i = 0; i < 5000; ++i)
        ASSERT_TRUE(c->send_sync(call_message(OP_DATA, i), posix::after_ms(5000)));
    const u64 give_up = now_ms() + 10'000;
    while (server.received() < 5000 && now_ms() < give_up)
        usleep(5000);
    EXPECT_EQ(server.received(), 5000u);
    EXPECT_EQ(server.out_of_order(), 0u);
    EXPECT_EQ(importer->stop(), 0);
    EXPECT_NE(importer->lines().front().find(std::to_string(nats_2.port())), std::string::npos);
    EXPECT_NE(exporter->lines().front().find(std::to_string(nats_1.port())), std::string::npos);
}

TEST_F(BridgeTest, ConcurrentCallersGetTheirOwnReplies) {
    NatsServer nats;
    ASSERT_TRUE(nats.ready());
    HostBServer server(kName, host_b.path());
    auto exporter =
        start_bridge("export", kName, host_b.path(), nats.url(), {"--concurrency", "4"});
    ASSERT_TRUE(exporter->wait_for("exporting"));
    auto importer = start_bridge("import", kName, host_a.path(), nats.url());
    ASSERT_TRUE(importer->wait_for("importing"));
    // Four threads on one connection and two more on connections of their own.
    Result<posix::Connection> shared = connect_to(kName, host_a.path());
    ASSERT_TRUE(shared);
    std::atomic<u64> wrong{0}, failed{0};
    std::vector<std::thread> threads;
    for (u64 t = 0; t < 6; ++t) {
        threads.emplace_back([&, t] {
            std::optional<posix::Connection> own;
            if (t >= 4) {
                Result<posix::Connection> c = connect_to(kName, host_a.path());
                if (!c) {
                    failed.fetch_add(1);
                    return;
                }
                own.emplace(std::move(*c));
            }
            posix::Connection& c = own ? *own : *shared;
            for (u64 i = 0; i < 300; ++i) {
                const u64 v = (t << 32) | i;
                Result<Message> r =
                    check_reply(c.call(call_message(OP_CALL, v), posix::after_ms(5000)));
                if (!r) {
                    failed.fetch_add(1);
                } else if (r->small_message().data[0] != v + 1) {
                    wrong.fetch_add(1);
                }
            }
        });
    }
    for (auto& th : threads)
        th.join();
    EXPECT_EQ(failed.load(), 0u);
    EXPECT_EQ(wrong.load(), 0u);
    EXPECT_EQ(server.calls(), 6u * 300u);
}

// One call from host A (`dir`) through the bridges: the server on host B answers `value` + 1.
void expect_a_call_crosses(const std::string& dir, u64 value) {
    Result<posix::Connection> c = connect_to(kName, dir);
    ASSERT_TRUE(c);
    Result<Message> r = check_reply(c->call(call_message(OP_CALL, value), posix::after_ms(3000)));
    ASSERT_TRUE(r) << error_detail();
    EXPECT_EQ(r->small_message().data[0], value + 1);
}

TEST_F(BridgeTest, NatsCredentialsArePassedThrough) {
    // A NATS server that wants a user and password.
    const int port = free_port();
    Process nats({VIPC_NATS_SERVER_PATH, "-a", "127.0.0.1", "-p", std::to_string(port), "--user",
                  "vipc", "--pass", "s3cret"},
                 {}, "/dev/null");
    ASSERT_TRUE(wait_listening("127.0.0.1", port, 5000));
    const std::string url = "nats://127.0.0.1:" + std::to_string(port);
    HostBServer server(kName, host_b.path());
    // Wrong password: refused at start, one line, exit 1.
    auto refused = start_bridge("export", kName, host_b.path(), url, {"--user", "vipc"}, {},
                                {"VIPC_NATS_PASSWORD=wrong"});
    EXPECT_EQ(refused->wait_exit(10'000), 1);
    // The right one (from the environment, kept off the command line) works end to end.
    auto exporter = start_bridge("export", kName, host_b.path(), url, {"--user", "vipc"}, {},
                                 {"VIPC_NATS_PASSWORD=s3cret"});
    ASSERT_TRUE(exporter->wait_for("exporting"));
    auto importer = start_bridge("import", kName, host_a.path(), url,
                                 {"--user", "vipc", "--password", "s3cret"});
    ASSERT_TRUE(importer->wait_for("importing"));
    expect_a_call_crosses(host_a.path(), 41);
}

// An nkey of a NATS user, made for a test: the ed25519 key from openssl, encoded as NATS
// encodes nkeys (a prefix byte, the 32 key bytes, a CRC-16/XMODEM little-endian, base32
// without padding): the public key starts with 'U', the seed with "SU".
struct UserNkey {
    std::string public_key;
    std::string seed;
};

u16 crc16_xmodem(const std::vector<u8>& bytes) {
    u16 crc = 0;
    for (const u8 b : bytes) {
        crc = static_cast<u16>(crc ^ (u16{b} << 8));
        for (int i = 0; i < 8; ++i)
            crc = (crc & 0x8000) != 0 ? static_cast<u16>((crc << 1) ^ 0x1021)
                                      : static_cast<u16>(crc << 1);
    }
    return crc;
}

std::string nkey_encode(std::vector<u8> raw) {
    const u16 crc = crc16_xmodem(raw);
    raw.push_back(static_cast<u8>(crc & 0xFF));
    raw.push_back(static_cast<u8>(crc >> 8));
    static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    std::string out;
    u32 buffer = 0;
    int bits = 0;
    for (const u8 b : raw) {
        buffer = buffer << 8 | b;
        bits += 8;
        while (bits >= 5) {
            out += alphabet[(buffer >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0) out += alphabet[(buffer << (5 - bits)) & 31];
    return out;
}

// The last 32 bytes of a DER file (an ed25519 key's raw bytes end both encodings).
std::optional<std::vector<u8>> last_32_bytes(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return std::nullopt;
    std::vector<u8> all;
    for (int c; (c = std::fgetc(f)) != EOF;)
        all.push_back(static_cast<u8>(c));
    std::fclose(f);
    if (all.size() < 32) return std::nullopt;
    return std::vector<u8>(all.end() - 32, all.end());
}

std::optional<UserNkey> make_user_nkey(const std::string& dir, const std::string& tag) {
    const std::string key = dir + "/" + tag + ".der", pub = dir + "/" + tag + ".pub.der";
    const std::string make = "openssl genpkey -algorithm ed25519 -outform DER -out " + key +
                             " && openssl pkey -inform DER -in " + key +
                             " -pubout -outform DER -out " + pub;
    if (std::system((make + " >/dev/null 2>&1").c_str()) != 0) return std::nullopt;
    const auto seed = last_32_bytes(key);
    const auto public_bytes = last_32_bytes(pub);
    if (!seed || !public_bytes) return std::nullopt;
    constexpr u8 kPrefixSeed = 18 << 3, kPrefixUser = 20 << 3;
    std::vector<u8> p{kPrefixUser};
    p.insert(p.end(), public_bytes->begin(), public_bytes->end());
    std::vector<u8> s{static_cast<u8>(kPrefixSeed | kPrefixUser >> 5),
                      static_cast<u8>((kPrefixUser & 31) << 3)};
    s.insert(s.end(), seed->begin(), seed->end());
    return UserNkey{nkey_encode(p), nkey_encode(s)};
}

bool write_file(const std::string& path, const std::string& text) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return false;
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    return std::fclose(f) == 0 && ok;
}

TEST_F(BridgeTest, NkeyAuthenticationIsPassedThrough) {
    const std::string d = host_a.path() + "-nkey";
    struct Cleanup {
        std::string dir;
        ~Cleanup() { (void)std::system(("rm -rf '" + dir + "'").c_str()); }
    } cleanup{d};
    ASSERT_EQ(mkdir(d.c_str(), 0700), 0);
    // The installer (scripts/deps.sh) puts openssl on the machine: no key is a failure.
    const auto user = make_user_nkey(d, "user");
    const auto stranger = make_user_nkey(d, "stranger");
    ASSERT_TRUE(user && stranger) << "openssl could not make an ed25519 key";
    ASSERT_EQ(user->public_key.size(), 56u);
    ASSERT_EQ(user->seed.rfind("SU", 0), 0u);
    // A NATS server that admits the one user nkey.
    ASSERT_TRUE(write_file(d + "/nats.conf", "authorization {\n  users = [ { nkey: \"" +
                                                 user->public_key + "\" } ]\n}\n"));
    ASSERT_TRUE(write_file(d + "/user.seed", user->seed + "\n"));
    ASSERT_TRUE(write_file(d + "/stranger.seed", stranger->seed + "\n"));
    const int port = free_port();
    Process nats({VIPC_NATS_SERVER_PATH, "-c", d + "/nats.conf", "-a", "127.0.0.1", "-p",
                  std::to_string(port)},
                 {}, "/dev/null");
    ASSERT_TRUE(wait_listening("127.0.0.1", port, 5000));
    const std::string url = "nats://127.0.0.1:" + std::to_string(port);
    HostBServer server(kName, host_b.path());
    // Another key, or none: refused at start (one line on stderr), exit 1.
    auto refused =
        start_bridge("export", kName, host_b.path(), url,
                     {"--nkey", stranger->public_key, "--nkey-seed", d + "/stranger.seed"});
    EXPECT_EQ(refused->wait_exit(10'000), 1);
    auto anonymous = start_bridge("import", kName, host_a.path(), url);
    EXPECT_EQ(anonymous->wait_exit(10'000), 1);
    // The admitted key works end to end.
    auto exporter = start_bridge("export", kName, host_b.path(), url,
                                 {"--nkey", user->public_key, "--nkey-seed", d + "/user.seed"});
    ASSERT_TRUE(exporter->wait_for("exporting"));
    auto importer = start_bridge("import", kName, host_a.path(), url,
                                 {"--nkey", user->public_key, "--nkey-seed", d + "/user.seed"});
    ASSERT_TRUE(importer->wait_for("importing"));
    expect_a_call_crosses(host_a.path(), 8);
}

TEST_F(BridgeTest, TlsOptionsArePassedThrough) {
    // A certificate authority and a server certificate for 127.0.0.1, made for this test.
    const std::string d = host_a.path() + "-tls";
    const std::string make =
        "mkdir -p " + d + " && cd " + d +
        " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1"
        " -subj /CN=vipc-test-ca && openssl req -newkey rsa:2048 -nodes -keyout server.key"
        " -out server.csr -subj /CN=127.0.0.1 && printf 'subjectAltName=IP:127.0.0.1\\n' >"
        " ext.cnf && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
        " -out server.pem -days 1 -extfile ext.cnf";
    struct Cleanup {
        std::string dir;
        ~Cleanup() { (void)std::system(("rm -rf '" + dir + "'").c_str()); }
    } cleanup{d};
    if (std::system((make + " >/dev/null 2>&1").c_str()) != 0) {
        GTEST_SKIP() << "openssl could not make a test certificate";
    }
    const int port = free_port();
    Process nats({VIPC_NATS_SERVER_PATH, "-a", "127.0.0.1", "-p", std::to_string(port), "--tls",
                  "--tlscert", d + "/server.pem", "--tlskey", d + "/server.key"},
                 {}, "/dev/null");
    ASSERT_TRUE(wait_listening("127.0.0.1", port, 5000));
    const std::string url = "tls://127.0.0.1:" + std::to_string(port);
    HostBServer server(kName, host_b.path());
    // Without the CA the server's certificate is not trusted: refused at start.
    auto untrusted = start_bridge("import", kName, host_a.path(), url);
    EXPECT_EQ(untrusted->wait_exit(10'000), 1);
    auto exporter = start_bridge("export", kName, host_b.path(), url, {"--tls-ca", d + "/ca.pem"});
    ASSERT_TRUE(exporter->wait_for("exporting"));
    auto importer =
        start_bridge("import", kName, host_a.path(), url, {"--tls", "--tls-ca", d + "/ca.pem"});
    ASSERT_TRUE(importer->wait_for("importing"));
    expect_a_call_crosses(host_a.path(), 6);
}

TEST_F(BridgeTest, BadCommandLinesAndUnreachableNatsFailClearly) {
    // No NATS server listens on this port: one line naming it, exit 1.
    const int port = free_port();
    auto importer = start_bridge("import", kName, host_a.path(),
                                 "nats://127.0.0.1:" + std::to_string(port), {"--stats-ms", "100"});
    EXPECT_EQ(importer->wait_exit(10'000), 1);
    // The name is free again (the bridge published it, then unpublished it on failure).
    posix::ServerOptions so = host_a.server_options();
    EXPECT_TRUE(posix::Server::publish(kName, so));
}

}  // namespace
}  // namespace veridian::ipc::bridge::test

namespace veridian::ipc::bridge::test {
namespace {

// Payloads of every size class through the bridge, where the runtime has the payload API
// (up to the endpoint's max_inline_payload, which both local endpoints have by default).
template <typename C>
void payloads_of_every_size(C& c, HostBServer& server, Process& importer) {
    if constexpr (ConnectionCarriesPayloads<C>) {
        const usize max = c.max_inline_payload();
        std::vector<usize> sizes = {0, 1, 48, 64, 65, 1000, max};
        for (const usize n : sizes) {
            std::vector<std::byte> request(n), reply;
            for (usize i = 0; i < n; ++i)
                request[i] = static_cast<std::byte>((i * 7 + n) & 0xFF);
            auto r = c.call(41, 0, request, reply, posix::after_ms(3000));
            ASSERT_TRUE(r) << n << ": " << error_name(r.error()) << " "
                           << posix::last_error_detail();
            EXPECT_EQ(r->opcode, 42u) << n;
            EXPECT_EQ(reply, request) << n;
        }
        // One over the endpoint's maximum is refused by the client's own runtime.
        std::vector<std::byte> over(max + 1), reply;
        auto r = c.call(41, 0, over, reply, posix::after_ms(3000));
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), IpcError::MessageTooLarge);
        // One-way payloads in a stream: all of them, every byte.
        u64 bytes = 0;
        for (usize i = 0; i < 2000; ++i) {
            std::vector<std::byte> p(i % (max + 1));
            bytes += p.size();
            ASSERT_TRUE(c.send_sync(OP_DATA, 0, p, posix::after_ms(5000)));
        }
        const u64 give_up = now_ms() + 10'000;
        while (server.received() < 2000 && now_ms() < give_up)
            usleep(5000);
        EXPECT_EQ(server.received(), 2000u);
        EXPECT_EQ(server.payload_bytes(), bytes);
        // A zero-copy loan: its bytes cross as a payload (the bridge copies them and gives
        // the chunk back); one over 64 KiB cannot cross and is counted as refused.
        u64 expected = 2000;
        long long refused = 0;
        if constexpr (requires { c.loan(usize{}); }) {
            for (const usize n : {usize{10'000}, usize{100'000}}) {
                auto loan = c.loan(n);
                if (!loan) {
                    ADD_FAILURE() << "loan " << n << ": " << posix::last_error_detail();
                    continue;
                }
                std::memset(loan->bytes.data(), 0x5A, n);
                ASSERT_TRUE(c.send_loan(*loan, n, OP_DATA, 0, posix::after_ms(5000)));
            }
            bytes += 10'000;
            expected += 1;
            refused = 1;
            // A message after them shows that the refused one did not stall the stream.
            std::vector<std::byte> tail(8);
            bytes += tail.size();
            expected += 1;
            ASSERT_TRUE(c.send_sync(OP_DATA, 0, tail, posix::after_ms(5000)));
            const u64 until = now_ms() + 10'000;
            while (server.received() < expected && now_ms() < until)
                usleep(5000);
            EXPECT_EQ(server.received(), expected);
            EXPECT_EQ(server.payload_bytes(), bytes);
        }
        EXPECT_EQ(importer.stop(), 0);
        EXPECT_EQ(counter(importer, "refused"), refused);
    } else {
        (void)c, (void)server, (void)importer;
        GTEST_SKIP() << "this runtime has no payload API yet: only SmallMessage and 64-byte "
                        "LargeMessages cross (tested above)";
    }
}

TEST_F(BridgeTest, PayloadsOfEverySizeCross) {
    NatsServer nats;
    ASSERT_TRUE(nats.ready());
    HostBServer server(kName, host_b.path());
    auto exporter = start_bridge("export", kName, host_b.path(), nats.url());
    ASSERT_TRUE(exporter->wait_for("exporting"));
    auto importer = start_bridge("import", kName, host_a.path(), nats.url());
    ASSERT_TRUE(importer->wait_for("importing"));
    Result<posix::Connection> c = connect_to(kName, host_a.path());
    ASSERT_TRUE(c);
    payloads_of_every_size(*c, server, *importer);
}

}  // namespace
}  // namespace veridian::ipc::bridge::test
