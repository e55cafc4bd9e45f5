// SPDX-License-Identifier: MIT OR Apache-2.0
// ZeroMQ: a PAIR socket in each process over ipc:// (a Unix socket file in the scratch
// directory). libzmq moves the bytes on its own I/O thread, which inherits the process's cpu.
#include <zmq.h>

#include <cerrno>

#include "transport.hpp"

namespace vipc::bench {
namespace {

Status zmq_failure(const std::string& what) {
    return Status::fail(what + ": " + zmq_strerror(zmq_errno()));
}

class ZmqTransport final : public Transport {
public:
    ~ZmqTransport() override { close(); }

    Status prepare(const CaseParams& params) override {
        params_ = params;
        endpoint_ = "ipc://" + params.scratch_dir + "/" + params.unique_name + ".zmq";
        return {};
    }

    Status open(Role role) override {
        context_ = zmq_ctx_new();
        if (context_ == nullptr) return zmq_failure("zmq_ctx_new");
        socket_ = zmq_socket(context_, ZMQ_PAIR);
        if (socket_ == nullptr) return zmq_failure("zmq_socket(ZMQ_PAIR)");
        const int hwm = static_cast<int>(params_.queue_depth);
        const int linger = 0;
        zmq_setsockopt(socket_, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(socket_, ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof linger);
        if (role == Role::server) {
            if (zmq_bind(socket_, endpoint_.c_str()) != 0)
                return zmq_failure("zmq_bind " + endpoint_);
        } else {
            // Connecting is asynchronous; the first send waits until the peer is there.
            if (zmq_connect(socket_, endpoint_.c_str()) != 0)
                return zmq_failure("zmq_connect " + endpoint_);
        }
        return {};
    }

    Status send(std::span<const std::byte> message) override {
        while (zmq_send(socket_, message.data(), message.size(), 0) < 0) {
            if (zmq_errno() != EINTR) return zmq_failure("zmq_send");
        }
        return {};
    }

    Status receive(std::span<std::byte> message) override {
        for (;;) {
            const int n = zmq_recv(socket_, message.data(), message.size(), 0);
            if (n >= 0) {
                if (static_cast<std::size_t>(n) != message.size())
                    return Status::fail("zmq_recv: message of " + std::to_string(n) +
                                        " bytes, expected " + std::to_string(message.size()));
                return {};
            }
            if (zmq_errno() != EINTR) return zmq_failure("zmq_recv");
        }
    }

    void close() override {
        if (socket_ != nullptr) zmq_close(socket_);
        if (context_ != nullptr) zmq_ctx_term(context_);
        socket_ = nullptr;
        context_ = nullptr;
    }

private:
    std::string endpoint_;
    void* context_ = nullptr;
    void* socket_ = nullptr;
};

}  // namespace

std::vector<TransportInfo> zmq_transports() {
    int major = 0, minor = 0, patch = 0;
    zmq_version(&major, &minor, &patch);
    TransportInfo info;
    info.name = "zmq";
    info.description = "ZeroMQ " + std::to_string(major) + "." + std::to_string(minor) + "." +
                       std::to_string(patch) + " PAIR sockets over ipc://";
    info.group = "peer";
    info.max_message_size = std::size_t{1} << 20;
    info.make = [] { return std::make_unique<ZmqTransport>(); };
    return {info};
}

}  // namespace vipc::bench
