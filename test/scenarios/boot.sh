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

# The ELF once more, through tern jail: tern runs as uid 4321, with no
# capabilities, in new mount, network and PID namespaces, in a jail that
# holds only itself, the two devices and the bound kernel and initrd, in a
# cgroup v2 with memory and CPU limits. The test host's / is its
# initramfs, which pivot_root cannot leave; a recursive bind of it, entered
# with chroot, is a root of its own (what switch_root gives a real host).
mkdir -p /sys/fs/cgroup /jailhost
mount -t cgroup2 none /sys/fs/cgroup
mount -o rbind / /jailhost
jail_dir=/tmp/jailer/tern/jailed
echo "SCENARIO-RUN jailed: tern jail ... -- run --kernel /vmlinux --initrd /initrd (in the background)"
timeout -k 10 "$TERN_RUN_TIMEOUT" chroot /jailhost "$TERN" jail --id jailed --exec-file "$TERN" \
	--uid 4321 --gid 4321 --chroot-base-dir /tmp/jailer --new-pid-ns \
	--cgroup memory.max=512M --cgroup "cpu.max=90000 100000" \
	--bind-ro "$KERNEL_ELF:/vmlinux" --bind-ro "$INITRD:/initrd" \
	-- run --kernel /vmlinux --initrd /initrd --cpus 1 --memory 256M \
	--cmdline "$GUEST_CMDLINE tern.action=poweroff" </dev/null >"$OUT/jailed.out" 2>"$OUT/jailed.err" &
jail_pid=$!
# Once the jailed tern has loaded the kernel, look at it from outside.
if wait_for 60 tern_logged jailed 'kernel loaded'; then
	pid=$(cat "$jail_dir/root/tern.pid")
	cat "/proc/$pid/status" >"$OUT/jailed.status"
	ids='[[:space:]]+4321[[:space:]]+4321[[:space:]]+4321[[:space:]]+4321$'
	check "jailed tern runs as uid and gid 4321 with no groups" \
		[ "$(grep -cE "^Uid:$ids|^Gid:$ids|^Groups:[[:space:]]*\$" "$OUT/jailed.status")" = 3 ]
	check "jailed tern has no capabilities in any set, and no_new_privs" \
		[ "$(grep -cE '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb):[[:space:]]*0000000000000000$|^NoNewPrivs:[[:space:]]*1$' "$OUT/jailed.status")" = 6 ]
	for ns in mnt net pid; do
		check "jailed tern is in a $ns namespace of its own" [ "$(readlink "/proc/$pid/ns/$ns")" != "$(readlink "/proc/self/ns/$ns")" ]
	done
	check "jailed tern sees only its jail: $(ls "/proc/$pid/root/" | tr '\n' ' ')" \
		[ "$(ls "/proc/$pid/root/" | tr '\n' ' ')" = "dev initrd proc tern tern.pid vmlinux " ]
	check "jailed tern's /proc holds its own PID namespace only: $(ls "/proc/$pid/root/proc/" | tr '\n' ' ')" \
		[ "$(ls "/proc/$pid/root/proc/" | tr '\n' ' ')" = "1 self thread-self " ]
	check "jailed tern is in the cgroup /tern/jailed" grep -qx '0::/tern/jailed' "/proc/$pid/cgroup"
	check "its cgroup has memory.max 512M" [ "$(cat /sys/fs/cgroup/tern/jailed/memory.max)" = 536870912 ]
	check "its cgroup has cpu.max 90000 100000" [ "$(cat /sys/fs/cgroup/tern/jailed/cpu.max)" = "90000 100000" ]
else
	check "the jailed tern loaded the kernel" false
fi
wait "$jail_pid"
echo $? >"$OUT/jailed.rc"
report_run jailed
check "jailed guest: tern jail exits 0 after guest poweroff" powered_off jailed
check "jailed guest: init reports uname -r" [ "$(guest_value jailed uname)" = "$(guest_value elf-2cpu uname)" ]
check "jailed guest: its cgroup is removed when it ends" [ ! -e /sys/fs/cgroup/tern/jailed ]

finish
