// SPDX-License-Identifier: MIT OR Apache-2.0
// A client that is not vipc, for the CLI tests: it sends the bytes of a file to an endpoint
// with the runtime's payload API, the way any program linked against the library would.
//
//   payload_peer NAME payload FILE OPCODE   send_sync(opcode, 0, bytes): a payload record
//   payload_peer NAME loan FILE OPCODE      loan(size) + send_loan: zero copy from its pool
//
// Exits 0 once the message is sent, 1 with one line on stderr otherwise.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "veridian/ipc/posix/runtime.hpp"

namespace {

namespace posix = veridian::ipc::posix;

int failed(const char* what, veridian::ipc::IpcError e) {
    std::fprintf(stderr, "payload_peer: %s failed: %s (%s)\n", what, veridian::ipc::error_name(e),
                 posix::last_error_detail());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: payload_peer NAME payload|loan FILE OPCODE\n");
        return 2;
    }
    const std::string mode = argv[2];
    std::ifstream in(argv[3], std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "payload_peer: cannot read '%s'\n", argv[3]);
        return 2;
    }
    const std::vector<char> file((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
    const auto opcode = static_cast<veridian::ipc::u32>(std::strtoul(argv[4], nullptr, 10));
    posix::ConnectOptions options;
    if (file.size() > options.pool_bytes) options.pool_bytes = file.size();
    auto conn = posix::Connection::connect(argv[1], options);
    if (!conn) return failed("connect", conn.error());
    const veridian::ipc::Deadline d = posix::after_ms(10'000);
    if (mode == "payload") {
        const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(file.data()),
                                               file.size());
        if (auto s = conn->send_sync(opcode, 0, bytes, d); !s)
            return failed("send_sync", s.error());
    } else if (mode == "loan") {
        auto loan = conn->loan(file.size(), d);
        if (!loan) return failed("loan", loan.error());
        if (!file.empty()) std::memcpy(loan->bytes.data(), file.data(), file.size());
        if (auto s = conn->send_loan(*loan, file.size(), opcode, 0, d); !s) {
            return failed("send_loan", s.error());
        }
    } else {
        std::fprintf(stderr, "payload_peer: mode '%s' is neither payload nor loan\n", mode.c_str());
        return 2;
    }
    (void)conn->close();
    return 0;
}
