/*
 * counter: a guest that is visibly alive. It keeps a 32-bit counter at
 * COUNTER_ADDR, adds one per loop iteration, and after every TICK_EVERY
 * iterations prints "tick XXXXXXXX" (the counter in hex) on COM1. It
 * starts by printing "counter: start" and writing the boot-timer magic,
 * once each, so a restart shows. It never halts.
 *
 * --defsym: COUNTER_ADDR, TICK_EVERY (both nonzero).
 */
	.include "tiny.inc"

.if TICK_EVERY == 0
	.error "TICK_EVERY must be at least 1"
.endif

	GUEST_START
	mov $start_msg, %esi
	call puts
	BOOT_DONE
	/* Fresh RAM is zero, but a reset into an old image is not. */
	movl $0, COUNTER_ADDR
next_tick:
	mov $TICK_EVERY, %ecx
1:	incl COUNTER_ADDR
	dec %ecx
	jnz 1b
	mov $tick_msg, %esi
	call puts
	mov COUNTER_ADDR, %eax
	call put_hex
	jmp next_tick

	.section .rodata
start_msg:
	.asciz "counter: start\n"
tick_msg:
	.asciz "tick "
