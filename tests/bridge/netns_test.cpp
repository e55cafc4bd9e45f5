// SPDX-License-Identifier: MIT OR Apache-2.0
// Two "hosts" as two network namespaces joined by a veth pair, with addresses this test
// chooses (10.213.N.1/30 and 10.213.N.2/30, N from the test's pid). nats-server and the
// import bridge run in namespace A, the export bridge and the server (vipc_test_peer echo)
// in namespace B; the export bridge reaches NATS only over the veth pair. The client is this
// process: runtime directories are file-system paths, which namespaces do not separate.
// Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): otherwise the test is skipped, visibly.
#include <unistd.h>

#include <cstdlib>

#include "bridge_harness.hpp"

namespace veridian::ipc::bridge::test {
namespace {

int run(const std::string& cmd) {
    return std::system((cmd + " >/dev/null 2>&1").c_str());
}

// Creates the namespaces and the veth pair; removes them at the end.
class TwoHosts {
public:
    TwoHosts() {
        const int n = static_cast<int>(getpid() % 250) + 1;
        tag_ = std::to_string(getpid());
        ns_a_ = "vipc-a-" + tag_;
        ns_b_ = "vipc-b-" + tag_;
        addr_a_ = "10.213." + std::to_string(n) + ".1";
        addr_b_ = "10.213." + std::to_string(n) + ".2";
        const std::string va = "vpa" + tag_, vb = "vpb" + tag_;
        const std::vector<std::string> steps = {
            "ip netns add " + ns_a_,
            "ip netns add " + ns_b_,
            "ip link add " + va + " type veth peer name " + vb,
            "ip link set " + va + " netns " + ns_a_,
            "ip link set " + vb + " netns " + ns_b_,
            "ip -n " + ns_a_ + " addr add " + addr_a_ + "/30 dev " + va,
            "ip -n " + ns_b_ + " addr add " + addr_b_ + "/30 dev " + vb,
            "ip -n " + ns_a_ + " link set " + va + " up",
            "ip -n " + ns_b_ + " link set " + vb + " up",
            "ip -n " + ns_a_ + " link set lo up",
            "ip -n " + ns_b_ + " link set lo up",
        };
        for (const std::string& s : steps) {
            if (run(s) != 0) {
                failed_step_ = s;
                return;
            }
        }
        ok_ = true;
    }
    ~TwoHosts() {
        // Deleting a namespace deletes its end of the veth pair, and with it the other.
        run("ip netns del " + ns_a_);
        run("ip netns del " + ns_b_);
    }
    bool ok() const { return ok_; }
    const std::string& failed_step() const { return failed_step_; }
    std::vector<std::string> in_a() const { return {"/usr/sbin/ip", "netns", "exec", ns_a_}; }
    std::vector<std::string> in_b() const { return {"/usr/sbin/ip", "netns", "exec", ns_b_}; }
    const std::string& addr_a() const { return addr_a_; }
    const std::string& ns_a() const { return ns_a_; }
    const std::string& ns_b() const { return ns_b_; }

private:
    std::string tag_, ns_a_, ns_b_, addr_a_, addr_b_, failed_step_;
    bool ok_ = false;
};

TEST(BridgeNetns, ClientOnHostACallsServerOnHostBOverVeth) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "not root: the two-namespace variant needs CAP_NET_ADMIN (run the "
                        "suite as root to include it)";
    }
    TwoHosts hosts;
    if (!hosts.ok()) GTEST_SKIP() << "cannot create network namespaces: " << hosts.failed_step();
    RuntimeDir host_a, host_b;
    const std::string log = host_a.path() + "-nats.log";
    NatsServer::Options o;
    o.host = hosts.addr_a();
    o.port = 4222;  // the namespace is the test's own: no other listener there
    o.wrapper = hosts.in_a();
    o.log = log;
    NatsServer nats(o);
    ASSERT_TRUE(nats.ready()) << "nats-server in namespace A did not start (log " << log << ")";

    Process server({"/usr/sbin/ip", "netns", "exec", hosts.ns_b(), VIPC_TEST_PEER_PATH, "echo",
                    host_b.path(), "sensors/imu"});
    ASSERT_TRUE(server.wait_for("READY"));
    auto exporter =
        start_bridge("export", "sensors/imu", host_b.path(), nats.url(), {}, hosts.in_b());
    std::string line;
    ASSERT_TRUE(exporter->wait_for("exporting", 10'000, &line));
    EXPECT_NE(line.find(hosts.addr_a()), std::string::npos) << line;
    auto importer =
        start_bridge("import", "sensors/imu", host_a.path(), nats.url(), {}, hosts.in_a());
    ASSERT_TRUE(importer->wait_for("importing", 10'000));

    Result<posix::Connection> c = connect_to("sensors/imu", host_a.path());
    ASSERT_TRUE(c) << posix::last_error_detail();
    for (u64 i = 0; i < 100; ++i) {
        Result<Message> r =
            check_reply(c->call(call_message(posix::test::OP_CALL, i), posix::after_ms(3000)));
        ASSERT_TRUE(r) << error_name(r.error()) << ": " << error_detail();
        EXPECT_EQ(r->small_message().data[0], i + 1);
    }
    // The address exists only inside namespace A (never connect to it from here: outside
    // the namespaces it is not an address of this machine).
    EXPECT_NE(run("ip -o addr show | grep -q ' " + hosts.addr_a() + "/'"), 0);
    EXPECT_EQ(run("ip -n " + hosts.ns_a() + " -o addr show | grep -q ' " + hosts.addr_a() + "/'"),
              0);
    EXPECT_EQ(importer->stop(), 0);
    EXPECT_EQ(exporter->stop(), 0);
    (void)c->close();
    server.stop();
    nats.kill_now();
    unlink(log.c_str());
}

}  // namespace
}  // namespace veridian::ipc::bridge::test
