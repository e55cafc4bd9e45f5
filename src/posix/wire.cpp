// veridian-ipc posix runtime: names, the runtime directory, the discovery socket's messages.
#include "posix/wire.hpp"

#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
        return fail(IpcError::InvalidMessage, "endpoint name '%.*s...' is longer than %zu bytes",
                    16, name.data(), MAX_NAME_LENGTH);
    }
    usize component_start = 0;
    for (usize i = 0; i <= name.size(); ++i) {
        if (i == name.size() || name[i] == '/') {
            const std::string_view part = name.substr(component_start, i - component_start);
            if (part.empty() || part == "." || part == "..") {
                return fail(IpcError::InvalidMessage,
                            "endpoint name '%.*s' has an empty, '.' or '..' component; use "
                            "components like 'demo/echo'",
                            static_cast<int>(name.size()), name.data());
            }
            component_start = i + 1;
            continue;
        }
        const char c = name[i];
        const bool good = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!good) {
            return fail(IpcError::InvalidMessage,
                        "endpoint name '%.*s' has a character other than [A-Za-z0-9._-] and '/'",
                        static_cast<int>(name.size()), name.data());
        }
    }
    return ok();
}

namespace detail {

u16 fd_bits_for_rights(u16 rights) {
    u16 bits = FdBits::STATE | FdBits::DOORBELL | FdBits::NOTIFY;
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

Result<void> prepare_runtime_dir(const std::string& dir) {
    if (dir.empty() || dir.size() + MAX_NAME_LENGTH + 8 >= sizeof(sockaddr_un{}.sun_path)) {
        return fail(IpcError::PermissionDenied,
                    "runtime directory '%s' is too long for a socket path (set "
                    "VIPC_RUNTIME_DIR to a shorter one)",
                    dir.c_str());
    }
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return fail(IpcError::PermissionDenied, "cannot create runtime directory '%s': %s",
                    dir.c_str(), strerror(errno));
    }
    struct stat st {};
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return fail(IpcError::PermissionDenied, "runtime directory '%s' is not a directory",
                    dir.c_str());
    }
    if (st.st_uid != geteuid()) {
        return fail(IpcError::PermissionDenied,
                    "runtime directory '%s' belongs to uid %u, not to us (uid %u); set "
                    "VIPC_RUNTIME_DIR",
                    dir.c_str(), st.st_uid, geteuid());
    }
    if (access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
        return fail(IpcError::PermissionDenied, "runtime directory '%s' is not usable: %s",
                    dir.c_str(), strerror(errno));
    }
    return ok();
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
Result<detail::Fd> connect_socket(const std::string& dir, std::string_view name) {
    const detail::EndpointPaths paths = detail::endpoint_paths(dir, name);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (paths.socket.size() >= sizeof addr.sun_path) {
        return fail(IpcError::InvalidMessage, "socket path for '%.*s' is too long",
                    static_cast<int>(name.size()), name.data());
    }
    std::memcpy(addr.sun_path, paths.socket.c_str(), paths.socket.size() + 1);
    detail::Fd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock.valid()) {
        return fail(IpcError::OutOfMemory, "socket() failed: %s", strerror(errno));
    }
    int r;
    do {
        r = ::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    } while (r != 0 && errno == EINTR);
    if (r != 0) {
        if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR) {
            return fail(IpcError::EndpointNotFound,
                        "no endpoint named '%.*s' in %s: is its server running?",
                        static_cast<int>(name.size()), name.data(), dir.c_str());
        }
        if (errno == EACCES || errno == EPERM) {
            return fail(IpcError::PermissionDenied, "not allowed to open endpoint '%.*s' (%s): %s",
                        static_cast<int>(name.size()), name.data(), paths.socket.c_str(),
                        strerror(errno));
        }
        if (errno == EAGAIN) {
            return fail(IpcError::ResourceBusy,
                        "endpoint '%.*s' is not accepting connections fast enough; retry",
                        static_cast<int>(name.size()), name.data());
        }
        return fail(IpcError::EndpointNotFound, "cannot connect to endpoint '%.*s': %s",
                    static_cast<int>(name.size()), name.data(), strerror(errno));
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
Result<Fd> open_endpoint_socket(const std::string& dir, std::string_view name) {
    return connect_socket(dir, name);
}
}  // namespace detail

Result<EndpointInfo> stat_endpoint(std::string_view name, std::string_view runtime_dir) {
    VIPC_TRY(validate_name(name));
    const std::string dir = detail::resolve_runtime_dir(runtime_dir);
    detail::Fd sock = VIPC_TRY(connect_socket(dir, name));
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
        return fail(IpcError::InvalidMessage, "endpoint '%.*s' sent a malformed stat answer",
                    static_cast<int>(name.size()), name.data());
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
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) {
        if (errno == ENOENT) return out;  // nothing published yet
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
