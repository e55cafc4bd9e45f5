// SPDX-License-Identifier: MIT OR Apache-2.0
// NNG: a pair1 socket in each process over ipc:// (a Unix socket file in the scratch
// directory). NNG moves the bytes on its own worker threads, which inherit the process's cpu.
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#include <chrono>
#include <thread>

#include "transport.hpp"

namespace vipc::bench {
namespace {

Status nng_failure(const std::string& what, int rv) {
    return Status::fail(what + ": " + nng_strerror(rv));
}

class NngTransport final : public Transport {
public:
    ~NngTransport() override { close(); }

    Status prepare(const CaseParams& params) override {
        params_ = params;
        url_ = "ipc://" + params.scratch_dir + "/" + params.unique_name + ".nng";
        return {};
    }

    Status open(Role role) override {
        if (int rv = nng_pair1_open(&socket_); rv != 0) return nng_failure("nng_pair1_open", rv);
        open_ = true;
        nng_socket_set_size(socket_, NNG_OPT_RECVMAXSZ, params_.message_size + 4096);
        const int buffered = static_cast<int>(std::min<std::size_t>(params_.queue_depth, 8192));
        nng_socket_set_int(socket_, NNG_OPT_SENDBUF, buffered);
        nng_socket_set_int(socket_, NNG_OPT_RECVBUF, buffered);
        if (role == Role::server) {
            if (int rv = nng_listen(socket_, url_.c_str(), nullptr, 0); rv != 0)
                return nng_failure("nng_listen " + url_, rv);
            return {};
        }
        // The server may not listen yet: retry for a bounded time.
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        for (;;) {
            const int rv = nng_dial(socket_, url_.c_str(), nullptr, 0);
            if (rv == 0) return {};
            if ((rv != NNG_ECONNREFUSED && rv != NNG_ENOENT) ||
                std::chrono::steady_clock::now() > give_up)
                return nng_failure("nng_dial " + url_, rv);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }

    Status send(std::span<const std::byte> message) override {
        // nng_send only reads the buffer; its C signature is not const-qualified.
        void* data = const_cast<std::byte*>(message.data());
        if (int rv = nng_send(socket_, data, message.size(), 0); rv != 0)
            return nng_failure("nng_send", rv);
        return {};
    }

    Status receive(std::span<std::byte> message) override {
        std::size_t size = message.size();
        if (int rv = nng_recv(socket_, message.data(), &size, 0); rv != 0)
            return nng_failure("nng_recv", rv);
        if (size != message.size())
            return Status::fail("nng_recv: message of " + std::to_string(size) +
                                " bytes, expected " + std::to_string(message.size()));
        return {};
    }

    void close() override {
        if (open_) nng_close(socket_);
        open_ = false;
    }

private:
    std::string url_;
    nng_socket socket_ = NNG_SOCKET_INITIALIZER;
    bool open_ = false;
};

}  // namespace

std::vector<TransportInfo> nng_transports() {
    TransportInfo info;
    info.name = "nng";
    info.description = std::string("NNG ") + nng_version() + " pair1 sockets over ipc://";
    info.group = "peer";
    info.max_message_size = std::size_t{1} << 20;
    info.make = [] { return std::make_unique<NngTransport>(); };
    return {info};
}

}  // namespace vipc::bench
