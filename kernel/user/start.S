// SPDX-License-Identifier: MIT OR Apache-2.0
// User programs: the entry point (at USER_BASE, the first byte of the image). The kernel
// starts a process here in ring 3 with rsp = USER_STACK_TOP (16-byte aligned) and the four
// start arguments in rdi, rsi, rdx, rcx; user_main's return value becomes the exit code.
.section .text.start, "ax"
.global _start
_start:
    call user_main
    mov %rax, %rdi
    mov $1, %eax                    // SYS_EXIT
    syscall
    ud2

.section .note.GNU-stack, "", @progbits
