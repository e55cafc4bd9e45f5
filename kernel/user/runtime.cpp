// SPDX-License-Identifier: MIT OR Apache-2.0
// User programs: the memory functions the compiler may call (there is no libc).
#include <cstddef>

extern "C" {

void* memcpy(void* dst, const void* src, std::size_t n) {
    void* d = dst;
    asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

void* memset(void* dst, int value, std::size_t n) {
    void* d = dst;
    asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(value) : "memory");
    return dst;
}

}  // extern "C"
