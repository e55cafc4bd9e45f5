// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: regions, and how their descriptors travel with messages.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>

#include "posix/pollable.hpp"
#include "posix/region_wire.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::posix {

using namespace detail;

namespace {

const char* transfer_name(u32 t) {
    switch (static_cast<Transfer>(t)) {
        case Transfer::Move:
            return "moved";
        case Transfer::ShareReadOnly:
            return "shared read-only";
        case Transfer::ShareReadWrite:
            return "shared read-write";
        case Transfer::Copy:
            return "copied";
    }
    return "unknown";
}

// The regions received and not yet taken by Region::receive. Handles are never reused
// within a process, so a stale or repeated handle finds nothing.
class UnclaimedRegions {
public:
    static UnclaimedRegions& instance() {
        static UnclaimedRegions* table = new UnclaimedRegions();  // outlives every thread
        return *table;
    }
    // Parks descriptors for `owner` (a connection), keeping at most `quota` of its own: over
    // it, the owner's oldest is closed, never another connection's. Past the process-wide
    // MAX_UNCLAIMED_REGIONS, the owner's oldest goes first too (the oldest of all only when
    // the owner holds none).
    u64 park(Fd* fds, const u64* values, u32 count, u32 transfer, u64 owner, u32 quota) {
        std::lock_guard<std::mutex> lock(mu_);
        const u64 first = next_handle_;
        for (u32 i = 0; i < count; ++i) {
            usize mine = 0;
            for (const Entry& e : entries_)
                mine += e.owner == owner ? 1 : 0;
            if ((quota != 0 && mine >= quota) ||
                (entries_.size() >= MAX_UNCLAIMED_REGIONS && mine > 0)) {
                drop_oldest_of(owner);
            } else if (entries_.size() >= MAX_UNCLAIMED_REGIONS) {
                entries_.pop_front();  // closes it
            }
            entries_.push_back(
                Entry{next_handle_++, static_cast<Fd&&>(fds[i]), values[i], transfer, owner});
        }
        return first;
    }
    // Closes every descriptor `owner` left unclaimed (its connection ended).
    void release(u64 owner) {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto it = entries_.begin(); it != entries_.end();) {
            it = it->owner == owner ? entries_.erase(it) : it + 1;
        }
    }
    usize count(u64 owner) {
        std::lock_guard<std::mutex> lock(mu_);
        usize n = 0;
        for (const Entry& e : entries_)
            n += e.owner == owner || owner == 0 ? 1 : 0;
        return n;
    }
    struct Entry {
        u64 handle;
        Fd fd;
        u64 claimed_size;
        u32 transfer;
        u64 owner;
    };
    bool take(u64 handle, u32 kind, Entry* out) {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto it = entries_.begin(); it != entries_.end(); ++it) {
            if (it->handle == handle && (it->transfer & 0xFFFF) == (kind & 0xFFFF)) {
                *out = static_cast<Entry&&>(*it);
                entries_.erase(it);
                return true;
            }
        }
        return false;
    }

private:
    void drop_oldest_of(u64 owner) {
        for (auto it = entries_.begin(); it != entries_.end(); ++it) {
            if (it->owner == owner) {
                entries_.erase(it);
                return;
            }
        }
    }

    std::mutex mu_;
    std::deque<Entry> entries_;
    u64 next_handle_ = 1;
};

int seals_of(int fd) {
    return fcntl(fd, F_GET_SEALS);
}

}  // namespace

// ---- Region ------------------------------------------------------------------------------------

Region::Region(Region&& o) noexcept
    : fd_(o.fd_),
      read_only_fd_(o.read_only_fd_),
      addr_(o.addr_),
      size_(o.size_),
      writable_(o.writable_) {
    o.fd_ = -1;
    o.read_only_fd_ = -1;
    o.addr_ = nullptr;
    o.size_ = 0;
    o.writable_ = false;
}

Region& Region::operator=(Region&& o) noexcept {
    if (this != &o) {
        reset();
        fd_ = o.fd_;
        read_only_fd_ = o.read_only_fd_;
        addr_ = o.addr_;
        size_ = o.size_;
        writable_ = o.writable_;
        o.fd_ = -1;
        o.read_only_fd_ = -1;
        o.addr_ = nullptr;
        o.size_ = 0;
        o.writable_ = false;
    }
    return *this;
}

Region::~Region() {
    reset();
}

void Region::reset() {
    if (addr_ != nullptr) munmap(addr_, size_);
    if (read_only_fd_ >= 0) ::close(read_only_fd_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    read_only_fd_ = -1;
    addr_ = nullptr;
    size_ = 0;
    writable_ = false;
}

Result<Region> Region::create(u64 bytes) {
    if (bytes == 0 || bytes > MAX_REGION_BYTES) {
        return fail(IpcError::InvalidMemoryRegion, "a region must be 1..%llu bytes, not %llu",
                    static_cast<unsigned long long>(MAX_REGION_BYTES),
                    static_cast<unsigned long long>(bytes));
    }
    Fd fd(memfd_create("vipc-region", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd.valid()) {
        return fail(IpcError::OutOfMemory, "memfd_create failed: %s", strerror(errno));
    }
    // Sized, then sealed against resizing before anyone else can see it.
    if (ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0 ||
        fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
        return fail(IpcError::OutOfMemory, "cannot size and seal a %llu-byte region: %s",
                    static_cast<unsigned long long>(bytes), strerror(errno));
    }
    void* addr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (addr == MAP_FAILED) {
        return fail(IpcError::OutOfMemory, "cannot map a %llu-byte region: %s",
                    static_cast<unsigned long long>(bytes), strerror(errno));
    }
    return Access::adopt_unchecked(fd.release(), bytes, addr, true);
}

Result<Region> Region::receive(const Message& msg, ChecksumCheck check) {
    if (!msg.is_large() || msg.large_message().region.size == 0) {
        return fail(IpcError::InvalidMemoryRegion, "the message carries no region");
    }
    const MemoryRegion& mr = msg.large_message().region;
    UnclaimedRegions::Entry e{};
    // A region was parked under its transfer mode: look for each (handles are unique).
    const bool found =
        UnclaimedRegions::instance().take(mr.base, static_cast<u32>(Transfer::Move), &e) ||
        UnclaimedRegions::instance().take(mr.base, static_cast<u32>(Transfer::ShareReadOnly), &e) ||
        UnclaimedRegions::instance().take(mr.base, static_cast<u32>(Transfer::ShareReadWrite), &e);
    if (!found) {
        return fail(IpcError::InvalidMemoryRegion,
                    "the message's region was already taken (or dropped: more than %zu were "
                    "left unclaimed)",
                    MAX_UNCLAIMED_REGIONS);
    }
    const char* how = transfer_name(e.transfer);
    // (1) a memfd: only memfds (and other shmem files) have seals at all
    const int seals = seals_of(e.fd.get());
    if (seals < 0) {
        return fail(IpcError::InvalidMemoryRegion,
                    "the descriptor sent as a %s region is not a memfd (F_GET_SEALS: %s)", how,
                    strerror(errno));
    }
    // (2) sealed against shrinking: the sender cannot truncate it under our mapping
    if ((seals & F_SEAL_SHRINK) == 0) {
        return fail(IpcError::InvalidMemoryRegion,
                    "the %s region is not sealed against shrinking (F_SEAL_SHRINK): its sender "
                    "could truncate it and fault the reader; refused",
                    how);
    }
    // (3) as large as claimed
    struct stat st {};
    if (fstat(e.fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<u64>(st.st_size) < e.claimed_size) {
        return fail(IpcError::InvalidMemoryRegion,
                    "the %s region is %lld bytes but the message claims %llu", how,
                    static_cast<long long>(st.st_size),
                    static_cast<unsigned long long>(e.claimed_size));
    }
    // (4) a moved region can no longer change
    const bool moved = e.transfer == static_cast<u32>(Transfer::Move);
    if (moved && (seals & F_SEAL_WRITE) == 0) {
        return fail(IpcError::InvalidMemoryRegion,
                    "the moved region is not sealed against writes (F_SEAL_WRITE)");
    }
    // (5) map it as the transfer allows
    const bool writable = e.transfer == static_cast<u32>(Transfer::ShareReadWrite);
    void* addr = mmap(nullptr, e.claimed_size, writable ? PROT_READ | PROT_WRITE : PROT_READ,
                      MAP_SHARED, e.fd.get(), 0);
    if (addr == MAP_FAILED) {
        return fail(IpcError::InvalidMemoryRegion, "cannot map the %s region (%llu bytes): %s", how,
                    static_cast<unsigned long long>(e.claimed_size), strerror(errno));
    }
    Region r = Access::adopt_unchecked(e.fd.release(), e.claimed_size, addr, writable);
    // (6) the checksum, when the receiver asks for it and the sender gave one: over the
    // mapping only
    const u32 expected = msg.large_message().header.checksum;
    if (check == ChecksumCheck::Verify && expected != 0 &&
        payload_checksum(r.data(), r.size()) != expected) {
        return fail(IpcError::InvalidMessage,
                    "the %s region's checksum does not match the message header", how);
    }
    return r;
}

// ---- RegionPool ----------------------------------------------------------------------------

RegionPool::RegionPool(RegionPool&& o) noexcept
    : max_cached_(o.max_cached_), slots_(o.slots_), count_(o.count_), created_(o.created_) {
    o.slots_ = nullptr;
    o.count_ = 0;
}

RegionPool& RegionPool::operator=(RegionPool&& o) noexcept {
    if (this != &o) {
        delete[] slots_;
        max_cached_ = o.max_cached_;
        slots_ = o.slots_;
        count_ = o.count_;
        created_ = o.created_;
        o.slots_ = nullptr;
        o.count_ = 0;
    }
    return *this;
}

RegionPool::~RegionPool() {
    delete[] slots_;
}

Result<Region> RegionPool::acquire(u64 bytes) {
    for (usize i = 0; i < count_; ++i) {
        if (slots_[i].size() == bytes) {
            Region r = static_cast<Region&&>(slots_[i]);
            slots_[i] = static_cast<Region&&>(slots_[count_ - 1]);
            --count_;
            return r;
        }
    }
    Region r = VIPC_TRY(Region::create(bytes));
    ++created_;
    return r;
}

void RegionPool::release(Region&& region) {
    Region r = static_cast<Region&&>(region);
    if (!r.valid() || !r.writable() || max_cached_ == 0) return;
    if (slots_ == nullptr) slots_ = new Region[max_cached_];
    if (count_ == max_cached_) {
        slots_[0] = static_cast<Region&&>(slots_[count_ - 1]);  // drop the oldest-placed one
        --count_;
    }
    slots_[count_++] = static_cast<Region&&>(r);
}

Region Region::Access::adopt_unchecked(int fd, u64 size, void* addr, bool writable) {
    Region r;
    r.fd_ = fd;
    r.size_ = size;
    r.addr_ = addr;
    r.writable_ = writable;
    return r;
}

Result<int> Region::Access::descriptor_for(Region& r, Transfer t) {
    const int seals = seals_of(r.fd_);
    if (t == Transfer::ShareReadWrite) {
        if (seals >= 0 && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) != 0) {
            return fail(IpcError::PermissionDenied,
                        "this region was shared read-only or moved: it is sealed against "
                        "writes and cannot be shared read-write");
        }
        return r.fd_;
    }
    if (t == Transfer::ShareReadOnly) {
        if (r.read_only_fd_ < 0) {
            // Seal first (a receiver could otherwise reopen its descriptor read-write through
            // /proc/self/fd), then make the read-only open file description.
            if (seals >= 0 && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) == 0 &&
                fcntl(r.fd_, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0) {
                return fail(IpcError::PermissionDenied,
                            "cannot seal the region against new writable mappings: %s",
                            strerror(errno));
            }
            char path[64];
            std::snprintf(path, sizeof path, "/proc/self/fd/%d", r.fd_);
            r.read_only_fd_ = open(path, O_RDONLY | O_CLOEXEC);
            if (r.read_only_fd_ < 0) {
                return fail(IpcError::OutOfMemory, "cannot reopen the region read-only: %s",
                            strerror(errno));
            }
        }
        return r.read_only_fd_;
    }
    return r.fd_;  // Move (after seal_for_move)
}

Result<void> Region::Access::seal_for_move(Region& r) {
    const int seals = seals_of(r.fd_);
    if (seals >= 0 && (seals & F_SEAL_WRITE) != 0) return ok();  // sealed already
    // F_SEAL_WRITE is refused while a writable shared mapping exists: drop ours first.
    if (r.addr_ != nullptr) munmap(r.addr_, r.size_);
    r.addr_ = nullptr;
    const bool sealed = fcntl(r.fd_, F_ADD_SEALS, F_SEAL_WRITE) == 0;
    const int seal_errno = errno;
    const int prot = sealed ? PROT_READ : (r.writable_ ? PROT_READ | PROT_WRITE : PROT_READ);
    void* addr = mmap(nullptr, r.size_, prot, MAP_SHARED, r.fd_, 0);
    r.addr_ = addr == MAP_FAILED ? nullptr : addr;
    if (!sealed) {
        return fail(seal_errno == EBUSY ? IpcError::ResourceBusy : IpcError::PermissionDenied,
                    "cannot seal the region for a move (F_SEAL_WRITE): %s%s", strerror(seal_errno),
                    seal_errno == EBUSY ? " (another writable mapping of it exists)" : "");
    }
    r.writable_ = false;
    return ok();
}

// ---- the wire ----------------------------------------------------------------------------------

namespace detail {

Result<Message> prepare_region_message(const Message& msg, const Region& region,
                                       Transfer transfer) {
    if (!msg.is_large()) {
        return fail(IpcError::InvalidMessage, "a region travels with a LargeMessage");
    }
    if (!region.valid()) {
        return fail(IpcError::InvalidMemoryRegion, "the region is empty (moved or reset)");
    }
    Message out = msg;
    LargeMessage& m = out.large_message();
    if (transfer == Transfer::Copy) {
        if (region.size() > LARGE_MESSAGE_INLINE_BYTES) {
            return fail(IpcError::MessageTooLarge,
                        "a copied region must fit the %zu inline bytes; this one is %llu bytes: "
                        "share or move it",
                        LARGE_MESSAGE_INLINE_BYTES, static_cast<unsigned long long>(region.size()));
        }
        std::memcpy(m.inline_data, region.data(), region.size());
        m.region = MemoryRegion{0, 0, 0, CachePolicy::WriteBack};
        m.header.total_size = region.size();
        return out;
    }
    if (transfer != Transfer::Move && transfer != Transfer::ShareReadOnly &&
        transfer != Transfer::ShareReadWrite) {
        return fail(IpcError::InvalidMessage, "unknown transfer mode %u",
                    static_cast<unsigned>(transfer));
    }
    if (m.header.total_size == 0) m.header.total_size = region.size();
    m.region = MemoryRegion{0, region.size(), static_cast<u32>(transfer), CachePolicy::WriteBack};
    if (!region_fields_valid(m)) {
        return fail(IpcError::InvalidMessage,
                    "header.total_size (%llu) must be the region's size (%llu) plus at most %zu "
                    "inline bytes",
                    static_cast<unsigned long long>(m.header.total_size),
                    static_cast<unsigned long long>(region.size()), LARGE_MESSAGE_INLINE_BYTES);
    }
    return out;
}

u64 park_descriptor(Fd fd, u64 value, u32 kind, u64 owner, u32 quota) {
    return UnclaimedRegions::instance().park(&fd, &value, 1, kind, owner, quota);
}

u64 park_descriptors(Fd* fds, const u64* values, u32 count, u32 kind, u64 owner, u32 quota) {
    return UnclaimedRegions::instance().park(fds, values, count, kind, owner, quota);
}

void release_unclaimed(u64 owner) {
    UnclaimedRegions::instance().release(owner);
}

usize unclaimed_count(u64 owner) {
    return UnclaimedRegions::instance().count(owner);
}

u64 new_unclaimed_owner() {
    static std::atomic<u64> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
}

Result<OutgoingAttachment> OutgoingAttachment::capabilities(
    std::span<const EndpointCapability> caps) {
    if (caps.empty() || caps.size() > MAX_CAPABILITIES_PER_MESSAGE) {
        return fail(IpcError::InvalidMessage, "a message carries 1..%u capabilities, not %zu",
                    MAX_CAPABILITIES_PER_MESSAGE, caps.size());
    }
    OutgoingAttachment a;
    a.kind = CAPABILITY_RECORD;
    for (const EndpointCapability& c : caps) {
        if (!c.valid()) return fail(IpcError::InvalidCapability, "a capability is empty");
        if ((c.rights() & Rights::GRANT) == 0) {
            return fail(IpcError::PermissionDenied,
                        "passing a capability on needs Rights::GRANT in it (derive keeps it "
                        "only when asked)");
        }
        a.fds[a.count] = c.fd();
        a.rights[a.count] = c.rights();
        ++a.count;
    }
    return a;
}

bool take_descriptor(u64 handle, u32 kind, Fd* fd, u64* value, u32* full_kind) {
    UnclaimedRegions::Entry e{};
    if (!UnclaimedRegions::instance().take(handle, kind, &e)) return false;
    *fd = static_cast<Fd&&>(e.fd);
    *value = e.claimed_size;
    *full_kind = e.transfer;
    return true;
}

void OutgoingAttachment::stamp(Message& msg, u64 sequence) const {
    if (!is_capability()) {
        msg.large_message().region.base = sequence;
    } else if (msg.is_small()) {
        msg.small_message().capability = sequence;
        msg.set_flags(msg.flags() | MessageFlags::HAS_CAPABILITY);
    } else {
        msg.large_message().header.capability = sequence;
        msg.set_flags(msg.flags() | MessageFlags::HAS_CAPABILITY);
    }
}

Result<void> receive_attachments(int sock, RegionReceiver& receiver, Message& msg) {
    if (msg.is_large() && msg.large_message().region.size != 0) {
        VIPC_TRY(receive_region_record(sock, receiver, msg));
    }
    if ((msg.flags() & MessageFlags::HAS_CAPABILITY) == 0) return ok();
    // Notification frames (pollable.hpp) may come before the record.
    (void)skip_notifications(sock);
    // Look before taking: a record that is not this message's stays for its own message.
    CapabilityRecord rec{};
    ssize_t n;
    do {
        n = recv(sock, &rec.head, sizeof rec.head, MSG_PEEK | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    const u32 count = rec.head.transfer >> 16;
    const bool matches =
        n == static_cast<ssize_t>(sizeof rec.head) && rec.head.magic == REGION_RECORD_MAGIC &&
        (rec.head.transfer & 0xFFFF) == CAPABILITY_RECORD &&
        rec.head.sequence == receiver.next_sequence && rec.head.sequence == msg.capability();
    u64 field = 0;
    if (matches) {
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
        iovec iov{&rec, sizeof rec};
        msghdr mh{};
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = control;
        mh.msg_controllen = sizeof control;
        do {
            n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        } while (n < 0 && errno == EINTR);
        Fd fds[MAX_CAPABILITIES_PER_MESSAGE];
        u32 nfds = 0;
        bool extra = false;
        for (cmsghdr* c = CMSG_FIRSTHDR(&mh); n > 0 && c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            const usize k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (usize i = 0; i < k; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (nfds < MAX_CAPABILITIES_PER_MESSAGE) {
                    fds[nfds++] = Fd(fd);
                } else {
                    ::close(fd);
                    extra = true;
                }
            }
        }
        if (n != static_cast<ssize_t>(sizeof rec) || (mh.msg_flags & MSG_CTRUNC) != 0 || extra ||
            count == 0 || count > MAX_CAPABILITIES_PER_MESSAGE || nfds != count) {
            return fail(IpcError::InvalidMessage,
                        "the peer sent a capability record that does not match its descriptors");
        }
        ++receiver.next_sequence;
        u64 rights[MAX_CAPABILITIES_PER_MESSAGE];
        for (u32 i = 0; i < count; ++i)
            rights[i] = rec.rights[i];
        field = capability_field(
            park_descriptors(fds, rights, count, CAPABILITY_RECORD, receiver.owner, receiver.quota),
            count);
    }
    if (msg.is_small()) {
        msg.small_message().capability = field;
    } else {
        msg.large_message().header.capability = field;
    }
    if (field == 0) msg.set_flags(msg.flags() & ~MessageFlags::HAS_CAPABILITY);
    (void)skip_notifications(sock);  // and after it: none is left for nobody to read
    return ok();
}

Result<void> send_record(int sock, u64 sequence, const OutgoingAttachment& a, Deadline deadline) {
    // A region's record is a RegionRecord; capabilities add their rights (CapabilityRecord).
    CapabilityRecord rec{};
    rec.head = RegionRecord{REGION_RECORD_MAGIC,
                            a.is_capability() ? a.kind | a.count << 16 : a.kind, sequence};
    for (u32 i = 0; i < a.count && a.is_capability(); ++i)
        rec.rights[i] = a.rights[i];
    const usize size = a.is_capability() ? sizeof(CapabilityRecord) : sizeof(RegionRecord);
    iovec iov{&rec, size};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * MAX_CAPABILITIES_PER_MESSAGE)];
    std::memset(control, 0, sizeof control);
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * a.count);
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * a.count);
    std::memcpy(CMSG_DATA(c), a.fds, sizeof(int) * a.count);
    for (;;) {
        const ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == static_cast<ssize_t>(size)) return ok();
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // The socket holds at most one record per ring slot; it is full only while the
            // peer is slow to take them. Wait in slices, up to the deadline.
            const u64 slice = sleep_slice_ns(deadline);
            if (slice == 0) return IpcError::Timeout;
            pollfd p{sock, POLLOUT, 0};
            poll(&p, 1, static_cast<int>(slice / 1'000'000u) + 1);
            continue;
        }
        // A partial write cannot happen for 16 bytes on a stream socket with room; anything
        // else means the peer is gone.
        return fail(IpcError::EndpointNotFound, "cannot pass a region to the peer: %s",
                    n < 0 ? strerror(errno) : "short write");
    }
}

Result<void> receive_region_record(int sock, RegionReceiver& receiver, Message& msg) {
    LargeMessage& m = msg.large_message();
    // (1) one record, which was written before the slot was published (after any
    // notification frames, pollable.hpp)
    (void)skip_notifications(sock);
    RegionRecord rec{};
    iovec iov{&rec, sizeof rec};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    // Own every descriptor that arrived before looking at anything else.
    Fd fds[4];
    int nfds = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); n > 0 && c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const usize count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (usize i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (nfds < 4) {
                fds[nfds++] = Fd(fd);
            } else {
                ::close(fd);
            }
        }
    }
    // (2) check it against the slot
    if (n != static_cast<ssize_t>(sizeof rec) || (mh.msg_flags & MSG_CTRUNC) != 0 || nfds != 1 ||
        rec.magic != REGION_RECORD_MAGIC || rec.sequence != receiver.next_sequence ||
        rec.sequence != m.region.base || rec.transfer != m.region.permissions) {
        return fail(IpcError::InvalidMessage,
                    "the peer sent a region slot without its matching descriptor record "
                    "(expected sequence %llu)",
                    static_cast<unsigned long long>(receiver.next_sequence));
    }
    ++receiver.next_sequence;
    (void)skip_notifications(sock);
    // (3) park it; Region::receive validates and maps it
    const u32 transfer = m.region.permissions;
    m.region.base = park_descriptor(static_cast<Fd&&>(fds[0]), m.region.size, transfer,
                                    receiver.owner, receiver.quota);
    m.region.permissions = transfer == static_cast<u32>(Transfer::ShareReadWrite)
                               ? RegionPermissions::READ | RegionPermissions::WRITE
                               : RegionPermissions::READ;
    return ok();
}

}  // namespace detail
}  // namespace veridian::ipc::posix
