/* Q5a/b: hostile guests and exception delivery. Variant chosen by -D at build time:
 *   ZERO_IDT_INT3 : lidt with limit 0, then int3       (triple fault expected)
 *   ZERO_IDT_UD2  : lidt with limit 0, then ud2        (triple fault expected)
 *   NO_IDT_INT3   : IDTR untouched (KVM reset value base 0/limit 0xffff, zeroed memory), int3
 *   IDT_INT3      : valid IDT, int3 (0xCC)             (handler expected)
 *   IDT_INTN3     : valid IDT, int $3 (0xCD 0x03)      (handler expected)
 *   IDT_UD2       : valid IDT, ud2                     (handler expected)
 *   IDT_INT80     : valid IDT, int $0x80               (handler expected) */
    .include "macros32.inc"
    .code32
    .text
    .globl _start
_start:
    mov $0x80000, %esp
    PUTS s_before
#if defined(ZERO_IDT_INT3) || defined(ZERO_IDT_UD2)
    lidt zero_idtr
#endif
#if defined(IDT_INT3) || defined(IDT_INTN3) || defined(IDT_UD2) || defined(IDT_INT80)
#define HAVE_IDT 1
    call build_idt32
    mov $3, %ecx
    mov $h_int3, %eax
    call set_gate32
    mov $6, %ecx
    mov $h_ud, %eax
    call set_gate32
    mov $0x80, %ecx
    mov $h_int80, %eax
    call set_gate32
#endif
#if defined(ZERO_IDT_UD2) || defined(IDT_UD2)
    ud2
#elif defined(IDT_INTN3)
    .byte 0xcd, 0x03            /* int $3, two-byte form */
#elif defined(IDT_INT80)
    int $0x80
#else
    int3                        /* 0xcc */
#endif
#ifdef HAVE_IDT
    PUTS s_back
    EXIT PASS
#endif
    PUTS s_survived
    EXIT FAIL

#ifdef HAVE_IDT
h_int3:
    PUTS s_int3
    iret
h_int80:
    PUTS s_int80
    iret
h_ud:
    PUTS s_ud
    addl $2, (%esp)             /* skip the 2-byte ud2 */
    iret
#endif

    .p2align 2
zero_idtr:
    .word 0
    .long 0
s_before:   .asciz "BEFORE-FAULT\n"
s_survived: .asciz "SURVIVED-FAULT\n"
s_int3:     .asciz "INT3-HANDLED\n"
s_int80:    .asciz "INT80-HANDLED\n"
s_ud:       .asciz "UD-HANDLED\n"
s_back:     .asciz "RETURNED-FROM-HANDLER\n"
    .include "funcs32.inc"
