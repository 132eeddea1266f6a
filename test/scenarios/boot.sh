# A stock kernel boots under tern to the test guest's /init, as bzImage with
# one vCPU and as ELF vmlinux with two; the guest sees that many CPUs, runs
# the running kernel, and its clock agrees with the host's. The ELF is
# entered both at its 64-bit entry point and through its PVH note. A run
# with the T2A CPU template shows the pinned CPU in /proc/cpuinfo.
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

# A static CPU template changes the CPU the guest reports: T2A (the test
# host is an AMD EPYC) pins family 6 model 63 and hides SSE4A, MMXEXT,
# MisAlignSse, FFXSR and 1 GiB pages, and shows ERMS. It hides
# 3DNowPrefetch too, but Linux sets that flag itself on any 64-bit CPU.
boot_guest t2a-1cpu --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M --cpu-template T2A \
	--cmdline "$GUEST_CMDLINE tern.action=poweroff"
plain_flags=$(guest_value bzimage-1cpu cpuflags)
t2a_flags=$(guest_value t2a-1cpu cpuflags)
has_flag() { case ",$1," in *",$2,"*) return 0 ;; esac; return 1; }
hidden_by_t2a() {
	for f in sse4a mmxext misalignsse fxsr_opt pdpe1gb; do
		has_flag "$1" "$f" && return 0
	done
	return 1
}
none_hidden_by_t2a() { ! hidden_by_t2a "$1"; }
t2a_model() { [ "$(guest_value t2a-1cpu cpumodel)" = 6/63 ] && [ "$(guest_value bzimage-1cpu cpumodel)" != 6/63 ]; }
kept_flags() { for f in lahf_lm sse4_2; do has_flag "$1" "$f" && echo "$f"; done; }
check "T2A guest: tern exits 0 after guest poweroff" powered_off t2a-1cpu
check "T2A guest: 1 vCPU seen" [ "$(guest_value t2a-1cpu cpus)" = 1 ]
check "T2A guest: family/model 6/63 (without the template: $(guest_value bzimage-1cpu cpumodel))" t2a_model
check "T2A guest: the untemplated guest shows a flag T2A hides ($plain_flags)" hidden_by_t2a "$plain_flags"
check "T2A guest: none of the flags T2A hides ($t2a_flags)" none_hidden_by_t2a "$t2a_flags"
check "T2A guest: erms shown ($t2a_flags)" has_flag "$t2a_flags" erms
check "T2A guest: flags T2A leaves alone unchanged (lahf_lm, sse4_2)" [ "$(kept_flags "$plain_flags")" = "$(kept_flags "$t2a_flags")" ]

check "both guests ran the same kernel" [ "$(guest_value bzimage-1cpu uname)" = "$(guest_value elf-2cpu uname)" ]

finish
