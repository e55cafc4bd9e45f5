// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the COM1 serial console (16550 UART, polled).
//
// Every line is written with interrupts off, so lines from preempted tasks never interleave.
//
//   kprint("PASS ", name, "\n");
#pragma once

#include <cstdint>

#include "arch.hpp"

namespace vipc_kernel {

void serial_init();
void serial_write(const char* s);
void serial_write_dec(std::uint64_t value);
void serial_write_signed(std::int64_t value);
void serial_write_hex(std::uint64_t value);

// A value printed in hexadecimal by kprint.
struct Hex {
    std::uint64_t value;
};

namespace detail {
inline void print_one(const char* s) {
    serial_write(s);
}
inline void print_one(Hex h) {
    serial_write_hex(h.value);
}
inline void print_one(std::uint64_t v) {
    serial_write_dec(v);
}
inline void print_one(std::uint32_t v) {
    serial_write_dec(v);
}
inline void print_one(int v) {
    serial_write_signed(v);
}
inline void print_one(long v) {
    serial_write_signed(v);
}
}  // namespace detail

// Prints its arguments as one uninterrupted piece of output.
template <typename... Args>
void kprint(const Args&... args) {
    IrqGuard guard;
    (detail::print_one(args), ...);
}

}  // namespace vipc_kernel
