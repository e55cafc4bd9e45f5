// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: shared memory regions that travel with large messages.
//
// Layer: posix (hosted). A Region is a memfd of a fixed size, sealed against shrinking and
// growing from birth (so nobody can truncate it under a mapping: no SIGBUS), mapped into
// this process. A LargeMessage carries one region by reference: the region's descriptor
// travels out of band over the connection's Unix socket (SCM_RIGHTS), the ring slot holds
// only a small record naming it, and the receiver maps it. Nothing is copied through the
// ring, so the cost of sending a region does not grow with its size.
//
//   // sender
//   posix::Region r = VIPC_TRY(posix::Region::create(64 << 20));
//   std::memcpy(r.data(), frame, frame_size);
//   LargeMessage m{};
//   m.header.opcode = 7;
//   VIPC_TRY(conn.send_sync(Message(m), r, posix::Transfer::ShareReadOnly));
//
//   // receiver
//   posix::Received in = VIPC_TRY(server.receive_sync());
//   posix::Region r = VIPC_TRY(posix::Region::receive(in.message));
//   consume(r.data(), r.size());
//
// Transfer modes
//
//   Move            The sender gives the region away. Before it travels, the sender's
//                   mapping is dropped and the memfd is sealed with F_SEAL_WRITE: from then
//                   on nobody (the sender included, through any descriptor it may still
//                   hold) can change its bytes. The receiver maps it read-only and may
//                   trust that it never changes (a checksum it verified stays true). On
//                   success the sender's Region is empty. F_SEAL_WRITE is refused while any
//                   writable mapping of the memfd exists: then ResourceBusy, and the
//                   sender's Region stays usable (read-only).
//   ShareReadOnly   Both keep it; the receiver can only read. The first read-only share
//                   seals the memfd with F_SEAL_FUTURE_WRITE (no new writable mapping can
//                   ever be made, even by reopening /proc/self/fd), so the receiver cannot
//                   write it; the creator keeps writing through the mapping it already
//                   has. Such a region can no longer be shared read-write.
//   ShareReadWrite  Both keep it, both may write (shared memory: the parties agree on who
//                   writes when).
//   Copy            For payloads of at most 64 bytes: the region's bytes are copied into
//                   the message's inline bytes and no descriptor travels. Larger →
//                   MessageTooLarge.
//
// The message the receiver gets is the LargeMessage sent, with region.size the region's
// size, region.permissions READ (and WRITE for ShareReadWrite), and region.base a handle
// that only Region::receive understands. header.total_size = inline bytes used + region
// size (the sender may leave it 0: the runtime then sets it to the region size).
//
// Checksums: a sender may set header.checksum to payload_checksum(region bytes); the
// receiver verifies it only when it asks (Region::receive(msg, ChecksumCheck::Verify):
// InvalidMessage on a mismatch), and only over what it maps: a sender never decides how much
// work the receiver does (a sparse 1 GiB region with a checksum would otherwise cost the
// receiver seconds and a GiB of memory). A 0 checksum means "none". Only a moved region is
// guaranteed not to change after the check. Servers also cap the size of the regions their
// clients may send (ServerOptions::max_region_bytes).
//
// Received regions that nobody takes with Region::receive stay open in a process-local
// table of at most MAX_UNCLAIMED_REGIONS; beyond that the oldest is closed.
//
// Nothing from the other side is trusted. Region::receive checks the descriptor it got:
// a memfd (F_GET_SEALS works: nothing else has seals), sealed against shrinking (the
// sender cannot truncate it after sending, so touching any byte of the mapping is safe),
// at least as large as the message claims, and for a moved region sealed against writes.
// Anything else: InvalidMemoryRegion, with last_error_detail() naming what was wrong.
#pragma once

#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc::posix {

enum class Transfer : u32 { Move = 1, ShareReadOnly = 2, ShareReadWrite = 3, Copy = 4 };

// Largest region Region::create makes (1 TiB: memfd pages are allocated when touched).
inline constexpr u64 MAX_REGION_BYTES = u64{1} << 40;
// Whether Region::receive verifies the message's checksum (see "Checksums").
enum class ChecksumCheck : u8 { Skip, Verify };
// Received regions kept for Region::receive before the oldest is closed.
inline constexpr usize MAX_UNCLAIMED_REGIONS = 1024;

class Region {
public:
    Region() = default;
    Region(Region&& o) noexcept;
    Region& operator=(Region&& o) noexcept;
    Region(const Region&) = delete;
    Region& operator=(const Region&) = delete;
    ~Region();

    // A new zero-filled region of `bytes` (1..MAX_REGION_BYTES), mapped read-write.
    // InvalidMemoryRegion for a bad size; OutOfMemory when the kernel refuses.
    static Result<Region> create(u64 bytes);

    // Takes the region a received message carries (once: a second call, or a message
    // without a region → InvalidMemoryRegion). Validates the descriptor (see above) and
    // the checksum when `check` asks for it, and maps it (read-write only for
    // ShareReadWrite).
    static Result<Region> receive(const Message& msg, ChecksumCheck check = ChecksumCheck::Skip);

    bool valid() const { return fd_ >= 0; }
    u8* data() { return static_cast<u8*>(addr_); }
    const u8* data() const { return static_cast<const u8*>(addr_); }
    u64 size() const { return size_; }
    bool writable() const { return writable_; }
    // The memfd (owned by the Region; -1 when empty).
    int fd() const { return fd_; }

    // Unmaps and closes. Idempotent.
    void reset();

    // Internal: used by the runtime and its tests.
    struct Access;

private:
    int fd_ = -1;
    int read_only_fd_ = -1;  // O_RDONLY reopen for read-only shares, made on first use
    void* addr_ = nullptr;
    u64 size_ = 0;
    bool writable_ = false;
};

// A sender's cache of regions, so that steady-state sending allocates nothing: acquire()
// hands out a cached region of exactly the size asked for (or creates one), release() takes
// it back once the receiver is done with it (the application knows when: e.g. the reply to
// the call that shared it). Regions shared read-only stay writable for their creator and
// can be reused; a moved region is gone and is not released. Keeps at most `max_cached`
// regions. Not thread-safe: one pool per sending thread, or a lock around it.
//
//   posix::RegionPool pool;
//   for (;;) {
//       posix::Region r = VIPC_TRY(pool.acquire(frame_bytes));   // no syscall once warm
//       fill(r.data());
//       VIPC_TRY(conn.call(request, r, posix::Transfer::ShareReadOnly));
//       pool.release(static_cast<posix::Region&&>(r));
//   }
class RegionPool {
public:
    explicit RegionPool(usize max_cached = 16) : max_cached_(max_cached) {}
    RegionPool(RegionPool&&) noexcept;
    RegionPool& operator=(RegionPool&&) noexcept;
    RegionPool(const RegionPool&) = delete;
    RegionPool& operator=(const RegionPool&) = delete;
    ~RegionPool();

    Result<Region> acquire(u64 bytes);
    // Takes a region back (an empty or read-only one is simply dropped).
    void release(Region&& region);
    usize cached() const { return count_; }
    // Regions created because none of the size asked for was cached.
    u64 created() const { return created_; }

private:
    usize max_cached_;
    Region* slots_ = nullptr;  // max_cached_ entries, the first count_ in use
    usize count_ = 0;
    u64 created_ = 0;
};

}  // namespace veridian::ipc::posix
