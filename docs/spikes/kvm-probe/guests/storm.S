/* Q5d: exit storm. Four phases of N accesses each, separated by markers on port 0x99:
 *   1: inb from unclaimed port 0x510 (VMM answers 0xff)
 *   2: outb to unclaimed port 0x511
 *   3: 32-bit MMIO read from 0xd0000000 (no memslot; VMM answers 0xff..)
 *   4: 32-bit MMIO write to 0xd0000000
 *   5: no exits: 10M iterations of dec/jnz (guest instruction throughput)
 * EDI counts reads that did not return all-ones. */
    .include "macros32.inc"
    .set N, 200000
    .code32
    .text
    .globl _start
_start:
    mov $0x80000, %esp
    xor %edi, %edi
    MARK 1
    mov $N, %ecx
    mov $0x510, %dx
1:  inb %dx, %al
    cmp $0xff, %al
    je 2f
    inc %edi
2:  loop 1b
    MARK 2
    mov $N, %ecx
    mov $0x511, %dx
1:  outb %al, %dx
    loop 1b
    MARK 3
    mov $N, %ecx
1:  mov 0xd0000000, %eax
    cmp $0xffffffff, %eax
    je 2f
    inc %edi
2:  loop 1b
    MARK 4
    mov $N, %ecx
1:  mov %ecx, 0xd0000000
    loop 1b
    MARK 5
    /* phase 5: pure compute, no exits: 10M x (dec; jnz) = 20M instructions */
    mov $10000000, %ecx
1:  dec %ecx
    jnz 1b
    MARK 6
    PUTS s_bad
    HEX %edi
    PUTS s_nl
    test %edi, %edi
    jnz 3f
    PUTS s_ok
    EXIT PASS
3:  EXIT FAIL
s_bad: .asciz "STORM-DONE bad_reads="
s_ok:  .asciz "STORM-OK\n"
    .include "funcs32.inc"
