/* Extra: 64-bit instructions that reportedly break full Linux kernels on this host.
 * The VMM writes the test number to the u32 at 0x5000:
 *   1 cmpxchg16b   2 xsave+xrstor (sets CR4.OSXSAVE, XCR0=x87|SSE)   3 int3 via 64-bit IDT
 *   4 fxsave+fxrstor   5 SSE arithmetic   6 cpuid+rdtsc   7 compute loop timed by rdtsc
 *   8 ud2 -> #UD handler -> iretq */
    .include "macros64.inc"
    .code64
    .text
    .globl _start
_start:
    mov $0x80000, %rsp
    mov 0x5000, %eax
    PUTS s_test
    HEX %rax
    PUTS s_nl
    cmp $1, %eax
    je t_cx16
    cmp $2, %eax
    je t_xsave
    cmp $3, %eax
    je t_int3
    cmp $4, %eax
    je t_fxsave
    cmp $5, %eax
    je t_sse
    cmp $6, %eax
    je t_cpuid
    cmp $7, %eax
    je t_compute
    cmp $8, %eax
    je t_ud
    PUTS s_unknown
    EXIT FAIL

t_cx16:
    lea buf(%rip), %rdi
    movq $1, (%rdi)
    movq $2, 8(%rdi)
    mov $1, %eax
    mov $2, %edx
    mov $3, %ebx
    mov $4, %ecx
    cmpxchg16b (%rdi)
    jne bad
    cmpq $3, (%rdi)
    jne bad
    cmpq $4, 8(%rdi)
    jne bad
    jmp ok

t_sse_on:
    mov %cr0, %rax
    and $~(1 << 2), %rax            /* clear EM */
    or $(1 << 1), %rax              /* set MP */
    mov %rax, %cr0
    mov %cr4, %rax
    or $((1 << 9) | (1 << 10)), %rax    /* OSFXSR | OSXMMEXCPT */
    mov %rax, %cr4
    ret

t_xsave:
    call t_sse_on
    mov %cr4, %rax
    or $(1 << 18), %rax             /* OSXSAVE */
    mov %rax, %cr4
    PUTS s_cr4set
    xor %ecx, %ecx
    mov $3, %eax                    /* XCR0 = x87 | SSE */
    xor %edx, %edx
    xsetbv
    PUTS s_xsetbv
    lea xbuf(%rip), %rdi
    mov $3, %eax
    xor %edx, %edx
    xsave (%rdi)
    PUTS s_xsave
    mov $3, %eax
    xor %edx, %edx
    xrstor (%rdi)
    PUTS s_xrstor
    jmp ok

t_fxsave:                           /* also shows the FCW/MXCSR the VMM's set_fpu produced */
    lea xbuf(%rip), %rdi
    mov %cr4, %rax
    or $(1 << 9), %rax              /* OSFXSR so fxsave includes MXCSR/XMM */
    mov %rax, %cr4
    fxsave (%rdi)
    PUTS s_fcw
    movzwl (%rdi), %eax
    HEX %rax
    PUTS s_mxcsr
    mov 24(%rdi), %eax
    HEX %rax
    PUTS s_nl
    fxrstor (%rdi)
    jmp ok

t_sse:
    call t_sse_on
    mov $0x3f800000, %eax           /* 1.0f */
    movd %eax, %xmm0
    addss %xmm0, %xmm0
    movd %xmm0, %eax
    cmp $0x40000000, %eax           /* 2.0f */
    jne bad
    jmp ok

t_cpuid:
    xor %eax, %eax
    cpuid
    PUTS s_vendor
    HEX %rbx
    rdtsc
    PUTS s_tsc
    HEX %rax
    PUTS s_nl
    jmp ok

t_compute:                          /* 10M x (dec; jnz), timed with rdtsc */
    rdtsc
    shl $32, %rdx
    or %rax, %rdx
    mov %rdx, %r8
    mov $10000000, %ecx
1:  dec %ecx
    jnz 1b
    rdtsc
    shl $32, %rdx
    or %rax, %rdx
    sub %r8, %rdx
    PUTS s_cycles
    HEX %rdx
    PUTS s_nl
    jmp ok

build_idt64:
    /* 256 x 16-byte interrupt gates at 0x1000 -> h_default; 3 -> h_int3; 6 -> h_ud */
    mov $0x1000, %rdi
    xor %ecx, %ecx
1:  lea h_default(%rip), %rax
    cmp $3, %ecx
    jne 2f
    lea h_int3(%rip), %rax
2:  cmp $6, %ecx
    jne 3f
    lea h_ud(%rip), %rax
3:  mov %rax, %rdx
    and $0xffff, %edx
    xor %ebx, %ebx
    mov %cs, %bx
    shl $16, %ebx
    or %rbx, %rdx
    movabs $0x00008e0000000000, %rbx
    or %rbx, %rdx
    mov %rax, %rbx
    shr $16, %rbx
    and $0xffff, %ebx
    shl $48, %rbx
    or %rbx, %rdx
    mov %rdx, (%rdi)
    shr $32, %rax
    mov %rax, 8(%rdi)
    add $16, %rdi
    inc %ecx
    cmp $256, %ecx
    jne 1b
    lidt idtr64(%rip)
    ret

t_int3:
    call build_idt64
    int3
    PUTS s_back
    jmp ok
t_ud:
    call build_idt64
    ud2
    PUTS s_back
    jmp ok
h_int3:
    PUTS s_int3
    iretq
h_ud:
    PUTS s_ud
    addq $2, (%rsp)                 /* skip ud2 */
    PUTS s_iretq
    iretq
h_default:
    PUTS s_unexp
    EXIT FAIL

ok:
    PUTS s_ok
    EXIT PASS
bad:
    PUTS s_bad
    EXIT FAIL

    .p2align 3
idtr64:
    .word 256 * 16 - 1
    .quad 0x1000
s_test:    .asciz "insn-test="
s_unknown: .asciz "UNKNOWN-TEST\n"
s_cr4set:  .asciz "cr4.osxsave-set "
s_xsetbv:  .asciz "xsetbv-ok "
s_xsave:   .asciz "xsave-ok "
s_xrstor:  .asciz "xrstor-ok\n"
s_vendor:  .asciz "cpuid0.ebx="
s_tsc:     .asciz " tsc="
s_fcw:     .asciz "fxsave: fcw="
s_mxcsr:   .asciz " mxcsr="
s_cycles:  .asciz "tsc-cycles-for-20M-insns="
s_back:    .asciz "BACK-FROM-HANDLER\n"
s_int3:    .asciz "INT3-HANDLED\n"
s_ud:      .asciz "UD-HANDLED "
s_iretq:   .asciz "about-to-iretq\n"
s_unexp:   .asciz "UNEXPECTED-EXCEPTION\n"
s_ok:      .asciz "INSN-OK\n"
s_bad:     .asciz "INSN-BAD\n"
    .p2align 6
xbuf: .fill 4096, 1, 0
    .p2align 4
buf:  .fill 16, 1, 0
    .include "funcs64.inc"
