/*
 * halt: an idle guest. It writes the boot-timer magic, prints
 * "halt: idle" on COM1 and halts with interrupts off, so its vCPU sleeps
 * in the host kernel and costs no CPU: the guest of benchmarks that
 * measure the monitor alone (migrating an idle guest, say).
 */
	.include "tiny.inc"

	GUEST_START
	BOOT_DONE
	mov $halt_msg, %esi
	call puts
	cli
1:	hlt
	jmp 1b

	.section .rodata
halt_msg:
	.asciz "halt: idle\n"
