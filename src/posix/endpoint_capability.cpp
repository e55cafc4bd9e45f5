// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: endpoint capabilities (the holder's side).
#include "veridian/ipc/posix/endpoint_capability.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "posix/region_wire.hpp"

namespace veridian::ipc::posix {

using namespace detail;

EndpointCapability::EndpointCapability(EndpointCapability&& o) noexcept
    : fd_(o.fd_), rights_(o.rights_) {
    o.fd_ = -1;
    o.rights_ = 0;
}

EndpointCapability& EndpointCapability::operator=(EndpointCapability&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.fd_;
        rights_ = o.rights_;
        o.fd_ = -1;
        o.rights_ = 0;
    }
    return *this;
}

EndpointCapability::~EndpointCapability() {
    if (fd_ >= 0) ::close(fd_);
}

EndpointCapability EndpointCapability::Access::adopt(int fd, u16 rights) {
    EndpointCapability c;
    c.fd_ = fd;
    c.rights_ = rights;
    return c;
}

Result<EndpointCapability> EndpointCapability::derive(u16 rights) const {
    if (fd_ < 0) return fail(IpcError::InvalidCapability, "the capability is empty");
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        return fail(IpcError::OutOfMemory, "socketpair(): %s", strerror(errno));
    }
    Fd mine(pair[0]);
    Fd theirs(pair[1]);
    const u16 kept = static_cast<u16>(rights & rights_);
    VIPC_TRY(send_cap_request(fd_, CapOp::Derive, kept, theirs.get()));
    return Access::adopt(mine.release(), kept);
}

u32 EndpointCapability::count(const Message& msg) {
    if ((msg.flags() & MessageFlags::HAS_CAPABILITY) == 0) return 0;
    return static_cast<u32>(msg.capability() >> 56);
}

Result<EndpointCapability> EndpointCapability::receive(const Message& msg, u32 index) {
    if (index >= count(msg)) {
        return fail(IpcError::InvalidCapability, "the message carries no capability %u", index);
    }
    const u64 first = msg.capability() & ((u64{1} << 56) - 1);
    Fd fd;
    u64 rights = 0;
    u32 kind = 0;
    if (!take_descriptor(first + index, CAPABILITY_RECORD, &fd, &rights, &kind)) {
        return fail(IpcError::InvalidCapability,
                    "the message's capability was already taken (or dropped: more than %zu "
                    "descriptors were left unclaimed)",
                    MAX_UNCLAIMED_REGIONS);
    }
    // A capability is a Unix stream socket; anything else is not one of ours.
    int type = 0;
    socklen_t len = sizeof type;
    sockaddr_storage addr{};
    socklen_t addr_len = sizeof addr;
    if (getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM ||
        getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0 ||
        addr.ss_family != AF_UNIX) {
        return fail(IpcError::InvalidCapability,
                    "the descriptor sent as a capability is not a Unix stream socket");
    }
    return Access::adopt(fd.release(), static_cast<u16>(rights));
}

namespace detail {

Result<void> send_cap_request(int cap_fd, CapOp op, u16 rights, int new_end) {
    const CapRequest req{CAP_REQUEST_MAGIC, static_cast<u16>(op), rights, 0};
    iovec iov{const_cast<CapRequest*>(&req), sizeof req};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    std::memset(control, 0, sizeof control);
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &new_end, sizeof new_end);
    ssize_t n;
    do {
        n = sendmsg(cap_fd, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof req)) return ok();
    return capability_gone(cap_fd);
}

IpcError capability_gone(int cap_fd) {
    // A revoked capability's socket holds the server's last word, CAP_REVOKED_BYTE.
    char last = 0;
    ssize_t peeked;
    do {
        peeked = recv(cap_fd, &last, 1, MSG_PEEK | MSG_DONTWAIT);
    } while (peeked < 0 && errno == EINTR);
    if (peeked == 1 && last == CAP_REVOKED_BYTE) {
        return fail(IpcError::InvalidCapability, "the capability was revoked by its owner");
    }
    return fail(IpcError::EndpointNotFound,
                "the endpoint this capability names is closed (its server closed or died)");
}

}  // namespace detail
}  // namespace veridian::ipc::posix
