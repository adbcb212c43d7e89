/*
 * behave.S: the "behaviour" guest. A PVH ELF32 image (like pvh32) that does one thing,
 * named by the first word of its command line, so that tests/kvm_exits.rs can provoke every
 * way `anyboot run` ends and check its exit status and message.
 *
 * Before anything else it prints "ANYBOOT-BEHAVE <word> start" on COM1 (the test knows the
 * guest ran), then:
 *
 *   exit=N     outl N (decimal or 0x hex, 32 bits) to port 0xf4: status ((N << 1) | 1) & 0xff
 *   halt       cli; hlt: status 0 (every vCPU halted with interrupts off)
 *   smp-halt   the same, meant for --cpus 2: the AP is never started (it waits for INIT/SIPI)
 *   idle       sti; hlt: halted with interrupts on, and nothing programmed to interrupt it:
 *              not halted for good, so only --timeout ends it (status 124)
 *   triple     a zero-limit IDT, then ud2: #UD, #DF, triple fault: status 3
 *   reset      0xfe to port 0x64 (i8042 pulse reset): status 3
 *   int3       a zero-limit IDT, then int3: a triple fault on real KVM (status 3); an emulation
 *              failure (status 4) where KVM emulates guest code in software
 *   loop       jmp . forever: only --timeout ends it (status 124)
 *   storm      port and MMIO accesses nobody claims, reads checked to be all ones; reports
 *              "ANYBOOT-BEHAVE storm bad_reads=..." and exits with 0x10 (33) when none was
 *              wrong, 0x11 (35) otherwise
 *   rep-ins    16 bytes of rep insb from COM1's LSR (KVM reads ahead: one exit asks for all
 *              16): each must show the transmitter empty (0x60) as a single inb does;
 *              reports "ANYBOOT-BEHAVE rep-ins lsr=<32 hex digits>", exits 0x10, else 0x11
 *   flood=N    N MiB of a known pattern to COM1 as fast as polling LSR.THRE allows, then
 *              "ANYBOOT-BEHAVE flood done bytes=..." and exit 0x10
 *   scribble   zeroes every boot structure the VMM wrote (start_info, memory map, GDT, IDT,
 *              TSS, command line, MP table), then "ANYBOOT-BEHAVE scribble done", exit 0x10
 *   anything else: "ANYBOOT-BEHAVE unknown", exit 0x11
 *
 * 32-bit protected mode throughout, no interrupt delivery ever (no int n, no iret): the host's
 * KVM may emulate every guest instruction (docs/spikes/kvm-probe-findings.md).
 */
#include "probe.h"

#define I8042_CMD       0x64
#define WORD_MAX        63      /* longest first word kept (plus its NUL) */
#define IOAPIC_BASE     0xfec00000  /* KVM's in-kernel IOAPIC: 0x100 bytes */
#define LAPIC_BASE      0xfee00000  /* KVM's in-kernel local APIC: one page */
#define LOW_RAM_TOP     0xc0000000  /* anyboot's 32-bit MMIO hole starts here */
#define MIB             0x100000

    .section .note.Xen, "a", @note
    .balign 4
    .long 4                     /* namesz: "Xen\0" */
    .long 4                     /* descsz */
    .long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long _start

    .text
    .code32
    .globl _start
_start:
    cli
    cld
    mov $stack_top, %esp
    mov %ebx, start_info

    /* The command line: hvm_start_info.cmdline_paddr (u64 at 24), when start_info is one. */
    xor %esi, %esi
    test %ebx, %ebx
    jz 1f
    cmpl $PVH_MAGIC, (%ebx)
    jne 1f
    cmpl $0, 28(%ebx)
    jne 1f
    mov 24(%ebx), %esi
1:  mov %esi, cmdline

    /* Copy its first blank-separated word into word_buf. */
    mov $word_buf, %edi
    test %esi, %esi
    jz 4f
2:  mov (%esi), %al             /* skip leading blanks */
    cmp $' ', %al
    jne 3f
    inc %esi
    jmp 2b
3:  mov (%esi), %al
    test %al, %al
    jz 4f
    cmp $' ', %al
    je 4f
    cmp $(word_buf + WORD_MAX), %edi
    jae 4f
    mov %al, (%edi)
    inc %esi
    inc %edi
    jmp 3b
4:  movb $0, (%edi)

    mov $s_marker, %esi
    call puts
    mov $word_buf, %esi
    call puts
    mov $s_start, %esi
    call puts

    /* Dispatch on the word. */
    mov $s_halt, %edi
    call word_is
    jz do_halt
    mov $s_smp_halt, %edi
    call word_is
    jz do_halt
    mov $s_idle, %edi
    call word_is
    jz do_idle
    mov $s_triple, %edi
    call word_is
    jz do_triple
    mov $s_reset, %edi
    call word_is
    jz do_reset
    mov $s_int3, %edi
    call word_is
    jz do_int3
    mov $s_loop, %edi
    call word_is
    jz do_loop
    mov $s_storm, %edi
    call word_is
    jz do_storm
    mov $s_scribble, %edi
    call word_is
    jz do_scribble
    mov $s_rep_ins, %edi
    call word_is
    jz do_rep_ins
    mov $s_exit_eq, %edi
    call word_prefix
    jz do_exit
    mov $s_flood_eq, %edi
    call word_prefix
    jz do_flood
unknown:
    mov $s_marker, %esi
    call puts
    mov $s_unknown, %esi
    call puts
    mov $STATUS_FAIL, %eax
    jmp exit_with

/* exit=N: esi points after "exit=". */
do_exit:
    call parse_num
    jc unknown
exit_with:                      /* eax = the value, written as one 32-bit access */
    mov $EXIT_PORT, %dx
    out %eax, (%dx)
    /* fall through: halt if the port did not end the run */
do_halt:
    cli
1:  hlt
    jmp 1b

do_idle:
    sti
1:  hlt
    jmp 1b

do_triple:
    lidt zero_idtr
    ud2
    jmp do_halt

do_int3:
    lidt zero_idtr
    int3
    jmp do_halt

do_reset:
    mov $0xfe, %al
    out %al, $I8042_CMD
    jmp do_halt

do_loop:
1:  jmp 1b

/* ---------------------------------------------------------------------------------------
 * storm: every I/O port but the claimed ones (COM1 0x3f8-0x3ff, i8042 0x60/0x64, debug exit
 * 0xf4-0xf7) gets a byte write then a byte read; the read must give 0xff unless KVM's
 * in-kernel devices own the port (PIC 0x20/0x21/0xa0/0xa1, ELCR 0x4d0/0x4d1, PIT 0x40-0x43,
 * speaker 0x61: accessed, not checked). Then string and wide reads of an unclaimed port, then
 * MMIO: a dword write and a dword read-back (all ones: writes are dropped) every MiB from the
 * end of RAM to 3 GiB, and every 64 KiB from 3 GiB to the top of 4 GiB, where the probe moves
 * 4 KiB up in the blocks of the in-kernel IOAPIC (0xfec00000, 0x100 bytes) and local APIC
 * (0xfee00000, one page). KVM's TSS and identity-map pages (0xfffbc000-0xfffbffff) lie
 * between probes.
 */
do_storm:
    xor %ebx, %ebx              /* port */
.Lport:
    cmp $0x3f8, %ebx
    jb 1f
    cmp $0x3ff, %ebx
    jbe .Lport_next
1:  cmp $0x60, %ebx
    je .Lport_next
    cmp $0x64, %ebx
    je .Lport_next
    cmp $0xf4, %ebx
    jb 2f
    cmp $0xf7, %ebx
    jbe .Lport_next
2:  mov %bx, %dx
    xor %eax, %eax
    out %al, (%dx)
    mov $0xa5, %al
    in (%dx), %al
    mov %ebx, %ecx
    call port_in_kernel
    jnz .Lport_next
    incl port_reads
    cmp $0xff, %al
    je .Lport_next
    mov %ebx, %eax
    call bad_read
.Lport_next:
    inc %ebx
    cmp $0x10000, %ebx
    jb .Lport

    /* String reads (KVM reads ahead: one exit for several bytes) and wide reads. */
    mov $0x510, %dx
    mov $str_buf, %edi
    mov $16, %ecx
    rep insb
    call check_str_buf
    mov $0x510, %dx
    mov $str_buf, %edi
    mov $4, %ecx
    rep insl
    call check_str_buf
    mov $0x512, %dx
    in (%dx), %ax
    incl port_reads
    cmp $0xffff, %ax
    je 3f
    mov %edx, %eax
    call bad_read
3:  mov $0x514, %dx
    in (%dx), %eax
    incl port_reads
    cmp $-1, %eax
    je 4f
    mov %edx, %eax
    call bad_read
4:

    /* MMIO from the end of RAM (below 3 GiB) to 3 GiB, every MiB. */
    call ram_end
    add $(MIB - 1), %eax
    and $~(MIB - 1), %eax
    mov %eax, %ebx
5:  cmp $LOW_RAM_TOP, %ebx
    jae 6f
    call mmio_probe
    add $MIB, %ebx
    jmp 5b

    /* 3 GiB to 4 GiB, every 64 KiB (the last block at 0xffff0000). */
6:  mov $LOW_RAM_TOP, %ebx
7:  mov %ebx, %eax
    cmp $IOAPIC_BASE, %eax
    je 8f
    cmp $LAPIC_BASE, %eax
    jne 9f
8:  add $0x1000, %eax
9:  push %ebx
    mov %eax, %ebx
    call mmio_probe
    pop %ebx
    add $0x10000, %ebx
    jnz 7b                      /* wraps to 0 after 0xffff0000 */

    mov $s_marker, %esi
    call puts
    mov $s_storm_bad, %esi
    call puts
    mov bad_reads, %eax
    call put_dec
    mov $s_port_reads, %esi
    call puts
    mov port_reads, %eax
    call put_dec
    mov $s_mmio_reads, %esi
    call puts
    mov mmio_reads, %eax
    call put_dec
    mov $s_first_bad, %esi
    call puts
    cmpl $0, bad_reads
    jne 1f
    mov $s_dash, %esi
    call puts
    jmp 2f
1:  mov first_bad, %eax
    call put_hex
2:  mov $s_nl, %esi
    call puts
    mov $STATUS_PASS, %eax
    cmpl $0, bad_reads
    je exit_with
    mov $STATUS_FAIL, %eax
    jmp exit_with

/* port_in_kernel: ZF clear (nz) if port ecx belongs to one of KVM's in-kernel devices, whose
 * reads return device state; ZF set otherwise. Preserves eax. */
port_in_kernel:
    cmp $0x20, %ecx
    je 1f
    cmp $0x21, %ecx
    je 1f
    cmp $0xa0, %ecx
    je 1f
    cmp $0xa1, %ecx
    je 1f
    cmp $0x4d0, %ecx
    je 1f
    cmp $0x4d1, %ecx
    je 1f
    cmp $0x61, %ecx
    je 1f
    cmp $0x40, %ecx
    jb 2f
    cmp $0x43, %ecx
    jbe 1f
2:  cmp %ecx, %ecx              /* ZF set: not in the kernel, check the read */
    ret
1:  or $1, %ecx                 /* ZF clear (ecx | 1 is never 0) */
    ret

/* check_str_buf: the 16 bytes of str_buf, read from port 0x510, must be 0xff; then refill
 * it with zeroes. */
check_str_buf:
    mov $str_buf, %esi
    mov $16, %ecx
1:  incl port_reads
    cmpb $0xff, (%esi)
    je 2f
    mov $0x510, %eax
    call bad_read
2:  movb $0, (%esi)
    inc %esi
    dec %ecx
    jnz 1b
    ret

/* mmio_probe: a dword write then a dword read at ebx; the read must be all ones. */
mmio_probe:
    movl $0x5a5a5a5a, (%ebx)
    mov (%ebx), %eax
    incl mmio_reads
    cmp $-1, %eax
    je 1f
    mov %ebx, %eax
    call bad_read
1:  ret

/* bad_read: count a wrong read at port/address eax; remember the first. */
bad_read:
    cmpl $0, bad_reads
    jne 1f
    mov %eax, first_bad
1:  incl bad_reads
    ret

/* ram_end: eax = the highest end of a RAM entry of start_info's memory map below 3 GiB
 * (1 MiB when there is no map). */
ram_end:
    push %ebx
    push %ebp
    mov $MIB, %eax
    mov start_info, %ebx
    test %ebx, %ebx
    jz 9f
    cmpl $PVH_MAGIC, (%ebx)
    jne 9f
    cmpl $1, 4(%ebx)            /* the map is version 1 */
    jb 9f
    cmpl $0, 44(%ebx)
    jne 9f
    mov 40(%ebx), %esi          /* memmap_paddr */
    mov 48(%ebx), %ecx          /* memmap_entries */
    test %ecx, %ecx
    jz 9f
1:  cmpl $1, 16(%esi)           /* RAM */
    jne 2f
    cmpl $0, 4(%esi)            /* starts below 4 GiB */
    jne 2f
    mov (%esi), %edx
    cmp $LOW_RAM_TOP, %edx
    jae 2f
    add 8(%esi), %edx           /* end (the size's high half: a range past 4 GiB) */
    jc 3f
    cmpl $0, 12(%esi)
    jne 3f
    cmp $LOW_RAM_TOP, %edx
    jbe 4f
3:  mov $LOW_RAM_TOP, %edx
4:  cmp %eax, %edx
    jbe 2f
    mov %edx, %eax
2:  add $24, %esi
    dec %ecx
    jnz 1b
9:  pop %ebp
    pop %ebx
    ret

/* ---------------------------------------------------------------------------------------
 * rep-ins: what a 16550 gives a string read of its line status register, 16 times over.
 */
do_rep_ins:
    mov $COM1_LSR, %dx
    mov $str_buf, %edi
    mov $16, %ecx
    rep insb
    mov $s_marker, %esi
    call puts
    mov $s_rep_ins_lsr, %esi
    call puts
    xor %ebx, %ebx              /* index */
    xor %ebp, %ebp              /* bytes without THRE and TEMT */
1:  movzbl str_buf(%ebx), %eax
    mov %eax, %edi
    and $0x60, %edi
    cmp $0x60, %edi
    je 2f
    inc %ebp
2:  push %eax
    shr $4, %eax
    mov hex_digits(%eax), %al
    call putc
    pop %eax
    and $15, %eax
    mov hex_digits(%eax), %al
    call putc
    inc %ebx
    cmp $16, %ebx
    jb 1b
    mov $s_nl, %esi
    call puts
    mov $STATUS_PASS, %eax
    test %ebp, %ebp
    jz exit_with
    mov $STATUS_FAIL, %eax
    jmp exit_with

/* ---------------------------------------------------------------------------------------
 * flood=N: N MiB to COM1. The pattern is 64 bytes (63 printable characters and a newline);
 * byte k of the flood is pattern[k % 64]. Each time LSR says the transmitter is empty the
 * guest sends 16 bytes (a 16550's FIFO depth) with rep outsb.
 */
do_flood:
    call parse_num
    jc unknown
    cmp $4096, %eax             /* under 4 GiB */
    jae unknown
    shl $20, %eax
    mov %eax, flood_bytes
    mov %eax, %ebp              /* bytes left */
    xor %ebx, %ebx              /* offset in the pattern: 0, 16, 32, 48 */
1:  test %ebp, %ebp
    jz 4f
    mov $COM1_LSR, %dx
2:  in (%dx), %al
    test $LSR_THRE, %al
    jz 2b
    mov $16, %ecx
    sub %ecx, %ebp
    lea pattern(%ebx), %esi
    mov $COM1, %dx
    rep outsb
    add $16, %ebx
    and $63, %ebx
    jmp 1b
4:  mov $s_marker, %esi
    call puts
    mov $s_flood_done, %esi
    call puts
    mov flood_bytes, %eax
    call put_dec
    mov $s_nl, %esi
    call puts
    mov $STATUS_PASS, %eax
    jmp exit_with

/* ---------------------------------------------------------------------------------------
 * scribble: zero what the VMM wrote for the boot: the first 64 KiB (GDT at 0x500, IDT, TSS,
 * start_info at 0x6000, module list, memory map at 0x7000, page tables), the command line
 * area at 0x20000, the EBDA and MP table (0x9f000-0xa2000), and wherever start_info and the
 * command line actually are. A VMM that reads any of it back after the start would see
 * zeroes; anyboot must not care.
 */
do_scribble:
    mov cmdline, %esi           /* the command line's length, before it goes */
    xor %ebp, %ebp
    test %esi, %esi
    jz 2f
1:  cmpb $0, (%esi,%ebp)
    je 2f
    inc %ebp
    cmp $CMDLINE_MAX, %ebp
    jb 1b
2:  mov cmdline, %edi
    lea 1(%ebp), %ecx
    test %edi, %edi
    jz 3f
    call zero_range
3:  mov start_info, %edi
    and $~0xfff, %edi
    mov $0x1000, %ecx
    call zero_range
    xor %edi, %edi
    mov $0x10000, %ecx
    call zero_range
    mov $0x20000, %edi
    mov $CMDLINE_MAX, %ecx
    call zero_range
    mov $0x9f000, %edi
    mov $0x3000, %ecx
    call zero_range
    mov $s_marker, %esi
    call puts
    mov $s_scribble_done, %esi
    call puts
    mov $STATUS_PASS, %eax
    jmp exit_with

/* zero_range: zero ecx bytes at edi unless they reach into this image. */
zero_range:
    lea (%edi,%ecx), %eax
    cmp $__image_start, %eax
    jbe 1f
    cmp $__image_end, %edi
    jb 2f
1:  xor %eax, %eax
    rep stosb
2:  ret

/* ---------------------------------------------------------------------------------------
 * Helpers
 */

/* word_is: ZF set if word_buf equals the NUL-terminated string at edi. */
word_is:
    mov $word_buf, %esi
1:  mov (%esi), %al
    cmp (%edi), %al
    jne 2f
    test %al, %al
    jz 2f                       /* equal through the NUL: ZF set */
    inc %esi
    inc %edi
    jmp 1b
2:  ret

/* word_prefix: ZF set if word_buf starts with the string at edi; then esi = the rest. */
word_prefix:
    mov $word_buf, %esi
1:  mov (%edi), %al
    test %al, %al
    jz 2f
    cmp (%esi), %al
    jne 3f
    inc %esi
    inc %edi
    jmp 1b
2:  cmp %al, %al                /* ZF set */
3:  ret

/* parse_num: eax = the number at esi (decimal, or hex after 0x), running to the NUL; CF set
 * if it is empty or has another character. Wraps modulo 2^32. */
parse_num:
    xor %eax, %eax
    xor %ecx, %ecx              /* digits seen */
    mov $10, %edi
    cmpb $'0', (%esi)
    jne 1f
    movb 1(%esi), %dl
    or $0x20, %dl
    cmp $'x', %dl
    jne 1f
    mov $16, %edi
    add $2, %esi
1:  movzbl (%esi), %edx
    test %edx, %edx
    jz 5f
    sub $'0', %edx
    cmp $10, %edx
    jb 3f
    cmp $16, %edi
    jne 6f
    movzbl (%esi), %edx
    or $0x20, %edx
    sub $'a', %edx
    cmp $6, %edx
    jae 6f
    add $10, %edx
3:  imul %edi, %eax
    add %edx, %eax
    inc %ecx
    inc %esi
    jmp 1b
5:  test %ecx, %ecx
    jz 6f
    clc
    ret
6:  stc
    ret

/* putc: send al on COM1 once LSR says the transmitter holding register is empty (bounded
 * wait). Clobbers eax, ecx, edx. */
putc:
    mov %al, %ah
    mov $COM1_LSR, %dx
    mov $100000, %ecx
1:  in (%dx), %al
    test $LSR_THRE, %al
    jnz 2f
    dec %ecx
    jnz 1b
2:  mov $COM1, %dx
    mov %ah, %al
    out %al, (%dx)
    ret

/* puts: send the NUL-terminated string at esi. */
puts:
1:  mov (%esi), %al
    test %al, %al
    jz 2f
    call putc
    inc %esi
    jmp 1b
2:  ret

/* put_dec: send eax in decimal. */
put_dec:
    mov $dec_end, %edi
    mov $10, %ecx
1:  xor %edx, %edx
    div %ecx
    add $'0', %dl
    dec %edi
    mov %dl, (%edi)
    test %eax, %eax
    jnz 1b
    mov %edi, %esi
    movb $0, dec_end
    jmp puts

/* put_hex: send eax as 0x and 8 hex digits. */
put_hex:
    mov %eax, %ebp
    mov $s_0x, %esi
    call puts
    mov $8, %ebx
1:  rol $4, %ebp
    mov %ebp, %eax
    and $15, %eax
    mov hex_digits(%eax), %al
    call putc
    dec %ebx
    jnz 1b
    ret

    .section .rodata
s_marker:       .asciz "ANYBOOT-BEHAVE "
s_start:        .asciz " start\n"
s_nl:           .asciz "\n"
s_unknown:      .asciz "unknown\n"
s_halt:         .asciz "halt"
s_smp_halt:     .asciz "smp-halt"
s_idle:         .asciz "idle"
s_triple:       .asciz "triple"
s_reset:        .asciz "reset"
s_int3:         .asciz "int3"
s_loop:         .asciz "loop"
s_storm:        .asciz "storm"
s_scribble:     .asciz "scribble"
s_rep_ins:      .asciz "rep-ins"
s_rep_ins_lsr:  .asciz "rep-ins lsr="
s_exit_eq:      .asciz "exit="
s_flood_eq:     .asciz "flood="
s_storm_bad:    .asciz "storm bad_reads="
s_port_reads:   .asciz " port_reads="
s_mmio_reads:   .asciz " mmio_reads="
s_first_bad:    .asciz " first_bad="
s_dash:         .asciz "-"
s_0x:           .asciz "0x"
s_flood_done:   .asciz "flood done bytes="
s_scribble_done: .asciz "scribble done\n"
hex_digits:     .ascii "0123456789abcdef"
    .balign 16
pattern:        /* 64 bytes: 63 printable characters and a newline */
    .ascii "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ#\n"
    .balign 8
zero_idtr:      .word 0
                .long 0

    .bss
    .balign 16
stack:          .skip 4096
stack_top:
start_info:     .long 0
cmdline:        .long 0
flood_bytes:    .long 0
bad_reads:      .long 0
port_reads:     .long 0
mmio_reads:     .long 0
first_bad:      .long 0
word_buf:       .skip WORD_MAX + 1
str_buf:        .skip 16
dec_buf:        .skip 11
dec_end:        .skip 1

    .section .note.GNU-stack, "", @progbits
