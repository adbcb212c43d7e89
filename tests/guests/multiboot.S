/*
 * multiboot.S: the multiboot v1 probe guest (Multiboot Specification 0.6.96).
 *
 * An ELF32 i386 image loading at 1 MiB (no a.out kludge: a loader must use the program
 * headers). Header flags: PAGE_ALIGN (bit 0: modules on 4 KiB boundaries) and MEMORY_INFO
 * (bit 1: mem_lower/mem_upper required). Entered in 32-bit protected mode, paging off,
 * EAX = 0x2BADB002, EBX = the physical address of the multiboot information structure.
 *
 * Checks: bss magic mem cr0 eflags cs ds memmap flat cmdline initrd (only with a module)
 * layout smp (only with the word "smp" on the command line).
 */
#include "probe.h"

#define PROTO_NAME "multiboot"
#define MB_HEADER_FLAGS 0x00000003

    .section .multiboot, "a"
    .balign 4
    .long 0x1badb002
    .long MB_HEADER_FLAGS
    .long -(0x1badb002 + MB_HEADER_FLAGS)

    .text
    .code32
    .globl _start
_start:
    mov %eax, entry_eax
    mov %ebx, entry_ebx
    ENTRY_STATE

    CHECK_BEGIN bss
    cmpb $0, bss_bad
    REQUIRE e
    CHECK_END

    mov entry_ebx, %ebx
    FACT_HEX mbi, %ebx
    CHECK_BEGIN magic
    cmpl $MB_LOADER_MAGIC, entry_eax
    REQUIRE e
    test %ebx, %ebx
    REQUIRE nz
    CHECK_END
    FACT_HEX magic, entry_eax
    FACT_HEX flags, (%ebx)

    /* mem_lower (KiB below 640 KiB) and mem_upper (KiB from 1 MiB): flags bit 0, which the
     * header's MEMORY_INFO bit makes mandatory; the image must fit below 1 MiB + mem_upper. */
    CHECK_BEGIN mem
    testl $1, (%ebx)
    REQUIRE nz
    jz 1f
    mov 4(%ebx), %eax
    test %eax, %eax
    REQUIRE nz
    cmp $640, %eax
    REQUIRE be
    mov 8(%ebx), %eax
    cmp $(0x400000 - 1024), %eax    /* 1 MiB + mem_upper stays below 4 GiB */
    REQUIRE b
    shl $10, %eax
    add $0x100000, %eax
    cmp $__image_end, %eax
    REQUIRE ae
1:  CHECK_END
    FACT_DEC mem_lower, 4(%ebx)
    FACT_DEC mem_upper, 8(%ebx)

    /* CR0: PE set, PG clear (other bits are undefined by the specification). */
    CHECK_BEGIN cr0
    mov entry_cr0, %eax
    test $1, %eax
    REQUIRE nz
    test $0x80000000, %eax
    REQUIRE z
    CHECK_END
    FACT_HEX cr0, entry_cr0
    FACT_HEX cr4, entry_cr4
    CHECK_BEGIN eflags
    testl $0x20300, entry_eflags    /* IF, TF, VM clear */
    REQUIRE z
    CHECK_END
    FACT_HEX eflags, entry_eflags
    mov $DESC_CODE32, %ecx
    xor %edi, %edi
    call check_cs
    xor %edi, %edi
    call check_ds
    call segment_facts

    /* Memory map: flags bit 6; mmap_length at 44, mmap_addr at 48; entries: size u32 (not
     * counting itself), base_addr u64, length u64, type u32. */
    CHECK_BEGIN memmap
    testl $0x40, (%ebx)
    REQUIRE nz
    jz 3f
    mov 48(%ebx), %esi
    mov %esi, %ebp
    add 44(%ebx), %ebp              /* end of the map */
1:  cmp %ebp, %esi
    jae 3f
    cmpl $0, mm_bad                 /* more entries than kept */
    jne 3f
    cmpl $20, (%esi)                /* an entry holds at least base, length and type */
    REQUIRE ae
    jb 3f
    SAVE(si)
    mov 4(%esi), %eax
    mov 8(%esi), %edx
    mov 12(%esi), %ecx
    mov 20(%esi), %edi
    mov 16(%esi), %esi
    call mm_add
    RESTORE(si)
    mov (%esi), %eax
    lea 4(%esi,%eax), %esi
    jmp 1b
3:  call mm_check
    CHECK_END

    call flat_check

    /* Command line: flags bit 2, cmdline at 16. */
    xor %eax, %eax
    xor %ecx, %ecx
    xor %edx, %edx
    testl $4, (%ebx)
    jz 1f
    mov 16(%ebx), %eax
1:  call take_cmdline

    /* Boot-loader name: flags bit 9, boot_loader_name at 64. */
    testl $0x200, (%ebx)
    jz 1f
    FACT_WORD loader, 64(%ebx)
1:

    /* Modules: flags bit 3, mods_count at 20, mods_addr at 24; entries of 16 bytes:
     * mod_start, mod_end (exclusive), string, reserved. Module 0 is the initrd. */
    xor %eax, %eax
    testl $8, (%ebx)
    jz 1f
    mov 20(%ebx), %eax
1:  mov %eax, mods
    FACT_DEC mods, mods
    cmpl $0, mods
    je 3f
    CHECK_BEGIN initrd
    mov 24(%ebx), %esi
    test %esi, %esi
    REQUIRE nz
    jz 2f
    mov 0(%esi), %eax
    mov 4(%esi), %ecx
    cmp %eax, %ecx
    REQUIRE ae
    jb 2f
    sub %eax, %ecx
    test $0xfff, %eax               /* PAGE_ALIGN was requested */
    REQUIRE z
    call take_initrd
2:  CHECK_END
3:

    /* Layout: the information structure, the memory map, the module list and the GDT stay
     * clear of the image. */
    CHECK_BEGIN layout
    mov %ebx, %eax
    mov $88, %ecx
    call overlaps_image
    test %eax, %eax
    REQUIRE z
    testl $0x40, (%ebx)
    jz 1f
    mov 48(%ebx), %eax
    mov 44(%ebx), %ecx
    call overlaps_image
    test %eax, %eax
    REQUIRE z
1:  mov 24(%ebx), %eax
    mov mods, %ecx
    shl $4, %ecx
    call overlaps_image
    test %eax, %eax
    REQUIRE z
    call gdt_overlaps_image
    test %eax, %eax
    REQUIRE z
    CHECK_END

    mov $s_smp, %edi
    call cmdline_has_word
    test %eax, %eax
    jz 1f
    call smp_check
1:  jmp report_and_exit

    .bss
mods:   .long 0
    .text

#include "smp.inc"
#include "lib.inc"
