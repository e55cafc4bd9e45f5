/* SPDX-License-Identifier: MIT OR Apache-2.0 */
// Interrupt, exception and system-call entry and exit.
//
// Each interrupt stub pushes an error code (the CPU's, or 0) and its vector, so that every
// entry leaves the same InterruptFrame (interrupts.hpp) on the current stack. isr_common
// saves all general registers, calls interrupt_dispatch(frame), and resumes whatever frame
// it returns: the same one, or, after a task switch, the frame saved on another task's
// stack. A task that is not running is therefore always described by one saved frame at
// Task::saved_frame.
//
// syscall_entry builds the same frame from what `syscall` leaves (rcx = user rip, r11 =
// user rflags) on the running task's kernel stack, with vector SYSCALL_VECTOR, so a task
// in a system call can be switched away from and resumed like any other.
//
// Leaving: resume_frame returns through a frame with sysretq when the frame was made by a
// system call (its rcx and r11 are dead by the ABI), else with iretq (an interrupted task
// needs every register back). GS: ring 3 runs with its own GS base, the kernel with the
// PerCpu's; every entry from ring 3 and every exit to it swaps them (swapgs).
//
// Alignment: the CPU aligns rsp to 16 before pushing its 5-quadword frame; with the error
// code, the vector and 15 registers (22 quadwords in all) rsp is again 16-byte aligned at
// the call, as the ABI requires. Kernel stack tops are 16-byte aligned, so the syscall
// frame is too.

.set SYSCALL_VECTOR, 256
.set FRAME_VECTOR, 120          // offsetof(InterruptFrame, vector)
.set PERCPU_KERNEL_RSP, 8
.set PERCPU_USER_RSP, 16
.set USER_DATA_SELECTOR, 0x1b
.set USER_CODE_SELECTOR, 0x23

.code64
.text

.macro STUB_NO_ERROR vector
isr_stub_\vector:
    pushq $0
    pushq $\vector
    jmp isr_common
.endm

.macro STUB_WITH_ERROR vector
isr_stub_\vector:
    pushq $\vector
    jmp isr_common
.endm

// Exceptions that push an error code: 8, 10-14, 17, 21, 29, 30.
.irp v, 8, 10, 11, 12, 13, 14, 17, 21, 29, 30
STUB_WITH_ERROR \v
.endr
.irp v, 0, 1, 2, 3, 4, 5, 6, 7, 9, 15, 16, 18, 19, 20, 22, 23, 24, 25, 26, 27, 28, 31
STUB_NO_ERROR \v
.endr
// PIC interrupts (remapped to 32-47) and the yield vector 0x81.
.irp v, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 129
STUB_NO_ERROR \v
.endr

isr_common:
    testb $3, 24(%rsp)              // the interrupted cs: from ring 3?
    jz 1f
    swapgs
1:  pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    cld
    mov %rsp, %rdi
    call interrupt_dispatch         // returns the frame to resume
    mov %rax, %rdi
// resume_frame(frame): loads rsp from rdi and returns through that frame.
.global resume_frame
resume_frame:
    mov %rdi, %rsp
    cmpq $SYSCALL_VECTOR, FRAME_VECTOR(%rsp)
    je sysret_frame
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    add $16, %rsp                   // the vector and the error code
    testb $3, 8(%rsp)               // returning to ring 3?
    jz 2f
    swapgs
2:  iretq

// A frame made by syscall_entry (always a ring-3 frame): restore all but rcx and r11,
// which carry rip and rflags for sysretq.
sysret_frame:
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    add $8, %rsp                    // r11: replaced by rflags below
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    add $8, %rsp                    // rcx: replaced by rip below
    popq %rbx
    popq %rax
    add $16, %rsp                   // the vector and the error code
    popq %rcx                       // rip
    add $8, %rsp                    // cs (sysretq loads USER_CODE_SELECTOR)
    popq %r11                       // rflags
    popq %rsp                       // the user stack; nothing touches memory after this
    swapgs
    sysretq

// The syscall instruction lands here (LSTAR) in ring 0 with interrupts off (SFMASK), rsp
// still the user's. Build the frame on the task's kernel stack and dispatch.
.global syscall_entry
syscall_entry:
    swapgs
    mov %rsp, %gs:PERCPU_USER_RSP
    mov %gs:PERCPU_KERNEL_RSP, %rsp
    pushq $USER_DATA_SELECTOR       // ss
    pushq %gs:PERCPU_USER_RSP       // rsp
    pushq %r11                      // rflags
    pushq $USER_CODE_SELECTOR       // cs
    pushq %rcx                      // rip
    pushq $0                        // error code
    pushq $SYSCALL_VECTOR           // vector
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    cld
    mov %rsp, %rdi
    call syscall_dispatch           // returns the frame to resume
    mov %rax, %rdi
    jmp resume_frame

// The stub addresses for vectors 0-47, in order, for the IDT.
.section .rodata
.align 8
.global isr_stub_table
isr_stub_table:
.irp v, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47
.quad isr_stub_\v
.endr
.global isr_stub_yield
isr_stub_yield:
.quad isr_stub_129

.section .note.GNU-stack, "", @progbits
