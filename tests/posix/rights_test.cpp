// SPDX-License-Identifier: MIT OR Apache-2.0
// Capabilities are descriptors: what a connection may do is what its descriptors allow, and
// the OS enforces it. The server is another process.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "posix/os.hpp"
#include "test_support.hpp"

namespace veridian::ipc::posix::test {
namespace {

class Rights_ : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(server_.ready()); }
    Connection open(u16 rights) {
        ConnectOptions options = dir_.connect_options(rights);
        options.memfds = MemfdDescriptors::Kept;  // the tests try what each descriptor allows
        auto c = Connection::connect("demo/echo", options);
        EXPECT_TRUE(c) << last_error_detail();
        return static_cast<Connection&&>(*c);
    }
    RuntimeDir dir_;
    Peer server_{"echo", dir_.path(), "demo/echo"};
};

// Tries to map `fd` writable, shared; true if the kernel allows it.
bool can_map_writable(int fd) {
    void* p = mmap(nullptr, detail::PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return false;
    munmap(p, detail::PAGE_BYTES);
    return true;
}

// Tries to get a writable mapping by reopening the descriptor read-write through /proc.
bool can_reopen_writable(int fd) {
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    const int rw = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (rw < 0) return false;
    const bool ok = can_map_writable(rw);
    ::close(rw);
    return ok;
}

TEST_F(Rights_, ASendOnlyHolderCannotReceive) {
    Connection c = open(Rights::SEND);
    ASSERT_TRUE(c.send_sync(small_message(OP_SEND_BACK, 1), after_ms(5000)));
    EXPECT_EQ(c.receive_sync(after_ms(100)).error(), IpcError::PermissionDenied);
    EXPECT_EQ(c.try_receive().error(), IpcError::PermissionDenied);
    EXPECT_EQ(c.call(small_message(OP_CALL), after_ms(100)).error(), IpcError::PermissionDenied);
}

TEST_F(Rights_, ASendOnlyHolderHasNoDescriptorForTheServerToClientRing) {
    Connection c = open(Rights::SEND);
    const ConnectionDescriptors d = c.descriptors();
    EXPECT_EQ(d.s2c_data, -1);
    EXPECT_EQ(d.s2c_ctl, -1);
    EXPECT_GE(d.c2s_data, 0);
    EXPECT_GE(d.c2s_ctl, 0);
}

TEST_F(Rights_, ASendOnlyHolderCannotMapTheServersStateWritable) {
    Connection c = open(Rights::SEND);
    const ConnectionDescriptors d = c.descriptors();
    // The consumer's side of its own ring (the head it could forge) and the server's state.
    EXPECT_FALSE(can_map_writable(d.c2s_ctl));
    EXPECT_FALSE(can_map_writable(d.server_state));
    EXPECT_FALSE(can_reopen_writable(d.c2s_ctl));
    EXPECT_FALSE(can_reopen_writable(d.server_state));
    // What it must write, it can.
    EXPECT_TRUE(can_map_writable(d.c2s_data));
}

TEST_F(Rights_, AReceiveOnlyHolderCannotSend) {
    Connection c = open(Rights::RECEIVE);
    EXPECT_EQ(c.send_sync(small_message(OP_DATA), after_ms(100)).error(),
              IpcError::PermissionDenied);
    EXPECT_EQ(c.send_async(small_message(OP_DATA)).error(), IpcError::PermissionDenied);
    EXPECT_EQ(c.fast_send(small_message(OP_DATA).small_message()).error(),
              IpcError::PermissionDenied);
    const ConnectionDescriptors d = c.descriptors();
    EXPECT_EQ(d.c2s_data, -1);
    EXPECT_EQ(d.c2s_ctl, -1);
    EXPECT_FALSE(can_map_writable(d.s2c_data));
    EXPECT_FALSE(can_reopen_writable(d.s2c_data));
}

TEST_F(Rights_, AConnectionWithNoRightsIsRefused) {
    auto c = Connection::connect("demo/echo", dir_.connect_options(Rights::GRANT));
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), IpcError::PermissionDenied);
}

TEST(RightsServerSide, AProcessOfAnotherUserCannotConnect) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to start a process as another user";
    RuntimeDir dir;
    auto server = Server::publish("demo/private", dir.server_options());
    ASSERT_TRUE(server);
    Peer stranger("client-as-user", dir.path(), "demo/private", {"65534"});
    EXPECT_EQ(stranger.wait_exit(), 0);
    EXPECT_TRUE(server->connections().empty());
}

TEST(RightsServerSide, EvenThroughAnOpenSocketTheServerRefusesAnotherUser) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to start a process as another user";
    RuntimeDir dir;
    auto server = Server::publish("demo/private", dir.server_options());
    ASSERT_TRUE(server);
    // Loosen the file permissions by hand: the peer-credential check still refuses.
    ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
    ASSERT_EQ(chmod((dir.path() + "/demo:private.sock").c_str(), 0666), 0);
    Peer stranger("client-as-user", dir.path(), "demo/private", {"65534"});
    EXPECT_EQ(stranger.wait_exit(), 0);
    EXPECT_TRUE(server->connections().empty());
}

TEST(RightsServerSide, TheServerCannotSendToASendOnlyClient) {
    RuntimeDir dir;
    auto server = Server::publish("demo/so", dir.server_options());
    ASSERT_TRUE(server);
    Peer client("client-idle", dir.path(), "demo/so", {"s"});
    ASSERT_TRUE(client.ready());
    const u64 give_up = now_ns() + 5'000'000'000u;
    while (server->connections().empty() && now_ns() < give_up)
        usleep(1000);
    ASSERT_EQ(server->connections().size(), 1u);
    EXPECT_EQ(server->send_async(server->connections()[0], small_message(OP_DATA)).error(),
              IpcError::PermissionDenied);
}

}  // namespace
}  // namespace veridian::ipc::posix::test
