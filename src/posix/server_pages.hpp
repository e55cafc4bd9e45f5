// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime, internal: the two pages a server shares with all its clients.
//
// Layer: posix (hosted). Not installed.
//
//   server.state     written by the server (read-only to clients): waiting flag, closed,
//                    the rate limit every client applies
//   server.doorbell  written by every client: the ready map (ready_set.hpp): the bell word
//                    (ServerDoorbell::ring, the first line) and the bitmap with its summary
//                    words in which an armed connection marks its slot. All of it is a hint
//                    only; the server never trusts it for anything but "look at that ring".
#pragma once

#include <atomic>

#include "posix/os.hpp"
#include "posix/ready_set.hpp"
#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc::posix::detail {

struct alignas(64) ServerState {
    u32 magic;                    // STATE_MAGIC
    u32 version;                  // WIRE_VERSION
    std::atomic<u32> waiting;     // 1 while a server thread sleeps on the doorbell
    std::atomic<u32> poll_armed;  // 1 once pollable_fd() was asked for: producers signal it
    std::atomic<u32> closed;      // 1 once the server closed
    std::atomic<u32> cpu;         // CPU the server's receiver last ran on, + 1
    // ServerOptions::client_rate_limit, for every client to apply to its sends (0 = none).
    // Written once before the first client connects.
    u32 limit_messages_per_second;
    u32 limit_burst_messages;
    u64 limit_bytes_per_second;
    u64 limit_burst_bytes;
    // Slots of the ready map in the doorbell memfd (its size: doorbell_bytes()). Written
    // once before the first client connects.
    u32 ready_slots;
    u32 reserved0;
    // ServerOptions::max_region_bytes: clients refuse to send a bigger region (0 = no cap).
    u64 max_region_bytes;
};
static_assert(sizeof(ServerState) == 64);

// The first line of the doorbell memfd; the ready map's summary and bits follow it.
struct alignas(64) ServerDoorbell {
    std::atomic<u32> ring;  // the bell: bumped by an armed producer that saw `waiting`
    u32 reserved[15];
};

// Size of the doorbell memfd for a ready map of `slots` slots: whole pages.
inline usize doorbell_bytes(u32 slots) {
    const usize map = ReadyMap::bytes_for(slots);
    return (map + PAGE_BYTES - 1) / PAGE_BYTES * PAGE_BYTES;
}

inline constexpr u32 STATE_MAGIC = 0x56495053;  // "VIPS"
// Version of everything shared with the peer (handshake, pages, record ring).
inline constexpr u32 WIRE_VERSION = 5;

static_assert(std::atomic<u32>::is_always_lock_free);

}  // namespace veridian::ipc::posix::detail
