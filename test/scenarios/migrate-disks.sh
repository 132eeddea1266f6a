# Live migration without shared storage, of a guest that dirties its
# memory faster than the link carries it. The guest is migrate.sh's
# (tern.action=counter: a counter on the console and in counter.log on its
# virtio-blk data disk, a TCP connection over a TAP in a bridge, vsock)
# with a busy process besides that rewrites 8 MiB of its memory at 8 MiB/s
# (tern.dirty). tern migrate send --with-disks streams the disk's contents
# with the memory to a receiver that writes them into a fresh, empty file
# (--disk OLD=NEW), over a link capped at 4 MB/s: less than the guest
# dirties, so pre-copy converges only once tern throttles the guest. The
# destination goes on counting, and once the guest has powered off there,
# its disk holds every counter value, those written during the migration
# too, while the source's image stays as the source left it.
. "$SCENARIO_DIR/lib.sh"

# The source runs from its boot to the end of the migration, under an
# emulator, the first round at 4 MB/s.
TERN_RUN_TIMEOUT=${MIGRATE_RUN_TIMEOUT:-360}
BRIDGE=br0
TAP_SRC=tern0
TAP_DST=tern1
HOST_IP=10.0.0.1
GUEST_IP=10.0.0.2
TCP_PORT=5000
VSOCK_DIAL=5001
VSOCK_SERVE=5000
PORT=7000
ALARMS='soft lockup|rcu.*stall|hung_task'
export AGENT_TIMEOUT=420s
# What the guest dirties (MiB, MiB/s) and what the link carries: twice
# as fast as the link, so the guest must be throttled to about half its
# speed before a round can send less than the guest dirties meanwhile.
DIRTY_MIB=8
DIRTY_RATE=8
BANDWIDTH=4M
# The source's image and the destination's own copy, a new empty file.
SRC_DISK=$OUT/data.ext4
DST_DISK=$OUT/dest.ext4

guest_cmdline="$GUEST_CMDLINE tern.action=counter tern.ip=$GUEST_IP/24 tern.peer=$HOST_IP tern.port=$TCP_PORT tern.vsock-dial=$VSOCK_DIAL tern.vsock-serve=$VSOCK_SERVE tern.dirty=$DIRTY_MIB tern.dirty-rate=$DIRTY_RATE"

sha() { sha256sum "$1" | cut -d' ' -f1; }
# dirty_passes NAME: the busy process's passes over its buffer so far on
# run NAME's console.
dirty_passes() { guest_value "$1" dirty-passes; }
passes_past() { v=$(dirty_passes "$1") && is_int "$v" && [ "$v" -gt "$2" ]; }

# --- a: the bridge, the host's ends of the connections, the data disk,
# the source.
host_bridge "$BRIDGE" "$HOST_IP/24"
check "the host has bridge $BRIDGE with $HOST_IP" sh -c "[ -d /sys/class/net/$BRIDGE/bridge ] && ip addr show $BRIDGE | grep -q 'inet $HOST_IP/'"
mkfifo "$OUT/tcp.cmd"
start_hold tcp tcp ":$TCP_PORT" "$OUT/tcp.cmd"
exec 4<>"$OUT/tcp.cmd"
start_hold vsock1 unix "$OUT/v1.sock_$VSOCK_DIAL"
cp "$ROOT_IMAGE" "$SRC_DISK"

start_guest source --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--disk "path=$SRC_DISK,id=data" --net "tap=$TAP_SRC,bridge=$BRIDGE,mac=02:00:00:00:00:02" \
	--vsock "cid=3,socket=$OUT/v1.sock" --api-socket "$OUT/api1.sock" --cmdline "$guest_cmdline"

wait_for 150 counter_at_least source 5
check "source: the counter reached 5 ($(last_counter source))" counter_at_least source 5
wait_for 30 passes_past source 5
check "source: the busy process rewrites its $(guest_value source dirty-mib) MiB at $(guest_value source dirty-mib-per-s) MiB/s ($(dirty_passes source) passes)" \
	passes_past source 5

# --- b: the migration, with the disk, over a capped link. 500 ms of
# downtime is what the emulated test host can promise; the timeout
# cancels a migration that never converges instead of hanging.
: >"$DST_DISK"
start_hold vsock2 unix "$OUT/v2.sock_$VSOCK_DIAL"
start_tern dest migrate receive --listen "tcp:127.0.0.1:$PORT" --insecure --tap "$TAP_SRC=$TAP_DST" \
	--bridge "$BRIDGE=$BRIDGE" --disk "$SRC_DISK=$DST_DISK" --vsock-socket "$OUT/v2.sock" \
	--api-socket "$OUT/api2.sock" --console "$OUT/dest.out"
wait_for 20 tcp_listening "$PORT"
counter_at_send=$(last_counter source)
start_tern send migrate send --api-socket "$OUT/api1.sock" --to "tcp:127.0.0.1:$PORT" --insecure \
	--with-disks --bandwidth "$BANDWIDTH" --downtime 500ms --timeout 240s --output json
wait_tern send 260
tail -n 1 "$OUT/send.stdout" >"$OUT/send.json"
if ! wait_for 30 stopped source; then
	echo "[source tern] still running 30 s after the migration: SIGTERM"
	kill -TERM "$(cat "$OUT/source.pid")"
fi
wait_guest source
end_hold vsock1 stop
# What the source left in its image; nothing may change it from now on.
src_sum=$(sha "$SRC_DISK")

check "tern migrate send exits 0 ($(run_rc send))" [ "$(run_rc send)" = 0 ]
check "tern migrate send --output json: phase completed ($(json_str "$OUT/send.json" phase)) in round $(json_num "$OUT/send.json" round)" \
	[ "$(json_str "$OUT/send.json" phase)" = completed ]
throttle=$(json_num "$OUT/send.json" throttle_percent)
check "tern migrate send --output json: the guest was throttled to converge (throttle_percent $throttle)" \
	sh -c "echo '$throttle' | grep -qE '^[0-9]+\$' && [ '$throttle' -gt 0 ]"
disk_total=$(json_num "$OUT/send.json" disk_total_bytes)
check "tern migrate send --output json: the disk streamed is the image's size (disk_total_bytes $disk_total, image $(stat -c %s "$SRC_DISK")), $(json_num "$OUT/send.json" disk_bytes_sent) bytes sent" \
	[ "$disk_total" = "$(stat -c %s "$SRC_DISK")" ]
check "source: tern exits 0 once the guest is migrated ($(run_rc source))" [ "$(run_rc source)" = 0 ]
check "source: tern logs the stop reason: guest migrated to another host" \
	tern_logged source 'VM stopped.*reason="guest migrated to another host"'
check "destination: tern logs that the guest runs there" tern_logged dest 'incoming migration complete: the guest runs here'
check "destination: tern still runs the guest" running dest

console "$OUT/source.out" >"$OUT/source-final.txt"
shown=$(counter_split "$OUT/source-final.txt" /dev/null | values_of b | tail -n 1)
passes_at_switch=$(dirty_passes source)
wait_for 60 counter_at_least dest "$((shown + 2))"
check "destination: the counter goes on past the source's last $shown ($(last_counter dest))" \
	counter_at_least dest "$((shown + 2))"
console "$OUT/dest.out" >"$OUT/dest-now.txt"
counter_split "$OUT/source-final.txt" "$OUT/dest-now.txt" >"$OUT/split"
values_of '[ab]' "$OUT/split" >"$OUT/counters"
first_after=$(values_of a "$OUT/split" | head -n 1)
check "source and destination consoles count 1, 2, 3, ... $(tail -n 1 "$OUT/counters") without a gap or repeat" \
	consecutive "$OUT/counters"
check "the guest booted once: one boot line at the source ($(uname_lines source)), none at the destination ($(uname_lines dest))" \
	sh -c "[ '$(uname_lines source)' = 1 ] && [ '$(uname_lines dest)' = 0 ]"
wait_for 60 passes_past dest "${passes_at_switch:-0}"
check "destination: the busy process goes on rewriting its memory ($passes_at_switch passes at the source, $(dirty_passes dest) now)" \
	passes_past dest "${passes_at_switch:-0}"

# --- c: the guest stops when told over the TCP connection, unmounts its
# disk and powers off.
echo stop >&4
wait_tern dest 90
exec 4>&-
end_hold tcp
end_hold vsock2 stop
check "destination: tern exits 0 after the guest powers off ($(run_rc dest))" powered_off dest
check "destination: the guest stopped its busy process and unmounted its disk" \
	sh -c "[ '$(guest_value dest dirty-stopped)' = yes ] && [ '$(guest_value dest counter-stopped)' = yes ]"
alarms=$(cat "$OUT/source.out" "$OUT/dest.out" | tr -d '\r' | grep -v 'TERN-GUEST dmesg-alarms=' | grep -ciE "$ALARMS")
check "no soft lockup, RCU stall or hung task on the consoles, throttled or not ($alarms lines)" [ "$alarms" = 0 ]

debugfs -R "cat /counter.log" "$DST_DISK" 2>/dev/null >"$OUT/disk-counters"
last=$(guest_value dest counter-last)
check "destination's disk: counter.log holds 1 to $(tail -n 1 "$OUT/disk-counters") ($(wc -l <"$OUT/disk-counters") lines), none missing or repeated" \
	consecutive "$OUT/disk-counters"
check "destination's disk: counter.log ends at the guest's last counter $last" [ "$(tail -n 1 "$OUT/disk-counters")" = "$last" ]
check "destination's disk: counter.log holds the values written while the guest migrated ($counter_at_send to $first_after)" \
	sh -c "[ '$(sed -n "${counter_at_send}p" "$OUT/disk-counters")' = '$counter_at_send' ] && [ '$(sed -n "${first_after}p" "$OUT/disk-counters")' = '$first_after' ]"
check "the source's image is as the source left it (sha256 $src_sum)" [ "$(sha "$SRC_DISK")" = "$src_sum" ]
ip link delete "$BRIDGE" 2>/dev/null

finish
