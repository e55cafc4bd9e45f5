// SPDX-License-Identifier: MIT OR Apache-2.0
// Trust on both sides, across real processes running as different users: the client refuses a
// runtime directory or a server it has no reason to trust, before it sends anything; the
// server refuses a directory others could tamper with; an access policy admits other users
// explicitly, with the rights it names; both sides say who was refused and why.
//
// The users are uids with no account (setuid in the helper, which then exec()s nothing more:
// vipc_abuse_peer drops to the uid itself). These tests need root to make them, and say so
// when skipped.
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "test_support.hpp"

namespace veridian::ipc::posix::test {
namespace {

constexpr u32 kVictim = 61001;
constexpr u32 kAttacker = 61002;
constexpr u32 kStranger = 61003;

#define VIPC_NEED_ROOT()                                                                  \
    do {                                                                                  \
        if (geteuid() != 0) GTEST_SKIP() << "needs root (to run helpers as other users)"; \
    } while (0)

// A scratch directory every test user can search (root's, 0755), removed at the end.
class SharedBase {
public:
    SharedBase() {
        char tmpl[] = "/tmp/vipc-trust-XXXXXX";
        const char* made = mkdtemp(tmpl);
        path_ = made != nullptr ? made : "";
        chmod(path_.c_str(), 0755);
    }
    ~SharedBase() {
        if (!path_.empty()) std::system(("rm -rf '" + path_ + "'").c_str());
    }
    SharedBase(const SharedBase&) = delete;
    SharedBase& operator=(const SharedBase&) = delete;
    // A subdirectory owned by `uid` with `mode`.
    std::string dir(const std::string& name, u32 uid, mode_t mode) const {
        const std::string p = path_ + "/" + name;
        mkdir(p.c_str(), 0700);
        if (chown(p.c_str(), uid, uid) != 0) return "";
        chmod(p.c_str(), mode);
        return p;
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// Runs vipc_abuse_peer as `uid` and returns its first line: its report ("CONNECTED",
// "REFUSED <error> <detail>", "STAT <n>", "PUBLISHED").
std::string report_as(u32 uid, const std::string& role, const std::string& dir,
                      const std::string& name, std::vector<std::string> args = {}) {
    std::vector<std::string> all = {std::to_string(uid), role, dir, name};
    for (auto& a : args)
        all.push_back(a);
    // Peer runs <binary> <role> <dir> <name> <args>: "as-user" takes the rest as its own.
    Peer p("as-user", all[0], all[1], {all.begin() + 2, all.end()}, "", VIPC_ABUSE_PEER_PATH);
    std::string line;
    if (!p.wait_for_line("", 5000, &line)) return "(no answer)";
    std::printf("[ report   ] uid %u %s: %s\n", uid, role.c_str(), line.c_str());
    return line;
}

bool contains(const std::string& s, const char* part) {
    return s.find(part) != std::string::npos;
}

TEST(Trust, TheClientRefusesADirectoryAnotherUserMade) {
    VIPC_NEED_ROOT();
    SharedBase base;
    // The attacker makes "the victim's" runtime directory (readable by all, as the issue's
    // /tmp/vipc-<victim uid> was) and serves demo/echo in it.
    const std::string dir = base.dir("vipc-victim", kAttacker, 0755);
    Peer impostor("as-user", std::to_string(kAttacker), "publish-report", {dir, "demo/echo"}, "",
                  VIPC_ABUSE_PEER_PATH);
    ASSERT_TRUE(impostor.wait_for_line("PUBLISHED"));
    const std::string line = report_as(kVictim, "connect-report", dir, "demo/echo", {"sr"});
    EXPECT_TRUE(contains(line, "REFUSED PermissionDenied")) << line;
    EXPECT_TRUE(contains(line, "belongs to uid 61002")) << line;
    // Made world-writable, it is refused all the same (the owner check comes first).
    chmod(dir.c_str(), 0777);
    const std::string again = report_as(kVictim, "connect-report", dir, "demo/echo", {"sr"});
    EXPECT_TRUE(contains(again, "REFUSED PermissionDenied")) << again;
    // And `vipc ls`/`stat` do not list the impostor.
    const std::string stat = report_as(kVictim, "stat-report", dir, "demo/echo");
    EXPECT_TRUE(contains(stat, "REFUSED PermissionDenied")) << stat;
}

TEST(Trust, TheClientRefusesAServerOfAnotherUserBeforeSendingAnything) {
    VIPC_NEED_ROOT();
    SharedBase base;
    // A directory the victim trusts (root's), with a socket whose listener the kernel reports
    // as the attacker.
    const std::string dir = base.dir("vipc-shared", 0, 0755);
    Peer impostor("raw-listener", dir, "demo/echo", {std::to_string(kAttacker)}, "",
                  VIPC_ABUSE_PEER_PATH);
    ASSERT_TRUE(impostor.ready());
    const std::string line = report_as(kVictim, "connect-report", dir, "demo/echo", {"sr"});
    EXPECT_TRUE(contains(line, "REFUSED PermissionDenied")) << line;
    EXPECT_TRUE(contains(line, "running as uid 61002")) << line;
    std::string got;
    ASSERT_TRUE(impostor.wait_for_line("GOT", 5000, &got));
    std::printf("[ measured ] the impostor received: %s bytes\n", got.c_str() + 4);
    EXPECT_EQ(got, "GOT 0");  // not even the hello
}

TEST(Trust, ASymlinkInPlaceOfTheRuntimeDirectoryIsRefusedByBothSides) {
    VIPC_NEED_ROOT();
    SharedBase base;
    chmod(base.path().c_str(), 01777);  // like /tmp: anyone may create, nobody may replace
    const std::string target = base.dir("attacker-dir", kAttacker, 0755);
    const std::string link = base.path() + "/vipc-victim";
    ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
    ASSERT_EQ(lchown(link.c_str(), kAttacker, kAttacker), 0);
    const std::string server = report_as(kVictim, "publish-report", link, "demo/echo");
    EXPECT_TRUE(contains(server, "REFUSED PermissionDenied")) << server;
    EXPECT_TRUE(contains(server, "symbolic link (owned by uid 61002)")) << server;
    const std::string client = report_as(kVictim, "connect-report", link, "demo/echo", {"sr"});
    EXPECT_TRUE(contains(client, "REFUSED PermissionDenied")) << client;
    EXPECT_TRUE(contains(client, "symbolic link")) << client;
}

TEST(Trust, TheServerRefusesAWorldWritableRuntimeDirectory) {
    VIPC_NEED_ROOT();
    SharedBase base;
    const std::string dir = base.dir("vipc-victim", kVictim, 0777);
    const std::string line = report_as(kVictim, "publish-report", dir, "demo/echo");
    EXPECT_TRUE(contains(line, "REFUSED PermissionDenied")) << line;
    EXPECT_TRUE(contains(line, "writable by others (mode 777)")) << line;
    EXPECT_TRUE(contains(line, "chmod go-w")) << line;
    chmod(dir.c_str(), 0770);
    const std::string group = report_as(kVictim, "publish-report", dir, "demo/echo");
    EXPECT_TRUE(contains(group, "writable by its group")) << group;
}

TEST(Trust, AnAccessPolicyAdmitsOtherUsersWithTheRightsItNames) {
    VIPC_NEED_ROOT();
    SharedBase base;
    // The server (root here) lets the attacker's uid send, nothing more; the directory is
    // searchable by all and writable by none but its owner.
    const std::string dir = base.dir("vipc-policy", 0, 0711);
    Peer server("policy-server", dir, "demo/jobs", {std::to_string(kAttacker) + ":s"}, "",
                VIPC_ABUSE_PEER_PATH);
    ASSERT_TRUE(server.ready());
    EXPECT_TRUE(
        contains(report_as(kAttacker, "connect-report", dir, "demo/jobs", {"s"}), "CONNECTED"));
    const std::string more = report_as(kAttacker, "connect-report", dir, "demo/jobs", {"sr"});
    EXPECT_TRUE(contains(more, "REFUSED PermissionDenied")) << more;
    EXPECT_TRUE(contains(more, "grants uid 61002 only 0x1")) << more;
    const std::string stranger = report_as(kStranger, "connect-report", dir, "demo/jobs", {"s"});
    EXPECT_TRUE(contains(stranger, "REFUSED PermissionDenied")) << stranger;
    EXPECT_TRUE(contains(stranger, "admits neither our uid 61003")) << stranger;
    // `vipc stat` from a user the policy does not list: refused, and told so (not a timeout).
    const std::string stat = report_as(kStranger, "stat-report", dir, "demo/jobs");
    EXPECT_TRUE(contains(stat, "REFUSED PermissionDenied")) << stat;
    EXPECT_TRUE(contains(stat, "does not let uid 61003 read its statistics")) << stat;
    // The server's side of it: one line per refusal, naming the peer and the reason.
    std::string logged;
    ASSERT_TRUE(
        server.wait_for_line("vipc: endpoint 'demo/jobs' refused a connection", 5000, &logged));
    std::printf("[ server   ] %s\n", logged.c_str());
    EXPECT_TRUE(contains(logged, "uid 61002")) << logged;
    EXPECT_TRUE(
        server.wait_for_line("vipc: endpoint 'demo/jobs' refused a connection", 5000, &logged));
    std::printf("[ server   ] %s\n", logged.c_str());
    EXPECT_TRUE(contains(logged, "uid 61003")) << logged;
}

// ---- same-user checks (no root needed) ----------------------------------------------------

TEST(Trust, ALongRuntimeDirectoryPathDoesNotMatter) {
    RuntimeDir base;
    std::string dir = base.path();
    while (dir.size() < 150)
        dir += "/deeper-and-deeper";
    ASSERT_EQ(std::system(("mkdir -p '" + dir + "'").c_str()), 0);
    chmod(dir.c_str(), 0700);
    const std::string name(MAX_NAME_LENGTH - 2, 'n');
    ServerOptions so;
    so.runtime_dir = dir;
    auto server = Server::publish("a/" + name.substr(2), so);
    ASSERT_TRUE(server) << last_error_detail();
    ConnectOptions co;
    co.runtime_dir = dir;
    auto c = Connection::connect("a/" + name.substr(2), co);
    ASSERT_TRUE(c) << last_error_detail();
    std::printf("[ measured ] published and connected through a %zu-byte directory path\n",
                dir.size());
    EXPECT_TRUE(server->close());
    std::system(("rm -rf '" + base.path() + "'/deeper-and-deeper").c_str());
}

TEST(Trust, TheOwnerOfATakenNameIsTheKernelsAnswerNotTheLockFiles) {
    RuntimeDir dir;
    Peer holder("hold", dir.path(), "demo/held");
    ASSERT_TRUE(holder.ready());
    // Whatever the lock file says (a squatter's pid, say), the detail names the real holder.
    const std::string lock = dir.path() + "/demo:held.lock";
    FILE* f = std::fopen(lock.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("4242\n", f);
    std::fclose(f);
    auto s = Server::publish("demo/held", dir.server_options());
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), IpcError::EndpointBusy);
    const std::string detail = last_error_detail();
    std::printf("[ detail ] %s\n", detail.c_str());
    EXPECT_TRUE(contains(detail, ("pid " + std::to_string(holder.pid())).c_str())) << detail;
    EXPECT_FALSE(contains(detail, "4242")) << detail;
}

TEST(Trust, ControlCharactersInANameAreNeverEchoedRaw) {
    auto r = validate_name("evil\x1b[2J\x07name");
    ASSERT_FALSE(r);
    const std::string detail = last_error_detail();
    std::printf("[ detail ] %s\n", detail.c_str());
    EXPECT_EQ(detail.find('\x1b'), std::string::npos);
    EXPECT_EQ(detail.find('\x07'), std::string::npos);
    EXPECT_TRUE(contains(detail, "\\x1B[2J\\x07")) << detail;
    auto c = Connection::connect("x\x1b]0;pwned\x07", ConnectOptions{});
    ASSERT_FALSE(c);
    EXPECT_EQ(std::string(last_error_detail()).find('\x1b'), std::string::npos);
}

TEST(Messages, AFarDeadlineSaturatesInsteadOfWrapping) {
    const Deadline d = after_ms(18446744073710u);  // about 584 years; ms * 10^6 overflows
    EXPECT_TRUE(d.is_never());
    const Deadline ns = after_ns(~u64{0} - 5);
    EXPECT_TRUE(ns.is_never());
    const Deadline year = after_ms(u64{365} * 24 * 3600 * 1000);
    EXPECT_FALSE(year.is_never());
    EXPECT_GT(year.ns(), now_ns() + u64{364} * 24 * 3600 * 1'000'000'000u);
}

TEST(Messages, TheRefusalAtMaxConnectionsNamesTheLimitAndTheFix) {
    RuntimeDir dir;
    ServerOptions so = dir.server_options();
    so.max_connections = 2;
    so.refusal_log = RefusalLog::Silent;
    auto server = Server::publish("sec/full", so);
    ASSERT_TRUE(server);
    auto a = Connection::connect("sec/full", dir.connect_options());
    auto b = Connection::connect("sec/full", dir.connect_options());
    ASSERT_TRUE(a && b);
    auto c = Connection::connect("sec/full", dir.connect_options());
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), IpcError::ResourceBusy);
    const std::string detail = last_error_detail();
    std::printf("[ detail ] %s\n", detail.c_str());
    EXPECT_TRUE(contains(detail, "maximum of 2 connections")) << detail;
    EXPECT_TRUE(contains(detail, "max_connections")) << detail;
}

TEST(Messages, AClientOutOfDescriptorsIsToldSo) {
    if (kThreadSanitizer) {
        GTEST_SKIP() << "the connect runs in a fork()ed child of a process with threads";
    }
    RuntimeDir dir;
    auto server = Server::publish("sec/fds", dir.server_options());
    ASSERT_TRUE(server);
    // The connect itself in a child process whose descriptor limit leaves room for the
    // socket but not for the connection's memfds.
    const pid_t child = fork();
    if (child == 0) {
        const int spare = open("/dev/null", O_RDONLY);
        int high = spare;
        while (high >= 0 && high < 4096) {
            const int next = dup(spare);
            if (next < 0) break;
            high = next;
        }
        // Free exactly four descriptors: the socket, the pidfd and two more, so that the
        // Welcome's seven cannot all arrive (the two spare ones also leave the sanitizers'
        // runtime checks the pipe they make to probe memory).
        ::close(high);
        ::close(high - 1);
        ::close(high - 2);
        ::close(high - 3);
        rlimit lim{static_cast<rlim_t>(high + 1), static_cast<rlim_t>(high + 1)};
        setrlimit(RLIMIT_NOFILE, &lim);
        auto c = Connection::connect("sec/fds", dir.connect_options());
        std::printf("[ detail ] %s\n", c ? "(connected)" : last_error_detail());
        std::fflush(stdout);
        _exit(!c && c.error() == IpcError::OutOfMemory &&
                      std::strstr(last_error_detail(), "out of file descriptors") != nullptr
                  ? 0
                  : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "the client was not told it is out of descriptors";
}

}  // namespace
}  // namespace veridian::ipc::posix::test
