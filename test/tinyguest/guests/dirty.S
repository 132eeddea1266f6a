/*
 * dirty: a guest that dirties memory as fast as it can. Pass after pass,
 * it adds one to the pass counter at PASS_ADDR and stores the new count
 * into the first word of every 4 KiB page of [DIRTY_START, DIRTY_START +
 * DIRTY_MIB MiB), so every page changes on every pass; after each pass it
 * prints "pass XXXXXXXX" (the count in hex) on COM1. It starts by printing
 * "dirty: start" and writing the boot-timer magic. It never halts.
 *
 * --defsym: PASS_ADDR, DIRTY_START (4 KiB aligned), DIRTY_MIB (nonzero).
 */
	.include "tiny.inc"

.if DIRTY_MIB == 0
	.error "DIRTY_MIB must be at least 1"
.endif
.if DIRTY_START & 0xfff
	.error "DIRTY_START must be 4 KiB aligned"
.endif

	GUEST_START
	mov $start_msg, %esi
	call puts
	BOOT_DONE
	movl $0, PASS_ADDR
next_pass:
	mov PASS_ADDR, %eax
	inc %eax
	mov %eax, PASS_ADDR
	mov $DIRTY_START, %edi
	mov $(DIRTY_START + DIRTY_MIB * 0x100000), %ebx
1:	mov %eax, (%edi)
	add $0x1000, %edi
	cmp %ebx, %edi
	jb 1b
	mov $pass_msg, %esi
	call puts
	mov PASS_ADDR, %eax
	call put_hex
	jmp next_pass

	.section .rodata
start_msg:
	.asciz "dirty: start\n"
pass_msg:
	.asciz "pass "
