/*
 * hostile: a guest attacking its monitor, as the stock guest's agent does
 * in the nested test host (test/guest/agent/hostile.go), without needing
 * Linux. Round after round it
 *   - writes and reads a word in each of PAGES_PER_ROUND pages of the
 *     unbacked MMIO hole (0xc0000000 up to the first virtio-mmio window),
 *     at another offset each round (first, so that a monitor's first
 *     lines about unhandled accesses are about these, not the ports);
 *   - sweeps the I/O port space, PORTS_PER_ROUND ports a round: a byte
 *     write and read at each, a long write and read at each fourth,
 *     except the ports in skip_table;
 *   - prints one flood line on COM1: "hostile flood ", the round in hex,
 *     terminal escape sequences (a clipboard write, window titles,
 *     queries, a C1 CSI as UTF-8, a screen clear, a colour, a reset) and
 *     " end\r\n";
 *   - writes the boot-timer magic BOOT_WRITES times;
 *   - prints "tick " and the round in hex.
 * It starts with "hostile: start" and the boot-timer magic. After ROUNDS
 * rounds it prints "hostile: done" and powers the VM off (ACPI S5); with
 * ROUNDS 0 it attacks until it is stopped.
 *
 * --defsym: ROUNDS, PORTS_PER_ROUND, PAGES_PER_ROUND, BOOT_WRITES (the last
 * three nonzero).
 */
	.include "tiny.inc"

	.set MMIO_HOLE, 0xc0000000
	.set MMIO_PAGES, 0x10000	/* 256 MiB, up to 0xd0000000; a power of two */

.if PORTS_PER_ROUND == 0 || PAGES_PER_ROUND == 0 || BOOT_WRITES == 0
	.error "PORTS_PER_ROUND, PAGES_PER_ROUND and BOOT_WRITES must be at least 1"
.endif

	GUEST_START
	mov $start_msg, %esi
	call puts
	BOOT_DONE
	/* Fresh RAM is zero, but a reset into an old image is not. */
	movl $0, round
	movl $0, port_next
	movl $0, page_next

next_round:
	/* The MMIO hole: a word in each page, at (round * 4) % 4096. */
	mov $PAGES_PER_ROUND, %ebp
	mov round, %ecx
	and $0x3ff, %ecx
	shl $2, %ecx
	mov page_next, %edi
1:	mov %edi, %ebx
	shl $12, %ebx
	add %ecx, %ebx
	add $MMIO_HOLE, %ebx
	mov (%ebx), %eax
	xor %ebx, %eax
	mov %eax, (%ebx)
	inc %edi
	and $(MMIO_PAGES - 1), %edi
	dec %ebp
	jnz 1b
	mov %edi, page_next

	/* The ports: %edi is the port, %ebp counts down the round's share. */
	mov $PORTS_PER_ROUND, %ebp
	mov port_next, %edi
1:	mov %edi, %edx
	mov $1, %ebx
	call skipped
	test %eax, %eax
	jnz 2f
	mov %edi, %edx
	mov round, %eax
	xor %edi, %eax
	outb %al, %dx
	inb %dx, %al
2:	test $3, %edi
	jnz 3f
	mov %edi, %edx
	mov $4, %ebx
	call skipped
	test %eax, %eax
	jnz 3f
	mov %edi, %edx
	mov round, %eax
	imul $0x01010101, %eax, %eax
	outl %eax, %dx
	inl %dx, %eax
3:	inc %edi
	and $0xffff, %edi
	dec %ebp
	jnz 1b
	mov %edi, port_next

	/* One flood line. */
	mov $flood_msg, %esi
	call puts
	mov round, %eax
	call put_hex_raw
	mov $flood_seqs, %esi
	call puts

	/* The boot timer, which tern logs at most a few times a second. */
	mov $BOOT_WRITES, %ecx
	mov $BOOT_TIMER_MAGIC, %al
	mov $BOOT_TIMER_PORT, %dx
1:	outb %al, %dx
	dec %ecx
	jnz 1b

	mov $tick_msg, %esi
	call puts
	mov round, %eax
	call put_hex
	incl round
.if ROUNDS != 0
	cmpl $ROUNDS, round
	jb next_round
	mov $done_msg, %esi
	call puts
	mov $ACPI_SLP_S5, %al
	mov $ACPI_SLEEP_CTL, %dx
	outb %al, %dx
	cli
4:	hlt
	jmp 4b
.else
	jmp next_round
.endif

/*
 * skipped: %eax = 1 if the ports [%edx, %edx + %ebx - 1] meet a range of
 * skip_table, else 0. Clobbers ecx, esi.
 */
skipped:
	lea -1(%edx, %ebx), %ecx
	mov $skip_table, %esi
1:	cmp $skip_end, %esi
	je 3f
	movzwl 2(%esi), %eax
	cmp %eax, %edx		/* first port past the range's last? */
	ja 2f
	movzwl (%esi), %eax
	cmp %eax, %ecx		/* last port before the range's first? */
	jb 2f
	mov $1, %eax
	ret
2:	add $4, %esi
	jmp 1b
3:	xor %eax, %eax
	ret

	.section .rodata
	.balign 4
/*
 * The ports left alone, [first, last]: each would end the VM (which is not
 * what is under test) or take the guest's console or interrupts away; the
 * same list as the stock guest's agent.
 */
skip_table:
	.short 0x20, 0x21	/* PIC: KVM's own */
	.short 0x40, 0x43	/* PIT: KVM's own */
	.short 0x60, 0x64	/* i8042: a 0xfe command resets the VM */
	.short 0xa0, 0xa1	/* second PIC */
	.short 0x3f8, 0x3ff	/* COM1: the console the test reads */
	.short 0x440, 0x440	/* the boot timer: written by its own loop */
	.short 0x4d0, 0x4d1	/* ELCR: KVM's own */
	.short 0x600, 0x602	/* ACPI sleep control and reset */
	.short 0xcf8, 0xcff	/* PCI configuration; 0xcf9 resets a PC */
skip_end:

start_msg:
	.asciz "hostile: start\n"
done_msg:
	.asciz "hostile: done\n"
flood_msg:
	.asciz "hostile flood "
flood_seqs:
	.ascii " \033]52;c;aG9zdGlsZSBjbGlwYm9hcmQ=\007"
	.ascii "\033]0;hostile title\007\033]2;hostile title\033\\"
	.ascii "\033[c\033[6n\033[21t\033[>0q\302\2336n\033[2J\033[31m\033c"
	.asciz " end\r\n"
tick_msg:
	.asciz "tick "

	.bss
	.balign 4
round:
	.skip 4
port_next:
	.skip 4
page_next:
	.skip 4
