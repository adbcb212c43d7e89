/* Q3: multiboot v1-like entry. EAX must be 0x2BADB002, EBX -> multiboot_info. */
    .include "macros32.inc"
    .code32
    .text
    .globl _start
_start:
    mov $0x80000, %esp
    mov %eax, %ebp
    PUTS s_eax
    HEX %ebp
    PUTS s_ebx
    HEX %ebx
    PUTS s_flags
    HEX (%ebx)
    PUTS s_mem
    HEX 8(%ebx)
    PUTS s_nl
    cmp $0x2BADB002, %ebp
    jne bad
    testl $1, (%ebx)            /* flags bit 0: mem_lower/mem_upper valid */
    jz bad
    PUTS s_ok
    EXIT PASS
bad:
    PUTS s_bad
    EXIT FAIL
s_eax:   .asciz "eax="
s_ebx:   .asciz " ebx="
s_flags: .asciz " flags="
s_mem:   .asciz " mem_upper_kb="
s_ok:    .asciz "MB-OK\n"
s_bad:   .asciz "MB-BAD\n"
    .include "funcs32.inc"
