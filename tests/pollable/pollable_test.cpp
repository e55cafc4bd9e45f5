// SPDX-License-Identifier: MIT OR Apache-2.0
// The pollable descriptors (src/posix/pollable.hpp): a server's and a client's wake for every
// message and reply, across processes (the other side is the vipc tool); a hostile client can
// neither reopen, drain nor forge the server's; closing and peer death make them readable.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::posix {
namespace {

class RuntimeDir {
public:
    RuntimeDir() {
        char tmpl[] = "/tmp/vipc-poll-XXXXXX";
        path_ = mkdtemp(tmpl) != nullptr ? tmpl : "";
    }
    ~RuntimeDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
    const std::string& path() const { return path_; }
    ServerOptions server() const {
        ServerOptions o;
        o.runtime_dir = path_;
        return o;
    }
    ConnectOptions client() const {
        ConnectOptions o;
        o.runtime_dir = path_;
        return o;
    }

private:
    std::string path_;
};

// The vipc tool as another process (killed if still running at the end).
class Tool {
public:
    explicit Tool(std::vector<std::string> args) {
        pid_ = fork();
        if (pid_ == 0) {
            std::vector<char*> argv;
            static std::string tool = VIPC_TOOL_PATH;
            argv.push_back(tool.data());
            for (std::string& a : args)
                argv.push_back(a.data());
            argv.push_back(nullptr);
            const int null = open("/dev/null", O_WRONLY);
            dup2(null, STDOUT_FILENO);
            execv(tool.c_str(), argv.data());
            _exit(127);
        }
    }
    ~Tool() {
        if (pid_ > 0 && !reaped_) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    int wait() {
        int status = 0;
        waitpid(pid_, &status, 0);
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    }

private:
    pid_t pid_ = -1;
    bool reaped_ = false;
};

class Epoll {
public:
    explicit Epoll(int fd) : ep_(epoll_create1(EPOLL_CLOEXEC)) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    }
    ~Epoll() { close(ep_); }
    // Readable within 5 s (a bound for a broken test, not a timing assertion).
    bool readable() {
        epoll_event out{};
        return epoll_wait(ep_, &out, 1, 5000) == 1;
    }

private:
    int ep_;
};

TEST(ServerPollable, HandsClientsOnlySocketsThatCannotBeReopened) {
    RuntimeDir dir;
    auto server = Server::publish("poll/fds", dir.server());
    ASSERT_TRUE(server);
    ASSERT_GE(server->pollable_fd(), 0);
    ConnectOptions options = dir.client();
    options.memfds = MemfdDescriptors::Kept;
    auto client = Connection::connect("poll/fds", options);
    ASSERT_TRUE(client);
    // Notifications travel on the connection socket itself.
    const ConnectionDescriptors d = client->descriptors();
    ASSERT_GE(d.socket, 0);
    struct stat st {};
    ASSERT_EQ(fstat(d.socket, &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    // The attack on a pipe's write end: reopen it for reading through /proc. A socket
    // cannot be opened that way at all.
    const std::string proc = "/proc/self/fd/" + std::to_string(d.socket);
    EXPECT_LT(open(proc.c_str(), O_RDONLY | O_NONBLOCK), 0);
    // No descriptor the client holds is a pipe or an eventfd the server reads.
    for (const int fd : {d.socket, d.c2s_data, d.c2s_ctl, d.s2c_data, d.s2c_ctl, d.server_state,
                         d.server_doorbell}) {
        if (fd < 0) continue;
        ASSERT_EQ(fstat(fd, &st), 0);
        EXPECT_FALSE(S_ISFIFO(st.st_mode)) << "descriptor " << fd;
    }
}

TEST(ServerPollable, AHostileClientCanNeitherDrainNorForgeIt) {
    RuntimeDir dir;
    auto server = Server::publish("poll/hostile", dir.server());
    ASSERT_TRUE(server);
    Epoll poll(server->pollable_fd());
    // The attacker, connected like anyone, reads its connection socket and writes junk and
    // notification frames into it in a loop.
    auto attacker = Connection::connect("poll/hostile", dir.client());
    ASSERT_TRUE(attacker);
    const int evil = attacker->descriptors().socket;
    std::atomic<bool> stop{false};
    std::atomic<u64> drained{0};
    std::thread hammer([&] {
        char buf[64];
        // A well-formed notification frame (wire version 5): magic "VIPR", kind 6, sequence 0.
        struct {
            u32 magic = 0x52504956;
            u32 kind = 6;
            u64 sequence = 0;
        } frame;
        for (u64 i = 0; !stop.load(); ++i) {
            const ssize_t n = recv(evil, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) drained += static_cast<u64>(n);
            // Forged wake-ups first, then junk that is no frame at all.
            const bool junk = i >= 2000;
            if (send(evil, junk ? static_cast<const void*>("x") : &frame, junk ? 1 : sizeof frame,
                     MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
            }
        }
    });
    // An honest client in another process sends 20 messages; every one must be seen through
    // the descriptor (a drained notification would leave the loop waiting).
    Tool honest({"send", "poll/hostile", "--count", "20", "--words", "7", "--wait-ms", "5000",
                 "--runtime-dir", dir.path()});
    int got = 0;
    int from_attacker = 0;
    while (got < 20) {
        ASSERT_TRUE(poll.readable()) << "after " << got << " messages";
        for (;;) {
            auto r = server->try_receive();
            if (!r) {
                ASSERT_EQ(r.error(), IpcError::ChannelEmpty);
                break;
            }
            if (r->connection == attacker->id()) ++from_attacker;
            EXPECT_EQ(r->message.small_message().data[0], 7u);
            ++got;
        }
    }
    stop = true;
    hammer.join();
    EXPECT_EQ(honest.wait(), 0);
    EXPECT_EQ(got, 20);
    EXPECT_EQ(from_attacker, 0);    // forged wake-ups are only wake-ups
    EXPECT_EQ(drained.load(), 0u);  // the attacker read nothing: nothing was written to it
}

// A LargeMessage to carry a region.
Message region_message() {
    LargeMessage lm{};
    lm.header.opcode = 2;
    return Message(lm);
}

void expect_a_4_kib_region(Message& m) {
    auto received = Region::receive(m);
    ASSERT_TRUE(received);
    EXPECT_EQ(received->size(), 4096u);
}

TEST(ServerPollable, AServerThatAlwaysFindsAMessageStillTakesRegionsAtOnce) {
    RuntimeDir dir;
    auto server = Server::publish("poll/busy", dir.server());
    ASSERT_TRUE(server);
    ASSERT_GE(server->pollable_fd(), 0);
    auto client = Connection::connect("poll/busy", dir.client());
    ASSERT_TRUE(client);
    // The server polls, so every send also sends a notification frame on the connection
    // socket; the server takes each message before the next is sent, so it never finds its
    // rings empty and never reaches the drain of step (3). 5000 frames would fill the socket
    // many times over if nothing else drained them.
    for (u32 i = 0; i < 5000; ++i) {
        ASSERT_TRUE(client->send_async(Message::small(0, i))) << i;
        auto r = server->try_receive();
        ASSERT_TRUE(r) << i;
        ASSERT_EQ(r->message.opcode(), i);
    }
    // A region's record goes on the same socket: it still goes at once (a send that does not
    // wait fails with Timeout when the socket has no room).
    auto region = Region::create(4096);
    ASSERT_TRUE(region);
    ASSERT_TRUE(client->send_async(region_message(), *region, Transfer::ShareReadOnly));
    auto r = server->try_receive();
    ASSERT_TRUE(r);
    expect_a_4_kib_region(r->message);
}

TEST(ConnectionPollable, AClientThatAlwaysFindsAMessageStillTakesRegionsAtOnce) {
    RuntimeDir dir;
    auto server = Server::publish("poll/busy-client", dir.server());
    ASSERT_TRUE(server);
    auto client = Connection::connect("poll/busy-client", dir.client());
    ASSERT_TRUE(client);
    ASSERT_GE(client->pollable_fd(), 0);
    // As above, the other way: every message the server sends to the polling client comes
    // with a frame, and the client never finds its ring empty.
    for (u32 i = 0; i < 5000; ++i) {
        ASSERT_TRUE(server->send_async(client->id(), Message::small(0, i))) << i;
        auto r = client->try_receive();
        ASSERT_TRUE(r) << i;
        ASSERT_EQ(r->opcode(), i);
    }
    auto region = Region::create(4096);
    ASSERT_TRUE(region);
    ASSERT_TRUE(
        server->send_async(client->id(), region_message(), *region, Transfer::ShareReadOnly));
    auto r = client->try_receive();
    ASSERT_TRUE(r);
    expect_a_4_kib_region(*r);
}

TEST(ConnectionPollable, WakesForEveryReplyFromAnotherProcess) {
    RuntimeDir dir;
    Tool server({"serve", "poll/echo", "--runtime-dir", dir.path()});
    Result<Connection> conn = IpcError::EndpointNotFound;
    for (int i = 0; i < 500 && !conn; ++i) {
        conn = Connection::connect("poll/echo", dir.client());
        if (!conn) usleep(10'000);
    }
    ASSERT_TRUE(conn);
    Epoll poll(conn->pollable_fd());
    std::vector<TransactionId> pending;
    for (u64 i = 0; i < 10; ++i) {
        Message m = Message::small(0, 5);
        m.small_message().data[0] = i;
        auto txid = conn->begin_call(m, after_ms(1000));
        ASSERT_TRUE(txid);
        pending.push_back(*txid);
    }
    u64 answered = 0;
    while (!pending.empty()) {
        ASSERT_TRUE(poll.readable()) << answered << " of 10 answered";
        for (usize k = 0; k < pending.size();) {
            auto r = conn->take_reply(pending[k]);
            if (!r) {
                ASSERT_EQ(r.error(), IpcError::ChannelEmpty);
                ++k;
                continue;
            }
            EXPECT_EQ(r->opcode(), 5u);
            ++answered;
            pending[k] = pending.back();
            pending.pop_back();
        }
        EXPECT_EQ(conn->try_receive().error(), IpcError::ChannelEmpty);  // re-arm
    }
    EXPECT_EQ(answered, 10u);
    EXPECT_EQ(conn->take_reply(12345).error(), IpcError::InvalidMessage);
}

TEST(ConnectionPollable, WakesForEachOneWayMessageAndForTheServersClose) {
    RuntimeDir dir;
    auto server = Server::publish("poll/oneway", dir.server());
    ASSERT_TRUE(server);
    auto conn = Connection::connect("poll/oneway", dir.client());
    ASSERT_TRUE(conn);
    Epoll poll(conn->pollable_fd());
    std::thread sender([&] {
        for (u64 i = 0; i < 50; ++i) {
            Message m = Message::small(0, 9);
            m.small_message().data[0] = i;
            ASSERT_TRUE(server->send_sync(conn->id(), m, after_ms(5000)));
        }
    });
    u64 next = 0;
    while (next < 50) {
        ASSERT_TRUE(poll.readable()) << "after " << next << " messages";
        for (;;) {
            auto m = conn->try_receive();
            if (!m) {
                ASSERT_EQ(m.error(), IpcError::ChannelEmpty);
                break;
            }
            EXPECT_EQ(m->small_message().data[0], next);  // in order, none lost
            ++next;
        }
    }
    sender.join();
    ASSERT_TRUE(server->close());
    ASSERT_TRUE(poll.readable()) << "the server's close did not wake the poller";
    EXPECT_EQ(conn->try_receive().error(), IpcError::EndpointNotFound);
}

TEST(ConnectionPollable, ReplyErrorReachesTheCaller) {
    RuntimeDir dir;
    auto server = Server::publish("poll/error", dir.server());
    ASSERT_TRUE(server);
    auto conn = Connection::connect("poll/error", dir.client());
    ASSERT_TRUE(conn);
    std::thread answer([&] {
        for (int k = 1; k <= IPC_ERROR_KIND_COUNT; ++k) {
            auto req = server->receive_sync(after_ms(5000));
            ASSERT_TRUE(req);
            IpcError e;
            ASSERT_TRUE(error_from_code(-k, &e));
            ASSERT_TRUE(k % 2 == 0 ? server->reply_error(*req, e, after_ms(1000))
                                   : server->reply_error(*req, e, "odd\x01one", after_ms(1000)));
        }
    });
    for (int k = 1; k <= IPC_ERROR_KIND_COUNT; ++k) {
        auto r = conn->call(Message::small(0, 1), after_ms(5000));
        ASSERT_FALSE(r);
        EXPECT_EQ(error_code(r.error()), -k);
        EXPECT_NE(std::string(last_error_detail()).find(error_name(r.error())), std::string::npos);
        if (k % 2 == 1) {  // the detail travels, its control character neutralized
            EXPECT_NE(std::string(last_error_detail()).find(": odd?one"), std::string::npos);
        }
    }
    answer.join();
}

}  // namespace
}  // namespace veridian::ipc::posix
