// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc: argument walking, error lines, JSON output.
#include "cli.hpp"

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <utility>

#include "json_writer.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace vipc::cli {

namespace posix = veridian::ipc::posix;

// ---- Error lines --------------------------------------------------------------------------

namespace {
bool g_json_errors = false;

// The error as one JSON object on stdout (under --json).
void json_error(std::string_view command, std::string_view kind, const int* code,
                std::string_view text, int exit_code) {
    if (!g_json_errors) return;
    Json j;
    j.begin_object().key("error").begin_object();
    j.key("command").string(command).key("kind").string(kind).key("code");
    if (code != nullptr) {
        j.integer(*code);
    } else {
        j.null();
    }
    j.key("message").string(text).key("exit").integer(exit_code);
    j.end_object().end_object();
    std::printf("%s\n", j.text().c_str());
    std::fflush(stdout);
}

// Terminal control characters in a message (a name, a path) are shown escaped, never sent.
std::string printable(std::string_view text) {
    std::string out;
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7f) {
            out += format("\\x%02x", c);
        } else {
            out += ch;
        }
    }
    return out;
}
}  // namespace

void set_json_errors(bool on) {
    g_json_errors = on;
}

bool json_errors() {
    return g_json_errors;
}

int usage_error(std::string_view command, std::string_view text) {
    const std::string shown = printable(text);
    std::fprintf(stderr, "vipc %.*s: %s — run 'vipc %.*s --help'\n",
                 static_cast<int>(command.size()), command.data(), shown.c_str(),
                 static_cast<int>(command.size()), command.data());
    json_error(command, "Usage", nullptr, text, EXIT_USAGE);
    return EXIT_USAGE;
}

int runtime_error(std::string_view command, std::string_view text) {
    const std::string shown = printable(text);
    std::fprintf(stderr, "vipc %.*s: %s\n", static_cast<int>(command.size()), command.data(),
                 shown.c_str());
    json_error(command, "Failed", nullptr, text, EXIT_FAILURE_RUNTIME);
    return EXIT_FAILURE_RUNTIME;
}

int runtime_error(std::string_view command, std::string_view text, IpcError error) {
    const std::string shown = printable(text);
    std::fprintf(stderr, "vipc %.*s: %s\n", static_cast<int>(command.size()), command.data(),
                 shown.c_str());
    const int code = veridian::ipc::error_code(error);
    json_error(command, veridian::ipc::error_name(error), &code, text, EXIT_FAILURE_RUNTIME);
    return EXIT_FAILURE_RUNTIME;
}

std::string describe(IpcError error) {
    const char* detail = posix::last_error_detail();
    if (detail != nullptr && detail[0] != '\0') return detail;
    return format("%s (%s)", veridian::ipc::error_text(error), veridian::ipc::error_name(error));
}

std::string fix_for(IpcError error, std::string_view name) {
    const std::string n(name);
    switch (error) {
        case IpcError::EndpointNotFound:
            return "start one with 'vipc serve " + n + "'";
        case IpcError::EndpointBusy:
            return "stop that process or pick another name";
        case IpcError::PermissionDenied:
            return "check the runtime directory's owner and mode, or set VIPC_RUNTIME_DIR";
        case IpcError::InvalidMessage:
            return "a name is components of [A-Za-z0-9._-] separated by '/', like 'demo/echo'";
        case IpcError::ResourceBusy:
            return "the server has all the connections it accepts; try again later";
        case IpcError::Timeout:
            return "is the server of '" + n + "' stuck? see 'vipc stat " + n + "'";
        default:
            return "";
    }
}

int ipc_error(std::string_view command, IpcError error, std::string_view name) {
    // The runtime's detail names the thing and, where there is one, the fix already.
    const char* detail = posix::last_error_detail();
    if (detail != nullptr && detail[0] != '\0') return runtime_error(command, detail, error);
    std::string line = describe(error);
    const std::string fix = fix_for(error, name);
    if (!fix.empty()) line += " — " + fix;
    return runtime_error(command, line, error);
}

// ---- Arguments ------------------------------------------------------------------------------

Args::Args(std::string command, std::vector<std::string> args)
    : command_(std::move(command)), args_(std::move(args)) {}

bool Args::next() {
    if (index_ >= args_.size()) return false;
    current_ = args_[index_++];
    if (!flags_ended_ && current_ == "--") {
        flags_ended_ = true;
        return next();
    }
    return true;
}

bool Args::is_positional() const {
    return flags_ended_ || current_.empty() || current_[0] != '-' || current_ == "-";
}

bool Args::is(std::string_view flag) const {
    if (is_positional()) return false;
    const std::string_view arg(current_);
    if (arg == flag) return true;
    return arg.size() > flag.size() && arg.substr(0, flag.size()) == flag &&
           arg[flag.size()] == '=';
}

std::string Args::flag_name() const {
    const auto eq = current_.find('=');
    return eq == std::string::npos ? current_ : current_.substr(0, eq);
}

bool Args::value(std::string* out) {
    const auto eq = current_.find('=');
    if (eq != std::string::npos) {
        *out = current_.substr(eq + 1);
        return true;
    }
    if (index_ >= args_.size()) {
        usage_error(command_, current_ + " needs a value");
        return false;
    }
    *out = args_[index_++];
    return true;
}

bool parse_u64(std::string_view text, u64* out) {
    if (text.empty() || text.size() > 20) return false;
    u64 n = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') return false;
        const u64 digit = static_cast<u64>(c - '0');
        if (n > (std::numeric_limits<u64>::max() - digit) / 10) return false;
        n = n * 10 + digit;
    }
    *out = n;
    return true;
}

bool Args::number(u64* out, u64 min, u64 max) {
    const std::string flag = flag_name();
    std::string text;
    if (!value(&text)) return false;
    u64 n = 0;
    if (!parse_u64(text, &n)) {
        usage_error(command_, flag + " wants a whole number, not '" + text + "'");
        return false;
    }
    if (n < min || n > max) {
        usage_error(command_, format("%s must be between %llu and %llu, not %s", flag.c_str(),
                                     static_cast<unsigned long long>(min),
                                     static_cast<unsigned long long>(max), text.c_str()));
        return false;
    }
    *out = n;
    return true;
}

bool Args::number(u32* out, u32 min, u32 max) {
    u64 n = 0;
    if (!number(&n, min, max)) return false;
    *out = static_cast<u32>(n);
    return true;
}

bool Args::data_words(u64 (&out)[4]) {
    const std::string flag = flag_name();
    std::string text;
    if (!value(&text)) return false;
    u64 words[4] = {0, 0, 0, 0};
    std::size_t count = 0;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = text.find(',', start);
        const std::string item =
            text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (count == 4) {
            usage_error(command_, flag + " takes at most 4 numbers, got '" + text + "'");
            return false;
        }
        if (!parse_u64(item, &words[count])) {
            usage_error(command_,
                        flag + " wants up to 4 comma-separated whole numbers, not '" + text + "'");
            return false;
        }
        ++count;
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    for (int i = 0; i < 4; ++i)
        out[i] = words[i];
    return true;
}

int Args::unknown() const {
    if (is_positional()) return usage_error(command_, "unexpected argument '" + current_ + "'");
    return usage_error(command_, "unknown option '" + flag_name() + "'");
}

// ---- Output -----------------------------------------------------------------------------------

std::string with_commas(u64 n) {
    std::string digits = std::to_string(n);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

std::string format(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list copy;
    va_copy(copy, ap);
    const int n = std::vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    std::string out;
    if (n > 0) {
        out.resize(static_cast<std::size_t>(n) + 1);
        std::vsnprintf(out.data(), out.size(), fmt, ap);
        out.resize(static_cast<std::size_t>(n));
    }
    va_end(ap);
    return out;
}

void append_json_string(std::string& out, std::string_view s) {
    json::append_string(out, s);
}

void Json::before_value() {
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (!first_.empty()) {
        if (!first_.back()) out_ += ',';
        first_.back() = false;
    }
}

Json& Json::begin_object() {
    before_value();
    out_ += '{';
    first_.push_back(true);
    return *this;
}

Json& Json::end_object() {
    out_ += '}';
    first_.pop_back();
    return *this;
}

Json& Json::begin_array() {
    before_value();
    out_ += '[';
    first_.push_back(true);
    return *this;
}

Json& Json::end_array() {
    out_ += ']';
    first_.pop_back();
    return *this;
}

Json& Json::key(std::string_view k) {
    before_value();
    append_json_string(out_, k);
    out_ += ':';
    after_key_ = true;
    return *this;
}

Json& Json::string(std::string_view s) {
    before_value();
    append_json_string(out_, s);
    return *this;
}

Json& Json::number(u64 n) {
    before_value();
    out_ += std::to_string(n);
    return *this;
}

Json& Json::number(double d, int decimals) {
    before_value();
    out_ += json::number(d, decimals);
    return *this;
}

Json& Json::integer(long long n) {
    before_value();
    out_ += std::to_string(n);
    return *this;
}

Json& Json::null() {
    before_value();
    out_ += "null";
    return *this;
}

Json& Json::boolean(bool b) {
    before_value();
    out_ += b ? "true" : "false";
    return *this;
}

}  // namespace vipc::cli
