// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: the pollable descriptors of Server and Connection.
//
// Layer: posix (hosted). Not installed; used by server.cpp and connection.cpp.
//
// A connection needs no descriptor of its own for notifications: they travel on its
// connection socket (AF_UNIX, SOCK_STREAM), which both sides hold anyway, as notification
// frames (a RegionRecord of kind NOTIFY_RECORD, region_wire.hpp) among the records of
// attachments. A side that published a message into a ring whose consumer polls sends one
// frame (notify_peer); the consumer's end becomes readable. Each end reads only what the
// other end wrote, so neither side can drain the other's notifications, and a socket cannot
// be reopened through /proc/self/fd (ENXIO), so no peer can turn its end into a reader of
// ours. What a peer writes is a hint only ("look at the ring again"): a flood of frames costs
// the consumer one drain, never a wrong message; bytes that are not a frame stop the drain of
// that socket and break only their sender's own attachments.
//
// The descriptor the application polls is a PollSet: an epoll descriptor that only this
// process holds, containing the consumer's connection sockets (a server: one per connection;
// a client: its one), edge-triggered, and a local eventfd for wake-ups from this process (a
// message another thread moved into the inbox, the first arming, close, peer death),
// level-triggered. Edge-triggered because a socket may hold a record of an attachment at its
// head whose message the application has not taken yet: level-triggered, that socket would
// keep the set readable however often it is drained; edge-triggered, every frame that
// arrives after a drain makes the set readable again, and nothing else is needed.
//
// The arming protocol (paired per direction; "flag" is ServerState::poll_armed for the
// client→server direction and RingCtl::poll_armed of the s2c ring for server→client):
//   consumer: (1) flag = 1 (seq_cst), (2) signal_local(): the first poll looks once
//   producer:  (a) publish the tail (seq_cst), (b) load the flag (seq_cst), (c) if set,
//              notify_peer() — one send() of one frame; a full socket is readable already
//              and its reader drains it (below)
//   consumer, on finding nothing: (3) drain() the set: for every socket that received
//              something since the last drain, consume the notification frames at its head
//              (serialized with the readers of attachments on that socket), stopping at a
//              record; (4) look at the rings once more.
// Either (4) sees the tail of (a), or the frame of (c) arrived after (3) consumed that
// socket's event, which is a new edge: the descriptor is readable again. A frame that (3)
// left behind a record is consumed by the reader of that record (it skips notification
// frames before and after it), so a socket never fills with frames nobody reads.
#pragma once

#include "veridian/ipc/core/error.hpp"

namespace veridian::ipc::posix::detail {

// Step (c): tells the other end of the connection socket `sock` to look (one frame; never
// blocks, never raises SIGPIPE).
void notify_peer(int sock);

// What is at the head of a connection socket once its notification frames are consumed.
enum class SocketHead : unsigned char {
    Empty,   // nothing (would block)
    Record,  // something else: a record for the reader of attachments (or junk for it to refuse)
    HungUp,  // the peer closed its end
};
// Consumes the notification frames at the head of `sock`, up to a bound per call, and says
// what follows. The caller serializes every reader of the socket: on a server its receive
// lock, on a client its reader role (under its mutex).
SocketHead skip_notifications(int sock);

// What drain() does with a socket whose peer hung up.
enum class OnPeerHangup : unsigned char {
    Forget,        // take it out of the set (a server: the rings still deliver what is queued)
    KeepReadable,  // the set stays readable for good: the next operation says the peer is gone
};

// A consumer that keeps finding messages drains its sockets after this many (a frame costs a
// few hundred bytes of socket buffer: 64 of them stay far below any socket's room).
inline constexpr unsigned DRAIN_EVERY_TAKES = 64;

// Whether drain() reads the local eventfd too.
enum class LocalSignals : unsigned char {
    Consume,  // step (3): the caller looks at everything next
    Keep,     // a drain of the sockets alone, while the caller is taking messages anyway
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
    // Watches the connection socket `sock`, edge-triggered (the set does not own it: closing
    // it removes it).
    void add(int sock);
    // Makes the set readable (an eventfd write).
    void signal_local();
    // Step (3): reads the eventfd (unless Keep), and consumes the notification frames of every
    // socket that received something since the last drain (skip_notifications; the caller
    // serializes it with the socket's readers). After a hang-up with KeepReadable the set is
    // readable for good (the eventfd is left signalled).
    void drain(OnPeerHangup on_hangup, LocalSignals local = LocalSignals::Consume);

private:
    int epoll_fd_ = -1;
    int local_fd_ = -1;
    bool hung_up_ = false;  // KeepReadable saw a hang-up (under the caller's lock)
};

}  // namespace veridian::ipc::posix::detail
