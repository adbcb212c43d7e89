/* Q1: PVH-style entry. 32-bit protected mode, paging off, EBX = start_info.
 * Built twice: pvh.bin (no reload; segments exist only in KVM_SET_SREGS state)
 * and pvh_gdt.bin (-DRELOAD: far-jump + reload data segments from the GDT at 0x500). */
    .include "macros32.inc"
    .code32
    .text
    .globl _start
_start:
    mov %ebx, %ebp              /* keep EBX (start_info pointer) */
#ifdef RELOAD
    ljmp $0x08, $1f             /* reload CS from GDT[1] */
1:  mov $0x10, %ax              /* reload data segs from GDT[2] */
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
#endif
    mov $0x80000, %esp
    PUTS s_ebx
    HEX %ebp
    PUTS s_cr0
    mov %cr0, %eax
    HEX %eax
    PUTS s_tr
    xor %eax, %eax
    str %ax
    HEX %eax
    PUTS s_nl
    cmp $0x6000, %ebp
    jne bad
    cmpl $0x336ec578, (%ebp)    /* hvm_start_info magic written by the VMM */
    jne bad
    /* also touch memory above 1 MiB through the flat 4 GiB data segment */
    movl $0xdeadbeef, 0x4000000
    cmpl $0xdeadbeef, 0x4000000
    jne bad
    PUTS s_ok
    EXIT PASS
bad:
    PUTS s_bad
    EXIT FAIL

s_ebx: .asciz "ebx="
s_cr0: .asciz " cr0="
s_tr:  .asciz " tr="
s_ok:  .asciz "PVH-OK\n"
s_bad: .asciz "PVH-BAD\n"
    .include "funcs32.inc"
