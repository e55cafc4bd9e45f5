// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc core: message helpers.
#include "veridian/ipc/core/message.hpp"

namespace veridian::ipc {

u32 payload_checksum(const void* data, usize size) {
    const u8* bytes = static_cast<const u8*>(data);
    u32 hash = 2166136261u;
    for (usize i = 0; i < size; ++i) {
        hash ^= bytes[i];
        hash *= 16777619u;
    }
    return hash;
}

}  // namespace veridian::ipc
