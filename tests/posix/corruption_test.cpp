// SPDX-License-Identifier: MIT OR Apache-2.0
// Nothing from the other side is trusted: a client that corrupts its own ring breaks only its
// own connection, and the server keeps serving everyone else; a client refuses a "server"
// whose answer or shared segments are foreign, truncated or unsealed.
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <thread>

#include "posix/wire.hpp"
#include "test_support.hpp"

namespace veridian::ipc::posix::test {
namespace {

void corrupt_and_keep_serving(const char* how) {
    RuntimeDir dir;
    auto server = Server::publish("demo/victim", dir.server_options(8));
    ASSERT_TRUE(server);
    Peer bad("client-corrupt", dir.path(), "demo/victim", {how});
    ASSERT_TRUE(bad.ready());
    Peer good("client-send", dir.path(), "demo/victim", {"10"});
    for (u64 i = 0; i < 10; ++i) {
        auto r = server->receive_sync(after_ms(5000));
        ASSERT_TRUE(r) << error_name(r.error());
        EXPECT_EQ(r->message.sender().value, static_cast<u64>(good.pid()));
        EXPECT_EQ(r->message.small_message().data[0], i);
    }
    EXPECT_EQ(good.wait_exit(), 0);
    EXPECT_EQ(server->info().broken, 1u);
}

TEST(Corruption, AWrongSequenceWordBreaksOnlyThatConnection) {
    corrupt_and_keep_serving("seq");
}

TEST(Corruption, ARecordOfNoKnownKindBreaksOnlyThatConnection) {
    corrupt_and_keep_serving("slot");
}

TEST(Corruption, APayloadLengthOverTheInlineLimitBreaksOnlyThatConnection) {
    corrupt_and_keep_serving("length");
}

TEST(Corruption, ARecordPastTheRingsEndBreaksOnlyThatConnection) {
    corrupt_and_keep_serving("lines");
}

TEST(Corruption, PaddingShortOfTheRingsEndBreaksOnlyThatConnection) {
    corrupt_and_keep_serving("padding");
}

// A fake server on `name`'s socket: accepts one client, reads its Hello and answers with
// `answer` bytes and descriptors made by `make_fds` (for a full set of rights).
class FakeServer {
public:
    template <typename MakeFds>
    FakeServer(const RuntimeDir& dir, const char* name, std::vector<u8> answer, MakeFds make_fds) {
        listen_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        const std::string path = detail::endpoint_paths(dir.path(), name).socket;
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        listen(listen_, 1);
        thread_ = std::thread([this, answer, make_fds] {
            const int s = accept(listen_, nullptr, nullptr);
            if (s < 0) return;
            char hello[sizeof(detail::Hello)];
            if (recv(s, hello, sizeof hello, 0) <= 0) return;
            std::vector<int> fds = make_fds();
            detail::send_with_fds(s, answer.data(), answer.size(), fds.data(),
                                  static_cast<int>(fds.size()));
            for (int fd : fds)
                ::close(fd);
            char sink[16];
            while (recv(s, sink, sizeof sink, 0) > 0) {
            }
            ::close(s);
        });
    }
    ~FakeServer() {
        shutdown(listen_, SHUT_RDWR);
        thread_.join();
        ::close(listen_);
    }

private:
    int listen_ = -1;
    std::thread thread_;
};

std::vector<u8> welcome_bytes(u32 depth = 64) {
    detail::Welcome w{};
    w.magic = detail::WELCOME_MAGIC;
    w.version = detail::WIRE_VERSION;
    w.fd_bits = detail::fd_bits_for_rights(Rights::SEND | Rights::RECEIVE);
    w.depth = depth;
    w.max_inline_payload = DEFAULT_MAX_INLINE_PAYLOAD;
    w.rights = Rights::SEND | Rights::RECEIVE;
    w.server_pid = static_cast<u64>(getpid());
    w.connection_id = 1;
    std::vector<u8> out(sizeof w);
    std::memcpy(out.data(), &w, sizeof w);
    return out;
}

// Seven memfds of the right sizes for depth 64, sealed as `seals`, the first one `shrink` bytes
// short.
std::vector<int> segments(int seals, usize shrink = 0) {
    const auto g = *detail::RingGeometry::make(64, DEFAULT_MAX_INLINE_PAYLOAD, 0);
    const usize sizes[] = {g.data_bytes,       g.ctl_bytes,        g.data_bytes,      g.ctl_bytes,
                           detail::PAGE_BYTES, detail::PAGE_BYTES, detail::PAGE_BYTES};
    std::vector<int> fds;
    for (usize i = 0; i < 7; ++i) {
        const int fd = memfd_create("fake", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (ftruncate(fd, static_cast<off_t>(sizes[i] - (i == 0 ? shrink : 0))) != 0) return {};
        if (seals != 0) fcntl(fd, F_ADD_SEALS, seals);
        fds.push_back(fd);
    }
    return fds;
}

void expect_refused(const RuntimeDir& dir) {
    ConnectOptions o = dir.connect_options();
    o.connect_timeout_ms = 5000;
    auto c = Connection::connect("demo/fake", o);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), IpcError::InvalidMessage) << last_error_detail();
}

TEST(ForeignSegments, ASegmentNotSealedAgainstResizingIsRefused) {
    RuntimeDir dir;
    FakeServer fake(dir, "demo/fake", welcome_bytes(), [] { return segments(0); });
    expect_refused(dir);
}

TEST(ForeignSegments, ASegmentOfTheWrongSizeIsRefused) {
    RuntimeDir dir;
    FakeServer fake(dir, "demo/fake", welcome_bytes(),
                    [] { return segments(F_SEAL_SHRINK | F_SEAL_GROW, 4096); });
    expect_refused(dir);
}

TEST(ForeignSegments, AStateSegmentWithoutOurMagicIsRefused) {
    RuntimeDir dir;
    FakeServer fake(dir, "demo/fake", welcome_bytes(),
                    [] { return segments(F_SEAL_SHRINK | F_SEAL_GROW); });
    expect_refused(dir);
}

TEST(ForeignSegments, AnAnswerInAnotherProtocolIsRefused) {
    RuntimeDir dir;
    std::vector<u8> garbage(48, 0x5A);
    FakeServer fake(dir, "demo/fake", garbage, [] { return std::vector<int>{}; });
    expect_refused(dir);
}

TEST(ForeignSegments, ABadRingDepthIsRefused) {
    RuntimeDir dir;
    FakeServer fake(dir, "demo/fake", welcome_bytes(3),
                    [] { return segments(F_SEAL_SHRINK | F_SEAL_GROW); });
    expect_refused(dir);
}

}  // namespace
}  // namespace veridian::ipc::posix::test
