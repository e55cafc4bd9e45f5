// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: the pollable descriptors (see pollable.hpp for the protocol).
#include "posix/pollable.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "posix/os.hpp"  // detail::fail

namespace veridian::ipc::posix::detail {

namespace {
// The eventfd's tag in the epoll set; ends are tagged with their descriptor (>= 0).
constexpr u64 LOCAL_TAG = ~u64{0};
}  // namespace

Result<NotifyPair> make_notify_pair() {
    int ends[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, ends) != 0) {
        return fail(IpcError::OutOfMemory,
                    "socketpair() for a notification socket: %s (raise the descriptor limit)",
                    strerror(errno));
    }
    return NotifyPair{ends[0], ends[1]};
}

void notify_peer(int own_end) {
    const char byte = 1;
    // EAGAIN: the peer's end is full, hence readable already. EPIPE: the peer is gone, its
    // other side says so. Neither needs anything more.
    if (send(own_end, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
    }
}

PollSet::~PollSet() {
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (local_fd_ >= 0) ::close(local_fd_);
}

Result<void> PollSet::open() {
    if (epoll_fd_ >= 0) return ok();
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return fail(IpcError::OutOfMemory, "epoll_create1(): %s", strerror(errno));
    const int local = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (local < 0) {
        ::close(ep);
        return fail(IpcError::OutOfMemory, "eventfd(): %s", strerror(errno));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = LOCAL_TAG;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, local, &ev) != 0) {
        ::close(ep);
        ::close(local);
        return fail(IpcError::OutOfMemory, "epoll_ctl(): %s", strerror(errno));
    }
    epoll_fd_ = ep;
    local_fd_ = local;
    return ok();
}

void PollSet::add(int end) {
    if (epoll_fd_ < 0 || end < 0) return;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<u64>(end);
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, end, &ev);
}

void PollSet::signal_local() {
    if (local_fd_ < 0) return;
    const u64 one = 1;
    if (write(local_fd_, &one, sizeof one) < 0) {
        // EAGAIN only at a counter of 2^64-2: readable already.
    }
}

void PollSet::drain(OnPeerHangup on_hangup) {
    if (epoll_fd_ < 0) return;
    for (;;) {
        epoll_event events[64];
        const int n = epoll_wait(epoll_fd_, events, 64, 0);
        if (n <= 0) return;
        bool kept_hangup = false;
        for (int i = 0; i < n; ++i) {
            if (events[i].data.u64 == LOCAL_TAG) {
                u64 count = 0;
                if (read(local_fd_, &count, sizeof count) < 0) {
                }
                continue;
            }
            const int end = static_cast<int>(events[i].data.u64);
            char buf[256];
            for (;;) {
                const ssize_t got = recv(end, buf, sizeof buf, MSG_DONTWAIT);
                if (got > 0) continue;
                if (got == 0) {  // the peer hung up
                    if (on_hangup == OnPeerHangup::Forget) {
                        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, end, nullptr);
                    } else {
                        kept_hangup = true;
                    }
                }
                break;  // EAGAIN (drained), or an error: the next operation reports it
            }
        }
        // A hung-up end stays readable by design: stop, or this would loop forever.
        if (kept_hangup || n < 64) return;
    }
}

}  // namespace veridian::ipc::posix::detail
