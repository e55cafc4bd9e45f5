// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: the pollable descriptors of Server and Connection.
//
// Layer: posix (hosted). Not installed; used by server.cpp and connection.cpp.
//
// Every connection has one notification socket pair (AF_UNIX, SOCK_STREAM, non-blocking),
// made by the server at connect: the server keeps one end, the client gets the other in the
// Welcome (FdBits::NOTIFY). A side that published a message into a ring whose consumer polls
// writes one byte into its own end (notify_peer); the consumer's end becomes readable. Each
// end reads only what the other end wrote, so neither side can drain the other's
// notifications, and a socket cannot be reopened through /proc/self/fd (ENXIO), so no peer
// can turn its end into a reader of ours. What a peer writes is a hint only ("look at the
// ring again"): a flood of bytes costs the consumer one drain, never a wrong message.
//
// The descriptor the application polls is a PollSet: an epoll descriptor that only this
// process holds, containing the consumer's ends (a server: one per connection; a client: its
// one) and a local eventfd for wake-ups from this process (a message another thread moved
// into the inbox, the first arming, close, peer death). Level-triggered throughout.
//
// The arming protocol (paired per direction; "flag" is ServerState::poll_armed for the
// client→server direction and RingCtl::poll_armed of the s2c ring for server→client):
//   consumer: (1) flag = 1 (seq_cst), (2) signal_local(): the first poll looks once
//   producer:  (a) publish the tail (seq_cst), (b) load the flag (seq_cst), (c) if set,
//              notify_peer() — one send() of one byte; a full socket is readable already
//   consumer, on finding nothing: (3) drain() the set, (4) look at the rings once more.
// Either (4) sees the tail of (a), or the byte of (c) was written after (3) and the
// descriptor stays readable: a notification is never lost.
#pragma once

#include "veridian/ipc/core/error.hpp"

namespace veridian::ipc::posix::detail {

// One connection's notification socket pair. Both ends are close-on-exec and non-blocking.
struct NotifyPair {
    int server_end = -1;
    int client_end = -1;
};
// OutOfMemory (with the detail) when the kernel refuses.
Result<NotifyPair> make_notify_pair();

// Step (c): tells the other end to look (one byte, never blocks, never raises SIGPIPE).
void notify_peer(int own_end);

// What drain() does with an end whose peer hung up.
enum class OnPeerHangup : unsigned char {
    Forget,        // take it out of the set (a server: the rings still deliver what is queued)
    KeepReadable,  // leave it: the set stays readable, the next operation says the peer is gone
};

class PollSet {
public:
    PollSet() = default;
    PollSet(const PollSet&) = delete;
    PollSet& operator=(const PollSet&) = delete;
    ~PollSet();

    // Creates the epoll descriptor and the local eventfd. OutOfMemory when refused.
    Result<void> open();
    bool is_open() const { return epoll_fd_ >= 0; }
    // The descriptor to poll (-1 before open()).
    int fd() const { return epoll_fd_; }
    // Watches `end` for readability (the set does not own it: closing it removes it).
    void add(int end);
    // Makes the set readable (an eventfd write).
    void signal_local();
    // Step (3): reads every readable end (and the eventfd) until it would block.
    void drain(OnPeerHangup on_hangup);

private:
    int epoll_fd_ = -1;
    int local_fd_ = -1;
};

}  // namespace veridian::ipc::posix::detail
