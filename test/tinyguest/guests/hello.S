/*
 * hello: the shortest useful boot. It writes the boot-timer magic, prints
 * "hello from tiny guest" on COM1 and powers the VM off through the ACPI
 * sleep control register (S5). Should the power-off not take, it halts.
 */
	.include "tiny.inc"

	GUEST_START
	BOOT_DONE
	mov $hello_msg, %esi
	call puts
	mov $ACPI_SLP_S5, %al
	mov $ACPI_SLEEP_CTL, %dx
	outb %al, %dx
1:	hlt
	jmp 1b

	.section .rodata
hello_msg:
	.asciz "hello from tiny guest\n"
