/*
 * keyboard: reads the i8042 by polling, as a guest without interrupts
 * does. It writes the boot-timer magic, prints "keyboard: ready", then
 * waits for bytes: while the status register (port 0x64) has OBF (bit 0)
 * clear it polls; each byte read from the data port (0x60) is printed as
 * "key " and 8 hex digits. After KEYS bytes it powers the VM off (ACPI S5).
 */
	.include "tiny.inc"

	.set I8042_DATA, 0x60
	.set I8042_STATUS, 0x64
	.set I8042_OBF, 0x01

	.ifndef KEYS
	.error "KEYS (bytes to read before powering off) must be given with --defsym"
	.endif

	GUEST_START
	BOOT_DONE
	mov $ready_msg, %esi
	call puts
	mov $KEYS, %edi
next:
	mov $I8042_STATUS, %dx
1:	inb %dx, %al
	test $I8042_OBF, %al
	jz 1b
	mov $I8042_DATA, %dx
	inb %dx, %al
	movzbl %al, %ebp
	mov $key_msg, %esi
	call puts
	mov %ebp, %eax
	call put_hex
	dec %edi
	jnz next
	mov $ACPI_SLP_S5, %al
	mov $ACPI_SLEEP_CTL, %dx
	outb %al, %dx
	cli
2:	hlt
	jmp 2b

	.section .rodata
ready_msg:
	.asciz "keyboard: ready\n"
key_msg:
	.asciz "key "
