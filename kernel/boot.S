/* SPDX-License-Identifier: MIT OR Apache-2.0 */
// Kernel entry: a Multiboot1 header and the 32-bit code that QEMU's -kernel loader jumps to.
//
// The loader leaves us in 32-bit protected mode with paging off, EAX = multiboot magic and
// EBX = the multiboot information address. We clear .bss, check that the CPU has long
// mode, identity-map the first GiB with 2 MiB pages, turn on PAE, long mode and paging,
// load a 64-bit GDT, and far-jump to 64-bit code, which calls kernel_main(magic, info) on
// the boot stack.

.set MULTIBOOT_MAGIC, 0x1BADB002
.set MULTIBOOT_FLAGS, 0
.set PAGE_PRESENT_WRITABLE, 0x3
.set PAGE_HUGE, 0x80
.set CR4_PAE, 1 << 5
.set EFER_MSR, 0xC0000080
.set EFER_LME, 1 << 8
.set CR0_PG, 1 << 31

// The loader finds this header in the first 8 KiB of the image (link.ld puts it first).
.section .multiboot, "a"
.align 4
.long MULTIBOOT_MAGIC
.long MULTIBOOT_FLAGS
.long -(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)

.section .bss
.align 4096
// The kernel's address space; every process's page tables share its identity map.
.global boot_pml4, boot_pdpt
boot_pml4:
.skip 4096
boot_pdpt:
.skip 4096
page_directory:
.skip 4096
.align 16
boot_stack:
.skip 16384
boot_stack_top:

.section .rodata
.align 8
// Segment descriptors: 0x08 = 64-bit ring-0 code, 0x10 = ring-0 data.
gdt64:
.quad 0
.quad 0x00AF9A000000FFFF
.quad 0x00CF92000000FFFF
gdt64_end:
gdt64_pointer:
.word gdt64_end - gdt64 - 1
.quad gdt64

.section .text
.code32
.global _start
_start:
    cli
    mov %eax, %ebp                  // multiboot magic, kept for kernel_main
    mov %ebx, %esi                  // multiboot information address

    // Zero .bss: the page tables and every zero-initialized C++ object live there.
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    shr $2, %ecx
    xor %eax, %eax
    rep stosl
    mov $boot_stack_top, %esp

    // A CPU without long mode cannot run this kernel: report a fault through QEMU's
    // isa-debug-exit device (0x12, the kernel's fault code) and stop.
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb no_long_mode
    mov $0x80000001, %eax
    cpuid
    test $(1 << 29), %edx
    jz no_long_mode

    // PML4[0] -> PDPT, PDPT[0] -> page directory, PD[i] -> 2 MiB page at i * 2 MiB.
    mov $boot_pdpt, %eax
    or $PAGE_PRESENT_WRITABLE, %eax
    mov %eax, boot_pml4
    mov $page_directory, %eax
    or $PAGE_PRESENT_WRITABLE, %eax
    mov %eax, boot_pdpt
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $(PAGE_PRESENT_WRITABLE | PAGE_HUGE), %eax
    mov %eax, page_directory(, %ecx, 8)
    inc %ecx
    cmp $512, %ecx
    jne 1b

    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $EFER_MSR, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $CR0_PG, %eax
    mov %eax, %cr0                  // long mode is now active (compatibility sub-mode)

    lgdt gdt64_pointer
    ljmp $0x08, $long_mode_entry

no_long_mode:
    mov $0x12, %al
    outb %al, $0xf4
3:  cli
    hlt
    jmp 3b

.code64
long_mode_entry:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp       // 16-byte aligned: the call below leaves rsp = 8 mod 16
    mov %ebp, %edi                  // kernel_main(magic, info): 32-bit moves zero-extend
    mov %esi, %esi
    call kernel_main
2:  cli
    hlt
    jmp 2b

.section .note.GNU-stack, "", @progbits
