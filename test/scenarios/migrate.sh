# Live migration of a guest with work in flight (tern.action=counter, as in
# snapshot.sh): a counter on the console and in counter.log on its
# virtio-blk data disk, one TCP connection over a TAP, vsock both ways.
# Source and destination are two tern processes on this host, sharing the
# disk image (tern hands its lock over at the switch). The host's address
# lives on a bridge: a TAP is open in one process at a time, so the guest
# moves from the source's TAP to the destination's, both in the bridge.
#
# First six migrations that must fail, each leaving the guest counting on
# at the source: a destination without the guest's disk, a sender with a
# certificate from another CA, a migration cancelled under way, a receiver
# killed under way, the connection cut under way, a byte of the stream
# changed on the way. Then the real one over TCP with mutual TLS: the
# destination goes on counting from the next value, without a reboot, on
# the same TCP connection, with its clock right and vsock dialled again;
# the disk holds every value, those written during the migration too.
. "$SCENARIO_DIR/lib.sh"

# The source runs from its boot through the failed migrations to the real
# one, under an emulator.
TERN_RUN_TIMEOUT=${MIGRATE_RUN_TIMEOUT:-360}
BRIDGE=br0
TAP_SRC=tern0 # tern creates it in the bridge for the source...
TAP_DST=tern1 # ...and this one for the destination (--tap OLD=NEW)
HOST_IP=10.0.0.1
GUEST_IP=10.0.0.2
TCP_PORT=5000
VSOCK_DIAL=5001  # the host's port the guest holds a connection to
VSOCK_SERVE=5000 # the guest's port the host sends to
PORT=7000        # the real migration's; the failing ones use 7001...
ALARMS='soft lockup|rcu.*stall|hung_task'
# Host-side agents run through the whole scenario, but not past this.
export AGENT_TIMEOUT=420s
# Certificates for mutual TLS, made by the test (package test/pki) and
# given to the scenario as files; keys are copied to be private.
PKI=$OUT/pki

guest_cmdline="$GUEST_CMDLINE tern.action=counter tern.ip=$GUEST_IP/24 tern.peer=$HOST_IP tern.port=$TCP_PORT tern.vsock-dial=$VSOCK_DIAL tern.vsock-serve=$VSOCK_SERVE"

# migrate_send NAME ARGS...: "tern migrate send" of the source's guest
# with ARGS, to its end (at most 180 s), kept and printed as wait_tern does.
migrate_send() {
	n=$1
	shift
	start_tern "$n" migrate send --api-socket "$OUT/api1.sock" "$@"
	wait_tern "$n" 180
}
# receive NAME ARGS...: "tern migrate receive ARGS..." in the background,
# with the source's TAP mapped to the destination's, the bridge confirmed,
# its own vsock socket (the source holds its own) and its console in
# $OUT/NAME.out. The source's host resources carry no authority here:
# each must be confirmed or replaced, the disk by ARGS.
receive() {
	n=$1
	shift
	start_tern "$n" migrate receive --tap "$TAP_SRC=$TAP_DST" --bridge "$BRIDGE=$BRIDGE" --vsock-socket "$OUT/$n.vsock" \
		--console "$OUT/$n.out" "$@"
}
# The shared disk, confirmed at the destination as the source names it.
SAME_DISK="--disk $OUT/data.ext4=$OUT/data.ext4"
# status_now FILE: tern migrate status of the source, kept in FILE.
status_now() { "$TERN" migrate status --api-socket "$OUT/api1.sock" </dev/null >"$1" 2>&1 4>&-; }
# in_precopy: whether the source's migration is in pre-copy (its status
# kept in $OUT/under-way.json). Its byte counts move once a round, and
# the first round, every page the guest touched, takes most of a minute
# at 2 MB/s: the phase is what says pages flow.
in_precopy() {
	status_now "$OUT/under-way.json" && [ "$(json_str "$OUT/under-way.json" phase)" = pre-copy ]
}
under_way() { echo "phase $(json_str "$OUT/under-way.json" phase), round $(json_num "$OUT/under-way.json" round), $(json_num "$OUT/under-way.json" total_bytes) bytes of RAM"; }
# nothing_ran NAME: the receiver NAME started no guest: its console is
# empty and it never said that the guest runs there.
nothing_ran() { [ ! -s "$OUT/$1.out" ] && ! tern_logged "$1" 'incoming migration complete'; }
# counts_on WHAT: after a failed migration the guest runs on at the
# source: its counter goes 2 past where it stood, every value once, and
# the source tern still runs.
counts_on() {
	at=$(last_counter source)
	wait_for 30 counter_at_least source "$((at + 2))"
	counter_values source >"$OUT/counters-$2"
	check "$1: the guest counts on at the source ($at, then $(last_counter source))" counter_at_least source "$((at + 2))"
	check "$1: the source's console counts 1 to $(tail -n 1 "$OUT/counters-$2") without a gap or repeat" \
		consecutive "$OUT/counters-$2"
	check "$1: the source tern still runs" running source
}
tcp_whole() {
	[ "$(kv tcp connections)" = 1 ] && [ "$(kv tcp first-seq)" = 1 ] && [ "$(kv tcp gaps)" = 0 ] &&
		[ "$(kv tcp repeats)" = 0 ] && [ "$(kv tcp bad-lines)" = 0 ]
}

# --- a: certificates, the bridge with the host's address, the host's ends
# of the connections, the data disk, the source.
mkdir -p "$PKI"
for f in ca.pem server.pem server-key.pem client.pem client-key.pem rogue.pem rogue-key.pem; do
	cp "$SCENARIO_DIR/tls-$f" "$PKI/$f" || {
		check "the test gave the scenario its certificate $f (tls-$f)" false
		finish
	}
done
chmod 600 "$PKI"/*-key.pem
SERVER_TLS="--tls-cert $PKI/server.pem --tls-key $PKI/server-key.pem --tls-ca $PKI/ca.pem"
CLIENT_TLS="--tls-cert $PKI/client.pem --tls-key $PKI/client-key.pem --tls-ca $PKI/ca.pem"
ROGUE_TLS="--tls-cert $PKI/rogue.pem --tls-key $PKI/rogue-key.pem --tls-ca $PKI/ca.pem"

host_bridge "$BRIDGE" "$HOST_IP/24"
check "the host has bridge $BRIDGE with $HOST_IP" sh -c "[ -d /sys/class/net/$BRIDGE/bridge ] && ip addr show $BRIDGE | grep -q 'inet $HOST_IP/'"

mkfifo "$OUT/tcp.cmd"
start_hold tcp tcp ":$TCP_PORT" "$OUT/tcp.cmd"
# Read-write, so the open does not wait for the reader; what is written to
# fd 4 goes to the guest over the TCP connection.
exec 4<>"$OUT/tcp.cmd"
start_hold vsock1 unix "$OUT/v1.sock_$VSOCK_DIAL"
cp "$ROOT_IMAGE" "$OUT/data.ext4"

start_guest source --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--disk "path=$OUT/data.ext4,id=data" --net "tap=$TAP_SRC,bridge=$BRIDGE,mac=02:00:00:00:00:02" \
	--vsock "cid=3,socket=$OUT/v1.sock" --api-socket "$OUT/api1.sock" --cmdline "$guest_cmdline"

wait_for 150 counter_at_least source 5
check "source: the guest booted ($(guest_value source uname)) with 1 CPU ($(guest_value source cpus))" \
	sh -c "[ -n '$(guest_value source uname)' ] && [ '$(guest_value source cpus)' = 1 ]"
check "source: the counter reached 5 ($(last_counter source))" counter_at_least source 5
check "source: tern put its TAP $TAP_SRC in $BRIDGE" in_bridge "$TAP_SRC"
wait_for 30 seq_past tcp 1 1
check "source: the host gets the guest's TCP lines (up to $(last_seq tcp))" seq_past tcp 1 1
# On any connection: tern's host end has been seen to get an empty first
# connection for the guest's one dial.
wait_for 30 seq_past vsock1 "" 1
check "source: the host gets the guest's vsock lines (up to $(last_seq vsock1))" seq_past vsock1 "" 1

# --- b: migrations that fail; the guest must run on at the source.

# A destination that cannot open the guest's disk refuses the guest.
receive recv-nodisk --listen "tcp:127.0.0.1:7001" $SERVER_TLS --disk "$OUT/data.ext4=/nonexistent/disk.img"
wait_for 20 tcp_listening 7001
migrate_send send-nodisk --to "tcp:127.0.0.1:7001" $CLIENT_TLS
wait_tern recv-nodisk 30
check "no disk at the destination: tern migrate send exits non-zero ($(run_rc send-nodisk)) naming the disk: $(error_line send-nodisk)" \
	failed_with send-nodisk disk
check "no disk at the destination: tern migrate receive exits non-zero ($(run_rc recv-nodisk)) naming the disk: $(error_line recv-nodisk)" \
	failed_with recv-nodisk disk
check "no disk at the destination: no guest ran there" nothing_ran recv-nodisk
counts_on "no disk at the destination" nodisk

# A sender whose certificate another CA signed is refused by mutual TLS.
receive recv-rogue --listen "tcp:127.0.0.1:7002" $SERVER_TLS $SAME_DISK
wait_for 20 tcp_listening 7002
migrate_send send-rogue --to "tcp:127.0.0.1:7002" $ROGUE_TLS
check "a sender's certificate from another CA: tern migrate send exits non-zero ($(run_rc send-rogue)) about the certificate: $(error_line send-rogue)" \
	failed_with send-rogue certificate
# The receiver may fail or wait on for a sender it trusts; either way no
# guest may run there.
wait_for 10 stopped recv-rogue || kill -TERM "$(cat "$OUT/recv-rogue.pid")"
wait_tern recv-rogue 30
check "a sender's certificate from another CA: no guest ran at the destination (receive exited $(run_rc recv-rogue))" \
	nothing_ran recv-rogue
counts_on "a sender's certificate from another CA" rogue

# tern migrate cancel while pages flow (slowed to 2 MB/s), over a Unix
# socket, which needs no TLS.
receive recv-cancel --listen "unix:$OUT/mig-cancel.sock" $SAME_DISK
wait_for 20 test -S "$OUT/mig-cancel.sock"
start_tern send-cancel migrate send --api-socket "$OUT/api1.sock" --to "unix:$OUT/mig-cancel.sock" --bandwidth 2M
wait_for 30 in_precopy
sleep 3 # pages flow meanwhile
check "cancel: the migration was under way ($(under_way))" in_precopy
"$TERN" migrate cancel --api-socket "$OUT/api1.sock" </dev/null >"$OUT/cancel.log" 2>&1 4>&-
rc=$?
sed 's/^/[migrate cancel] /' "$OUT/cancel.log"
check "cancel: tern migrate cancel exits 0 ($rc)" [ "$rc" = 0 ]
wait_tern send-cancel 60
wait_tern recv-cancel 30
check "cancel: tern migrate send exits non-zero ($(run_rc send-cancel)) naming the cancellation: $(error_line send-cancel)" \
	failed_with send-cancel cancel
check "cancel: tern migrate receive exits non-zero ($(run_rc recv-cancel)) saying why: $(error_line recv-cancel)" \
	failed_with recv-cancel .
status_now "$OUT/after-cancel.json"
check "cancel: tern migrate status says cancelled ($(json_str "$OUT/after-cancel.json" phase))" \
	[ "$(json_str "$OUT/after-cancel.json" phase)" = cancelled ]
check "cancel: no guest ran at the destination" nothing_ran recv-cancel
counts_on "cancel" cancel

# The receiver dies (SIGKILL) while pages flow, over TCP without TLS.
receive recv-killed --listen "tcp:127.0.0.1:7004" --insecure $SAME_DISK
wait_for 20 tcp_listening 7004
start_tern send-killed migrate send --api-socket "$OUT/api1.sock" --to "tcp:127.0.0.1:7004" --insecure --bandwidth 2M
wait_for 30 in_precopy
sleep 3 # pages flow meanwhile
check "receiver killed: the migration was under way ($(under_way))" in_precopy
kill -KILL "$(cat "$OUT/recv-killed.pid")"
wait_tern recv-killed 10
wait_tern send-killed 60
check "receiver killed: tern migrate send exits non-zero ($(run_rc send-killed)) saying why: $(error_line send-killed)" \
	failed_with send-killed .
status_now "$OUT/after-kill.json"
check "receiver killed: tern migrate status says failed ($(json_str "$OUT/after-kill.json" phase))" \
	[ "$(json_str "$OUT/after-kill.json" phase)" = failed ]
counts_on "receiver killed" killed

# The network fails between the hosts: a relay (agent relay) stands
# between sender and receiver and cuts the connection, or inverts one
# byte of the sender's stream, a few MB in: past the handshake, among the
# first round's pages (at 2 MB/s, a second or two into pre-copy). Over TCP
# without TLS, which would refuse the changed byte itself: what is checked
# here is that tern's own checksums do.
# relayed NAME PORT FAULT...: a receiver on PORT and a relay on PORT+100
# in front of it doing FAULT (--cut-after N or --flip-after N), and a
# sender through the relay, each to its end; the relay's report in
# $OUT/relay-NAME.kv.
relayed() {
	# Names of their own: the helpers called here set n.
	rn=$1
	rp=$2
	shift 2
	receive "recv-$rn" --listen "tcp:127.0.0.1:$rp" --insecure $SAME_DISK
	wait_for 20 tcp_listening "$rp"
	"$AGENT" relay "127.0.0.1:$((rp + 100))" "127.0.0.1:$rp" "$@" >"$OUT/relay-$rn.kv" 2>"$OUT/relay-$rn.log" </dev/null 4>&- &
	echo $! >"$OUT/relay-$rn.pid"
	wait_for 20 tcp_listening "$((rp + 100))"
	migrate_send "send-$rn" --to "tcp:127.0.0.1:$((rp + 100))" --insecure --bandwidth 2M
	wait_tern "recv-$rn" 30
	end_relay "relay-$rn"
}
end_relay() {
	wait_for 30 stopped "$1" || kill "$(cat "$OUT/$1.pid")"
	wait "$(cat "$OUT/$1.pid")"
	echo "[$1 host] agent relay exited $?"
	cat "$OUT/$1.kv" "$OUT/$1.log" | sed "s/^/[$1 host] /"
}

relayed cut 7005 --cut-after 4000000
check "connection cut: the relay cut both ends 4000000 bytes into the sender's stream ($(kv relay-cut to-target) bytes forwarded)" \
	sh -c "[ '$(kv relay-cut cut-at)' = 4000000 ] && [ '$(kv relay-cut to-target)' = 4000000 ]"
check "connection cut: tern migrate receive exits non-zero ($(run_rc recv-cut)) saying the stream ended early: $(error_line recv-cut)" \
	failed_with recv-cut 'ended early'
check "connection cut: tern migrate send exits non-zero ($(run_rc send-cut)) saying why: $(error_line send-cut)" \
	failed_with send-cut .
status_now "$OUT/after-cut.json"
check "connection cut: tern migrate status says failed in pre-copy's first round ($(json_str "$OUT/after-cut.json" phase), round $(json_num "$OUT/after-cut.json" round))" \
	sh -c "[ '$(json_str "$OUT/after-cut.json" phase)' = failed ] && [ '$(json_num "$OUT/after-cut.json" round)' = 1 ]"
check "connection cut: no guest ran at the destination" nothing_ran recv-cut
counts_on "connection cut" cut

relayed flip 7006 --flip-after 3000000
check "a byte changed on the way: the relay inverted byte 3000000 of the sender's stream ($(kv relay-flip flipped-byte)) and forwarded the rest ($(kv relay-flip to-target) bytes)" \
	[ "$(kv relay-flip flipped-at)" = 3000000 ]
check "a byte changed on the way: tern migrate receive exits non-zero ($(run_rc recv-flip)) naming a checksum mismatch: $(error_line recv-flip)" \
	failed_with recv-flip 'checksum mismatch'
check "a byte changed on the way: tern migrate send exits non-zero ($(run_rc send-flip)) with the destination's reason: $(error_line send-flip)" \
	failed_with send-flip 'checksum mismatch'
status_now "$OUT/after-flip.json"
check "a byte changed on the way: tern migrate status says failed in pre-copy's first round ($(json_str "$OUT/after-flip.json" phase), round $(json_num "$OUT/after-flip.json" round))" \
	sh -c "[ '$(json_str "$OUT/after-flip.json" phase)' = failed ] && [ '$(json_num "$OUT/after-flip.json" round)' = 1 ]"
check "a byte changed on the way: no guest ran at the destination" nothing_ran recv-flip
counts_on "a byte changed on the way" flip

# --- c: the real migration, over TCP with mutual TLS. The destination
# opens the same disk image (shared storage). 500 ms of downtime is what
# the emulated test host can promise; the timeout fails a migration that
# never converges instead of hanging.
start_hold vsock2 unix "$OUT/v2.sock_$VSOCK_DIAL"
start_tern dest migrate receive --listen "tcp:127.0.0.1:$PORT" $SERVER_TLS --tap "$TAP_SRC=$TAP_DST" \
	--bridge "$BRIDGE=$BRIDGE" $SAME_DISK --vsock-socket "$OUT/v2.sock" --api-socket "$OUT/api2.sock" --console "$OUT/dest.out"
wait_for 20 tcp_listening "$PORT"
reconnects_before=$(guest_value source vsock-reconnects)
counter_at_send=$(last_counter source)
migrate_send send --to "tcp:127.0.0.1:$PORT" $CLIENT_TLS --downtime 500ms --timeout 150s --output json
tail -n 1 "$OUT/send.stdout" >"$OUT/send.json"
tcp_at_switch=$(last_seq tcp)
if ! wait_for 30 stopped source; then
	echo "[source tern] still running 30 s after the migration: SIGTERM"
	kill -TERM "$(cat "$OUT/source.pid")"
fi
wait_guest source
end_hold vsock1 stop

check "tern migrate send exits 0 ($(run_rc send))" [ "$(run_rc send)" = 0 ]
check "tern migrate send --output json: its last line says phase completed ($(json_str "$OUT/send.json" phase))" \
	[ "$(json_str "$OUT/send.json" phase)" = completed ]
downtime=$(json_num "$OUT/send.json" downtime_ms)
total=$(json_num "$OUT/send.json" total_time_ms)
check "tern migrate send --output json: downtime_ms ($downtime) and total_time_ms ($total) are numbers" \
	sh -c "echo '$downtime' | grep -qE '^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\$' && echo '$total' | grep -qE '^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\$'"
check "tern migrate send --output json: the guest was paused ($downtime ms), within the whole migration ($total ms)" \
	awk -v d="$downtime" -v t="$total" 'BEGIN { exit !(d + 0 > 0 && t + 0 >= d + 0) }'
check "source: tern exits 0 once the guest is migrated ($(run_rc source))" [ "$(run_rc source)" = 0 ]
check "source: tern logs the stop reason: guest migrated to another host" \
	tern_logged source 'VM stopped.*reason="guest migrated to another host"'
check "source: tern logs that the destination runs the guest" tern_logged source 'guest migrated: the destination runs it'
check "destination: tern logs that the guest runs there" tern_logged dest 'incoming migration complete: the guest runs here'
check "destination: tern still runs the guest" running dest
check "destination: tern put its TAP $TAP_DST in $BRIDGE" in_bridge "$TAP_DST"

# The source's console ends where the guest was paused; a line it had
# half sent is completed by the destination's console.
console "$OUT/source.out" >"$OUT/source-final.txt"
shown=$(counter_split "$OUT/source-final.txt" /dev/null | values_of b | tail -n 1)
wait_for 60 counter_at_least dest "$((shown + 2))"
check "destination: the counter goes on past the source's last $shown ($(last_counter dest))" \
	counter_at_least dest "$((shown + 2))"
host_now=$(date +%s)
guest_now=$(console "$OUT/dest.out" | sed -n 's/.*TERN-GUEST counter=[0-9]* date=\([0-9]*\).*/\1/p' | tail -n 1)
console "$OUT/dest.out" >"$OUT/dest-now.txt"
counter_split "$OUT/source-final.txt" "$OUT/dest-now.txt" >"$OUT/split"
at_switch=$(values_of b "$OUT/split" | tail -n 1)
first_after=$(values_of a "$OUT/split" | head -n 1)
values_of '[ab]' "$OUT/split" >"$OUT/counters"
check "destination: the first counter is $((at_switch + 1)), the one after the source's last ($at_switch): $first_after" \
	[ "$first_after" = "$((at_switch + 1))" ]
check "source and destination consoles count 1, 2, 3, ... $(tail -n 1 "$OUT/counters") without a gap or repeat" \
	consecutive "$OUT/counters"
check "the guest booted once: one boot line at the source ($(uname_lines source)), none at the destination ($(uname_lines dest))" \
	sh -c "[ '$(uname_lines source)' = 1 ] && [ '$(uname_lines dest)' = 0 ]"
check "destination: the guest's date is within 5 s of the host's (guest $guest_now, host $host_now)" \
	within 5 "$guest_now" "$host_now"
wait_for 30 seq_past tcp 1 "$((tcp_at_switch + 2))"
check "destination: TCP lines after the switch's $tcp_at_switch arrive on the first connection (up to $(last_seq tcp 1))" \
	seq_past tcp 1 "$((tcp_at_switch + 2))"
check "destination: the host's TCP end saw one connection only" sh -c "! grep -q '^accepted conn=2' '$OUT/tcp.kv'"
wait_for 30 seq_past vsock2 "" "$(kv vsock1 last-seq)"
check "destination: the guest dialled vsock again and its lines arrive, from $(sed -n 's/^line conn=1 seq=//p' "$OUT/vsock2.kv" | head -n 1) (the source's last $(kv vsock1 last-seq)) to $(last_seq vsock2)" \
	seq_past vsock2 "" "$(kv vsock1 last-seq)"
wait_for 10 guest_said dest vsock-reconnects "$((${reconnects_before:-0} + 1))"
check "destination: the guest reconnected vsock once more (${reconnects_before:-0} before, $(guest_value dest vsock-reconnects) now)" \
	guest_said dest vsock-reconnects "$((${reconnects_before:-0} + 1))"

# --- d: the guest stops when told over the TCP connection, unmounts its
# disk and powers off.
echo stop >&4
wait_tern dest 90
exec 4>&-
end_hold tcp
end_hold vsock2 stop
check "destination: tern exits 0 after the guest powers off ($(run_rc dest))" powered_off dest
check "destination: the guest's TCP agent got the stop (rc $(guest_value dest tcp-rc))" guest_said dest tcp-rc 0
check "destination: the guest unmounted its disk" guest_said dest counter-stopped yes
check "the host's TCP end: one connection ($(kv tcp connections)), lines $(kv tcp first-seq) to $(kv tcp last-seq), $(kv tcp gaps) lost, $(kv tcp repeats) repeated, $(kv tcp bad-lines) garbled" \
	tcp_whole
check "the host's TCP end got every line the guest sent ($(kv tcp last-seq) of $(guest_value dest tcp-sent))" \
	[ "$(kv tcp last-seq)" = "$(guest_value dest tcp-sent)" ]
alarms=$(cat "$OUT/source.out" "$OUT/dest.out" | tr -d '\r' | grep -v 'TERN-GUEST dmesg-alarms=' | grep -ciE "$ALARMS")
check "no soft lockup, RCU stall or hung task on the consoles ($alarms lines)" [ "$alarms" = 0 ]
check "no soft lockup, RCU stall or hung task in the guest's kernel log ($(guest_value dest dmesg-alarms) lines)" \
	guest_said dest dmesg-alarms 0

debugfs -R "cat /counter.log" "$OUT/data.ext4" 2>/dev/null >"$OUT/disk-counters"
last=$(guest_value dest counter-last)
check "disk: counter.log holds 1 to $(tail -n 1 "$OUT/disk-counters") ($(wc -l <"$OUT/disk-counters") lines), none missing or repeated" \
	consecutive "$OUT/disk-counters"
check "disk: counter.log ends at the guest's last counter $last" [ "$(tail -n 1 "$OUT/disk-counters")" = "$last" ]
check "disk: counter.log holds the values written while the guest migrated ($counter_at_send to $first_after)" \
	sh -c "[ '$(sed -n "${counter_at_send}p" "$OUT/disk-counters")' = '$counter_at_send' ] && [ '$(sed -n "${first_after}p" "$OUT/disk-counters")' = '$first_after' ]"
ip link delete "$BRIDGE" 2>/dev/null

finish
