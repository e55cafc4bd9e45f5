// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: names, the runtime directory, the discovery socket's messages.
#include "posix/wire.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace veridian::ipc::posix {

using detail::fail;

std::string runtime_directory() {
    if (const char* dir = std::getenv("VIPC_RUNTIME_DIR"); dir != nullptr && *dir != '\0') {
        return dir;
    }
    if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg != '\0') {
        return std::string(xdg) + "/vipc";
    }
    return "/tmp/vipc-" + std::to_string(getuid());
}

Result<void> validate_name(std::string_view name) {
    if (name.empty()) return fail(IpcError::InvalidMessage, "an endpoint name cannot be empty");
    if (name.size() > MAX_NAME_LENGTH) {
        return fail(IpcError::InvalidMessage, "endpoint name '%s...' is longer than %zu bytes",
                    detail::printable(name.substr(0, 16)).c_str(), MAX_NAME_LENGTH);
    }
    usize component_start = 0;
    for (usize i = 0; i <= name.size(); ++i) {
        if (i == name.size() || name[i] == '/') {
            const std::string_view part = name.substr(component_start, i - component_start);
            if (part.empty() || part == "." || part == "..") {
                return fail(IpcError::InvalidMessage,
                            "endpoint name '%s' has an empty, '.' or '..' component; use "
                            "components like 'demo/echo'",
                            detail::printable(name).c_str());
            }
            component_start = i + 1;
            continue;
        }
        const char c = name[i];
        const bool good = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!good) {
            return fail(IpcError::InvalidMessage,
                        "endpoint name '%s' has a character other than [A-Za-z0-9._-] and '/'",
                        detail::printable(name).c_str());
        }
    }
    return ok();
}

namespace detail {

u16 fd_bits_for_rights(u16 rights) {
    u16 bits = FdBits::STATE | FdBits::DOORBELL;
    if ((rights & Rights::SEND) != 0) bits |= FdBits::C2S_DATA | FdBits::C2S_CTL;
    if ((rights & Rights::RECEIVE) != 0) bits |= FdBits::S2C_DATA | FdBits::S2C_CTL;
    return bits;
}

u16 fd_bits_for(u16 rights, u64 c2s_pool_bytes, u64 s2c_pool_bytes) {
    u16 bits = fd_bits_for_rights(rights);
    if ((rights & Rights::SEND) != 0 && c2s_pool_bytes != 0) bits |= FdBits::C2S_POOL;
    if ((rights & Rights::RECEIVE) != 0 && s2c_pool_bytes != 0) bits |= FdBits::S2C_POOL;
    return bits;
}

Result<Hello> parse_hello(const void* bytes, usize size) {
    Hello h;
    if (size != sizeof h) return IpcError::InvalidMessage;
    std::memcpy(&h, bytes, sizeof h);
    if (h.magic != HELLO_MAGIC || h.version != WIRE_VERSION) return IpcError::InvalidMessage;
    if (h.op == static_cast<u16>(HelloOp::Stat)) return h;
    if (h.op != static_cast<u16>(HelloOp::Connect)) return IpcError::InvalidMessage;
    const u16 known = Rights::SEND | Rights::RECEIVE;
    if ((h.rights & ~known) != 0 || h.rights == 0) return IpcError::InvalidMessage;
    return h;
}

Result<Welcome> parse_welcome(const void* bytes, usize size, int fds_received, u16 asked_rights) {
    Welcome w;
    if (size != sizeof w) {
        return fail(IpcError::InvalidMessage, "the server's answer has %zu bytes, expected %zu",
                    size, sizeof w);
    }
    std::memcpy(&w, bytes, sizeof w);
    if (w.magic != WELCOME_MAGIC || w.version != WIRE_VERSION) {
        return fail(IpcError::InvalidMessage,
                    "the server's answer is not a veridian-ipc welcome (version %u)", w.version);
    }
    if (w.status != 0) {
        IpcError e;
        if (!error_from_code(w.status, &e)) {
            return fail(IpcError::InvalidMessage, "the server refused with unknown status %d",
                        w.status);
        }
        return fail(e, "the endpoint refused the connection: %s", error_text(e));
    }
    if (!RingGeometry::make(w.depth, w.max_inline_payload, 0)) {
        return fail(IpcError::InvalidMessage,
                    "the server announced a bad ring geometry (depth %u, inline payload %u bytes)",
                    w.depth, w.max_inline_payload);
    }
    if (w.rights != asked_rights) {
        return fail(IpcError::InvalidMessage, "the server granted rights 0x%x, asked for 0x%x",
                    w.rights, asked_rights);
    }
    const auto pool_ok = [&](u64 pool, u16 right) {
        return pool <= MAX_POOL_BYTES && pool % PAGE_BYTES == 0 &&
               (pool == 0 || (asked_rights & right) != 0);
    };
    if (!pool_ok(w.c2s_pool_bytes, Rights::SEND) || !pool_ok(w.s2c_pool_bytes, Rights::RECEIVE)) {
        return fail(IpcError::InvalidMessage,
                    "the server announced bad loan pools (%llu and %llu bytes)",
                    static_cast<unsigned long long>(w.c2s_pool_bytes),
                    static_cast<unsigned long long>(w.s2c_pool_bytes));
    }
    if (w.fd_bits != fd_bits_for(asked_rights, w.c2s_pool_bytes, w.s2c_pool_bytes) ||
        fds_received != __builtin_popcount(w.fd_bits)) {
        return fail(IpcError::InvalidMessage,
                    "the server sent %d descriptors (set 0x%x) for rights 0x%x", fds_received,
                    w.fd_bits, asked_rights);
    }
    if (w.server_pid == 0 || w.server_pid > 0x7FFFFFFF) {
        return fail(IpcError::InvalidMessage, "the server announced a bad pid");
    }
    return w;
}

Result<StatReply> parse_stat_reply(const void* bytes, usize size) {
    StatReply r;
    if (size != sizeof r) return IpcError::InvalidMessage;
    std::memcpy(&r, bytes, sizeof r);
    if (r.magic != STAT_MAGIC || r.version != WIRE_VERSION) return IpcError::InvalidMessage;
    if (r.status != 0) {
        IpcError e;
        return error_from_code(r.status, &e) ? e : IpcError::InvalidMessage;
    }
    if (r.connections > MAX_STAT_CONNECTIONS) return IpcError::InvalidMessage;
    return r;
}

ConnectionStats from_wire(const ConnectionStatsWire& w) {
    ConnectionStats s;
    s.id = w.id;
    s.peer = ProcessId{w.peer_pid};
    s.peer_uid = w.peer_uid;
    s.rights = w.rights;
    s.alive = w.alive != 0;
    s.capacity = w.queue_depth;
    s.queued = w.to_server_queued;
    s.to_client_queued = w.to_client_queued;
    s.received = w.received;
    s.sent = w.sent;
    s.server_pool_used = w.server_pool_used;
    s.client_pool_held = w.client_pool_held;
    s.client_pool_bytes = w.client_pool_bytes;
    return s;
}

ConnectionStatsWire to_wire(const ConnectionStats& s) {
    ConnectionStatsWire w{};
    w.id = s.id;
    w.peer_pid = s.peer.value;
    w.peer_uid = s.peer_uid;
    w.rights = s.rights;
    w.alive = s.alive ? 1 : 0;
    w.queue_depth = s.capacity;
    w.to_server_queued = s.queued;
    w.to_client_queued = s.to_client_queued;
    w.received = s.received;
    w.sent = s.sent;
    w.server_pool_used = s.server_pool_used;
    w.client_pool_held = s.client_pool_held;
    w.client_pool_bytes = s.client_pool_bytes;
    return w;
}

EndpointPaths endpoint_paths(const std::string& dir, std::string_view name) {
    std::string escaped(name);
    for (char& c : escaped) {
        if (c == '/') c = ':';
    }
    return EndpointPaths{dir + "/" + escaped + ".sock", dir + "/" + escaped + ".lock"};
}

std::string name_from_socket_file(std::string_view file_name) {
    constexpr std::string_view suffix = ".sock";
    if (file_name.size() <= suffix.size() ||
        file_name.substr(file_name.size() - suffix.size()) != suffix) {
        return {};
    }
    std::string name(file_name.substr(0, file_name.size() - suffix.size()));
    for (char& c : name) {
        if (c == ':') c = '/';
    }
    if (!validate_name(name)) return {};
    return name;
}

std::string resolve_runtime_dir(std::string_view explicit_dir) {
    return explicit_dir.empty() ? runtime_directory() : std::string(explicit_dir);
}

std::string printable(std::string_view name) {
    std::string out;
    for (const char ch : name) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c >= 0x7F || c == '\\') {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02X", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    return out;
}

std::string endpoint_file(std::string_view name, const char* suffix) {
    std::string escaped(name);
    for (char& c : escaped) {
        if (c == '/') c = ':';
    }
    return escaped + suffix;
}

std::vector<u32> trusted_uids(const std::vector<u32>& given) {
    std::vector<u32> out = given;
    // VIPC_TRUSTED_UIDS: a comma-separated list the user adds (for tools such as vipc).
    if (const char* env = std::getenv("VIPC_TRUSTED_UIDS"); env != nullptr) {
        for (const char* p = env; *p != '\0';) {
            char* end = nullptr;
            const unsigned long v = std::strtoul(p, &end, 10);
            if (end == p) break;
            out.push_back(static_cast<u32>(v));
            p = *end == ',' ? end + 1 : end;
        }
    }
    if (out.empty()) out.push_back(geteuid());
    out.push_back(0);
    return out;
}

namespace {
bool is_trusted(u32 uid, const std::vector<u32>& trusted) {
    for (const u32 t : trusted) {
        if (t == uid) return true;
    }
    return false;
}
std::string uid_list(const std::vector<u32>& uids) {
    std::string out;
    for (const u32 u : uids) {
        if (!out.empty()) out += ", ";
        out += std::to_string(u);
    }
    return out;
}
}  // namespace

Result<OpenedDir> open_runtime_dir(const std::string& dir, DirUse use,
                                   const std::vector<u32>& trusted_owners) {
    if (dir.empty()) {
        return fail(IpcError::PermissionDenied,
                    "the runtime directory is empty; set VIPC_RUNTIME_DIR to a private directory");
    }
    // Split into the parent (resolved normally: it belongs to the system or the user) and the
    // last component, which we create and open without following a symlink.
    std::string trimmed = dir;
    while (trimmed.size() > 1 && trimmed.back() == '/')
        trimmed.pop_back();
    const usize slash = trimmed.rfind('/');
    const std::string parent = slash == std::string::npos ? "."
                               : slash == 0               ? "/"
                                                          : trimmed.substr(0, slash);
    const std::string leaf = slash == std::string::npos ? trimmed : trimmed.substr(slash + 1);
    Fd parent_fd(open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!parent_fd.valid()) {
        if (use == DirUse::Connect && errno == ENOENT) {
            return fail(IpcError::EndpointNotFound,
                        "runtime directory '%s' does not exist: is any server running?",
                        dir.c_str());
        }
        return fail(IpcError::PermissionDenied,
                    "cannot open '%s' (the runtime directory's parent): %s", parent.c_str(),
                    strerror(errno));
    }
    if (use == DirUse::Publish && mkdirat(parent_fd.get(), leaf.c_str(), 0700) != 0 &&
        errno != EEXIST) {
        return fail(IpcError::PermissionDenied, "cannot create runtime directory '%s': %s",
                    dir.c_str(), strerror(errno));
    }
    OpenedDir out;
    out.path = dir;
    out.fd =
        Fd(openat(parent_fd.get(), leaf.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!out.fd.valid()) {
        const int err = errno;
        struct stat lst {};
        if (fstatat(parent_fd.get(), leaf.c_str(), &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(lst.st_mode)) {
            return fail(IpcError::PermissionDenied,
                        "runtime directory '%s' is a symbolic link (owned by uid %u): refused, "
                        "someone may have planted it; remove it, or set VIPC_RUNTIME_DIR to a "
                        "private directory",
                        dir.c_str(), lst.st_uid);
        }
        if (use == DirUse::Connect && err == ENOENT) {
            return fail(IpcError::EndpointNotFound,
                        "runtime directory '%s' does not exist: is any server running?",
                        dir.c_str());
        }
        return fail(IpcError::PermissionDenied,
                    "runtime directory '%s' is not a usable directory: %s", dir.c_str(),
                    strerror(err));
    }
    struct stat st {};
    if (fstat(out.fd.get(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return fail(IpcError::PermissionDenied, "runtime directory '%s' is not a directory",
                    dir.c_str());
    }
    out.owner = st.st_uid;
    if (!is_trusted(st.st_uid, trusted_owners)) {
        return fail(
            IpcError::PermissionDenied,
            "runtime directory '%s' belongs to uid %u, not to %s (uid %s): refused, another "
            "user may have made it; remove it, or set VIPC_RUNTIME_DIR to a private "
            "directory",
            dir.c_str(), st.st_uid, use == DirUse::Publish ? "us" : "a trusted user",
            uid_list(trusted_owners).c_str());
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        return fail(IpcError::PermissionDenied,
                    "runtime directory '%s' is writable by %s (mode %03o): refused, others could "
                    "plant sockets and lock files in it; chmod go-w '%s'",
                    dir.c_str(), (st.st_mode & S_IWOTH) != 0 ? "others" : "its group",
                    static_cast<unsigned>(st.st_mode & 0777), dir.c_str());
    }
    if (use == DirUse::Publish &&
        faccessat(out.fd.get(), ".", R_OK | W_OK | X_OK, AT_EACCESS) != 0) {
        return fail(IpcError::PermissionDenied, "runtime directory '%s' is not usable: %s",
                    dir.c_str(), strerror(errno));
    }
    return out;
}

Result<sockaddr_un> socket_address(const OpenedDir& dir, const std::string& file) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    static const bool have_proc = access("/proc/self/fd", X_OK) == 0;
    std::string path;
    if (have_proc) {
        path = "/proc/self/fd/" + std::to_string(dir.fd.get()) + "/" + file;
    } else {
        path = dir.path + "/" + file;
    }
    if (path.size() >= sizeof addr.sun_path) {
        return fail(IpcError::InvalidMessage,
                    "socket path '%s' is too long (/proc is not mounted); set VIPC_RUNTIME_DIR to "
                    "a shorter directory",
                    printable(path).c_str());
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

bool send_with_fds(int sock, const void* bytes, usize size, const int* fds, int nfds) {
    iovec iov{const_cast<void*>(bytes), size};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * MAX_WELCOME_FDS)];
    if (nfds > 0) {
        std::memset(control, 0, sizeof control);
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * static_cast<usize>(nfds));
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * static_cast<usize>(nfds));
        std::memcpy(CMSG_DATA(c), fds, sizeof(int) * static_cast<usize>(nfds));
    }
    for (;;) {
        const ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n == static_cast<ssize_t>(size)) return true;
        if (n < 0 && errno == EINTR) continue;
        return false;
    }
}

long receive_with_fds(int sock, void* bytes, usize size, int* fds, int max_fds, int* nfds,
                      bool* truncated) {
    *nfds = 0;
    *truncated = false;
    iovec iov{bytes, size};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * MAX_WELCOME_FDS) + 64];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    if ((msg.msg_flags & MSG_CTRUNC) != 0) *truncated = true;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const usize count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (usize i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (*nfds < max_fds) {
                fds[(*nfds)++] = fd;
            } else {
                ::close(fd);
                *truncated = true;
            }
        }
    }
    return static_cast<long>(n);
}

bool wait_readable(int sock, u64 deadline_ns) {
    for (;;) {
        const u64 now = now_ns();
        if (now >= deadline_ns) return false;
        const u64 left_ms = (deadline_ns - now + 999'999) / 1'000'000;
        pollfd p{sock, POLLIN, 0};
        const int r = poll(&p, 1, static_cast<int>(left_ms > 60'000 ? 60'000 : left_ms));
        if (r > 0) return true;
        if (r < 0 && errno != EINTR) return true;  // let the read report the error
    }
}

}  // namespace detail

// ---- stat and list -----------------------------------------------------------------------------

namespace {

// Connects to an endpoint's socket. EndpointNotFound when nobody listens there.
Result<detail::Fd> connect_socket(const detail::OpenedDir& dir, std::string_view name) {
    const sockaddr_un addr =
        VIPC_TRY(detail::socket_address(dir, detail::endpoint_file(name, ".sock")));
    detail::Fd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock.valid()) {
        if (errno == EMFILE || errno == ENFILE) {
            return fail(IpcError::OutOfMemory,
                        "this process is out of file descriptors (socket(): %s); raise "
                        "RLIMIT_NOFILE or close some",
                        strerror(errno));
        }
        return fail(IpcError::OutOfMemory, "socket() failed: %s", strerror(errno));
    }
    int r;
    do {
        r = ::connect(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    } while (r != 0 && errno == EINTR);
    if (r != 0) {
        const std::string shown = detail::printable(name);
        if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR) {
            return fail(IpcError::EndpointNotFound,
                        "no endpoint named '%s' in %s: is its server running?", shown.c_str(),
                        dir.path.c_str());
        }
        if (errno == EACCES || errno == EPERM) {
            return fail(IpcError::PermissionDenied,
                        "not allowed to open endpoint '%s' in %s: %s (the socket's or the "
                        "directory's mode keeps us out)",
                        shown.c_str(), dir.path.c_str(), strerror(errno));
        }
        if (errno == EAGAIN) {
            return fail(IpcError::ResourceBusy,
                        "endpoint '%s' is not accepting connections fast enough; retry",
                        shown.c_str());
        }
        return fail(IpcError::EndpointNotFound, "cannot connect to endpoint '%s': %s",
                    shown.c_str(), strerror(errno));
    }
    return sock;
}

bool read_exact(int sock, void* out, usize size, u64 deadline_ns) {
    u8* p = static_cast<u8*>(out);
    usize got = 0;
    while (got < size) {
        if (!detail::wait_readable(sock, deadline_ns)) return false;
        const ssize_t n = recv(sock, p + got, size - got, MSG_DONTWAIT);
        if (n > 0) {
            got += static_cast<usize>(n);
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            return false;
        }
    }
    return true;
}

}  // namespace

namespace detail {
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

Result<Fd> peer_pidfd(int sock, const ucred& cred) {
    int fd = -1;
    socklen_t len = sizeof fd;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) == 0 && fd >= 0) {
        // The kernel gives it without O_CLOEXEC on some versions: set it.
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        return Fd(fd);
    }
    if (errno == ESRCH) {
        return fail(IpcError::ProcessNotFound, "the peer (pid %d) is already gone", cred.pid);
    }
    fd = static_cast<int>(syscall(SYS_pidfd_open, cred.pid, 0));
    if (fd < 0) {
        if (errno == ESRCH) {
            return fail(IpcError::ProcessNotFound, "the peer (pid %d) is already gone", cred.pid);
        }
        return fail(IpcError::OutOfMemory, "pidfd_open(%d): %s", cred.pid, strerror(errno));
    }
    Fd out(fd);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    pollfd p{sock, POLLRDHUP, 0};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
        return fail(IpcError::ProcessNotFound, "the peer (pid %d) hung up", cred.pid);
    }
    return out;
}

bool process_exited(int pidfd) {
    pollfd p{pidfd, POLLIN, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

Result<void> check_server_credentials(int sock, std::string_view name,
                                      const std::vector<u32>& trusted, ucred* cred) {
    socklen_t len = sizeof *cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, cred, &len) != 0 || cred->pid <= 0) {
        return fail(IpcError::PermissionDenied,
                    "cannot learn who serves endpoint '%s' (SO_PEERCRED: %s); not talking to it",
                    printable(name).c_str(), strerror(errno));
    }
    if (!is_trusted(cred->uid, trusted)) {
        return fail(IpcError::PermissionDenied,
                    "endpoint '%s' is served by pid %d running as uid %u, not a uid we trust (%s): "
                    "refused before sending anything; if that user is meant to serve it, add "
                    "uid %u to ConnectOptions::trusted_server_uids or to $VIPC_TRUSTED_UIDS",
                    printable(name).c_str(), cred->pid, cred->uid, uid_list(trusted).c_str(),
                    cred->uid);
    }
    return ok();
}

Result<Fd> open_endpoint_socket(const std::string& dir, std::string_view name,
                                const std::vector<u32>& trusted, ucred* server_cred) {
    const OpenedDir opened = VIPC_TRY(open_runtime_dir(dir, DirUse::Connect, trusted));
    Fd sock = VIPC_TRY(connect_socket(opened, name));
    VIPC_TRY(check_server_credentials(sock.get(), name, trusted, server_cred));
    return sock;
}
}  // namespace detail

Result<EndpointInfo> stat_endpoint(std::string_view name, std::string_view runtime_dir) {
    VIPC_TRY(validate_name(name));
    const std::string dir = detail::resolve_runtime_dir(runtime_dir);
    ucred server{};
    detail::Fd sock =
        VIPC_TRY(detail::open_endpoint_socket(dir, name, detail::trusted_uids({}), &server));
    const detail::Hello hello{detail::HELLO_MAGIC,
                              detail::WIRE_VERSION,
                              static_cast<u16>(detail::HelloOp::Stat),
                              0,
                              0,
                              0};
    if (!detail::send_with_fds(sock.get(), &hello, sizeof hello, nullptr, 0)) {
        return fail(IpcError::EndpointNotFound, "endpoint '%.*s' hung up",
                    static_cast<int>(name.size()), name.data());
    }
    const u64 deadline = now_ns() + 2'000'000'000u;
    detail::StatReply header;
    if (!read_exact(sock.get(), &header, sizeof header, deadline)) {
        return fail(IpcError::Timeout, "endpoint '%.*s' did not answer a stat request",
                    static_cast<int>(name.size()), name.data());
    }
    const auto parsed = detail::parse_stat_reply(&header, sizeof header);
    if (!parsed) {
        if (parsed.error() == IpcError::PermissionDenied) {
            return fail(IpcError::PermissionDenied,
                        "endpoint '%s' (server pid %d, uid %u) does not let uid %u read its "
                        "statistics: its access policy does not list us",
                        detail::printable(name).c_str(), server.pid, server.uid, geteuid());
        }
        return fail(IpcError::InvalidMessage, "endpoint '%s' sent a malformed stat answer",
                    detail::printable(name).c_str());
    }
    EndpointInfo info;
    info.name = std::string(name);
    info.owner = ProcessId{parsed->owner_pid};
    info.owner_uid = parsed->owner_uid;
    info.capacity = parsed->queue_depth;
    info.accepted = parsed->accepted;
    info.received = parsed->received;
    info.sent = parsed->sent;
    info.broken = parsed->broken;
    info.max_inline_payload = parsed->max_inline_payload;
    info.ring_bytes_per_connection = parsed->ring_bytes_per_connection;
    info.server_pool_bytes = parsed->server_pool_bytes;
    for (u32 i = 0; i < parsed->connections; ++i) {
        detail::ConnectionStatsWire w;
        if (!read_exact(sock.get(), &w, sizeof w, deadline)) {
            return fail(IpcError::InvalidMessage, "endpoint '%.*s' sent a truncated stat answer",
                        static_cast<int>(name.size()), name.data());
        }
        info.per_connection.push_back(detail::from_wire(w));
        if (w.alive != 0) ++info.connections;
    }
    return info;
}

Result<std::vector<EndpointInfo>> list_endpoints(std::string_view runtime_dir) {
    const std::string dir = detail::resolve_runtime_dir(runtime_dir);
    std::vector<EndpointInfo> out;
    auto opened = detail::open_runtime_dir(dir, detail::DirUse::Connect, detail::trusted_uids({}));
    if (!opened) {
        if (opened.error() == IpcError::EndpointNotFound) {
            detail::clear_error_detail();
            return out;  // nothing published yet
        }
        return opened.error();
    }
    DIR* d = fdopendir(openat(opened->fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d == nullptr) {
        return fail(IpcError::PermissionDenied, "cannot read runtime directory '%s': %s",
                    dir.c_str(), strerror(errno));
    }
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
        std::string name = detail::name_from_socket_file(e->d_name);
        if (!name.empty()) names.push_back(static_cast<std::string&&>(name));
    }
    closedir(d);
    for (const std::string& name : names) {
        auto info = stat_endpoint(name, dir);
        if (info) out.push_back(static_cast<EndpointInfo&&>(*info));
    }
    detail::clear_error_detail();
    return out;
}

}  // namespace veridian::ipc::posix
