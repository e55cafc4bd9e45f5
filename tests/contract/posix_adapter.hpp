// SPDX-License-Identifier: MIT OR Apache-2.0
// The contract suite's adapters for the posix runtime: a Server and one Connection in this
// process (the connection made through a minted capability, so it can be revoked), or the
// Server in another process (contract_peer, driven over a pipe; the connection made by name).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hosted_runners.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::contract {

// A fresh runtime directory, removed with its files at the end.
class ScratchDir {
public:
    ScratchDir() {
        char tmpl[] = "/tmp/vipc-contract-XXXXXX";
        const char* made = mkdtemp(tmpl);
        path_ = made != nullptr ? made : "";
    }
    ~ScratchDir() {
        if (path_.empty()) return;
        if (DIR* d = opendir(path_.c_str())) {
            while (dirent* e = readdir(d)) {
                if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
                    unlink((path_ + "/" + e->d_name).c_str());
                }
            }
            closedir(d);
        }
        rmdir(path_.c_str());
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

inline constexpr const char* kEndpointName = "contract/endpoint";

// What both posix adapters share: the client is a Connection in this process.
class PosixClient : public ThreadParties {
public:
    // The documented differences (docs/CONTRACT.md), as the suite branches on them.
    static constexpr bool kCloseKeepsWrittenMessages = true;
    static constexpr bool kCallNeedsReceive = true;
    static constexpr bool kReplyKnowsCallerGaveUp = false;
    static constexpr bool kServerOutlivesItsClients = true;
    static constexpr bool kReplyToAFullRingFails = true;
    static constexpr bool kRevokeWakesBlocked = true;

    Deadline after_ms(u64 ms) { return posix::after_ms(ms); }
    Deadline bound() { return after_ms(20'000); }
    template <typename... F>
    void run_parties(F&&... parties) {
        ThreadParties::run_parties(static_cast<F&&>(parties)...);
    }

    Result<void> client_send_sync(const Message& m, Deadline d) { return client_->send_sync(m, d); }
    Result<void> client_send_async(const Message& m) { return client_->send_async(m); }
    Result<void> client_fast_send(const SmallMessage& m) { return client_->fast_send(m); }
    Result<Message> client_receive_sync(Deadline d) { return client_->receive_sync(d); }
    Result<Message> client_try_receive() { return client_->try_receive(); }
    Result<Message> client_call(const Message& m, Deadline d) { return client_->call(m, d); }
    Result<void> client_close() { return client_->close(); }
    EndpointStats client_stats() { return client_->stats().value_or(EndpointStats{}); }

protected:
    posix::ConnectOptions connect_options(const Setup& setup) const {
        posix::ConnectOptions o;
        o.runtime_dir = dir_.path();
        o.rights = setup.client_rights;
        return o;
    }

    ScratchDir dir_;
    std::optional<posix::Connection> client_;
};

class PosixInProcess : public PosixClient {
public:
    static constexpr const char* kName = "posix-one-process";
    template <typename Body>
    static void repeat(Body body) {
        PosixInProcess a;
        body(a);
    }

    bool open(Setup setup) {
        posix::ServerOptions o;
        o.runtime_dir = dir_.path();
        o.capacity = setup.capacity;
        auto server = posix::Server::publish(kEndpointName, o);
        if (!server) return false;
        server_.emplace(static_cast<posix::Server&&>(*server));
        auto minted = server_->mint_capability(Rights::SEND | Rights::RECEIVE);
        if (!minted) return false;
        capability_ = minted->id;
        auto c = posix::Connection::connect(minted->capability, connect_options(setup));
        if (!c) return false;
        client_.emplace(static_cast<posix::Connection&&>(*c));
        connection_ = client_->id();
        return true;
    }

    Result<Request> server_receive_sync(Deadline d) {
        posix::Received r = VIPC_TRY(server_->receive_sync(d));
        return Request{r.message, r.connection};
    }
    Result<Request> server_try_receive() {
        posix::Received r = VIPC_TRY(server_->try_receive());
        return Request{r.message, r.connection};
    }
    Result<void> server_reply(const Request& request, const Message& response) {
        // A reply never waits for room (docs/CONTRACT.md): the deadline only bounds a
        // runtime that would, so that such a bug fails the test instead of hanging it.
        return server_->reply(posix::Received{request.message, request.token}, response,
                              posix::after_ms(2000));
    }
    Result<void> server_send_sync(const Message& m, Deadline d) {
        return server_->send_sync(connection_, m, d);
    }
    Result<void> server_send_async(const Message& m) { return server_->send_async(connection_, m); }
    Result<void> server_close() { return server_->close(); }
    EndpointStats server_stats() { return server_->stats().value_or(EndpointStats{}); }
    Result<void> revoke_client() { return server_->revoke(capability_); }

private:
    std::optional<posix::Server> server_;
    posix::CapabilityId capability_ = 0;
    posix::ConnectionId connection_ = 0;
};

// The other process: contract_peer with `args` (its role and theirs), one command a line
// on its stdin, answers on its stdout tagged with the command's id (a server runs its
// commands concurrently).
class RemotePeer {
public:
    explicit RemotePeer(std::vector<std::string> args) {
        int in[2], out[2];
        if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return;
        args.insert(args.begin(), VIPC_CONTRACT_PEER_PATH);
        std::vector<char*> argv;
        for (std::string& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_ = fork();
        if (pid_ == 0) {
            dup2(in[0], STDIN_FILENO);
            dup2(out[1], STDOUT_FILENO);
            execv(argv[0], argv.data());
            _exit(127);
        }
        ::close(in[0]);
        ::close(out[1]);
        to_peer_ = in[1];
        from_peer_ = out[0];
        reader_ = std::thread([this] { read_loop(); });
    }
    ~RemotePeer() {
        (void)kill_now();
        if (to_peer_ >= 0) ::close(to_peer_);
        if (reader_.joinable()) reader_.join();
        if (from_peer_ >= 0) ::close(from_peer_);
    }
    RemotePeer(const RemotePeer&) = delete;
    RemotePeer& operator=(const RemotePeer&) = delete;

    bool ready() { return command("ready").has_value(); }
    // SIGKILL now; returns the time of the kill (CLOCK_MONOTONIC ns). Reaps it.
    u64 kill_now() {
        const u64 at = posix::now_ns();
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
        return at;
    }

    // Sends "<id> <text>" and waits for its answer's fields (after "OK"), or the error.
    Result<std::vector<u64>> command(const std::string& text) {
        u64 id;
        {
            std::lock_guard<std::mutex> lock(mu_);
            id = next_id_++;
        }
        const std::string line = std::to_string(id) + " " + text + "\n";
        if (write(to_peer_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
            return IpcError::ProcessNotFound;
        }
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return answers_.count(id) != 0 || eof_; });
        auto it = answers_.find(id);
        if (it == answers_.end()) return IpcError::ProcessNotFound;  // the peer died
        std::string answer = it->second;
        answers_.erase(it);
        std::istringstream fields(answer);
        std::string status;
        fields >> status;
        if (status == "ERR") {
            int code = 0;
            fields >> code;
            IpcError e = IpcError::NotInitialized;
            (void)error_from_code(code, &e);
            return e;
        }
        std::vector<u64> out;
        for (u64 v; fields >> v;)
            out.push_back(v);
        return out;
    }

private:
    void read_loop() {
        std::string buffer;
        char chunk[512];
        for (;;) {
            const ssize_t n = read(from_peer_, chunk, sizeof chunk);
            if (n <= 0) break;
            buffer.append(chunk, static_cast<size_t>(n));
            for (size_t nl; (nl = buffer.find('\n')) != std::string::npos;) {
                const std::string line = buffer.substr(0, nl);
                buffer.erase(0, nl + 1);
                const size_t space = line.find(' ');
                if (space == std::string::npos) continue;
                const u64 id = std::strtoull(line.c_str(), nullptr, 10);
                std::lock_guard<std::mutex> lock(mu_);
                answers_[id] = line.substr(space + 1);
                cv_.notify_all();
            }
        }
        std::lock_guard<std::mutex> lock(mu_);
        eof_ = true;
        cv_.notify_all();
    }

    pid_t pid_ = -1;
    int to_peer_ = -1;
    int from_peer_ = -1;
    std::thread reader_;
    std::mutex mu_;
    std::condition_variable cv_;
    u64 next_id_ = 1;
    std::map<u64, std::string> answers_;
    bool eof_ = false;
};

// Deadlines travel as what is left of them (the peer's clock is the same CLOCK_MONOTONIC,
// but a relative value keeps the protocol free of clock assumptions); -1 = never.
inline std::string deadline_text(Deadline d) {
    if (d.is_never()) return "-1";
    const u64 now = posix::now_ns();
    return std::to_string(d.ns() > now ? d.ns() - now : 0);
}

inline std::string message_text(const Message& m) {
    const SmallMessage& s = m.small_message();
    std::string t = std::to_string(s.opcode) + " " + std::to_string(s.flags);
    for (u64 d : s.data)
        t += " " + std::to_string(d);
    return t;
}

// How the two-process adapter's client connects: by name, or through a capability the
// server process minted and sent it (so that it can be revoked).
enum class Connect : u8 { ByName, ThroughCapability };

template <Connect HOW>
class PosixTwoProcessesVia : public PosixClient {
public:
    static constexpr const char* kName =
        HOW == Connect::ByName ? "posix-two-processes" : "posix-two-processes-capability";
    template <typename Body>
    static void repeat(Body body) {
        PosixTwoProcessesVia a;
        body(a);
    }

    bool open(Setup setup) {
        remote_.emplace(std::vector<std::string>{"server", dir_.path(), kEndpointName,
                                                 std::to_string(setup.capacity)});
        if (!remote_->ready()) return false;
        if constexpr (HOW == Connect::ThroughCapability) {
            // A connection by name to receive the capability on, then one through it.
            posix::ConnectOptions o = connect_options(setup);
            o.rights = Rights::SEND | Rights::RECEIVE;
            auto bootstrap = posix::Connection::connect(kEndpointName, o);
            if (!bootstrap) return false;
            auto given = remote_->command("give_capability " + std::to_string(bootstrap->id()));
            if (!given || given->empty()) return false;
            capability_ = (*given)[0];
            auto carrier = bootstrap->receive_sync(posix::after_ms(5000));
            if (!carrier) return false;
            auto capability = posix::EndpointCapability::receive(*carrier);
            if (!capability) return false;
            auto c = posix::Connection::connect(*capability, connect_options(setup));
            if (!c) return false;
            client_.emplace(static_cast<posix::Connection&&>(*c));
        } else {
            auto c = posix::Connection::connect(kEndpointName, connect_options(setup));
            if (!c) return false;
            client_.emplace(static_cast<posix::Connection&&>(*c));
        }
        connection_ = client_->id();
        return true;
    }
    Result<void> revoke_client() {
        return done(remote_->command("revoke " + std::to_string(capability_)));
    }

    Result<Request> server_receive_sync(Deadline d) {
        return request(remote_->command("receive_sync " + deadline_text(d)));
    }
    Result<Request> server_try_receive() { return request(remote_->command("try_receive")); }
    Result<void> server_reply(const Request& request, const Message& response) {
        return done(remote_->command("reply " + std::to_string(request.token) + " " +
                                     message_text(response)));
    }
    Result<void> server_send_sync(const Message& m, Deadline d) {
        return done(remote_->command("send_sync " + std::to_string(connection_) + " " +
                                     deadline_text(d) + " " + message_text(m)));
    }
    Result<void> server_send_async(const Message& m) {
        return done(
            remote_->command("send_async " + std::to_string(connection_) + " " + message_text(m)));
    }
    Result<void> server_close() { return done(remote_->command("close")); }
    EndpointStats server_stats() {
        EndpointStats s;
        auto f = remote_->command("stats");
        if (!f || f->size() < 7) return s;
        s.queued = static_cast<u32>((*f)[0]);
        s.capacity = static_cast<u32>((*f)[1]);
        s.waiting_receivers = static_cast<u32>((*f)[2]);
        s.waiting_senders = static_cast<u32>((*f)[3]);
        s.received = (*f)[4];
        s.sent = (*f)[5];
        s.active = (*f)[6] != 0;
        return s;
    }

private:
    static Result<void> done(Result<std::vector<u64>> r) {
        if (!r) return r.error();
        return ok();
    }
    // Fields: token opcode flags d0 d1 d2 d3 txid sender
    static Result<Request> request(Result<std::vector<u64>> r) {
        if (!r) return r.error();
        const std::vector<u64>& f = *r;
        if (f.size() < 9) return IpcError::InvalidMessage;
        Message m = Message::small(0, static_cast<u32>(f[1]));
        m.set_flags(static_cast<u32>(f[2]));
        for (int i = 0; i < 4; ++i)
            m.small_message().data[i] = f[3 + static_cast<size_t>(i)];
        m.set_transaction_id(f[7]);
        m.set_sender(ProcessId{f[8]});
        return Request{m, f[0]};
    }

    std::optional<RemotePeer> remote_;
    posix::ConnectionId connection_ = 0;
    u64 capability_ = 0;
};

using PosixTwoProcesses = PosixTwoProcessesVia<Connect::ByName>;
using PosixTwoProcessesThroughCapability = PosixTwoProcessesVia<Connect::ThroughCapability>;

}  // namespace veridian::ipc::contract
