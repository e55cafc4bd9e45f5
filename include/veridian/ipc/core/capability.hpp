// veridian-ipc core: capability tokens.
//
// A capability is a 64-bit token that names an endpoint and says what its holder may do:
//
//   bits  0-31  endpoint index (the slot in the registry's table)
//   bits 32-47  generation (must equal the slot's generation; never 0 for a live slot)
//   bits 48-63  rights (SEND, RECEIVE, GRANT, REVOKE)
//
// Validation is O(1): index in range -> slot -> generation -> rights. The token 0 is never
// valid (a live slot's generation is at least 1). Deriving can only drop rights. Revoking
// bumps the slot's generation, which invalidates every outstanding token at once.
#pragma once

#include "veridian/ipc/core/types.hpp"

namespace veridian::ipc {

namespace Rights {
inline constexpr u16 SEND = 1u << 0;     // send, send_async, fast_ipc_send, call_reply
inline constexpr u16 RECEIVE = 1u << 1;  // receive_sync, try_receive, reply
inline constexpr u16 GRANT = 1u << 2;    // pass the capability to another process
inline constexpr u16 REVOKE = 1u << 3;   // revoke tokens, close and remove the endpoint
inline constexpr u16 ALL = SEND | RECEIVE | GRANT | REVOKE;
}  // namespace Rights

class Capability {
public:
    constexpr Capability() = default;
    constexpr explicit Capability(u64 raw) : raw_(raw) {}
    static constexpr Capability make(u32 index, u16 generation, u16 rights) {
        return Capability(u64{index} | (u64{generation} << 32) | (u64{rights} << 48));
    }

    constexpr u64 raw() const { return raw_; }
    constexpr u32 index() const { return static_cast<u32>(raw_); }
    constexpr u16 generation() const { return static_cast<u16>(raw_ >> 32); }
    constexpr u16 rights() const { return static_cast<u16>(raw_ >> 48); }
    constexpr bool has_rights(u16 wanted) const { return (rights() & wanted) == wanted; }
    constexpr bool is_null() const { return raw_ == 0; }

    // The same endpoint and generation with `rights` intersected: rights can only drop.
    constexpr Capability derive(u16 rights_to_keep) const {
        return make(index(), generation(), static_cast<u16>(rights() & rights_to_keep));
    }

    friend constexpr bool operator==(Capability, Capability) = default;

private:
    u64 raw_ = 0;
};

}  // namespace veridian::ipc
