/*
 * triple: a guest that triple-faults. It prints "triple: faulting" on
 * COM1, loads an empty IDT and executes UD2 at the global label fault:
 * the #UD finds no gate, nor does the #GP that follows or the #DF after
 * it, so the vCPU shuts down. Tests read the label's address from the ELF
 * to check what tern reports of the fault.
 */
	.include "tiny.inc"

	GUEST_START
	mov $triple_msg, %esi
	call puts
	lidt empty_idt
	.globl fault
fault:
	ud2

	.section .rodata
	.balign 8
empty_idt:
	.word 0
	.long 0
triple_msg:
	.asciz "triple: faulting\n"
