// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the COM1 serial console.
#include "serial.hpp"

namespace vipc_kernel {
namespace {

constexpr std::uint16_t COM1 = 0x3f8;
constexpr std::uint8_t LSR_THR_EMPTY = 1u << 5;  // line status: transmit holding register empty

void put(char c) {
    while ((inb(COM1 + 5) & LSR_THR_EMPTY) == 0) {
    }
    outb(COM1, static_cast<std::uint8_t>(c));
}

}  // namespace

void serial_init() {
    outb(COM1 + 1, 0x00);  // no UART interrupts: output is polled
    outb(COM1 + 3, 0x80);  // DLAB on, to set the divisor
    outb(COM1 + 0, 0x01);  // divisor 1: 115200 baud
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);  // 8 data bits, no parity, 1 stop bit, DLAB off
    outb(COM1 + 2, 0xc7);  // FIFO on, cleared
    outb(COM1 + 4, 0x03);  // DTR and RTS
}

void serial_write(const char* s) {
    IrqGuard guard;
    for (; *s != '\0'; ++s) {
        if (*s == '\n') put('\r');
        put(*s);
    }
}

void serial_write_dec(std::uint64_t value) {
    char buf[21];
    int i = 20;
    buf[i] = '\0';
    do {
        buf[--i] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value != 0);
    serial_write(&buf[i]);
}

void serial_write_signed(std::int64_t value) {
    if (value < 0) {
        serial_write("-");
        serial_write_dec(0 - static_cast<std::uint64_t>(value));
    } else {
        serial_write_dec(static_cast<std::uint64_t>(value));
    }
}

void serial_write_hex(std::uint64_t value) {
    static constexpr char DIGITS[] = "0123456789abcdef";
    char buf[19];
    buf[0] = '0';
    buf[1] = 'x';
    for (int i = 0; i < 16; ++i) {
        buf[2 + i] = DIGITS[(value >> (60 - 4 * i)) & 0xf];
    }
    buf[18] = '\0';
    serial_write(buf);
}

}  // namespace vipc_kernel
