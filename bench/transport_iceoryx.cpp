// SPDX-License-Identifier: MIT OR Apache-2.0
// iceoryx 2.0: publish/subscribe through shared memory managed by the RouDi daemon. Each
// direction is one topic; the sender loans a chunk, copies the message in and publishes it;
// the receiver waits in a WaitSet (a semaphore), takes the chunk, copies it out and releases
// it. Flow control: the publisher waits for the subscriber when its queue is full
// (WAIT_FOR_CONSUMER / BLOCK_PRODUCER), so the stream loses nothing.
//
// The bench starts its own iox-roudi (found on PATH or in /usr/bin) with a memory
// configuration written for the sizes it sends, waits until it reports ready, and stops it
// when the run ends.
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "iceoryx_posh/mepoo/chunk_header.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "transport.hpp"

namespace vipc::bench {
namespace {

using Clock = std::chrono::steady_clock;

// RouDi's memory pools: chunk size (message plus chunk header, with headroom) and count. The
// subscriber queue is sized so both directions' chunks fit a pool.
struct Pool {
    std::size_t chunk_size;
    std::size_t count;
};
constexpr Pool kPools[] = {
    {128, 10000}, {1024, 5000}, {8192, 2100}, {66560, 600}, {263168, 200}, {1049600, 80},
};
constexpr std::size_t kHeaderRoom = 1024;

std::size_t chunks_for(std::size_t message_size) {
    for (const Pool& p : kPools)
        if (message_size + (p.chunk_size <= 128 ? 64 : kHeaderRoom) <= p.chunk_size) return p.count;
    return 0;
}

// The daemon, shared by every iceoryx case of the run.
struct Roudi {
    pid_t pid = -1;
    std::string dir;      // config and log
    std::string failure;  // set when it could not start
    bool probed = false;
};

Roudi& roudi() {
    static Roudi r;
    return r;
}

std::string find_roudi() {
    if (const char* path = std::getenv("PATH")) {
        std::stringstream dirs(path);
        for (std::string d; std::getline(dirs, d, ':');) {
            const std::string candidate = d + "/iox-roudi";
            if (!d.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
        }
    }
    if (access("/usr/bin/iox-roudi", X_OK) == 0) return "/usr/bin/iox-roudi";
    return {};
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// The last non-empty line of RouDi's log, to explain a failed start.
std::string last_log_line(const std::string& log) {
    std::stringstream s(log);
    std::string last;
    for (std::string line; std::getline(s, line);)
        if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
    return last.empty() ? "no output" : last;
}

void stop_roudi() {
    Roudi& r = roudi();
    if (r.pid > 0) {
        // RouDi shuts down in about 2 s when no application is registered.
        kill(r.pid, SIGTERM);
        const auto give_up = Clock::now() + std::chrono::seconds(10);
        int status = 0;
        bool killed = false;
        while (waitpid(r.pid, &status, WNOHANG) == 0) {
            if (Clock::now() > give_up) {
                kill(r.pid, SIGKILL);
                waitpid(r.pid, &status, 0);
                killed = true;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        r.pid = -1;
        if (killed) {
            // A killed RouDi leaves its segments and socket behind; they were ours (RouDi
            // holds a lock that admits one instance), so remove them.
            std::error_code ec;
            std::filesystem::remove("/dev/shm/iceoryx_mgmt", ec);
            if (const passwd* user = getpwuid(getuid()); user != nullptr)
                std::filesystem::remove(std::string("/dev/shm/") + user->pw_name, ec);
            std::filesystem::remove("/tmp/roudi", ec);
        }
    }
    if (!r.dir.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(r.dir, ec);
        r.dir.clear();
    }
}

Status start_roudi() {
    Roudi& r = roudi();
    if (r.probed) return r.failure.empty() ? Status{} : Status::fail(r.failure);
    r.probed = true;
    const std::string exe = find_roudi();
    if (exe.empty()) {
        r.failure = "iox-roudi not found on PATH or in /usr/bin — apt-get install iceoryx";
        return Status::fail(r.failure);
    }
    char dir_template[] = "/tmp/vipc-bench-roudi-XXXXXX";
    if (mkdtemp(dir_template) == nullptr) {
        r.failure = "cannot create a directory for RouDi's config in /tmp";
        return Status::fail(r.failure);
    }
    r.dir = dir_template;
    const std::string config = r.dir + "/roudi.toml";
    const std::string log = r.dir + "/roudi.log";
    {
        std::ofstream c(config);
        c << "[general]\nversion = 1\n\n[[segment]]\n";
        for (const Pool& p : kPools)
            c << "\n[[segment.mempool]]\nsize = " << p.chunk_size << "\ncount = " << p.count
              << "\n";
    }
    std::fflush(nullptr);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        r.failure = std::string("fork for iox-roudi: ") + std::strerror(errno);
        return Status::fail(r.failure);
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(3);
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execl(exe.c_str(), "iox-roudi", "-c", config.c_str(), "-l", "info", nullptr);
        _exit(127);
    }
    r.pid = pid;
    // Ready when it says so; failed when it exits first or stays silent for 10 s.
    const auto give_up = Clock::now() + std::chrono::seconds(10);
    for (;;) {
        const std::string text = read_file(log);
        if (text.find("RouDi is ready for clients") != std::string::npos) return {};
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            r.pid = -1;
            r.failure = "iox-roudi exited at start (" + last_log_line(text) +
                        "); is another RouDi running?";
            return Status::fail(r.failure);
        }
        if (Clock::now() > give_up) {
            r.failure = "iox-roudi did not report ready within 10 s (" + last_log_line(text) + ")";
            stop_roudi();
            return Status::fail(r.failure);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

class IceoryxTransport final : public Transport {
public:
    Status prepare(const CaseParams& params) override {
        params_ = params;
        const std::size_t chunks = chunks_for(params.message_size);
        if (chunks == 0) return Status::fail("message larger than RouDi's biggest memory pool");
        // Per direction: the subscriber's queue, one chunk held by the reader, a few loaned.
        queue_capacity_ = std::min<std::size_t>({params.queue_depth, 256, chunks / 2 - 8});
        return {};
    }

    std::string note() const override {
        if (queue_capacity_ >= params_.queue_depth) return {};
        return "subscriber queue " + std::to_string(queue_capacity_) +
               " (iceoryx 2.0 allows at most 256)";
    }

    Status open(Role role) override {
        const bool client = role == Role::client;
        const std::string name = runtime_name(client);
        iox::runtime::PoshRuntime::initRuntime(
            iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
        const iox::capro::IdString_t instance(iox::cxx::TruncateToCapacity,
                                              params_.unique_name.c_str());
        const iox::capro::ServiceDescription c2s("vipcb", instance, "c2s");
        const iox::capro::ServiceDescription s2c("vipcb", instance, "s2c");

        iox::popo::PublisherOptions pub_options;
        pub_options.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
        iox::popo::SubscriberOptions sub_options;
        sub_options.queueCapacity = queue_capacity_;
        sub_options.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;

        publisher_ = std::make_unique<iox::popo::UntypedPublisher>(client ? c2s : s2c, pub_options);
        subscriber_ =
            std::make_unique<iox::popo::UntypedSubscriber>(client ? s2c : c2s, sub_options);
        waitset_ = std::make_unique<iox::popo::WaitSet<>>();
        if (waitset_->attachState(*subscriber_, iox::popo::SubscriberState::HAS_DATA).has_error())
            return Status::fail("WaitSet::attachState failed");

        // Both directions connected: our publisher sees the peer's subscriber and ours is
        // subscribed. Discovery runs in RouDi every 100 ms or so.
        const auto give_up = Clock::now() + std::chrono::seconds(10);
        while (!publisher_->hasSubscribers() ||
               subscriber_->getSubscriptionState() != iox::SubscribeState::SUBSCRIBED) {
            if (Clock::now() > give_up)
                return Status::fail("peer's subscriber did not connect within 10 s");
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return {};
    }

    Status send(std::span<const std::byte> message) override {
        auto loaned = publisher_->loan(static_cast<std::uint32_t>(message.size()));
        if (loaned.has_error())
            return Status::fail("loan of " + std::to_string(message.size()) +
                                " B failed (memory pool exhausted?)");
        void* payload = loaned.value();
        std::memcpy(payload, message.data(), message.size());
        publisher_->publish(payload);
        return {};
    }

    Status receive(std::span<std::byte> message) override {
        const auto give_up = Clock::now() + std::chrono::seconds(20);
        for (;;) {
            auto taken = subscriber_->take();
            if (!taken.has_error()) {
                const void* payload = taken.value();
                const auto* header = iox::mepoo::ChunkHeader::fromUserPayload(payload);
                const std::size_t size = header->userPayloadSize();
                if (size == message.size()) std::memcpy(message.data(), payload, size);
                subscriber_->release(payload);
                if (size != message.size())
                    return Status::fail("chunk of " + std::to_string(size) + " B, expected " +
                                        std::to_string(message.size()));
                return {};
            }
            if (taken.get_error() != iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE)
                return Status::fail("take failed (too many chunks held)");
            waitset_->timedWait(iox::units::Duration::fromSeconds(1));
            if (Clock::now() > give_up) return Status::fail("no message for 20 s");
        }
    }

    void close() override {
        waitset_.reset();
        subscriber_.reset();
        publisher_.reset();
    }

    void cleanup() override {
        // A child that was killed leaves its runtime's socket and lock file behind (RouDi's
        // monitoring unregisters it); the lock file stays even after a normal exit.
        for (bool client : {false, true}) {
            const std::string base = "/tmp/" + runtime_name(client);
            unlink(base.c_str());
            unlink((base + ".lock").c_str());
        }
    }

private:
    std::string runtime_name(bool client) const {
        return "vipcb_" + params_.unique_name + (client ? "_c" : "_s");
    }

    std::size_t queue_capacity_ = 1;
    std::unique_ptr<iox::popo::UntypedPublisher> publisher_;
    std::unique_ptr<iox::popo::UntypedSubscriber> subscriber_;
    std::unique_ptr<iox::popo::WaitSet<>> waitset_;
};

}  // namespace

std::vector<TransportInfo> iceoryx_transports() {
    TransportInfo info;
    info.name = "iceoryx";
    info.description =
        "iceoryx 2.0 publish/subscribe (copy in/out of loaned chunks), WaitSet wait, own RouDi";
    info.group = "peer";
    info.max_message_size = 1u << 20;
    info.probe = [] { return start_roudi(); };
    info.shutdown = [] { stop_roudi(); };
    info.make = [] { return std::make_unique<IceoryxTransport>(); };
    return {info};
}

}  // namespace vipc::bench
