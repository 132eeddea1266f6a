# A running guest's balloon is resized through tern's API socket: after the
# guest has touched and freed 96 MiB, inflating to 128 MiB takes 128 MiB out
# of its MemTotal and gives touched pages back to the host (tern's resident
# guest RAM falls); deflating to 0 restores MemTotal.
. "$SCENARIO_DIR/lib.sh"

# guest_ram_rss PID: resident KiB of tern's 256 MiB guest RAM mapping.
guest_ram_rss() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { size = 0 } /^Size:/ { size = $2 } size == 262144 && /^Rss:/ { print $2; exit }' "/proc/$1/smaps"
}
guest_says() { tr -d '\r' <"$OUT/balloon-rt.out" | grep -q "TERN-GUEST $1"; }
memtotal_at_most() {
	v=$(guest_value balloon-rt memtotal-now)
	is_int "$v" && [ "$v" -le "$1" ]
}

start_guest balloon-rt --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--balloon size=0 --api-socket "$OUT/api.sock" \
	--cmdline "$GUEST_CMDLINE tern.action=balloon-fill"
wait_for 120 guest_says filled=96
pid=$(pidof tern | cut -d' ' -f1)
base=$(guest_value balloon-rt memtotal-base)
rss_filled=$(guest_ram_rss "$pid")
"$TERN" balloon set --api-socket "$OUT/api.sock" 128M
set_rc=$?
# 128 MiB = 131072 KiB out of MemTotal, within 1 MiB.
wait_for 60 memtotal_at_most $((base - 131072 + 1024))
inflated=$(guest_value balloon-rt memtotal-now)
sleep 1
rss_inflated=$(guest_ram_rss "$pid")
"$TERN" balloon get --api-socket "$OUT/api.sock" >"$OUT/balloon-get.json"
"$TERN" balloon set --api-socket "$OUT/api.sock" 0
wait_guest balloon-rt
echo "balloon: MemTotal $base -> $inflated KiB; guest RAM resident $rss_filled -> $rss_inflated KiB; API said $(cat "$OUT/balloon-get.json")"

check "balloon API: tern balloon set 128M succeeded" [ "$set_rc" = 0 ]
check "balloon inflated to 128 MiB: MemTotal fell by 128 MiB ($base -> $inflated KiB)" \
	within 1024 "$((base - inflated))" 131072
check "balloon API: tern balloon get reports amount 128, actual 128" \
	grep -q '"amount_mib":128,"actual_mib":128' "$OUT/balloon-get.json"
# The balloon takes free pages, most of them the 96 MiB just freed; each one
# given back with MADV_DONTNEED leaves tern's resident set.
check "balloon inflated: tern's resident guest RAM fell by at least 32 MiB ($rss_filled -> $rss_inflated KiB)" \
	[ "$((rss_filled - rss_inflated))" -ge 32768 ]
check "balloon deflated to 0: the guest's MemTotal came back" [ "$(guest_value balloon-rt balloon-cycle)" = 1 ]
check "balloon guest: tern exits 0, the guest powered off" powered_off balloon-rt

finish
