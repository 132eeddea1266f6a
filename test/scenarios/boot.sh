# A stock kernel boots under tern to the test guest's /init, as bzImage with
# one vCPU and as ELF vmlinux with two; the guest sees that many CPUs, runs
# the running kernel, and its clock agrees with the host's. The ELF is
# entered both at its 64-bit entry point and through its PVH note.
. "$SCENARIO_DIR/lib.sh"

boot_guest bzimage-1cpu --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--cmdline "$GUEST_CMDLINE tern.action=poweroff"
host_date=$(date +%s)
check "bzImage guest: tern exits 0 after guest poweroff" powered_off bzimage-1cpu
check "bzImage guest: init reports uname -r" [ -n "$(guest_value bzimage-1cpu uname)" ]
check "bzImage guest: 1 vCPU seen" [ "$(guest_value bzimage-1cpu cpus)" = 1 ]
check "bzImage guest: date within 5 s of host ($(guest_value bzimage-1cpu date) vs $host_date)" \
	within 5 "$(guest_value bzimage-1cpu date)" "$host_date"
check "bzImage guest: tern logged boot-time" tern_logged bzimage-1cpu boot-time

boot_guest elf-2cpu --kernel "$KERNEL_ELF" --initrd "$INITRD" --cpus 2 --memory 256M \
	--cmdline "$GUEST_CMDLINE tern.action=poweroff"
host_date=$(date +%s)
check "ELF vmlinux guest: tern exits 0 after guest poweroff" powered_off elf-2cpu
check "ELF vmlinux guest: init reports uname -r" [ -n "$(guest_value elf-2cpu uname)" ]
check "ELF vmlinux guest: 2 vCPUs seen" [ "$(guest_value elf-2cpu cpus)" = 2 ]
check "ELF vmlinux guest: date within 5 s of host ($(guest_value elf-2cpu date) vs $host_date)" \
	within 5 "$(guest_value elf-2cpu date)" "$host_date"
boot_guest pvh-2cpu --kernel "$KERNEL_ELF" --pvh --initrd "$INITRD" --cpus 2 --memory 256M \
	--cmdline "$GUEST_CMDLINE tern.action=poweroff"
check "ELF vmlinux via its PVH entry: tern exits 0 after guest poweroff" powered_off pvh-2cpu
check "ELF vmlinux via its PVH entry: 2 vCPUs seen" [ "$(guest_value pvh-2cpu cpus)" = 2 ]
check "ELF vmlinux via its PVH entry: tern entered through the PVH note" tern_logged pvh-2cpu 'kernel loaded.*protocol=pvh'

check "both guests ran the same kernel" [ "$(guest_value bzimage-1cpu uname)" = "$(guest_value elf-2cpu uname)" ]

finish
