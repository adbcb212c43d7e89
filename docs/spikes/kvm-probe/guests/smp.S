/* Q4 (second vCPU). Mode = u32 at 0x5000, written by the VMM:
 *   1 "direct": the VMM starts the AP itself in 32-bit PM at ap_entry (0x100800).
 *   2 "sipi":   the BSP sends INIT + SIPI(vector 0x08) through the in-kernel LAPIC;
 *               the AP starts in real mode at 0x8000 (trampoline copied there by the BSP).
 * The VMM zeroes the flag at 0x5100 before starting; the AP stores 1 (direct) or 2 (sipi) there and writes 'A' to port 0xf6; the BSP waits for the flag. */
    .include "macros32.inc"
    .set APIC, 0xfee00000
    .code32
    .text
    .globl _start
_start:
    mov $0x80000, %esp
    cmpl $2, 0x5000
    jne wait_ap
    /* copy the real-mode trampoline to 0x8000 */
    mov $tramp_start, %esi
    mov $0x8000, %edi
    mov $(tramp_end - tramp_start), %ecx
    rep movsb
    /* software-enable the LAPIC (SVR bit 8, spurious vector 0xff) */
    movl $0x1ff, APIC + 0xf0
    PUTS s_apicid
    HEX APIC + 0x20
    PUTS s_nl
    /* INIT IPI to APIC id 1 */
    movl $(1 << 24), APIC + 0x310
    movl $0x00004500, APIC + 0x300
    mov $1000000, %ecx
1:  pause
    loop 1b
    /* SIPI, vector 0x08 -> CS:IP = 0x0800:0000 */
    movl $(1 << 24), APIC + 0x310
    movl $0x00004608, APIC + 0x300
    PUTS s_sent
wait_ap:
    mov $200000000, %ecx
1:  cmpl $0, 0x5100
    jne up
    pause
    loop 1b
    PUTS s_timeout
    EXIT FAIL
up:
    PUTS s_flag
    HEX 0x5100
    PUTS s_nl
    PUTS s_ok
    EXIT PASS

    .org 0x800          /* ap_entry = 0x100800 for the "direct" mode */
ap_entry:
    movl $1, 0x5100
    mov $0xf6, %dx
    mov $'A', %al
    out %al, %dx
2:  hlt
    jmp 2b

    .code16
tramp_start:            /* runs at 0x8000, CS = 0x0800 */
    xor %ax, %ax
    mov %ax, %ds
    movl $2, 0x5100
    mov $0xf6, %dx
    mov $'S', %al
    out %al, %dx
3:  hlt
    jmp 3b
tramp_end:
    .code32

s_apicid:  .asciz "bsp-apic-id-reg="
s_sent:    .asciz "INIT+SIPI-SENT\n"
s_timeout: .asciz "SMP-TIMEOUT\n"
s_flag:    .asciz "ap-flag="
s_ok:      .asciz "SMP-OK\n"
    .include "funcs32.inc"
