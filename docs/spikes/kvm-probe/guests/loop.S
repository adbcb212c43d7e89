/* Q5c: endless loop; the VMM must interrupt KVM_RUN from another thread. */
    .include "macros32.inc"
    .code32
    .text
    .globl _start
_start:
    mov $0x80000, %esp
    PUTS s_start
1:  jmp 1b
s_start: .asciz "LOOP-START\n"
    .include "funcs32.inc"
