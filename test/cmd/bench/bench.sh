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

waited=0
until grep -q boot-time "$OUT/bench.err"; do
	if ! kill -0 "$pid" 2>/dev/null || [ "$waited" -ge "$TERN_RUN_TIMEOUT" ]; then
		echo "BENCH-ERROR tern did not log boot-time (waited ${waited}s); its log and console:"
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
exit $rc
