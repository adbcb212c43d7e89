/*
 * probe.h: constants and macros shared by the anyboot probe guests.
 *
 * Every guest is one translation unit: its .S file includes this header first and
 * lib.inc (plus smp.inc) at the end, all through the C preprocessor. The library code is
 * written once for 32-bit protected mode and 64-bit long mode: it uses 32-bit registers
 * and addresses only (everything a guest touches lies below 4 GiB, and in long mode a
 * 32-bit write zero-extends into the full register), and W(reg) where the full register
 * width is required (push/pop, indirect calls, control registers). Define LONG64 when the
 * code is assembled as .code64.
 *
 * Register convention of the library routines: arguments in eax, ecx, edx, esi, edi;
 * result in eax; eax, ecx, edx, esi and edi are clobbered; ebx and ebp are preserved.
 */

#define COM1            0x3f8
#define COM1_LSR        0x3fd
#define LSR_THRE        0x20
#define EXIT_PORT       0xf4
#define STATUS_PASS     0x10    /* QEMU isa-debug-exit: exit status (0x10 << 1) | 1 = 33 */
#define STATUS_FAIL     0x11    /* exit status 35 */

#define CMDLINE_MAX     0x10000 /* longest command line the guests accept (64 KiB) */
#define MM_MAX          128     /* memory-map entries kept */
#define MM_ENTRY        24      /* normalized entry: base (u64), end (u64), type (u32), pad */
#define TRAMPOLINE      0x10000 /* AP real-mode trampoline page (SIPI vector 0x10) */

#define PVH_MAGIC       0x336ec578
#define MB_LOADER_MAGIC 0x2badb002
#define HDRS_MAGIC      0x53726448  /* "HdrS" */

/* Expected high dwords of flat 4 GiB descriptors, and the bits compared (the accessed
 * bit 8 and AVL bit 20 are ignored; for code also the conforming bit 10; a loader's
 * descriptors may or may not have the accessed bit set, the CPU sets it on a load). */
#define DESC_LO_FLAT    0x0000ffff
#define DESC_CODE32     0x00cf9a00
#define DESC_CODE64     0x00af9a00
#define DESC_DATA       0x00cf9200
#define DESC_MASK_CODE  0xffeffaff
#define DESC_MASK_DATA  0xffeffeff

#ifdef LONG64
#define W(x) %r##x
#else
#define W(x) %e##x
#endif
#define SAVE(x) push W(x)
#define RESTORE(x) pop W(x)

/* CHECK_BEGIN name ... REQUIRE cc ... CHECK_END: one named check. The name is added to the
 * report's checks= list; if any REQUIRE in between saw its condition false (flags from the
 * preceding cmp/test), also to fails=. */
.macro CHECK_BEGIN name
    .pushsection .rodata
.Lcheck_name\@: .asciz "\name"
    .popsection
    movl $.Lcheck_name\@, cur_check
    movl $0, cur_failed
.endm

.macro REQUIRE cc
    j\cc .Lrequire_ok\@
    movl $1, cur_failed
.Lrequire_ok\@:
.endm

.macro FAIL_CHECK
    movl $1, cur_failed
.endm

.macro CHECK_END
    call check_end
.endm

/* FACT_HEX key, src: append " key=0x<hex>" to the report's facts (src: any mov source). */
.macro FACT_HEX key, src
    .pushsection .rodata
.Lfact\@: .asciz " \key="
    .popsection
    mov \src, %eax
    mov $.Lfact\@, %esi
    call fact_hex
.endm

/* FACT_HEX32W key, src: " key=0x<exactly 8 hex digits>" (checksums). */
.macro FACT_HEX32W key, src
    .pushsection .rodata
.Lfact\@: .asciz " \key="
    .popsection
    mov \src, %eax
    mov $.Lfact\@, %esi
    call fact_hex32w
.endm

/* FACT_HEX64 key, lo, hi: a 64-bit value from two 32-bit halves. */
.macro FACT_HEX64 key, lo, hi
    .pushsection .rodata
.Lfact\@: .asciz " \key="
    .popsection
    mov \lo, %eax
    mov \hi, %edx
    mov $.Lfact\@, %esi
    call fact_hex64
.endm

/* FACT_DEC key, src: append " key=<decimal>". */
.macro FACT_DEC key, src
    .pushsection .rodata
.Lfact\@: .asciz " \key="
    .popsection
    mov \src, %eax
    mov $.Lfact\@, %esi
    call fact_dec
.endm

/* FACT_WORD key, src: append " key=<the NUL-terminated string at src>", spaces and
 * control characters replaced by '_' so the value stays one word. */
.macro FACT_WORD key, src
    .pushsection .rodata
.Lfact\@: .asciz " \key="
    .popsection
    mov \src, %eax
    mov $.Lfact\@, %esi
    call fact_word
.endm

/* LT64 alo, ahi, blo, bhi, tmp: CF = (a < b), unsigned 64-bit, from 32-bit halves. */
.macro LT64 alo, ahi, blo, bhi, tmp
    mov \alo, \tmp
    cmp \blo, \tmp
    mov \ahi, \tmp
    sbb \bhi, \tmp
.endm

/* ENTRY_STATE: first thing after the guest has saved the registers the loader handed over.
 * Records EFLAGS, CR0/CR3/CR4, the segment selectors, GDTR and the address the code runs at
 * (into .data: .bss must not be written before it is checked), checks that .bss reads zero,
 * then switches to the .bss stack. The PVH and multiboot ABIs promise no stack, so EFLAGS is
 * read on a small stack in .data. */
.macro ENTRY_STATE
    mov $entry_stack_top, %esp
    pushf
    pop W(ax)
    mov %eax, entry_eflags
    cld
    mov %cr0, W(ax)
    mov %eax, entry_cr0
    mov %cr3, W(ax)
    mov %eax, entry_cr3
    mov %cr4, W(ax)
    mov %eax, entry_cr4
    mov %cs, entry_cs
    mov %ds, entry_ds
    mov %es, entry_es
    mov %ss, entry_ss
    sgdt entry_gdtr
    call entry_here_label
entry_here_label:
    pop W(ax)
    mov %eax, entry_here
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    shr $2, %ecx
    xor %eax, %eax
    repe scasl
    setne bss_bad
    mov $stack_top, %esp
.endm
