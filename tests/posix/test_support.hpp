// SPDX-License-Identifier: MIT OR Apache-2.0
// Support for the posix runtime's multi-process tests: a private runtime directory per test
// and the other process (vipc_test_peer, started with fork/exec, always killed and reaped).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_ops.hpp"
#include "veridian/ipc/posix/runtime.hpp"

// True in a ThreadSanitizer build: a child fork()ed from a process with threads must exec
// there (ThreadSanitizer's runtime does not survive fork() in a threaded process), so tests
// whose child keeps running the library skip themselves, visibly, in that tree only.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#else
inline constexpr bool kThreadSanitizer = false;
#endif

// True under AddressSanitizer or ThreadSanitizer: their allocators keep freed memory
// (quarantine, shadow), so resident-memory figures are printed there, not bounded.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitizerAllocator = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSanitizerAllocator = true;
#else
inline constexpr bool kSanitizerAllocator = kThreadSanitizer;
#endif
#else
inline constexpr bool kSanitizerAllocator = kThreadSanitizer;
#endif

namespace veridian::ipc::posix::test {

// CPU time (user + system) a process used so far, in seconds; -1 if unreadable.
inline double cpu_seconds(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const usize paren = text.rfind(')');
    if (paren == std::string::npos) return -1;
    std::istringstream rest(text.substr(paren + 2));
    std::string field;
    // Fields after the command: state(3) ... utime(14) stime(15).
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A fresh runtime directory, removed with its files at the end of the test.
class RuntimeDir {
public:
    RuntimeDir() {
        char tmpl[] = "/tmp/vipc-test-XXXXXX";
        const char* made = mkdtemp(tmpl);
        path_ = made != nullptr ? made : "";
    }
    ~RuntimeDir() {
        if (path_.empty()) return;
        for (const std::string& f : files())
            unlink((path_ + "/" + f).c_str());
        rmdir(path_.c_str());
    }
    RuntimeDir(const RuntimeDir&) = delete;
    RuntimeDir& operator=(const RuntimeDir&) = delete;

    const std::string& path() const { return path_; }
    std::vector<std::string> files() const {
        std::vector<std::string> out;
        if (DIR* d = opendir(path_.c_str())) {
            while (dirent* e = readdir(d)) {
                if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
                    out.push_back(e->d_name);
                }
            }
            closedir(d);
        }
        return out;
    }
    ServerOptions server_options(u32 depth = 64) const {
        ServerOptions o;
        o.runtime_dir = path_;
        o.capacity = depth;
        return o;
    }
    ConnectOptions connect_options(u16 rights = Rights::SEND | Rights::RECEIVE) const {
        ConnectOptions o;
        o.runtime_dir = path_;
        o.rights = rights;
        return o;
    }

private:
    std::string path_;
};

// The other process. Its destructor kills (SIGKILL) and reaps it if it still runs.
class Peer {
public:
    Peer(const std::string& role, const std::string& dir, const std::string& name,
         std::vector<std::string> args = {}, const std::string& cpu = "",
         const char* binary = VIPC_TEST_PEER_PATH) {
        int out[2];
        if (pipe2(out, O_CLOEXEC) != 0) return;
        std::vector<std::string> argv_s;
        if (!cpu.empty()) {
            argv_s = {"/usr/bin/taskset", "-c", cpu};
        }
        argv_s.push_back(binary);
        argv_s.push_back(role);
        argv_s.push_back(dir);
        argv_s.push_back(name);
        for (auto& a : args)
            argv_s.push_back(a);
        std::vector<char*> argv;
        for (auto& a : argv_s)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_ = fork();
        if (pid_ == 0) {
            dup2(out[1], STDOUT_FILENO);
            execv(argv[0], argv.data());
            _exit(127);
        }
        ::close(out[1]);
        out_ = out[0];
    }
    ~Peer() {
        kill_now();
        if (out_ >= 0) ::close(out_);
    }
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;

    pid_t pid() const { return pid_; }

    // Reads the peer's stdout until a line starting with `prefix`; false after timeout_ms.
    bool wait_for_line(const std::string& prefix, int timeout_ms = 5000,
                       std::string* line_out = nullptr) {
        const auto give_up = now_ns() + static_cast<u64>(timeout_ms) * 1'000'000u;
        for (;;) {
            const usize nl = buffer_.find('\n');
            if (nl != std::string::npos) {
                const std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                if (line.rfind(prefix, 0) == 0) {
                    if (line_out != nullptr) *line_out = line;
                    return true;
                }
                continue;
            }
            const u64 now = now_ns();
            if (now >= give_up) return false;
            pollfd p{out_, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>((give_up - now) / 1'000'000u) + 1) <= 0) continue;
            char buf[256];
            const ssize_t n = read(out_, buf, sizeof buf);
            if (n <= 0) return false;
            buffer_.append(buf, static_cast<usize>(n));
        }
    }
    bool ready() { return wait_for_line("READY"); }

    // SIGKILL now; returns the time of the kill (CLOCK_MONOTONIC ns). Reaps it.
    u64 kill_now() {
        const u64 t = now_ns();
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
        return t;
    }
    // Waits for the peer to exit (at most timeout_ms, then kills it): its exit status, or -1.
    int wait_exit(int timeout_ms = 10000) {
        const u64 give_up = now_ns() + static_cast<u64>(timeout_ms) * 1'000'000u;
        while (pid_ > 0) {
            int status = 0;
            const pid_t r = waitpid(pid_, &status, WNOHANG);
            if (r == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            if (now_ns() >= give_up) {
                kill_now();
                return -1;
            }
            usleep(1000);
        }
        return -1;
    }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    std::string buffer_;
};

inline Message small_message(u32 opcode, u64 data0 = 0) {
    Message m = Message::small(0, opcode);
    m.small_message().data[0] = data0;
    return m;
}

}  // namespace veridian::ipc::posix::test
