/*
 * pvh.S: the PVH probe guest (Xen PVH boot ABI, docs/misc/pvh.pandoc in Xen).
 *
 * Built twice from this file: pvh32 (an ELF32 i386 image, 4-byte PHYS32_ENTRY) and pvh64
 * (an ELF64 x86-64 image, 8-byte PHYS32_ENTRY as Linux emits it). Both load at 1 MiB and
 * are entered in 32-bit protected mode with paging off and EBX = the physical address of
 * struct hvm_start_info; all code is 32-bit.
 *
 * Checks: bss magic version cr0 cr4 eflags cs ds memmap flat cmdline initrd (only with a
 * module) layout smp (only with the word "smp" on the command line).
 */
#include "probe.h"

#define PROTO_NAME "pvh"

    .section .note.Xen, "a", @note
    .balign 4
    .long 4                     /* namesz: "Xen\0" */
    .long 2f - 1f               /* descsz */
    .long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
1:
#ifdef PVH64
    .quad pvh_start
#else
    .long pvh_start
#endif
2:
    .balign 4

    .text
    .code32
    .globl _start
_start:
pvh_start:
    mov %ebx, entry_ebx
    ENTRY_STATE

    CHECK_BEGIN bss
    cmpb $0, bss_bad
    REQUIRE e
    CHECK_END

    /* struct hvm_start_info */
    mov entry_ebx, %ebx
    FACT_HEX start_info, %ebx
    CHECK_BEGIN magic
    test %ebx, %ebx
    REQUIRE nz
    cmpl $PVH_MAGIC, (%ebx)
    REQUIRE e
    CHECK_END
    FACT_HEX magic, (%ebx)
    cmpl $0, cur_failed
    jne cpu_state               /* not a start_info: report the CPU state only */

    CHECK_BEGIN version
    cmpl $1, 4(%ebx)
    REQUIRE ae
    CHECK_END
    FACT_DEC version, 4(%ebx)
    FACT_HEX flags, 8(%ebx)
    FACT_HEX64 rsdp, 32(%ebx), 36(%ebx)

cpu_state:
    /* CR0: PE set, every other writable bit clear (ET is hard-wired); CR4 = 0. */
    CHECK_BEGIN cr0
    mov entry_cr0, %eax
    and $~0x10, %eax
    cmp $1, %eax
    REQUIRE e
    CHECK_END
    FACT_HEX cr0, entry_cr0
    CHECK_BEGIN cr4
    cmpl $0, entry_cr4
    REQUIRE e
    CHECK_END
    FACT_HEX cr4, entry_cr4
    /* EFLAGS: IF, TF and VM clear. */
    CHECK_BEGIN eflags
    testl $0x20300, entry_eflags
    REQUIRE z
    CHECK_END
    FACT_HEX eflags, entry_eflags
    mov $DESC_CODE32, %ecx
    xor %edi, %edi
    call check_cs
    xor %edi, %edi
    call check_ds
    call segment_facts
    cmpl $PVH_MAGIC, (%ebx)
    jne done

    /* Memory map (version 1): memmap_paddr at 40, memmap_entries at 48; entries of 24 bytes:
     * addr u64, size u64, type u32, reserved u32. */
    CHECK_BEGIN memmap
    cmpl $1, 4(%ebx)
    REQUIRE ae
    jb 2f
    mov 40(%ebx), %esi
    cmpl $0, 44(%ebx)
    REQUIRE e
    jne 2f
    test %esi, %esi
    REQUIRE nz
    jz 2f
    mov 48(%ebx), %ebp
    cmp $MM_MAX, %ebp
    REQUIRE be
    ja 2f
    test %ebp, %ebp
    jz 2f
1:  SAVE(si)
    mov 0(%esi), %eax
    mov 4(%esi), %edx
    mov 8(%esi), %ecx
    mov 16(%esi), %edi
    mov 12(%esi), %esi
    call mm_add
    RESTORE(si)
    add $24, %esi
    dec %ebp
    jnz 1b
2:  call mm_check
    CHECK_END

    call flat_check

    /* Command line: cmdline_paddr at 24 (u64). */
    mov 24(%ebx), %eax
    xor %ecx, %ecx
    xor %edx, %edx
    cmpl $0, 28(%ebx)
    je 1f
    mov $2, %edx                /* above 4 GiB */
1:  call take_cmdline

    /* Modules: nr_modules at 12, modlist_paddr at 16; entries of 32 bytes: paddr u64,
     * size u64, cmdline_paddr u64, reserved u64. Module 0 is the initrd. */
    FACT_DEC mods, 12(%ebx)
    cmpl $0, 12(%ebx)
    je 3f
    CHECK_BEGIN initrd
    mov 16(%ebx), %esi
    cmpl $0, 20(%ebx)
    REQUIRE e
    test %esi, %esi
    REQUIRE nz
    jz 2f
    cmpl $0, 4(%esi)
    REQUIRE e
    cmpl $0, 12(%esi)
    REQUIRE e
    mov 0(%esi), %eax
    mov 8(%esi), %ecx
    call take_initrd
2:  CHECK_END
3:

    /* Layout: start_info, the module list, the memory map and the GDT stay clear of the
     * image. */
    CHECK_BEGIN layout
    mov %ebx, %eax
    mov $56, %ecx
    call overlaps_image
    test %eax, %eax
    REQUIRE z
    mov 16(%ebx), %eax
    mov 12(%ebx), %ecx
    shl $5, %ecx
    call overlaps_image
    test %eax, %eax
    REQUIRE z
    cmpl $1, 4(%ebx)
    jb 1f
    mov 40(%ebx), %eax
    mov 48(%ebx), %ecx
    imul $24, %ecx, %ecx
    call overlaps_image
    test %eax, %eax
    REQUIRE z
1:  call gdt_overlaps_image
    test %eax, %eax
    REQUIRE z
    CHECK_END

    mov $s_smp, %edi
    call cmdline_has_word
    test %eax, %eax
    jz done
    call smp_check

done:
    jmp report_and_exit

#include "smp.inc"
#include "lib.inc"
