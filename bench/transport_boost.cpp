// SPDX-License-Identifier: MIT OR Apache-2.0
// Boost.Interprocess message_queue: two named queues in POSIX shared memory (one per
// direction), blocking send/receive (a process-shared mutex and condition variables inside).
#include <boost/interprocess/ipc/message_queue.hpp>

#include "transport.hpp"

namespace vipc::bench {
namespace {

namespace bip = boost::interprocess;

// Queues larger than this are made shallower so the biggest messages still fit.
constexpr std::size_t kQueueBytesLimit = 64u << 20;

class BoostMqTransport final : public Transport {
public:
    ~BoostMqTransport() override { cleanup(); }

    Status prepare(const CaseParams& params) override {
        params_ = params;
        names_[0] = "vipcb_" + params.unique_name + "_c2s";
        names_[1] = "vipcb_" + params.unique_name + "_s2c";
        depth_ = params.queue_depth;
        while (depth_ > 2 && depth_ * params.message_size > kQueueBytesLimit)
            depth_ /= 2;
        try {
            for (int i = 0; i < 2; ++i) {
                bip::message_queue::remove(names_[i].c_str());
                bip::message_queue q(bip::create_only, names_[i].c_str(), depth_,
                                     params.message_size);
                created_[i] = true;
            }
        } catch (const std::exception& e) {
            return Status::fail(std::string("create message_queue: ") + e.what());
        }
        return {};
    }

    std::string note() const override {
        if (depth_ >= params_.queue_depth) return {};
        return "queue depth " + std::to_string(depth_) + " (64 MiB per queue)";
    }

    Status open(Role role) override {
        const bool client = role == Role::client;
        try {
            out_ = std::make_unique<bip::message_queue>(bip::open_only,
                                                        names_[client ? 0 : 1].c_str());
            in_ = std::make_unique<bip::message_queue>(bip::open_only,
                                                       names_[client ? 1 : 0].c_str());
        } catch (const std::exception& e) {
            return Status::fail(std::string("open message_queue: ") + e.what());
        }
        return {};
    }

    Status send(std::span<const std::byte> message) override {
        try {
            out_->send(message.data(), message.size(), 0);
        } catch (const std::exception& e) {
            return Status::fail(std::string("message_queue::send: ") + e.what());
        }
        return {};
    }

    Status receive(std::span<std::byte> message) override {
        try {
            bip::message_queue::size_type received = 0;
            unsigned int priority = 0;
            in_->receive(message.data(), message.size(), received, priority);
            if (received != message.size()) return Status::fail("message_queue: short message");
        } catch (const std::exception& e) {
            return Status::fail(std::string("message_queue::receive: ") + e.what());
        }
        return {};
    }

    void close() override {
        out_.reset();
        in_.reset();
    }

    void cleanup() override {
        for (int i = 0; i < 2; ++i) {
            if (created_[i]) bip::message_queue::remove(names_[i].c_str());
            created_[i] = false;
        }
    }

private:
    std::string names_[2];
    bool created_[2] = {false, false};
    std::size_t depth_ = 0;
    std::unique_ptr<bip::message_queue> out_;
    std::unique_ptr<bip::message_queue> in_;
};

}  // namespace

std::vector<TransportInfo> boost_transports() {
    TransportInfo info;
    info.name = "boost_mq";
    info.description = "Boost.Interprocess message_queue pair, blocking send/receive";
    info.group = "peer";
    info.max_message_size = std::size_t{1} << 20;
    info.make = [] { return std::make_unique<BoostMqTransport>(); };
    return {info};
}

}  // namespace vipc::bench
