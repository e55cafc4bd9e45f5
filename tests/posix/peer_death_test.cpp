// SPDX-License-Identifier: MIT OR Apache-2.0
// Peer death: a peer killed with SIGKILL is noticed: replies to it, a server serving the
// others, nothing left in /dev/shm, a forked child, a restarted server. (Operations blocked on
// a killed peer, several at once, are tested with their wake times in
// tests/contract/blocked_test.cpp.)
#include <dirent.h>

#include <cstring>

#include <cstdio>
#include <set>
#include <thread>

#include "test_support.hpp"

namespace veridian::ipc::posix::test {
namespace {

void report(const char* what, u64 ns) {
    std::printf("[ measured ] %s returned %.1f ms after SIGKILL\n", what, ns / 1e6);
}

TEST(PeerDeath, ReplyingToAKilledCallerIsProcessNotFound) {
    RuntimeDir dir;
    auto server = Server::publish("demo/srv", dir.server_options());
    ASSERT_TRUE(server);
    Peer client("client-call", dir.path(), "demo/srv", {"1"});
    auto request = server->receive_sync(after_ms(5000));
    ASSERT_TRUE(request);
    client.kill_now();
    // The server's monitor notices the hang-up; give it a moment, bounded.
    Result<void> r = ok();
    const u64 give_up = now_ns() + 2'000'000'000u;
    do {
        r = server->reply(*request, request->message, after_ms(100));
        if (!r) break;
        usleep(1000);
    } while (now_ns() < give_up);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), IpcError::ProcessNotFound);
}

TEST(PeerDeath, TheServerKeepsServingOtherClientsAfterOneIsKilled) {
    RuntimeDir dir;
    Peer server("echo", dir.path(), "demo/echo");
    ASSERT_TRUE(server.ready());
    Peer doomed("client-idle", dir.path(), "demo/echo", {"sr"});
    ASSERT_TRUE(doomed.ready());
    doomed.kill_now();
    auto c = Connection::connect("demo/echo", dir.connect_options());
    ASSERT_TRUE(c);
    auto r = c->call(small_message(OP_CALL, 1), after_ms(5000));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->small_message().data[0], 2u);
}

// Entries of /dev/shm that could be ours (other programs on the machine may use it too).
std::set<std::string> our_dev_shm_entries() {
    std::set<std::string> out;
    if (DIR* d = opendir("/dev/shm")) {
        while (dirent* e = readdir(d)) {
            if (std::strstr(e->d_name, "vipc") != nullptr) out.insert(e->d_name);
        }
        closedir(d);
    }
    return out;
}

// The shared mappings of a process that belong to the runtime, and whether any of them is a
// file in /dev/shm.
struct SharedMappings {
    int memfds = 0;
    int dev_shm = 0;
};
SharedMappings shared_mappings_of(pid_t pid) {
    SharedMappings m;
    FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/maps").c_str(), "r");
    if (f == nullptr) return m;
    char line[512];
    while (std::fgets(line, sizeof line, f) != nullptr) {
        if (std::strstr(line, "/memfd:vipc-") != nullptr) ++m.memfds;
        if (std::strstr(line, "/dev/shm/") != nullptr) ++m.dev_shm;
    }
    std::fclose(f);
    return m;
}

TEST(PeerDeath, SegmentsAreMemfdsSoNothingIsLeftInDevShm) {
    const auto before = our_dev_shm_entries();
    RuntimeDir dir;
    Peer server("echo", dir.path(), "demo/echo");
    ASSERT_TRUE(server.ready());
    auto c = Connection::connect("demo/echo", dir.connect_options());
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->call(small_message(OP_CALL), after_ms(5000)));
    // Both sides map the connection from memfds, none from /dev/shm...
    const SharedMappings theirs = shared_mappings_of(server.pid());
    const SharedMappings ours = shared_mappings_of(getpid());
    EXPECT_GE(theirs.memfds, 6);  // state, doorbell, and the four ring segments
    EXPECT_GE(ours.memfds, 6);
    EXPECT_EQ(theirs.dev_shm, 0);
    EXPECT_EQ(ours.dev_shm, 0);
    // ...so killing the server leaves nothing there.
    server.kill_now();
    EXPECT_EQ(our_dev_shm_entries(), before);
}

TEST(PeerDeath, AForkedChildConnectsAnewAndNoticesTheServersDeath) {
    if (kThreadSanitizer) {
        GTEST_SKIP() << "ThreadSanitizer does not support starting threads after fork()";
    }
    RuntimeDir dir;
    Peer server("echo", dir.path(), "demo/echo");
    ASSERT_TRUE(server.ready());
    auto parents = Connection::connect("demo/echo", dir.connect_options());  // starts a monitor
    ASSERT_TRUE(parents);
    int to_parent[2];
    ASSERT_EQ(pipe(to_parent), 0);
    const pid_t child = fork();
    if (child == 0) {
        // The child's own connection; it reports, then waits for the server to die.
        auto mine = Connection::connect("demo/echo", dir.connect_options());
        const bool called = mine && mine->call(small_message(OP_CALL, 1), after_ms(5000));
        const char ready = called ? 'y' : 'n';
        if (write(to_parent[1], &ready, 1) != 1 || !called) _exit(1);
        // Says 'p' once its receive_sync is observably parked.
        std::thread parked([&] {
            const u64 give_up = now_ns() + 5'000'000'000u;
            while (mine->stats()->waiting_receivers != 1 && now_ns() < give_up)
                usleep(100);
            const char p = 'p';
            if (write(to_parent[1], &p, 1) != 1) _exit(1);
        });
        const u64 start = now_ns();
        auto r = mine->receive_sync(after_ms(10000));
        parked.join();
        const u64 ms = (now_ns() - start) / 1'000'000u;
        _exit(!r && r.error() == IpcError::EndpointNotFound && ms < 10000 ? 0 : 1);
    }
    ASSERT_GT(child, 0);
    char ready = 0;
    ASSERT_EQ(read(to_parent[0], &ready, 1), 1);
    ASSERT_EQ(ready, 'y');
    char parked = 0;
    ASSERT_EQ(read(to_parent[0], &parked, 1), 1);
    ASSERT_EQ(parked, 'p');
    const u64 killed_at = server.kill_now();
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    report("a forked child's receive_sync", now_ns() - killed_at);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(to_parent[0]);
    close(to_parent[1]);
}

TEST(PeerDeath, ARestartedServerTakesTheNameAtOnceAndServesNewConnections) {
    RuntimeDir dir;
    auto first = std::make_unique<Peer>("echo", dir.path(), "demo/echo");
    ASSERT_TRUE(first->ready());
    auto old_connection = Connection::connect("demo/echo", dir.connect_options());
    ASSERT_TRUE(old_connection);
    first->kill_now();
    Peer second("echo", dir.path(), "demo/echo");
    ASSERT_TRUE(second.ready());
    // The old connection belongs to the dead server.
    EXPECT_EQ(old_connection->call(small_message(OP_CALL), after_ms(5000)).error(),
              IpcError::EndpointNotFound);
    auto c = Connection::connect("demo/echo", dir.connect_options());
    ASSERT_TRUE(c) << last_error_detail();
    auto r = c->call(small_message(OP_CALL, 9), after_ms(5000));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->small_message().data[0], 10u);
}

}  // namespace
}  // namespace veridian::ipc::posix::test
