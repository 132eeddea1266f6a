/*
 * cpuid: a guest that shows the CPU it was given. Round after round it
 * executes CPUID for each leaf of its table and prints
 * "cpuid LEAF SUBLEAF EAX EBX ECX EDX" (8 hex digits each) on COM1, then
 * waits ROUND_DELAY loop iterations. It prints "cpuid: start" and writes
 * the boot-timer magic once at start, so a restored guest that goes on
 * shows its CPUID as the restored vCPU reports it, without starting again.
 *
 * --defsym: ROUND_DELAY (nonzero).
 */
	.include "tiny.inc"

.if ROUND_DELAY == 0
	.error "ROUND_DELAY must be at least 1"
.endif

	GUEST_START
	mov $start_msg, %esi
	call puts
	BOOT_DONE
round:
	mov $leaves, %edi
next_leaf:
	cmpl $0xffffffff, (%edi)
	je round_done
	mov (%edi), %eax
	mov 4(%edi), %ecx
	cpuid
	mov %eax, regs
	mov %ebx, regs+4
	mov %ecx, regs+8
	mov %edx, regs+12
	mov $leaf_msg, %esi
	call puts
	mov (%edi), %eax
	call hex_sp
	mov 4(%edi), %eax
	call hex_sp
	mov regs, %eax
	call hex_sp
	mov regs+4, %eax
	call hex_sp
	mov regs+8, %eax
	call hex_sp
	mov regs+12, %eax
	call put_hex
	add $8, %edi
	jmp next_leaf
round_done:
	mov $ROUND_DELAY, %ecx
1:	dec %ecx
	jnz 1b
	jmp round

/* hex_sp writes %eax as 8 hex digits and a space. Clobbers eax, ebx, ecx, edx. */
hex_sp:
	mov %eax, %ebx
	mov $COM1, %dx
	mov $8, %ecx
1:	rol $4, %ebx
	mov %ebx, %eax
	and $0xf, %eax
	movb hex_digits(%eax), %al
	outb %al, %dx
	dec %ecx
	jnz 1b
	mov $' ', %al
	outb %al, %dx
	ret

	.section .rodata
start_msg:
	.asciz "cpuid: start\n"
leaf_msg:
	.asciz "cpuid "
	.balign 4
/* leaf, subleaf; a leaf of 0xffffffff ends the table */
leaves:
	.long 0x0, 0
	.long 0x1, 0
	.long 0x7, 0
	.long 0xd, 1
	.long 0x80000001, 0
	.long 0x80000008, 0
	.long 0xffffffff, 0

	.bss
	.balign 4
regs:
	.skip 16
