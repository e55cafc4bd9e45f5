// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc bridge: the NATS mapping (see mapping.hpp).
#include "bridge/mapping.hpp"

#include <cstring>

namespace veridian::ipc::bridge {
namespace {

void put_u32(std::vector<u8>& out, u32 v) {
    for (int i = 0; i < 4; ++i)
        out.push_back(static_cast<u8>(v >> (8 * i)));
}
void put_u64(std::vector<u8>& out, u64 v) {
    for (int i = 0; i < 8; ++i)
        out.push_back(static_cast<u8>(v >> (8 * i)));
}
u32 get_u32(const u8* p) {
    u32 v = 0;
    for (int i = 3; i >= 0; --i)
        v = (v << 8) | p[i];
    return v;
}
u64 get_u64(const u8* p) {
    u64 v = 0;
    for (int i = 7; i >= 0; --i)
        v = (v << 8) | p[i];
    return v;
}

bool token_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

}  // namespace

Result<void> validate_prefix(std::string_view prefix) {
    if (prefix.empty() || prefix.size() > 128) return IpcError::InvalidMessage;
    bool token_start = true;
    for (const char c : prefix) {
        if (c == '.') {
            if (token_start) return IpcError::InvalidMessage;
            token_start = true;
        } else if (token_char(c)) {
            token_start = false;
        } else {
            return IpcError::InvalidMessage;
        }
    }
    return token_start ? Result<void>(IpcError::InvalidMessage) : ok();
}

std::string base_subject(std::string_view prefix, std::string_view name) {
    std::string s(prefix);
    s += '.';
    for (const char c : name)
        s += c == '/' ? '.' : (c == '.' ? '~' : c);
    return s;
}

std::string stream_subject(std::string_view base, std::string_view exporter_id) {
    return std::string(base) + ".%s." + std::string(exporter_id);
}

std::string probe_subject(std::string_view base, std::string_view exporter_id) {
    return std::string(base) + ".%p." + std::string(exporter_id);
}

Result<void> check_crossable(const Message& msg, std::string* why) {
    if ((msg.flags() & MessageFlags::HAS_CAPABILITY) != 0) {
        *why = "the message carries a capability (a descriptor): capabilities cannot cross hosts";
        return IpcError::InvalidCapability;
    }
    if (msg.is_large()) {
        const LargeMessage& m = msg.large_message();
        if (m.region.size != 0) {
            *why =
                "the message carries a memory region: regions cannot cross hosts (send the "
                "bytes inline or over a stream of messages)";
            return IpcError::InvalidMemoryRegion;
        }
        if (m.header.total_size > LARGE_MESSAGE_INLINE_BYTES) {
            *why = "the message claims more inline bytes than a LargeMessage holds";
            return IpcError::MessageTooLarge;
        }
    }
    return ok();
}

usize record_size(const Message& msg) {
    if (msg.is_small()) return RECORD_HEAD_BYTES + 32;
    return RECORD_HEAD_BYTES + static_cast<usize>(msg.large_message().header.total_size);
}

void encode_record(const Message& msg, std::vector<u8>& out) {
    const bool small = msg.is_small();
    out.push_back(static_cast<u8>(small ? RecordKind::Small : RecordKind::LargeInline));
    out.push_back(0);
    out.push_back(0);
    out.push_back(0);
    put_u32(out, msg.opcode());
    put_u32(out, msg.flags());
    put_u32(out, small ? 0 : msg.large_message().header.checksum);
    put_u64(out, msg.capability());
    if (small) {
        put_u32(out, 32);
        put_u32(out, 0);
        for (const u64 w : msg.small_message().data)
            put_u64(out, w);
    } else {
        const LargeMessage& m = msg.large_message();
        const u32 n = static_cast<u32>(m.header.total_size);
        put_u32(out, n);
        put_u32(out, 0);
        out.insert(out.end(), m.inline_data, m.inline_data + n);
    }
}

void encode_payload_record(u32 opcode, u32 flags, std::span<const u8> payload,
                           std::vector<u8>& out) {
    out.push_back(static_cast<u8>(RecordKind::Payload));
    out.push_back(0);
    out.push_back(0);
    out.push_back(0);
    put_u32(out, opcode);
    put_u32(out, flags);
    put_u32(out, 0);
    put_u64(out, 0);
    put_u32(out, static_cast<u32>(payload.size()));
    put_u32(out, 0);
    out.insert(out.end(), payload.begin(), payload.end());
}

Result<Record> decode_any_record(std::span<const u8> in, usize* used, std::string* why) {
    if (in.size() < RECORD_HEAD_BYTES) {
        *why = "a record shorter than its 32-byte head";
        return IpcError::InvalidMessage;
    }
    const u8* p = in.data();
    if (p[1] != 0 || p[2] != 0 || p[3] != 0 || get_u32(p + 28) != 0) {
        *why = "a record with non-zero padding";
        return IpcError::InvalidMessage;
    }
    const u32 opcode = get_u32(p + 4);
    const u32 flags = get_u32(p + 8);
    const u32 checksum = get_u32(p + 12);
    const u64 capability = get_u64(p + 16);
    const u32 length = get_u32(p + 24);
    if (in.size() - RECORD_HEAD_BYTES < length) {
        *why = "a record whose payload runs past the end of the NATS message";
        return IpcError::InvalidMessage;
    }
    const u8* payload = p + RECORD_HEAD_BYTES;
    if ((flags & MessageFlags::HAS_CAPABILITY) != 0) {
        *why = "a record claiming a capability (capabilities cannot cross hosts)";
        return IpcError::InvalidCapability;
    }
    Record out;
    if (p[0] == static_cast<u8>(RecordKind::Small)) {
        if (length != 32 || checksum != 0) {
            *why = "a SmallMessage record whose payload is not 32 bytes";
            return IpcError::InvalidMessage;
        }
        SmallMessage m{};
        m.capability = capability;
        m.opcode = opcode;
        m.flags = flags;
        for (int i = 0; i < 4; ++i)
            m.data[i] = get_u64(payload + 8 * i);
        out.kind = RecordKind::Small;
        out.message = Message(m);
    } else if (p[0] == static_cast<u8>(RecordKind::LargeInline)) {
        if (length > LARGE_MESSAGE_INLINE_BYTES) {
            *why = "a LargeMessage record with more than 64 inline bytes";
            return IpcError::MessageTooLarge;
        }
        LargeMessage m{};
        m.header.capability = capability;
        m.header.opcode = opcode;
        m.header.flags = flags;
        m.header.checksum = checksum;
        m.header.total_size = length;
        std::memcpy(m.inline_data, payload, length);
        out.kind = RecordKind::LargeInline;
        out.message = Message(m);
    } else if (p[0] == static_cast<u8>(RecordKind::Payload)) {
        if (length > MAX_PAYLOAD_BYTES) {
            *why = "a payload record over the 64 KiB cap";
            return IpcError::MessageTooLarge;
        }
        if (checksum != 0 || capability != 0) {
            *why = "a payload record with a checksum or capability word";
            return IpcError::InvalidMessage;
        }
        out.kind = RecordKind::Payload;
        out.opcode = opcode;
        out.flags = flags;
        out.payload = {payload, length};
    } else {
        *why = "a record of unknown kind";
        return IpcError::InvalidMessage;
    }
    *used = RECORD_HEAD_BYTES + length;
    return out;
}

Result<Message> decode_record(std::span<const u8> in, usize* used, std::string* why) {
    Record r = VIPC_TRY(decode_any_record(in, used, why));
    if (r.kind == RecordKind::Payload) {
        *why = "a payload record where a Message was expected";
        return IpcError::InvalidMessage;
    }
    return r.message;
}

void encode_call_head(u64 timeout_ns, std::vector<u8>& out) {
    put_u64(out, timeout_ns);
}

std::optional<u64> decode_call_head(std::span<const u8> in) {
    if (in.size() < CALL_HEAD_BYTES) return std::nullopt;
    return get_u64(in.data());
}

void encode_frame_head(const FrameHead& head, std::vector<u8>& out) {
    put_u64(out, head.stream_id);
    put_u64(out, head.first_seq);
    put_u32(out, head.count);
    put_u32(out, 0);
}

std::optional<FrameHead> decode_frame_head(std::span<const u8> in) {
    if (in.size() < FRAME_HEAD_BYTES || get_u32(in.data() + 20) != 0) return std::nullopt;
    return FrameHead{get_u64(in.data()), get_u64(in.data() + 8), get_u32(in.data() + 16)};
}

void encode_credit(const Credit& credit, u8 (&out)[CREDIT_BYTES]) {
    for (int i = 0; i < 8; ++i) {
        out[i] = static_cast<u8>(credit.stream_id >> (8 * i));
        out[8 + i] = static_cast<u8>(credit.delivered >> (8 * i));
    }
}

std::optional<Credit> decode_credit(std::span<const u8> in) {
    if (in.size() != CREDIT_BYTES) return std::nullopt;
    return Credit{get_u64(in.data()), get_u64(in.data() + 8)};
}

std::optional<IpcError> error_from_name(std::string_view name) {
    for (int code = -1; code >= -IPC_ERROR_KIND_COUNT; --code) {
        IpcError e{};
        if (error_from_code(code, &e) && name == error_name(e)) return e;
    }
    return std::nullopt;
}

std::optional<u64> parse_decimal(std::string_view text) {
    if (text.empty() || text.size() > 20) return std::nullopt;
    u64 v = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        const u64 d = static_cast<u64>(c - '0');
        if (v > (~u64{0} - d) / 10) return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

std::string hex64(u64 v) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s(16, '0');
    for (int i = 15; i >= 0; --i, v >>= 4)
        s[static_cast<usize>(i)] = digits[v & 0xF];
    return s;
}

std::optional<u64> parse_hex64(std::string_view text) {
    if (text.size() != 16) return std::nullopt;
    u64 v = 0;
    for (const char c : text) {
        u64 d = 0;
        if (c >= '0' && c <= '9') {
            d = static_cast<u64>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = static_cast<u64>(c - 'a' + 10);
        } else {
            return std::nullopt;
        }
        v = (v << 4) | d;
    }
    return v;
}

}  // namespace veridian::ipc::bridge
