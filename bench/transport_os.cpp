// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel transports: a pair of pipes, a Unix stream socket pair, and a pair of POSIX message
// queues. Every wait sleeps in the kernel.
#include <fcntl.h>
#include <mqueue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "transport.hpp"

namespace vipc::bench {

Status Status::from_errno(const std::string& what, int errno_value) {
    return fail(what + ": " + std::strerror(errno_value));
}

namespace {

Status write_all(int fd, std::span<const std::byte> data) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Status::from_errno("write", errno);
        }
        done += static_cast<std::size_t>(n);
    }
    return {};
}

Status read_all(int fd, std::span<std::byte> data) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::read(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Status::from_errno("read", errno);
        }
        if (n == 0) return Status::fail("peer closed the connection");
        done += static_cast<std::size_t>(n);
    }
    return {};
}

// Byte-stream transports: two fds per side (the same fd twice for a socket).
class FdPairTransport final : public Transport {
public:
    enum class Kind { pipe, unix_stream };
    explicit FdPairTransport(Kind kind) : kind_(kind) {}
    ~FdPairTransport() override { close_all(); }

    Status prepare(const CaseParams& params) override {
        params_ = params;
        if (kind_ == Kind::pipe) {
            // fds_[0..1]: client→server pipe, fds_[2..3]: server→client pipe.
            if (pipe2(&fds_[0], O_CLOEXEC) != 0 || pipe2(&fds_[2], O_CLOEXEC) != 0)
                return Status::from_errno("pipe2", errno);
        } else {
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, &fds_[0]) != 0)
                return Status::from_errno("socketpair(AF_UNIX, SOCK_STREAM)", errno);
        }
        return {};
    }

    Status open(Role role) override {
        const bool client = role == Role::client;
        if (kind_ == Kind::pipe) {
            out_ = client ? fds_[1] : fds_[3];
            in_ = client ? fds_[2] : fds_[0];
        } else {
            out_ = in_ = client ? fds_[0] : fds_[1];
        }
        return {};
    }

    Status send(std::span<const std::byte> message) override { return write_all(out_, message); }
    Status receive(std::span<std::byte> message) override { return read_all(in_, message); }
    void cleanup() override { close_all(); }

private:
    void close_all() {
        for (int& fd : fds_) {
            if (fd >= 0) ::close(fd);
            fd = -1;
        }
    }

    Kind kind_;
    int fds_[4] = {-1, -1, -1, -1};
    int out_ = -1;
    int in_ = -1;
};

long read_sysctl(const char* path, long fallback) {
    std::ifstream in(path);
    long value = fallback;
    if (!(in >> value)) return fallback;
    return value;
}

// Two POSIX message queues, created by the parent and opened by name in each child.
class PosixMqTransport final : public Transport {
public:
    ~PosixMqTransport() override { cleanup(); }

    Status prepare(const CaseParams& params) override {
        params_ = params;
        names_[0] = "/vipcb_" + params.unique_name + "_c2s";
        names_[1] = "/vipcb_" + params.unique_name + "_s2c";
        // The kernel caps the depth (fs.mqueue.msg_max for unprivileged processes) and the
        // bytes per user (RLIMIT_MSGQUEUE): halve the depth until the queue can be created.
        long depth = static_cast<long>(params.queue_depth);
        for (;;) {
            mq_attr attr{};
            attr.mq_maxmsg = depth;
            attr.mq_msgsize = static_cast<long>(params.message_size);
            const mqd_t q = mq_open(names_[0].c_str(), O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
            if (q != static_cast<mqd_t>(-1)) {
                mq_close(q);
                created_[0] = true;
                break;
            }
            if ((errno == EINVAL || errno == EMFILE || errno == ENOMEM) && depth > 1) {
                const long msg_max = read_sysctl("/proc/sys/fs/mqueue/msg_max", 10);
                depth = depth > msg_max ? msg_max : depth / 2;
                continue;
            }
            return Status::from_errno("mq_open " + names_[0] + " (depth " + std::to_string(depth) +
                                          ", " + std::to_string(params.message_size) + " B)",
                                      errno);
        }
        mq_attr attr{};
        attr.mq_maxmsg = depth;
        attr.mq_msgsize = static_cast<long>(params.message_size);
        const mqd_t q = mq_open(names_[1].c_str(), O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
        if (q == static_cast<mqd_t>(-1)) return Status::from_errno("mq_open " + names_[1], errno);
        mq_close(q);
        created_[1] = true;
        depth_ = depth;
        return {};
    }

    std::string note() const override {
        if (depth_ >= static_cast<long>(params_.queue_depth)) return {};
        return "queue depth " + std::to_string(depth_) + " (limited by fs.mqueue.msg_max=" +
               std::to_string(read_sysctl("/proc/sys/fs/mqueue/msg_max", -1)) +
               " or RLIMIT_MSGQUEUE)";
    }

    Status open(Role role) override {
        const bool client = role == Role::client;
        out_ = mq_open(names_[client ? 0 : 1].c_str(), O_WRONLY | O_CLOEXEC);
        in_ = mq_open(names_[client ? 1 : 0].c_str(), O_RDONLY | O_CLOEXEC);
        if (out_ == static_cast<mqd_t>(-1) || in_ == static_cast<mqd_t>(-1))
            return Status::from_errno("mq_open existing queue", errno);
        return {};
    }

    Status send(std::span<const std::byte> message) override {
        while (mq_send(out_, reinterpret_cast<const char*>(message.data()), message.size(), 0) !=
               0) {
            if (errno != EINTR) return Status::from_errno("mq_send", errno);
        }
        return {};
    }

    Status receive(std::span<std::byte> message) override {
        for (;;) {
            const ssize_t n =
                mq_receive(in_, reinterpret_cast<char*>(message.data()), message.size(), nullptr);
            if (n >= 0) {
                if (static_cast<std::size_t>(n) != message.size())
                    return Status::fail("mq_receive: short message");
                return {};
            }
            if (errno != EINTR) return Status::from_errno("mq_receive", errno);
        }
    }

    void close() override {
        if (out_ != static_cast<mqd_t>(-1)) mq_close(out_);
        if (in_ != static_cast<mqd_t>(-1)) mq_close(in_);
        out_ = in_ = static_cast<mqd_t>(-1);
    }

    void cleanup() override {
        for (int i = 0; i < 2; ++i) {
            if (created_[i]) mq_unlink(names_[i].c_str());
            created_[i] = false;
        }
    }

private:
    std::string names_[2];
    bool created_[2] = {false, false};
    long depth_ = 0;
    mqd_t out_ = static_cast<mqd_t>(-1);
    mqd_t in_ = static_cast<mqd_t>(-1);
};

}  // namespace

std::vector<TransportInfo> os_transports() {
    std::vector<TransportInfo> rows;
    TransportInfo pipe_row;
    pipe_row.name = "pipe";
    pipe_row.description = "two pipes, blocking read/write";
    pipe_row.group = "peer";
    pipe_row.max_message_size = std::size_t{1} << 20;
    pipe_row.make = [] { return std::make_unique<FdPairTransport>(FdPairTransport::Kind::pipe); };
    rows.push_back(pipe_row);

    TransportInfo uds_row = pipe_row;
    uds_row.name = "unix_socket";
    uds_row.description = "Unix stream socket pair, blocking read/write";
    uds_row.make = [] {
        return std::make_unique<FdPairTransport>(FdPairTransport::Kind::unix_stream);
    };
    rows.push_back(uds_row);

    TransportInfo mq_row;
    mq_row.name = "posix_mq";
    mq_row.description = "two POSIX message queues, blocking mq_send/mq_receive";
    mq_row.group = "peer";
    // A message larger than fs.mqueue.msgsize_max needs privilege; the sweep stops there.
    mq_row.max_message_size =
        static_cast<std::size_t>(read_sysctl("/proc/sys/fs/mqueue/msgsize_max", 8192));
    mq_row.make = [] { return std::make_unique<PosixMqTransport>(); };
    rows.push_back(mq_row);
    return rows;
}

}  // namespace vipc::bench
