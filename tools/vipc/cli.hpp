// SPDX-License-Identifier: MIT OR Apache-2.0
// vipc: what every command shares — argument walking, error lines, exit codes, JSON output
// and number formatting.
//
// Layer: tools (hosted). Every command is a function `int run_X(Args& args)` that returns
// the process's exit code:
//
//   int run_call(Args& args) {
//       u32 opcode = 1;
//       while (args.next()) {
//           if (args.is("--opcode")) {
//               if (!args.number(&opcode)) return EXIT_USAGE;   // already reported
//           } else if (args.is_positional()) { ... }
//           else return args.unknown();
//       }
//   }
//
// Error lines are exactly one line on stderr, "vipc CMD: what happened — what to do".
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/types.hpp"

namespace vipc::cli {

using veridian::ipc::IpcError;
using veridian::ipc::u16;
using veridian::ipc::u32;
using veridian::ipc::u64;

inline constexpr int EXIT_OK = 0;
inline constexpr int EXIT_FAILURE_RUNTIME = 1;  // the operation failed (no server, timeout, ...)
inline constexpr int EXIT_USAGE = 2;            // the command line is wrong

// ---- Error lines --------------------------------------------------------------------------

// Under --json (any command), every error also goes to stdout as one JSON object:
//   {"error": {"command": "call", "kind": "EndpointNotFound", "code": -3,
//              "message": "<the stderr line's text>", "exit": 1}}
// kind is the IpcError's name (code its code) when the runtime failed, "Usage" (code null)
// for a bad command line, "Failed" (code null) for anything else. main() turns it on.
void set_json_errors(bool on);
bool json_errors();

// "vipc CMD: TEXT — run 'vipc CMD --help'" on stderr; returns EXIT_USAGE.
int usage_error(std::string_view command, std::string_view text);
// "vipc CMD: TEXT" on stderr; returns EXIT_FAILURE_RUNTIME.
int runtime_error(std::string_view command, std::string_view text);
// The same, about an error the runtime returned (named in the JSON error object).
int runtime_error(std::string_view command, std::string_view text, IpcError error);
// What the runtime said about its last error on this thread (posix::last_error_detail()),
// or the error kind's text when it said nothing.
std::string describe(IpcError error);
// The usual fix for an error the runtime returned about endpoint `name`, or "".
std::string fix_for(IpcError error, std::string_view name);
// "vipc CMD: <the runtime's detail>", or without one "vipc CMD: <error text> — <fix_for(error,
// name)>"; returns EXIT_FAILURE_RUNTIME.
int ipc_error(std::string_view command, IpcError error, std::string_view name);

// ---- Arguments ------------------------------------------------------------------------------

// Walks one command's arguments. Flags are "--name", "--name VALUE" or "--name=VALUE";
// anything not starting with '-' is positional. "--" ends the flags.
class Args {
public:
    // `command` names the command in messages ("call"); `args` are its arguments.
    Args(std::string command, std::vector<std::string> args);

    const std::string& command() const { return command_; }

    // Moves to the next argument; false when none is left.
    bool next();
    // The current argument is flag `flag` ("--count" matches "--count" and "--count=5").
    bool is(std::string_view flag) const;
    // The current argument is -h or --help.
    bool is_help() const { return is("--help") || current_ == "-h"; }
    bool is_positional() const;
    const std::string& current() const { return current_; }

    // The value of the current flag (after '=' or the next argument). On a missing value
    // reports a usage error and returns false.
    bool value(std::string* out);
    // The value as an unsigned decimal number within [min, max]; reports and returns false
    // when it is missing, not a number, or out of range.
    bool number(u64* out, u64 min = 0, u64 max = std::numeric_limits<u64>::max());
    bool number(u32* out, u32 min = 0, u32 max = std::numeric_limits<u32>::max());
    // Up to four comma-separated numbers ("1,2,3"): the data words of a SmallMessage.
    bool data_words(u64 (&out)[4]);

    // Reports the current argument as unknown (or unexpected, when positional); returns
    // EXIT_USAGE.
    int unknown() const;

private:
    std::string flag_name() const;

    std::string command_;
    std::vector<std::string> args_;
    std::size_t index_ = 0;
    std::string current_;
    bool flags_ended_ = false;
};

// Parses an unsigned decimal number (no sign, no spaces, no overflow).
bool parse_u64(std::string_view text, u64* out);

// ---- Output -----------------------------------------------------------------------------------

// 1234567 -> "1,234,567".
std::string with_commas(u64 n);
// printf into a std::string.
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Builds one JSON document; strings are escaped (quotes, backslashes, control characters;
// bytes >= 0x80 pass through, so valid UTF-8 stays valid). Commas are placed for you:
//
//   Json j;
//   j.begin_object().key("name").string("demo/echo").key("pid").number(42).end_object();
//   std::puts(j.text().c_str());
class Json {
public:
    Json& begin_object();
    Json& end_object();
    Json& begin_array();
    Json& end_array();
    Json& key(std::string_view k);
    Json& string(std::string_view s);
    Json& number(u64 n);
    Json& number(double d, int decimals = 3);  // non-finite values become null
    Json& integer(long long n);
    Json& null();
    Json& boolean(bool b);
    const std::string& text() const { return out_; }

private:
    void before_value();

    std::string out_;
    std::vector<bool> first_;  // per open container: nothing written in it yet
    bool after_key_ = false;
};

// Appends `s` to `out` as a quoted JSON string.
void append_json_string(std::string& out, std::string_view s);

}  // namespace vipc::cli
