// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc bridge: marker files (see marker.hpp).
#include "bridge/marker.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::bridge {
namespace {

std::string marker_path(const std::string& dir, const BridgeMarker& m) {
    std::string file = m.name;
    std::replace(file.begin(), file.end(), '/', ':');
    return dir + "/" + file + "." + m.role + "." + std::to_string(m.pid) + ".bridge";
}

std::string dir_or_default(std::string_view dir) {
    return dir.empty() ? posix::runtime_directory() : std::string(dir);
}

}  // namespace

int write_marker(const std::string& runtime_dir, const BridgeMarker& marker) {
    const std::string path = marker_path(dir_or_default(runtime_dir), marker);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd);
        return -1;
    }
    const std::string line = marker.role + " " + std::to_string(marker.pid) + " " + marker.name +
                             " " + marker.subject + " " + marker.nats_url + "\n";
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
        ::close(fd);
        unlink(path.c_str());
        return -1;
    }
    return fd;
}

void remove_marker(const std::string& runtime_dir, const BridgeMarker& marker, int fd) {
    if (fd < 0) return;
    unlink(marker_path(dir_or_default(runtime_dir), marker).c_str());
    ::close(fd);
}

std::vector<BridgeMarker> list_bridges(std::string_view runtime_dir) {
    std::vector<BridgeMarker> out;
    const std::string dir = dir_or_default(runtime_dir);
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return out;
    while (dirent* e = readdir(d)) {
        const std::string file = e->d_name;
        if (file.size() < 8 || file.compare(file.size() - 7, 7, ".bridge") != 0) continue;
        const int fd = openat(dirfd(d), file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) continue;
        // A free lock means the bridge that wrote it is gone.
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
            ::close(fd);
            continue;
        }
        char buf[1024];
        const ssize_t n = ::read(fd, buf, sizeof buf - 1);
        ::close(fd);
        if (n <= 0) continue;
        buf[n] = '\0';
        std::istringstream in(buf);
        BridgeMarker m;
        if (in >> m.role >> m.pid >> m.name >> m.subject >> m.nats_url) out.push_back(m);
    }
    closedir(d);
    std::sort(out.begin(), out.end(), [](const BridgeMarker& a, const BridgeMarker& b) {
        return a.name != b.name ? a.name < b.name : a.pid < b.pid;
    });
    return out;
}

bool is_bridge_sender(const Message& msg, std::string_view name, std::string_view runtime_dir) {
    for (const BridgeMarker& m : list_bridges(runtime_dir)) {
        if (m.role == "export" && m.name == name && m.pid == msg.sender().value) return true;
    }
    return false;
}

}  // namespace veridian::ipc::bridge
