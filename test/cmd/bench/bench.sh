# Starts tern for an idle guest (1 vCPU, 128 MiB), waits until the guest
# reports booted, then reads tern's memory from /proc/<pid>/smaps.
. "$SCENARIO_DIR/lib.sh"
mem_kib=131072

"$TERN" run --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 128M \
	--cmdline "$GUEST_CMDLINE tern.action=sleep" </dev/null >"$OUT/bench.out" 2>"$OUT/bench.err" &
pid=$!

# stop_tern ends tern: SIGTERM, then SIGKILL if it is still there in 10 s.
stop_tern() {
	kill "$pid" 2>/dev/null
	n=0
	while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 10 ]; do
		sleep 1
		n=$((n + 1))
	done
	kill -9 "$pid" 2>/dev/null
}

# guest_hung NAME says (lib.sh's say_limit) that tern's run NAME still
# runs but its guest did not boot in TERN_RUN_TIMEOUT seconds, so it is
# about to be stopped: a stock guest that hung; the bench then runs again
# on a fresh test host.
guest_hung() {
	if kill -0 "$pid" 2>/dev/null && [ "$waited" -ge "$TERN_RUN_TIMEOUT" ]; then
		say_limit "$1" "its guest did not boot"
	fi
}

waited=0
until grep -q boot-time "$OUT/bench.err"; do
	if ! kill -0 "$pid" 2>/dev/null || [ "$waited" -ge "$TERN_RUN_TIMEOUT" ]; then
		echo "BENCH-ERROR tern did not log boot-time (waited ${waited}s); its log and console:"
		guest_hung bench
		cat "$OUT/bench.err" "$OUT/bench.out"
		stop_tern
		exit 1
	fi
	sleep 1
	waited=$((waited + 1))
done
# Let the guest settle into idle before measuring.
sleep 2

# smaps: a mapping's header line (address range, perms, offset, dev, inode
# and, for file or named mappings, a path) is followed by "Key: N kB" lines.
awk -v want="$mem_kib" '
/^[0-9a-f]+-[0-9a-f]+ / { anon = (NF == 5); size = 0; next }
/^Size:/ { size = $2 }
/^Rss:/ {
	total += $2
	if (anon && size == want && !found) { guest = $2; found = 1 }
}
END {
	if (!found) { print "BENCH-ERROR no anonymous mapping of " want " kB (the guest RAM) in smaps"; exit 1 }
	printf "BENCH tern-rss-kib=%d guest-ram-rss-kib=%d tern-own-kib=%d\n", total, guest, total - guest
}' "/proc/$pid/smaps"
rc=$?
grep -m1 "first KVM_RUN" "$OUT/bench.err" | sed 's/^/BENCH log: /'
grep -m1 "boot-time" "$OUT/bench.err" | sed 's/^/BENCH log: /'
stop_tern
[ "$rc" = 0 ] || exit "$rc"

# Snapshot and restore of an idle guest of each size: snapshot create time
# and sizes, restore latency (tern's "first KVM_RUN after restore", from
# the restoring process's start), and a plain copy of the memory file and a
# read of it as the reference.
# uptime_cs: the host's uptime in hundredths of a second.
uptime_cs() { awk '{ split($1, a, "."); print a[1] * 100 + a[2] }' /proc/uptime; }

snapshot_bench() {
	size=$1
	dir="$OUT/snap-$size"
	sock="$OUT/api-$size.sock"
	"$TERN" run --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory "$size" --api-socket "$sock" \
		--cmdline "$GUEST_CMDLINE tern.action=sleep" </dev/null >"$OUT/src-$size.out" 2>"$OUT/src-$size.err" &
	pid=$!
	waited=0
	until grep -q boot-time "$OUT/src-$size.err"; do
		if ! kill -0 "$pid" 2>/dev/null || [ "$waited" -ge "$TERN_RUN_TIMEOUT" ]; then
			echo "BENCH-ERROR $size guest did not boot; its log:"
			guest_hung "src-$size"
			cat "$OUT/src-$size.err"
			stop_tern
			return 1
		fi
		sleep 1
		waited=$((waited + 1))
	done
	sleep 2
	if ! "$TERN" snapshot create --api-socket "$sock" --dir "$dir" >"$OUT/create-$size.txt" 2>&1; then
		echo "BENCH-ERROR snapshot create of the $size guest failed:"
		cat "$OUT/create-$size.txt"
		echo "the $size guest's tern log:"
		cat "$OUT/src-$size.err"
		stop_tern
		return 1
	fi
	stop_tern
	took=$(sed -n 's/.*took \([0-9.]*\) ms.*/\1/p' "$OUT/create-$size.txt")
	stored=$(sed -n 's/.*memory \([0-9]*\) of.*/\1/p' "$OUT/create-$size.txt")
	state=$(sed -n 's/.*vmstate \([0-9]*\) bytes.*/\1/p' "$OUT/create-$size.txt")
	disk=$(du -k "$dir/memory" | cut -f1)
	echo "BENCH snapshot-$size create-ms=$took vmstate-bytes=$state memory-stored-bytes=$stored memory-file-disk-kib=$disk"
	# busybox date has no %N: /proc/uptime counts in 10 ms steps.
	# busybox cp fills holes in: only a file that fits is copied.
	t0=$(uptime_cs)
	if cp "$dir/memory" "$OUT/memory-copy" 2>"$OUT/cp-$size.err"; then
		t1=$(uptime_cs)
		echo "BENCH snapshot-$size reference: cp of the memory file $(((t1 - t0) * 10)) ms"
	else
		echo "bench: snapshot-$size reference: no cp figure: $(cat "$OUT/cp-$size.err")"
	fi
	rm -f "$OUT/memory-copy"
	"$TERN" snapshot restore --dir "$dir" --console "$OUT/restore-$size.out" </dev/null 2>"$OUT/restore-$size.err" &
	pid=$!
	waited=0
	until grep -q "restore latency" "$OUT/restore-$size.err"; do
		if ! kill -0 "$pid" 2>/dev/null || [ "$waited" -ge 60 ]; then
			echo "BENCH-ERROR restore of the $size guest did not start its vCPUs; its log:"
			cat "$OUT/restore-$size.err"
			stop_tern
			return 1
		fi
		sleep 1
		waited=$((waited + 1))
	done
	sleep 1
	stop_tern
	lat=$(sed -n 's/.*since_request=\([^ ]*\).*/\1/p' "$OUT/restore-$size.err" | head -n 1)
	call=$(sed -n 's/.*since_restore_call=\([^ ]*\).*/\1/p' "$OUT/restore-$size.err" | head -n 1)
	echo "BENCH snapshot-$size restore-latency=$lat (tern process start to first KVM_RUN) restore-call=$call (vmm.Restore to first KVM_RUN)"
	rm -rf "$dir"
}
snapshot_bench 256M || exit 1
snapshot_bench 2G || exit 1

# Boot: tern and QEMU's microvm start the same stock kernel (bzImage) and
# initramfs, 1 vCPU and 256 MiB, to the guest's /init, which prints its
# uname line first thing; from the monitor's exec to that line on the
# console, in turns. Emulator times: only their ratio means anything.
# boot_once NAME CMD...: runs CMD with its console in $OUT/NAME.out,
# prints the hundredths of a second to the uname line, and stops CMD.
boot_once() {
	name=$1
	shift
	t0=$(uptime_cs)
	"$@" </dev/null >"$OUT/$name.out" 2>"$OUT/$name.err" &
	pid=$!
	until grep -qs "TERN-GUEST uname=" "$OUT/$name.out"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			echo "bench: $name: the monitor exited ($?) before the guest reached /init; the tail of its console and log:" >&2
			tail -n 5 "$OUT/$name.out" "$OUT/$name.err" >&2
			return 1
		fi
		if [ $(($(uptime_cs) - t0)) -ge $((TERN_RUN_TIMEOUT * 100)) ]; then
			echo "bench: $name: the guest did not reach /init in ${TERN_RUN_TIMEOUT}s" >&2
			stop_tern
			return 1
		fi
		sleep 0.05
	done
	t1=$(uptime_cs)
	stop_tern
	echo $((t1 - t0))
}
if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "BENCH-ERROR boot: qemu-system-x86_64 is not in the test host"
	exit 1
fi
# A guest dies now and then in this emulated host, under either monitor
# (a QEMU guest triple-faulting exits QEMU under -no-reboot): such runs
# are counted and left out, and the figure needs three good runs of each.
boot_cmdline="$GUEST_CMDLINE tern.action=sleep"
tern_cs=
qemu_cs=
tern_bad=0
qemu_bad=0
for i in 1 2 3 4 5; do
	if t=$(boot_once "boot-tern-$i" "$TERN" run --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
		--cmdline "$boot_cmdline"); then
		tern_cs="$tern_cs $t"
		echo "bench: boot run $i: tern $((t * 10)) ms"
	else
		tern_bad=$((tern_bad + 1))
	fi
	if q=$(boot_once "boot-qemu-$i" qemu-system-x86_64 -M microvm -enable-kvm -cpu host -m 256M -smp 1 \
		-nodefaults -no-user-config -display none -monitor none -no-reboot -serial stdio \
		-kernel "$KERNEL_BZIMAGE" -initrd "$INITRD" -append "$boot_cmdline"); then
		qemu_cs="$qemu_cs $q"
		echo "bench: boot run $i: qemu $((q * 10)) ms"
	else
		qemu_bad=$((qemu_bad + 1))
	fi
done
# median LIST: the middle value (the lower of the two middle ones).
median() {
	n=$(echo $@ | wc -w)
	echo "$@" | tr ' ' '\n' | grep . | sort -n | sed -n "$(((n + 1) / 2))p"
}
if [ $((5 - tern_bad)) -lt 3 ] || [ $((5 - qemu_bad)) -lt 3 ]; then
	echo "BENCH-ERROR boot: too few good runs (tern $((5 - tern_bad)) of 5, qemu $((5 - qemu_bad)) of 5)"
	exit 1
fi
tm=$(median $tern_cs)
qm=$(median $qemu_cs)
echo "BENCH boot-to-init tern-runs=$((5 - tern_bad)) qemu-runs=$((5 - qemu_bad)) tern-ms=$((tm * 10)) qemu-microvm-ms=$((qm * 10)) ratio-tern/qemu=$(awk -v a="$tm" -v b="$qm" 'BEGIN { printf "%.2f", a / b }') (medians; emulator times: only the ratio counts)"
exit 0