// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc: message printing and stop signals, shared by the commands.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>

#include "commands.hpp"
#include "json_writer.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace vipc {

using veridian::ipc::Message;
using veridian::ipc::SmallMessage;

namespace {
// At most this many payload bytes are shown on a terminal line.
constexpr std::size_t kPreviewBytes = 64;
// At most this many payload bytes are written as hex in JSON (the size is always there).
constexpr std::size_t kJsonHexBytes = 1u << 20;

// The payload as a C-style quoted string: printable ASCII as is, anything else escaped,
// so no byte from a peer ever reaches the terminal raw.
std::string quoted_preview(const std::string& bytes) {
    std::string out = "\"";
    const std::size_t n = std::min(bytes.size(), kPreviewBytes);
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += cli::format("\\x%02x", c);
        }
    }
    out += '"';
    if (bytes.size() > n) out += "...";
    return out;
}
}  // namespace

std::string message_text(const Message& msg, const std::string* payload, bool with_sender) {
    std::string out = cli::format("opcode %u flags 0x%x ", msg.opcode(), msg.flags());
    if (msg.is_small()) {
        const SmallMessage& m = msg.small_message();
        out += cli::format(
            "words [%llu,%llu,%llu,%llu]", static_cast<unsigned long long>(m.data[0]),
            static_cast<unsigned long long>(m.data[1]), static_cast<unsigned long long>(m.data[2]),
            static_cast<unsigned long long>(m.data[3]));
    } else if (payload != nullptr) {
        out += cli::format("%zu bytes %s", payload->size(), quoted_preview(*payload).c_str());
    } else {
        out += cli::format("%llu bytes",
                           static_cast<unsigned long long>(msg.large_message().header.total_size));
    }
    if (with_sender) {
        if (msg.sender().value != 0) {
            out +=
                cli::format(" from pid %llu", static_cast<unsigned long long>(msg.sender().value));
        }
    }
    return out;
}

void pid_json(cli::Json& json, std::string_view key, cli::u64 pid) {
    // The kernel reports 0 for a process in a pid namespace this one cannot see into.
    json.key(key);
    if (pid == 0) {
        json.null();
        json.key(std::string(key) + "_namespace").string("other");
    } else {
        json.number(pid);
    }
}

std::string pid_text(cli::u64 pid) {
    return pid == 0 ? std::string("? (another pid namespace)") : std::to_string(pid);
}

void message_json(cli::Json& json, const Message& msg, const std::string* payload) {
    json.key("kind").string(msg.is_small() ? "small" : "bytes");
    json.key("opcode").number(cli::u64{msg.opcode()});
    json.key("flags").number(cli::u64{msg.flags()});
    json.key("capability").number(msg.capability());
    if (msg.is_small()) {
        json.key("words").begin_array();
        for (const cli::u64 word : msg.small_message().data)
            json.number(word);
        json.end_array();
    } else if (payload != nullptr) {
        json.key("size").number(cli::u64{payload->size()});
        const std::string_view shown(payload->data(), std::min(payload->size(), kJsonHexBytes));
        json.key("hex").string(vipc::json::hex(shown));
        if (shown.size() < payload->size()) json.key("hex_truncated").boolean(true);
        if (vipc::json::is_valid_utf8(shown)) json.key("text").string(shown);
    } else {
        json.key("size").number(msg.large_message().header.total_size);
    }
    pid_json(json, "from", msg.sender().value);
    json.key("txid").number(msg.transaction_id());
}

LatencySummary summarize(std::vector<cli::u64>& samples_ns) {
    LatencySummary s;
    if (samples_ns.empty()) return s;
    std::sort(samples_ns.begin(), samples_ns.end());
    const std::size_t n = samples_ns.size();
    // The nearest-rank percentile: the smallest sample with at least p% of them at or below.
    const auto rank = [&](double p) {
        std::size_t k = static_cast<std::size_t>(p / 100.0 * static_cast<double>(n) + 0.999999);
        k = std::clamp<std::size_t>(k, 1, n);
        return static_cast<double>(samples_ns[k - 1]) / 1000.0;
    };
    double total = 0;
    for (const cli::u64 v : samples_ns)
        total += static_cast<double>(v);
    s.min = static_cast<double>(samples_ns.front()) / 1000.0;
    s.max = static_cast<double>(samples_ns.back()) / 1000.0;
    s.p50 = rank(50);
    s.p99 = rank(99);
    s.p999 = rank(99.9);
    s.mean = total / static_cast<double>(n) / 1000.0;
    return s;
}

void latency_json(cli::Json& json, const LatencySummary& s) {
    json.key("min").number(s.min);
    json.key("p50").number(s.p50);
    json.key("p99").number(s.p99);
    json.key("p99_9").number(s.p999);
    json.key("max").number(s.max);
    json.key("mean").number(s.mean);
}

bool check_name(const std::string& command, const std::string& name, int* rc) {
    const veridian::ipc::Result<void> valid = veridian::ipc::posix::validate_name(name);
    if (valid) return true;
    // describe() is the runtime's detail, which says what is wrong and what a name looks like.
    *rc = cli::usage_error(command, cli::describe(valid.error()));
    return false;
}

namespace {
// Written by the signal handler, read by every serving thread (`vipc serve --threads N`): a
// lock-free atomic is both async-signal-safe and free of a data race between threads, which a
// `volatile sig_atomic_t` is not.
std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);

void on_stop_signal(int signo) {
    g_stop_signal.store(signo, std::memory_order_relaxed);
}
}  // namespace

void install_stop_signals() {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

bool stop_requested() {
    return g_stop_signal.load(std::memory_order_relaxed) != 0;
}

int stop_signal() {
    return g_stop_signal.load(std::memory_order_relaxed);
}

}  // namespace vipc
