/*
 * diskcap: watches a virtio-blk disk's capacity as a driver would read it
 * from the virtio-mmio configuration space (le64 capacity at offset 0x100
 * of the device's window, CAP_ADDR here; the low word suffices for small
 * test disks). It writes the boot-timer magic, prints "cap " and the
 * capacity in hex, polls until the capacity changes, prints it again and
 * powers the VM off (ACPI S5).
 */
	.include "tiny.inc"

	.ifndef CAP_ADDR
	.error "CAP_ADDR (guest-physical address of the capacity) must be given with --defsym"
	.endif

	GUEST_START
	BOOT_DONE
	mov CAP_ADDR, %eax
	mov %eax, %edi
	mov $cap_msg, %esi
	call puts
	mov %edi, %eax
	call put_hex
1:	mov CAP_ADDR, %eax
	cmp %eax, %edi
	je 1b
	mov %eax, %edi
	mov $cap_msg, %esi
	call puts
	mov %edi, %eax
	call put_hex
	mov $ACPI_SLP_S5, %al
	mov $ACPI_SLEEP_CTL, %dx
	outb %al, %dx
	cli
2:	hlt
	jmp 2b

	.section .rodata
cap_msg:
	.asciz "cap "
