// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the few runtime symbols a freestanding C++ program still needs (there is no libc
// and no libstdc++ runtime). `nm -u` on the objects lists what must be here.
#include <cstddef>

#include "arch.hpp"
#include "serial.hpp"

extern "C" {

// The compiler emits calls to these for struct copies even with -ffreestanding. They are
// written with string instructions so that the compiler cannot turn them back into calls.
void* memcpy(void* dst, const void* src, std::size_t n) {
    void* d = dst;
    asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

void* memmove(void* dst, const void* src, std::size_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    if (d <= s || d >= s + n) return memcpy(dst, src, n);
    // Overlapping with dst after src: copy backwards.
    d += n - 1;
    s += n - 1;
    asm volatile("std\n\trep movsb\n\tcld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return dst;
}

void* memset(void* dst, int value, std::size_t n) {
    void* d = dst;
    asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(value) : "memory");
    return dst;
}

// A pure virtual function called during construction or destruction: a bug.
void __cxa_pure_virtual() {
    vipc_kernel::kprint("FAULT: pure virtual function called\n");
    vipc_kernel::qemu_exit(vipc_kernel::EXIT_FAULT_CODE);
}

// Global destructors are registered here; the kernel never exits through them.
void* __dso_handle = nullptr;
int __cxa_atexit(void (*)(void*), void*, void*) {
    return 0;
}

}  // extern "C"
