/* Q2: Linux x86-64 boot protocol entry. Long mode, identity-mapped 1 GiB with 2 MiB pages,
 * RSI -> boot_params (0x7000) whose hdr.header (offset 0x202) is "HdrS". */
    .include "macros64.inc"
    .code64
    .text
    .globl _start
_start:
    mov %rsi, %rbp
    mov $0x80000, %rsp
    PUTS s_rsi
    HEX %rbp
    PUTS s_cr0
    mov %cr0, %rax
    HEX %rax
    PUTS s_cr3
    mov %cr3, %rax
    HEX %rax
    PUTS s_cr4
    mov %cr4, %rax
    HEX %rax
    PUTS s_efer
    mov $0xc0000080, %ecx
    rdmsr
    shl $32, %rdx
    or %rdx, %rax
    HEX %rax
    PUTS s_nl
    cmp $0x7000, %rbp
    jne bad
    cmpl $0x53726448, 0x202(%rbp)       /* "HdrS" */
    jne bad
    /* touch identity-mapped memory at 128 MiB and 250 MiB (2 MiB pages) */
    movabs $0x1122334455667788, %rax
    mov $0x8000000, %rdi
    mov %rax, (%rdi)
    cmp (%rdi), %rax
    jne bad
    mov $0xfa00000, %rdi
    mov %rax, (%rdi)
    cmp (%rdi), %rax
    jne bad
    PUTS s_ok
    EXIT PASS
bad:
    PUTS s_bad
    EXIT FAIL
s_rsi:  .asciz "rsi="
s_cr0:  .asciz " cr0="
s_cr3:  .asciz " cr3="
s_cr4:  .asciz " cr4="
s_efer: .asciz " efer="
s_ok:   .asciz "LINUX64-OK\n"
s_bad:  .asciz "LINUX64-BAD\n"
    .include "funcs64.inc"
