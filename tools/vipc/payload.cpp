// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc: payloads (see payload.hpp).
#include "payload.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "veridian/ipc/posix/runtime.hpp"

namespace vipc {

namespace posix = veridian::ipc::posix;
using veridian::ipc::IpcError;
using veridian::ipc::LARGE_MESSAGE_INLINE_BYTES;
using veridian::ipc::LargeMessage;
using veridian::ipc::Message;
using veridian::ipc::Result;

namespace {

// Reads all of `path` ("-" = stdin) into *out; false with *error set otherwise.
bool read_all(const std::string& path, std::string* out, std::string* error) {
    const bool is_stdin = path == "-";
    const int fd = is_stdin ? STDIN_FILENO : open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *error = "cannot open '" + path + "': " + std::strerror(errno) + "; pass a readable file";
        return false;
    }
    out->clear();
    char buf[65536];
    bool good = true;
    for (;;) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            *error = "cannot read '" + path + "': " + std::strerror(errno);
            good = false;
            break;
        }
        if (out->size() + static_cast<std::size_t>(n) > kMaxPayloadBytes) {
            *error = "'" + path + "' is over the 1 GiB a payload may have; send a smaller one";
            good = false;
            break;
        }
        out->append(buf, static_cast<std::size_t>(n));
    }
    if (!is_stdin) close(fd);
    return good;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool parse_hex(const std::string& text, std::string* out) {
    out->clear();
    int high = -1;
    for (const char c : text) {
        if (c == ' ' || c == ':' || c == '\n' || c == '\t') continue;
        const int d = hex_digit(c);
        if (d < 0) return false;
        if (high < 0) {
            high = d;
        } else {
            out->push_back(static_cast<char>(high * 16 + d));
            high = -1;
        }
    }
    return high < 0;
}

bool once(cli::Args& args, Payload* p, int* rc) {
    if (p->given) {
        *rc = cli::usage_error(args.command(),
                               "give one payload: --data, --hex, --words or @FILE, not two");
        return false;
    }
    p->given = true;
    return true;
}

}  // namespace

bool payload_argument(cli::Args& args, Payload* p, int* rc) {
    const bool positional = args.is_positional();
    const std::string& cur = args.current();
    if (positional && !(cur == "-" || (cur.size() > 1 && cur[0] == '@'))) return false;
    if (!positional && !args.is("--data") && !args.is("--hex") && !args.is("--words")) {
        return false;
    }
    if (!once(args, p, rc)) return true;
    if (args.is("--words")) {
        p->kind = Payload::Kind::Words;
        if (!args.data_words(p->words)) *rc = cli::EXIT_USAGE;
        return true;
    }
    p->kind = Payload::Kind::Bytes;
    std::string text;
    if (positional) {
        text = cur;
    } else if (!args.value(&text)) {
        *rc = cli::EXIT_USAGE;
        return true;
    }
    if (!positional && args.is("--hex")) {
        if (!parse_hex(text, &p->bytes)) {
            *rc = cli::usage_error(
                args.command(),
                "--hex wants pairs of hex digits (e.g. 'de ad be ef'), not '" + text + "'");
        }
        return true;
    }
    if (positional || (text.size() > 1 && text[0] == '@')) {
        const std::string path = text == "-" ? "-" : text.substr(1);
        std::string error;
        if (!read_all(path, &p->bytes, &error)) *rc = cli::usage_error(args.command(), error);
        return true;
    }
    p->bytes = text;
    return true;
}

const char* via_name(Via via) {
    switch (via) {
        case Via::Inline:
            return "inline";
        case Via::Payload:
            return "payload";
        case Via::Loan:
            return "loan";
        case Via::Region:
            return "region";
    }
    return "inline";
}

Via via_of(const Message& msg) {
    return msg.is_large() && msg.large_message().region.size != 0 ? Via::Region : Via::Inline;
}

Message described(const posix::PayloadInfo& info) {
    LargeMessage m{};
    m.header.opcode = info.opcode;
    m.header.flags = info.flags;
    m.header.total_size = info.length;
    Message out(m);
    out.set_sender(info.sender);
    out.set_transaction_id(info.transaction_id);
    return out;
}

bool write_payload(const std::string& path, std::string_view bytes, bool append,
                   std::string* error) {
    const bool is_stdout = path == "-";
    const int fd = is_stdout
                       ? STDOUT_FILENO
                       : open(path.c_str(),
                              O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
    if (fd < 0) {
        *error = "cannot open '" + path + "' for writing: " + std::strerror(errno) +
                 "; pass a writable path";
        return false;
    }
    bool good = true;
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            *error = "cannot write '" + path + "': " + std::strerror(errno);
            good = false;
            break;
        }
        done += static_cast<std::size_t>(n);
    }
    if (!is_stdout) close(fd);
    return good;
}

Result<Message> outgoing_message(cli::u32 opcode, const Payload& p, posix::Region* region,
                                 Via way) {
    if (p.kind == Payload::Kind::Words) {
        Message m = Message::small(0, opcode);
        for (int i = 0; i < 4; ++i)
            m.small_message().data[i] = p.words[i];
        return m;
    }
    LargeMessage m{};
    m.header.opcode = opcode;
    m.header.total_size = p.bytes.size();
    if (way != Via::Region && p.bytes.size() <= LARGE_MESSAGE_INLINE_BYTES) {
        if (!p.bytes.empty()) std::memcpy(m.inline_data, p.bytes.data(), p.bytes.size());
        return Message(m);
    }
    Result<posix::Region> r = posix::Region::create(p.bytes.size());
    if (!r) return r.error();
    std::memcpy(r->data(), p.bytes.data(), p.bytes.size());
    *region = static_cast<posix::Region&&>(*r);
    return Message(m);
}

Result<std::string> payload_of(const Message& msg) {
    if (msg.is_small()) {
        const auto& words = msg.small_message().data;
        return std::string(reinterpret_cast<const char*>(words), sizeof words);
    }
    const LargeMessage& m = msg.large_message();
    const cli::u64 region_size = m.region.size;
    const cli::u64 inline_size =
        m.header.total_size >= region_size ? m.header.total_size - region_size : 0;
    std::string out(
        reinterpret_cast<const char*>(m.inline_data),
        inline_size < LARGE_MESSAGE_INLINE_BYTES ? inline_size : LARGE_MESSAGE_INLINE_BYTES);
    if (region_size != 0) {
        Result<posix::Region> r = posix::Region::receive(msg);
        if (!r) return r.error();
        out.append(reinterpret_cast<const char*>(r->data()), r->size());
    }
    return out;
}

}  // namespace vipc
