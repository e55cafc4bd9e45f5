// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: descriptors, memfds, mappings, the error detail, the clock.
#include "posix/os.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "platform/shared_words.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::posix {

namespace {
thread_local char t_error_detail[512];
}

const char* last_error_detail() {
    return t_error_detail;
}

u64 now_ns() {
    return platform::monotonic_now_ns();
}

Deadline after_ns(u64 ns) {
    const u64 now = now_ns();
    return ns >= ~u64{0} - now ? Deadline::never() : Deadline::at(now + ns);
}

namespace detail {

IpcError fail(IpcError error, const char* format, ...) {
    va_list args;
    va_start(args, format);
    std::vsnprintf(t_error_detail, sizeof t_error_detail, format, args);
    va_end(args);
    return error;
}

void clear_error_detail() {
    t_error_detail[0] = '\0';
}

// ---- fds, memfds, mappings ---------------------------------------------------------------------

Mapping& Mapping::operator=(Mapping&& o) noexcept {
    if (this != &o) {
        if (addr_ != nullptr) munmap(addr_, bytes_);
        addr_ = o.addr_;
        bytes_ = o.bytes_;
        o.addr_ = nullptr;
        o.bytes_ = 0;
    }
    return *this;
}

Mapping::~Mapping() {
    if (addr_ != nullptr) munmap(addr_, bytes_);
}

Fd& Fd::operator=(Fd&& o) noexcept {
    if (this != &o) {
        reset();
        fd_ = o.release();
    }
    return *this;
}

Fd::~Fd() {
    reset();
}

void Fd::reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

Result<CreatedMemfd> create_memfd(const char* debug_name, usize bytes) {
    Fd fd(memfd_create(debug_name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd.valid()) {
        return fail(IpcError::OutOfMemory, "memfd_create failed: %s", strerror(errno));
    }
    if (ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) {
        return fail(IpcError::OutOfMemory, "cannot size a %zu-byte memfd: %s", bytes,
                    strerror(errno));
    }
    if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
        return fail(IpcError::OutOfMemory, "cannot seal a memfd: %s", strerror(errno));
    }
    void* addr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (addr == MAP_FAILED) {
        return fail(IpcError::OutOfMemory, "cannot map a memfd: %s", strerror(errno));
    }
    CreatedMemfd out{static_cast<Fd&&>(fd), Mapping(addr, bytes)};
    return out;
}

Result<void> finish_seals(int fd, bool future_write_sealed) {
    const int seals = (future_write_sealed ? F_SEAL_FUTURE_WRITE : 0) | F_SEAL_SEAL;
    if (fcntl(fd, F_ADD_SEALS, seals) != 0) {
        return fail(IpcError::OutOfMemory, "cannot seal a memfd: %s", strerror(errno));
    }
    return ok();
}

Result<Fd> reopen_read_only(int fd) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    Fd ro(open(path, O_RDONLY | O_CLOEXEC));
    if (!ro.valid()) {
        return fail(IpcError::OutOfMemory, "cannot reopen a memfd read-only (%s): %s", path,
                    strerror(errno));
    }
    return ro;
}

Result<Mapping> map_peer_memfd(int fd, usize bytes, bool writable) {
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<u64>(st.st_size) != bytes) {
        return fail(IpcError::InvalidMessage,
                    "a shared segment from the peer has the wrong size (%lld bytes, expected %zu)",
                    static_cast<long long>(st.st_size), bytes);
    }
    const int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
        return fail(IpcError::InvalidMessage,
                    "a shared segment from the peer is not sealed against resizing");
    }
    const int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
    void* addr = mmap(nullptr, bytes, prot, MAP_SHARED, fd, 0);
    if (addr == MAP_FAILED) {
        return fail(
            errno == EACCES || errno == EPERM ? IpcError::PermissionDenied : IpcError::OutOfMemory,
            "cannot map a shared segment from the peer: %s", strerror(errno));
    }
    return Mapping(addr, bytes);
}

}  // namespace detail
}  // namespace veridian::ipc::posix
