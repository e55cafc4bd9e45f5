// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime, internal: the operating-system objects it holds (descriptors,
// memfds, mappings), the error detail, and the clock.
//
// Layer: posix (hosted). Not installed.
#pragma once

#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/platform.hpp"
#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc::posix {
u64 now_ns();  // runtime.hpp
}  // namespace veridian::ipc::posix

namespace veridian::ipc::posix::detail {

inline constexpr u32 PAGE_BYTES = 4096;

// Whether a deadline passed; a deadline of never reads no clock.
inline bool deadline_passed(Deadline deadline) {
    return !deadline.is_never() && deadline.expired(now_ns());
}

// ---- memfds and mappings -----------------------------------------------------------------------

// An owned mapping (munmap on destruction).
class Mapping {
public:
    Mapping() = default;
    Mapping(void* addr, usize bytes) : addr_(addr), bytes_(bytes) {}
    Mapping(Mapping&& o) noexcept : addr_(o.addr_), bytes_(o.bytes_) {
        o.addr_ = nullptr;
        o.bytes_ = 0;
    }
    Mapping& operator=(Mapping&& o) noexcept;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping();

    void* get() const { return addr_; }
    usize size() const { return bytes_; }
    template <typename T>
    T* as() const {
        return static_cast<T*>(addr_);
    }

private:
    void* addr_ = nullptr;
    usize bytes_ = 0;
};

// An owned file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(o.release()) {}
    Fd& operator=(Fd&& o) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd();

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    int release() {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }
    void reset();

private:
    int fd_ = -1;
};

// A sealed memfd of `bytes` (F_SEAL_SHRINK | F_SEAL_GROW, then F_SEAL_SEAL after `finish`).
// Created zero-filled, mapped read-write for its creator.
struct CreatedMemfd {
    Fd fd;
    Mapping map;
};
Result<CreatedMemfd> create_memfd(const char* debug_name, usize bytes);
// Seals a created memfd for good. With future_write_sealed, no new writable mapping of it
// can ever be made (the creator's existing one keeps working): for memfds only the creator
// writes. Then adds F_SEAL_SEAL.
Result<void> finish_seals(int fd, bool future_write_sealed);
// A new read-only open file description of the same memfd (via /proc/self/fd).
Result<Fd> reopen_read_only(int fd);
// Maps a memfd received from the peer after checking its size is exactly `bytes` and that
// it is sealed against shrinking and growing (else a peer could truncate it: SIGBUS).
// writable=false maps it PROT_READ.
Result<Mapping> map_peer_memfd(int fd, usize bytes, bool writable);

// ---- errors ------------------------------------------------------------------------------------

// Records the thread's last_error_detail() and returns the error, for `return fail(...)`.
IpcError fail(IpcError error, const char* format, ...) __attribute__((format(printf, 2, 3)));
void clear_error_detail();

}  // namespace veridian::ipc::posix::detail
