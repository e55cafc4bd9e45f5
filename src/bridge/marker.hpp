// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc bridge: the marker files that say which local names are bridged, and by whom.
//
// A running bridge keeps one file in the runtime directory of the host it runs on:
//   <name, '/' as ':'>.<import|export>.<pid>.bridge
// holding one line "<import|export> <pid> <name> <subject> <nats url>", flock()ed by the
// bridge for as long as it lives (like an endpoint's .lock file), removed when it stops.
// A marker whose lock is free is stale (its bridge died) and is ignored.
//
// Remote callers: an exported endpoint receives remote calls and messages from the export
// bridge, a local client, so Message::sender() is the bridge's real pid (from SO_PEERCRED),
// never a pid made up for the remote caller. is_bridge_sender() tells a server that such a
// sender is a bridge, i.e. that the message came from another host.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc::bridge {

struct BridgeMarker {
    std::string role;  // "import" or "export"
    u64 pid = 0;
    std::string name;
    std::string subject;
    std::string nats_url;
};

// Creates and locks the marker; the returned descriptor holds the lock (-1 on failure).
int write_marker(const std::string& runtime_dir, const BridgeMarker& marker);
// Removes the marker and closes `fd`.
void remove_marker(const std::string& runtime_dir, const BridgeMarker& marker, int fd);

// The live markers in runtime_dir ("" = posix::runtime_directory()), sorted by name.
std::vector<BridgeMarker> list_bridges(std::string_view runtime_dir = {});
// True when msg.sender() is a live bridge process for `name` in runtime_dir.
bool is_bridge_sender(const Message& msg, std::string_view name, std::string_view runtime_dir = {});

}  // namespace veridian::ipc::bridge
