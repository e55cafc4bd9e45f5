// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: the pollable descriptors (see pollable.hpp for the protocol).
#include "posix/pollable.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "posix/os.hpp"           // detail::fail
#include "posix/region_wire.hpp"  // RegionRecord, NOTIFY_RECORD

namespace veridian::ipc::posix::detail {

namespace {
// The eventfd's tag in the epoll set; sockets are tagged with their descriptor (>= 0).
constexpr u64 LOCAL_TAG = ~u64{0};
}  // namespace

void notify_peer(int sock) {
    const RegionRecord frame{REGION_RECORD_MAGIC, NOTIFY_RECORD, 0};
    // EAGAIN: the socket is full, hence readable already, and its reader drains it. EPIPE: the
    // peer is gone, its other side says so. Neither needs anything more. 16 bytes on a stream
    // socket go whole or not at all.
    if (send(sock, &frame, sizeof frame, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
    }
}

SocketHead skip_notifications(int sock) {
    // Bounded, so a peer that writes frames as fast as we read them cannot hold a reader
    // here: what is left makes the socket readable again.
    for (int i = 0; i < 4096; ++i) {
        RegionRecord head{};
        ssize_t n;
        do {
            n = recv(sock, &head, sizeof head, MSG_PEEK | MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n == 0) return SocketHead::HungUp;
        if (n < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK ? SocketHead::Empty : SocketHead::HungUp;
        }
        if (n != static_cast<ssize_t>(sizeof head) || head.magic != REGION_RECORD_MAGIC ||
            head.transfer != NOTIFY_RECORD) {
            return SocketHead::Record;
        }
        do {
            n = recv(sock, &head, sizeof head, MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n != static_cast<ssize_t>(sizeof head)) return SocketHead::Record;
    }
    return SocketHead::Record;
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

void PollSet::add(int sock) {
    if (epoll_fd_ < 0 || sock < 0) return;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = static_cast<u64>(sock);
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, sock, &ev);
}

void PollSet::signal_local() {
    if (local_fd_ < 0) return;
    const u64 one = 1;
    if (write(local_fd_, &one, sizeof one) < 0) {
        // EAGAIN only at a counter of 2^64-2: readable already.
    }
}

void PollSet::drain(OnPeerHangup on_hangup, LocalSignals local) {
    if (epoll_fd_ < 0 || hung_up_) return;
    for (;;) {
        epoll_event events[64];
        const int n = epoll_wait(epoll_fd_, events, 64, 0);
        if (n <= 0) return;
        for (int i = 0; i < n; ++i) {
            const u64 tag = events[i].data.u64;
            if (tag == LOCAL_TAG) {
                // Left signalled: readable for good, or for the caller's next step (3).
                if (hung_up_ || local == LocalSignals::Keep) continue;
                u64 count = 0;
                if (read(local_fd_, &count, sizeof count) < 0) {
                }
                continue;
            }
            // Edge-triggered: this event is consumed either way; what arrives later is a new
            // one. A record left at the head waits for its reader. (A socket closed and its
            // number reused since epoll_wait: peeking costs it nothing, and a frame consumed
            // there was a hint whose record the caller's step (4) sees.)
            if (skip_notifications(static_cast<int>(tag)) != SocketHead::HungUp) continue;
            if (on_hangup == OnPeerHangup::KeepReadable) {
                hung_up_ = true;
                signal_local();
            }
            // Forget: a hung-up socket raises no further edges; its connection's end is
            // noticed by the monitor, and closing the socket takes it out of the set.
        }
        if (n < 64) return;
    }
}

}  // namespace veridian::ipc::posix::detail
