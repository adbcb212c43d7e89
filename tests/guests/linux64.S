/*
 * linux64.S: the Linux 64-bit boot protocol probe guest (Documentation/arch/x86/boot.rst).
 *
 * Built twice from this file:
 * - elf64: an ELF64 x86-64 image loading at 1 MiB, entered at e_entry. It carries a
 *   Linux-owned ELF note (LINUX_ELFNOTE_BUILD_SALT), which is what makes a loader treat an
 *   ELF as a Linux vmlinux; it has no PVH note.
 * - bzimage64 (-DBZIMAGE, linked by bzimage.ld into a flat file): boot sector and one setup
 *   sector carrying the setup header (protocol 2.15, LOADED_HIGH, XLF_KERNEL_64, not
 *   relocatable, loads at code32_start = 1 MiB), then the protected-mode part: a 32-bit
 *   entry at its start that only reports it was used, the 64-bit entry at +0x200, and a
 *   gzip payload (the elf64 guest) with its 4-byte size trailer, as a real bzImage has.
 *   The real-mode entry (the jump at 0x200) halts.
 *
 * Entered in long mode with paging on, RSI = the zero page (struct boot_params).
 *
 * Checks: bss magic loader longmode eflags cs ds memmap flat cmdline initrd (only with a
 * ramdisk) layout smp (only with the word "smp" on the command line).
 */
#define LONG64 1
#include "probe.h"

#define PROTO_NAME "linux64"

#ifdef BZIMAGE
/* ---- Boot sector and setup sector: file offsets 0 to 0x400 ---- */
    .section .setup, "ax"
    .code16
setup_start:
    cli                         /* booted as a floppy: not supported */
1:  hlt
    jmp 1b
    .org 0x1f1
    .byte 1                     /* 0x1f1 setup_sects */
    .word 0                     /* 0x1f2 root_flags */
    .long __syssize             /* 0x1f4 syssize: protected-mode part in 16-byte units */
    .word 0                     /* 0x1f8 ram_size */
    .word 0                     /* 0x1fa vid_mode */
    .word 0                     /* 0x1fc root_dev */
    .word 0xaa55                /* 0x1fe boot_flag */
    .byte 0xeb                  /* 0x200 jump over the header to the real-mode entry */
    .byte setup_code - 1f
1:  .ascii "HdrS"               /* 0x202 header */
    .word 0x020f                /* 0x206 version 2.15 */
    .long 0                     /* 0x208 realmode_swtch */
    .word 0                     /* 0x20c start_sys_seg */
    .word kernel_version - setup_start - 0x200  /* 0x20e kernel_version */
    .byte 0                     /* 0x210 type_of_loader */
    .byte 0x01                  /* 0x211 loadflags: LOADED_HIGH */
    .word 0                     /* 0x212 setup_move_size */
    .long 0x100000              /* 0x214 code32_start */
    .long 0                     /* 0x218 ramdisk_image */
    .long 0                     /* 0x21c ramdisk_size */
    .long 0                     /* 0x220 bootsect_kludge */
    .word 0                     /* 0x224 heap_end_ptr */
    .byte 0                     /* 0x226 ext_loader_ver */
    .byte 0                     /* 0x227 ext_loader_type */
    .long 0                     /* 0x228 cmd_line_ptr */
    .long 0x37ffffff            /* 0x22c initrd_addr_max: 896 MiB, a limit the guest checks */
    .long 0x200000              /* 0x230 kernel_alignment */
    .byte 0                     /* 0x234 relocatable_kernel: no, load at code32_start */
    .byte 0                     /* 0x235 min_alignment */
    .word 0x0001                /* 0x236 xloadflags: XLF_KERNEL_64 */
    .long 2047                  /* 0x238 cmdline_size */
    .long 0                     /* 0x23c hardware_subarch */
    .quad 0                     /* 0x240 hardware_subarch_data */
    .long __payload_offset      /* 0x248 payload_offset */
    .long __payload_length      /* 0x24c payload_length */
    .quad 0                     /* 0x250 setup_data */
    .quad 0x100000              /* 0x258 pref_address */
    .long __init_size           /* 0x260 init_size */
    .long 0                     /* 0x264 handover_offset */
    .long 0                     /* 0x268 kernel_info_offset */
    .org 0x26c                  /* the end of the header this version defines */
setup_code:                     /* the real-mode entry: not supported */
    cli
1:  hlt
    jmp 1b
kernel_version:
    .asciz "anyboot-probe bzimage64"
    .org 0x400

/* ---- Protected-mode part: the 32-bit entry at its start ---- */
    .section .text.entry32, "ax"
    .code32
entry32:
    mov $s_entry32, %esi
1:  mov (%esi), %al
    test %al, %al
    jz 4f
    mov %al, %ah
    mov $COM1_LSR, %dx
    mov $100000, %ecx
2:  in (%dx), %al
    test $LSR_THRE, %al
    jnz 3f
    dec %ecx
    jnz 2b
3:  mov $COM1, %dx
    mov %ah, %al
    out %al, (%dx)
    inc %esi
    jmp 1b
4:  mov $STATUS_FAIL, %al
    out %al, $EXIT_PORT
5:  cli
    hlt
    jmp 5b
s_entry32:
    .asciz "ANYBOOT-PROBE guest=bzimage64 proto=linux32 result=FAIL fails=entry checks=entry cmdline=\"\"\n"

/* ---- The payload: the elf64 guest, gzip-compressed, and its uncompressed size ---- */
    .section .payload, "a"
    .incbin "elf64.gz"
    .long PAYLOAD_SIZE

    .section .text.entry64, "ax"
#else
    .section .note.Linux, "a", @note
    .balign 4
    .long 6                     /* namesz: "Linux\0" */
    .long 2f - 1f               /* descsz */
    .long 0x100                 /* LINUX_ELFNOTE_BUILD_SALT */
    .asciz "Linux"
    .balign 4
1:  .asciz "anyboot-probe"
2:  .balign 4

    .text
#endif

/* ---- The 64-bit entry (bzImage: protected-mode start + 0x200; ELF: e_entry) ---- */
    .code64
    .globl _start
_start:
    mov %rsi, entry_esi
    ENTRY_STATE
    mov $0xc0000080, %ecx       /* IA32_EFER */
    rdmsr
    mov %eax, entry_efer

    CHECK_BEGIN bss
    cmpb $0, bss_bad
    REQUIRE e
    CHECK_END

    /* The zero page. */
    mov entry_esi, %ebx
    FACT_HEX64 zero_page, entry_esi, entry_esi + 4
    CHECK_BEGIN magic
    cmpl $0, entry_esi + 4
    REQUIRE e
    jne 1f
    test %ebx, %ebx
    REQUIRE nz
    cmpw $0xaa55, 0x1fe(%ebx)   /* boot_flag */
    REQUIRE e
    cmpl $HDRS_MAGIC, 0x202(%ebx)
    REQUIRE e
1:  CHECK_END
    cmpl $0, cur_failed
    je 1f
    xor %ebx, %ebx              /* no zero page: report the CPU state only */
    jmp cpu_state
1:  FACT_HEX magic, 0x202(%ebx)
    movzwl 0x206(%ebx), %eax
    FACT_HEX version, %eax
    CHECK_BEGIN loader
    cmpb $0xff, 0x210(%ebx)     /* type_of_loader: 0xff, undefined */
    REQUIRE e
    CHECK_END
    movzbl 0x210(%ebx), %eax
    FACT_HEX type_of_loader, %eax

cpu_state:
    /* Long mode: EFER.LME and LMA, CR0.PE and PG, CR4.PAE. */
    CHECK_BEGIN longmode
    mov entry_efer, %eax
    and $0x500, %eax
    cmp $0x500, %eax
    REQUIRE e
    mov entry_cr0, %eax
    and $0x80000001, %eax
    cmp $0x80000001, %eax
    REQUIRE e
    testl $0x20, entry_cr4
    REQUIRE nz
    CHECK_END
    FACT_HEX cr0, entry_cr0
    FACT_HEX cr3, entry_cr3
    FACT_HEX cr4, entry_cr4
    FACT_HEX efer, entry_efer
    CHECK_BEGIN eflags
    testl $0x300, entry_eflags  /* IF, TF clear */
    REQUIRE z
    CHECK_END
    FACT_HEX eflags, entry_eflags
    /* The protocol fixes the selectors: CS = __BOOT_CS (0x10), DS = ES = SS = __BOOT_DS
     * (0x18), both 4 GiB flat. */
    mov $DESC_CODE64, %ecx
    mov $0x10, %edi
    call check_cs
    mov $0x18, %edi
    call check_ds
    call segment_facts
    test %ebx, %ebx
    jz done

    /* Memory map: e820_entries (u8) at 0x1e8, e820_table at 0x2d0: 20-byte entries addr u64,
     * size u64, type u32. */
    CHECK_BEGIN memmap
    movzbl 0x1e8(%ebx), %ebp
    test %ebp, %ebp
    REQUIRE nz
    cmp $MM_MAX, %ebp
    REQUIRE be
    ja 2f
    lea 0x2d0(%ebx), %esi
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
    add $20, %esi
    dec %ebp
    jnz 1b
2:  call mm_check
    CHECK_END

    call flat_check

    /* Command line: cmd_line_ptr at 0x228, ext_cmd_line_ptr at 0x0c8 (high half); it must
     * be set (boot.rst: never leave it 0) and fit cmdline_size (0x238) when that is set. */
    mov 0x228(%ebx), %eax
    mov 0x238(%ebx), %ecx
    mov $1, %edx
    cmpl $0, 0xc8(%ebx)
    je 1f
    mov $3, %edx                /* above 4 GiB */
1:  call take_cmdline

    /* Initrd: ramdisk_image at 0x218 (+ ext_ramdisk_image at 0x0c0), ramdisk_size at 0x21c
     * (+ ext_ramdisk_size at 0x0c4); it must end at or below initrd_addr_max (0x22c). */
    xor %eax, %eax
    cmpl $0, 0x21c(%ebx)
    jne 1f
    cmpl $0, 0xc4(%ebx)
    je 2f
1:  mov $1, %eax
2:  mov %eax, mods
    FACT_DEC mods, mods
    cmpl $0, mods
    je 3f
    CHECK_BEGIN initrd
    cmpl $0, 0xc0(%ebx)
    REQUIRE e
    cmpl $0, 0xc4(%ebx)
    REQUIRE e
    mov 0x218(%ebx), %eax
    mov 0x21c(%ebx), %ecx
    call take_initrd
    mov 0x22c(%ebx), %ecx
    test %ecx, %ecx
    jz 2f
    mov 0x218(%ebx), %eax
    add 0x21c(%ebx), %eax
    dec %eax
    cmp %ecx, %eax
    REQUIRE be
2:  CHECK_END
    FACT_HEX initrd_addr_max, 0x22c(%ebx)
3:

    /* Layout: the zero page, the top-level page table and the GDT stay clear of the image. */
    CHECK_BEGIN layout
    mov %ebx, %eax
    mov $4096, %ecx
    call overlaps_image
    test %eax, %eax
    REQUIRE z
    mov entry_cr3, %eax
    and $~0xfff, %eax
    mov $4096, %ecx
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
    jz done
    call smp_check

done:
    jmp report_and_exit

    .bss
entry_efer: .long 0
mods:       .long 0
    .text

#include "smp.inc"
#include "lib.inc"
