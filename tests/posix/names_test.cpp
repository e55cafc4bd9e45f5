// SPDX-License-Identifier: MIT OR Apache-2.0
// Named endpoints without a daemon: names, the runtime directory, discovery, reclaiming.
#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "test_support.hpp"

namespace veridian::ipc::posix::test {
namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

TEST(Names, WellFormedNamesAreAccepted) {
    EXPECT_TRUE(validate_name("demo/echo"));
    EXPECT_TRUE(validate_name("sensors/imu-0.raw_v2"));
    EXPECT_TRUE(validate_name("x"));
}

TEST(Names, MalformedNamesAreInvalidMessageWithAReason) {
    for (const char* bad : {"", "/demo", "demo/", "demo//echo", "a/../b", "./a", "de mo",
                            "demo:echo", "na\xc3\xafve"}) {
        auto r = validate_name(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error(), IpcError::InvalidMessage) << bad;
        EXPECT_STRNE(last_error_detail(), "") << bad;
    }
    EXPECT_FALSE(validate_name(std::string(MAX_NAME_LENGTH + 1, 'a')));
}

TEST(Names, RuntimeDirectoryFollowsTheEnvironment) {
    const char* old_vipc = std::getenv("VIPC_RUNTIME_DIR");
    const char* old_xdg = std::getenv("XDG_RUNTIME_DIR");
    const std::string saved_vipc = old_vipc ? old_vipc : "";
    const std::string saved_xdg = old_xdg ? old_xdg : "";
    setenv("VIPC_RUNTIME_DIR", "/tmp/explicit", 1);
    EXPECT_EQ(runtime_directory(), "/tmp/explicit");
    unsetenv("VIPC_RUNTIME_DIR");
    setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
    EXPECT_EQ(runtime_directory(), "/run/user/4242/vipc");
    unsetenv("XDG_RUNTIME_DIR");
    EXPECT_EQ(runtime_directory(), "/tmp/vipc-" + std::to_string(getuid()));
    if (old_vipc) setenv("VIPC_RUNTIME_DIR", saved_vipc.c_str(), 1);
    if (old_xdg) setenv("XDG_RUNTIME_DIR", saved_xdg.c_str(), 1);
}

TEST(Names, PublishCreatesThePrivateRuntimeDirectory) {
    RuntimeDir base;
    ServerOptions o = base.server_options();
    o.runtime_dir = base.path() + "/nested";
    auto server = Server::publish("demo/echo", o);
    ASSERT_TRUE(server) << last_error_detail();
    struct stat st {};
    ASSERT_EQ(stat(o.runtime_dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    server->close().value();
    rmdir(o.runtime_dir.c_str());
}

TEST(Names, ARuntimeDirectoryThatIsNotADirectoryIsPermissionDenied) {
    RuntimeDir base;
    const std::string file = base.path() + "/file";
    FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
    ServerOptions o = base.server_options();
    o.runtime_dir = file;
    auto server = Server::publish("demo/echo", o);
    ASSERT_FALSE(server);
    EXPECT_EQ(server.error(), IpcError::PermissionDenied);
    EXPECT_TRUE(contains(last_error_detail(), file));
}

TEST(Names, AnUnknownNameIsEndpointNotFoundNamingIt) {
    RuntimeDir dir;
    auto c = Connection::connect("nobody/here", dir.connect_options());
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), IpcError::EndpointNotFound);
    EXPECT_TRUE(contains(last_error_detail(), "nobody/here")) << last_error_detail();
}

TEST(Names, AClientInAnotherProcessOpensAPublishedName) {
    RuntimeDir dir;
    Peer server("echo", dir.path(), "demo/echo");
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/echo", dir.connect_options());
    ASSERT_TRUE(c) << last_error_detail();
    EXPECT_EQ(c->server_pid().value, static_cast<u64>(server.pid()));
}

TEST(Names, ANameHeldByALiveProcessIsEndpointBusyNamingItsPid) {
    RuntimeDir dir;
    Peer holder("hold", dir.path(), "demo/echo");
    ASSERT_TRUE(holder.ready());
    auto second = Server::publish("demo/echo", dir.server_options());
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error(), IpcError::EndpointBusy);
    EXPECT_TRUE(contains(last_error_detail(), "demo/echo"));
    EXPECT_TRUE(contains(last_error_detail(), std::to_string(holder.pid()))) << last_error_detail();
}

TEST(Names, ANameLeftByAKilledProcessIsReclaimedAtOnce) {
    RuntimeDir dir;
    Peer holder("hold", dir.path(), "demo/echo");
    ASSERT_TRUE(holder.ready());
    holder.kill_now();
    // Its socket and lock files are still there; the name is free all the same.
    EXPECT_FALSE(dir.files().empty());
    auto server = Server::publish("demo/echo", dir.server_options());
    ASSERT_TRUE(server) << last_error_detail();
    auto c = Connection::connect("demo/echo", dir.connect_options());
    EXPECT_TRUE(c) << last_error_detail();
}

TEST(Names, AServerAtItsConnectionLimitRefusesWithResourceBusy) {
    RuntimeDir dir;
    ServerOptions o = dir.server_options();
    o.max_connections = 1;
    auto server = Server::publish("demo/one", o);
    ASSERT_TRUE(server);
    Peer first("client-idle", dir.path(), "demo/one");
    ASSERT_TRUE(first.ready());
    auto second = Connection::connect("demo/one", dir.connect_options());
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error(), IpcError::ResourceBusy);
}

TEST(Names, CloseUnpublishesAndLeavesNoFiles) {
    RuntimeDir dir;
    auto server = Server::publish("demo/echo", dir.server_options());
    ASSERT_TRUE(server);
    server->close().value();
    EXPECT_TRUE(dir.files().empty());
    auto c = Connection::connect("demo/echo", dir.connect_options());
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), IpcError::EndpointNotFound);
}

TEST(Names, ListShowsEachLiveEndpointWithItsOwnerAndConnections) {
    RuntimeDir dir;
    Peer a("echo", dir.path(), "demo/a", {"16"});
    Peer b("echo", dir.path(), "demo/b");
    ASSERT_TRUE(a.ready());
    ASSERT_TRUE(b.ready());
    auto c = Connection::connect("demo/a", dir.connect_options());
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->call(small_message(OP_CALL, 1), after_ms(5000)));
    auto list = list_endpoints(dir.path());
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 2u);
    const EndpointInfo& first = (*list)[0].name == "demo/a" ? (*list)[0] : (*list)[1];
    EXPECT_EQ(first.name, "demo/a");
    EXPECT_EQ(first.owner.value, static_cast<u64>(a.pid()));
    EXPECT_EQ(first.capacity, 16u);
    EXPECT_EQ(first.connections, 1u);
    EXPECT_EQ(first.received, 1u);
    ASSERT_EQ(first.per_connection.size(), 1u);
    EXPECT_EQ(first.per_connection[0].peer.value, static_cast<u64>(getpid()));
}

TEST(Names, StatOfAnUnknownNameIsEndpointNotFound) {
    RuntimeDir dir;
    auto info = stat_endpoint("nobody/here", dir.path());
    ASSERT_FALSE(info);
    EXPECT_EQ(info.error(), IpcError::EndpointNotFound);
}

TEST(Names, ListSkipsTheLeftoversOfADeadServer) {
    RuntimeDir dir;
    Peer holder("hold", dir.path(), "demo/dead");
    ASSERT_TRUE(holder.ready());
    holder.kill_now();
    auto list = list_endpoints(dir.path());
    ASSERT_TRUE(list);
    EXPECT_TRUE(list->empty());
}

}  // namespace
}  // namespace veridian::ipc::posix::test
