/* Q7: serial IRQ 4 end-to-end: vm-superio Serial -> EventFd -> KVM irqfd (GSI 4)
 * -> in-kernel 8259 PIC -> LAPIC LINT0 (ExtINT) -> vector 0x24 in the guest IDT. */
    .include "macros32.inc"
    .code32
    .text
    .globl _start
_start:
    mov $0x80000, %esp
    movl $0, 0x5200
    call build_idt32
    mov $0x24, %ecx
    mov $h_irq4, %eax
    call set_gate32
    /* 8259 init: master vectors 0x20-0x27, slave 0x28-0x2f, only IRQ4 unmasked */
    mov $0x11, %al
    out %al, $0x20
    out %al, $0xa0
    mov $0x20, %al
    out %al, $0x21
    mov $0x28, %al
    out %al, $0xa1
    mov $0x04, %al
    out %al, $0x21
    mov $0x02, %al
    out %al, $0xa1
    mov $0x01, %al
    out %al, $0x21
    out %al, $0xa1
    mov $0xef, %al
    out %al, $0x21
    mov $0xff, %al
    out %al, $0xa1
    PUTS s_pic
    /* UART: OUT2 (MCR bit 3) gates the IRQ line on real hardware; then IER = THRE */
    mov $0x3fc, %dx
    mov $0x08, %al
    out %al, %dx
    mov $0x3f9, %dx
    mov $0x02, %al
    out %al, %dx
    sti
    mov $200000000, %ecx
1:  cmpl $0, 0x5200
    jne got
    pause
    loop 1b
    cli
    PUTS s_timeout
    EXIT FAIL
got:
    EXIT FAIL

h_irq4:
    mov $0x3fa, %dx         /* read IIR: acknowledges the THRE interrupt */
    in %dx, %al
    movzbl %al, %ebx
    mov $0x3f9, %dx         /* IER = 0, so it does not re-fire */
    xor %al, %al
    out %al, %dx
    mov $0x20, %al          /* EOI to master PIC */
    out %al, $0x20
    PUTS s_got
    HEX %ebx
    PUTS s_nl
    PUTS s_ok
    /* No iret: on this host IRET outside real mode is an emulation failure
     * (see the iret probes), so finish from inside the handler. */
    EXIT PASS

s_pic:     .asciz "PIC-PROGRAMMED\n"
s_timeout: .asciz "IRQ4-TIMEOUT\n"
s_got:     .asciz "IRQ4-DELIVERED vector=0x24 iir="
s_ok:      .asciz "IRQ4-OK\n"
    .include "funcs32.inc"
