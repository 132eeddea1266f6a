# Snapshot and restore of a guest with work in flight (tern.action=counter):
# a counter on the console and in counter.log on its virtio-blk data disk,
# one TCP connection over a TAP, and vsock both ways. tern snapshots it and
# is stopped; a new tern restores it on a copy of the disk (--disk OLD=NEW,
# the TAP confirmed with --tap OLD=OLD, a new vsock socket) and the guest
# goes on where it was: the counter without a gap or repeat,
# its clock on time, the same TCP connection, vsock dialled again (a
# restore resets vsock connections). Then a full snapshot of the restored
# guest, a diff snapshot a few seconds later, merged into the full one and
# restored by a third tern. A truncated and a corrupt snapshot are refused,
# and so is a restore that does not confirm the host resources the snapshot
# names.
. "$SCENARIO_DIR/lib.sh"

# The source runs from boot until it is snapshotted, under an emulator.
TERN_RUN_TIMEOUT=${SNAPSHOT_RUN_TIMEOUT:-240}
TAP=tern0
HOST_IP=10.0.0.1
GUEST_IP=10.0.0.2
TCP_PORT=5000
VSOCK_DIAL=5001  # the host's port the guest holds a connection to
VSOCK_SERVE=5000 # the guest's port the host sends to
ALARMS='soft lockup|rcu.*stall|hung_task'
# Host-side agents run through the whole scenario, but not past this.
export AGENT_TIMEOUT=420s

guest_cmdline="$GUEST_CMDLINE tern.action=counter tern.ip=$GUEST_IP/24 tern.peer=$HOST_IP tern.port=$TCP_PORT tern.vsock-dial=$VSOCK_DIAL tern.vsock-serve=$VSOCK_SERVE"

# same_console NAME FILE: whether run NAME's console is, as text, FILE.
same_console() { console "$OUT/$1.out" | cmp -s - "$2"; }
empty_or_missing() { [ ! -s "$1" ]; }
refused() { [ "$(cat "$OUT/$1.rc")" = 1 ] && [ "$(cat "$OUT/$1.secs")" -le 15 ]; }
tcp_whole() {
	[ "$(kv tcp connections)" = 1 ] && [ "$(kv tcp first-seq)" = 1 ] && [ "$(kv tcp gaps)" = 0 ] &&
		[ "$(kv tcp repeats)" = 0 ] && [ "$(kv tcp bad-lines)" = 0 ]
}
booted_one_cpu() { [ -n "$(guest_value "$1" uname)" ] && guest_said "$1" cpus 1; }
snapshot_files() { [ -s "$1/vmstate" ] && [ -s "$1/memory" ]; }

# start_restore NAME ARGS...: "$TERN snapshot restore ARGS..." in the
# background, its console in $OUT/NAME.out, as start_guest keeps a run.
start_restore() {
	n=$1
	shift
	echo "SCENARIO-RUN $n: tern snapshot restore $* (in the background)"
	date +%s >"$OUT/$n.t0"
	timeout -k 10 "$TERN_RUN_TIMEOUT" "$TERN" snapshot restore --console "$OUT/$n.out" "$@" \
		</dev/null >"$OUT/$n.stdout" 2>"$OUT/$n.err" 4>&- &
	echo $! >"$OUT/$n.pid"
}
# stop_run NAME: SIGTERM to run NAME's tern, then wait_guest.
stop_run() {
	kill -TERM "$(cat "$OUT/$1.pid")"
	wait_guest "$1"
}

# --- a: the TAP (made here, so it and the host's address outlive each
# tern), the host's ends of the connections, the data disk, the guest.
"$AGENT" mktap "$TAP"
ip addr add "$HOST_IP/24" dev "$TAP"
ip link set "$TAP" up
mkfifo "$OUT/tcp.cmd"
start_hold tcp tcp ":$TCP_PORT" "$OUT/tcp.cmd"
# Read-write, so the open does not wait for the reader; what is written to
# fd 4 goes to the guest over the TCP connection.
exec 4<>"$OUT/tcp.cmd"
start_hold vsock1 unix "$OUT/v1.sock_$VSOCK_DIAL"
cp "$ROOT_IMAGE" "$OUT/data.ext4"

start_guest source --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--disk "path=$OUT/data.ext4,id=data" --net "tap=$TAP,mac=02:00:00:00:00:02" \
	--vsock "cid=3,socket=$OUT/v1.sock" --api-socket "$OUT/api1.sock" --track-dirty-pages \
	--cmdline "$guest_cmdline"

# --- b: a snapshot once the guest has counted to 5 and its connections
# carry lines; tern leaves the guest paused, then is stopped.
wait_for 150 counter_at_least source 5
check "source: the guest booted ($(guest_value source uname)) with 1 CPU ($(guest_value source cpus))" \
	booted_one_cpu source
check "source: the counter reached 5 ($(last_counter source))" counter_at_least source 5
wait_for 30 seq_past tcp 1 1
check "source: the host gets the guest's TCP lines (up to $(last_seq tcp))" seq_past tcp 1 1
wait_for 30 seq_past vsock1 1 1
check "source: the host gets the guest's vsock lines (up to $(last_seq vsock1))" seq_past vsock1 1 1
"$TERN" snapshot create --api-socket "$OUT/api1.sock" --dir "$OUT/snap" >"$OUT/create.log" 2>&1 4>&-
rc=$?
sed 's/^/[create snap] /' "$OUT/create.log"
check "tern snapshot create exits 0 ($rc)" [ "$rc" = 0 ]
sleep 1 # output the guest sent before the pause may still be on its way to the file
console "$OUT/source.out" >"$OUT/source-at-snapshot.txt"
tcp_at_snapshot=$(last_seq tcp)
stop_run source
check "source: tern exits 143 on SIGTERM after the snapshot ($(run_rc source))" [ "$(run_rc source)" = 143 ]
console "$OUT/source.out" >"$OUT/source-final.txt"
check "source: the paused guest printed nothing more ($(wc -c <"$OUT/source-at-snapshot.txt") bytes at the snapshot, $(wc -c <"$OUT/source-final.txt") at exit)" \
	cmp -s "$OUT/source-at-snapshot.txt" "$OUT/source-final.txt"
check "the snapshot directory holds vmstate and memory ($(ls "$OUT/snap" | tr '\n' ' '))" snapshot_files "$OUT/snap"
end_hold vsock1 stop
check "source: vsock: one connection ($(kv vsock1 connections)), lines $(kv vsock1 first-seq) to $(kv vsock1 last-seq)" \
	[ "$(kv vsock1 connections)" = 1 ]
orig_sum=$(sha256sum "$OUT/data.ext4" | cut -d' ' -f1)

# --- c: a truncated and a corrupt snapshot are refused before any guest
# runs. The memory file is shared (linked), the vmstate is a broken copy.
size=$(wc -c <"$OUT/snap/vmstate")
mkdir -p "$OUT/cut" "$OUT/flip"
head -c "$((size / 2))" "$OUT/snap/vmstate" >"$OUT/cut/vmstate"
cp "$OUT/snap/vmstate" "$OUT/flip/vmstate"
off=$((size / 2))
byte=$(od -An -tu1 -j "$off" -N 1 "$OUT/flip/vmstate" | tr -d ' ')
# shellcheck disable=SC2059 # the format is the octal escape of one byte
printf "\\$(printf %03o $((byte ^ 255)))" | dd of="$OUT/flip/vmstate" bs=1 seek="$off" conv=notrunc 2>/dev/null
for b in cut flip; do
	ln -s "$OUT/snap/memory" "$OUT/$b/memory"
	t0=$(date +%s)
	timeout -k 5 60 "$TERN" snapshot restore --dir "$OUT/$b" --console "$OUT/$b.out" \
		--vsock-socket "$OUT/$b.sock" </dev/null >"$OUT/$b.log" 2>&1 4>&-
	echo $? >"$OUT/$b.rc"
	echo $(($(date +%s) - t0)) >"$OUT/$b.secs"
	sed "s/^/[$b restore] /" "$OUT/$b.log"
done
check "truncated vmstate ($((size / 2)) of $size bytes): restore exits 1 ($(cat "$OUT/cut.rc")) within 15 s ($(cat "$OUT/cut.secs") s)" \
	refused cut
check "truncated vmstate: a one-line error says truncated ($(head -n 1 "$OUT/cut.log"))" grep -qi "^tern: .*truncated" "$OUT/cut.log"
check "truncated vmstate: no guest ran ($(cat "$OUT/cut.out" 2>/dev/null | wc -c) console bytes)" empty_or_missing "$OUT/cut.out"
check "vmstate with byte $off inverted: restore exits 1 ($(cat "$OUT/flip.rc")) within 15 s ($(cat "$OUT/flip.secs") s)" \
	refused flip
check "vmstate with a changed byte: a one-line error says checksum or corrupt ($(head -n 1 "$OUT/flip.log"))" \
	grep -qiE "^tern: .*(checksum|corrupt)" "$OUT/flip.log"
check "vmstate with a changed byte: no guest ran ($(cat "$OUT/flip.out" 2>/dev/null | wc -c) console bytes)" empty_or_missing "$OUT/flip.out"

# A restore that confirms none of the host resources the snapshot names
# (its disk, TAP and vsock socket) is refused before any is opened, and the
# error says how to confirm each.
t0=$(date +%s)
timeout -k 5 60 "$TERN" snapshot restore --dir "$OUT/snap" --console "$OUT/unconfirmed.out" \
	</dev/null >"$OUT/unconfirmed.log" 2>&1 4>&-
echo $? >"$OUT/unconfirmed.rc"
echo $(($(date +%s) - t0)) >"$OUT/unconfirmed.secs"
sed "s/^/[unconfirmed restore] /" "$OUT/unconfirmed.log"
check "a restore without --disk, --tap, --vsock-socket: exits 1 ($(cat "$OUT/unconfirmed.rc")) within 15 s ($(cat "$OUT/unconfirmed.secs") s)" \
	refused unconfirmed
check "a restore without confirmations: the error names --disk, --tap and --vsock-socket for the snapshot's own disk, TAP and socket" \
	sh -c 'grep -qF -- "--disk $1=$1" "$4" && grep -qF -- "--tap $2=$2" "$4" && grep -qF -- "--vsock-socket $3" "$4"' \
	- "$OUT/data.ext4" "$TAP" "$OUT/v1.sock" "$OUT/unconfirmed.log"
check "a restore without confirmations: no guest ran ($(cat "$OUT/unconfirmed.out" 2>/dev/null | wc -c) console bytes)" \
	empty_or_missing "$OUT/unconfirmed.out"

# --- d: restore on a copy of the disk, taken now that the source is gone
# (it was paused from the snapshot on, so the copy is the disk as the
# snapshot saw it).
cp "$OUT/data.ext4" "$OUT/data2.ext4"
start_hold vsock2 unix "$OUT/v2.sock_$VSOCK_DIAL"
start_restore restored --dir "$OUT/snap" --disk "$OUT/data.ext4=$OUT/data2.ext4" --tap "$TAP=$TAP" \
	--vsock-socket "$OUT/v2.sock" --api-socket "$OUT/api2.sock" --track-dirty-pages
# The last value the source shows (a line it half sent is completed by
# the restored console, below).
shown=$(counter_split "$OUT/source-final.txt" /dev/null | values_of b | tail -n 1)
wait_for 90 counter_at_least restored "$((shown + 2))"
check "restored: the counter goes on past the snapshot's $shown ($(last_counter restored))" \
	counter_at_least restored "$((shown + 2))"
host_now=$(date +%s)
guest_now=$(console "$OUT/restored.out" | sed -n 's/.*TERN-GUEST counter=[0-9]* date=\([0-9]*\).*/\1/p' | tail -n 1)
console "$OUT/restored.out" >"$OUT/restored-now.txt"
counter_split "$OUT/source-final.txt" "$OUT/restored-now.txt" >"$OUT/split1"
at_snapshot=$(values_of b "$OUT/split1" | tail -n 1)
first_after=$(values_of a "$OUT/split1" | head -n 1)
values_of '[ab]' "$OUT/split1" >"$OUT/counters1"
check "restored: the first counter after the restore is $((at_snapshot + 1)), the one after the last before the snapshot ($at_snapshot): $first_after" \
	[ "$first_after" = "$((at_snapshot + 1))" ]
check "source and restored consoles count 1, 2, 3, ... $(tail -n 1 "$OUT/counters1") without a gap or repeat ($(tr '\n' ' ' <"$OUT/counters1"))" \
	consecutive "$OUT/counters1"
check "restored: the guest did not boot again (no uname line)" sh -c "! grep -q 'TERN-GUEST uname=' '$OUT/restored.out'"
check "restored: the guest's date is within 5 s of the host's (guest $guest_now, host $host_now)" within 5 "$guest_now" "$host_now"
wait_for 30 seq_past tcp 1 "$((tcp_at_snapshot + 2))"
check "restored: TCP lines after the snapshot's $tcp_at_snapshot arrive on the first connection (up to $(last_seq tcp 1))" \
	seq_past tcp 1 "$((tcp_at_snapshot + 2))"
check "restored: the host's TCP end saw one connection only" sh -c "! grep -q '^accepted conn=2' '$OUT/tcp.kv'"
wait_for 30 seq_past vsock2 1 "$(kv vsock1 last-seq)"
check "restored: the guest dialled vsock again and its lines arrive, from $(sed -n 's/^line conn=1 seq=//p' "$OUT/vsock2.kv" | head -n 1) (the source's last $(kv vsock1 last-seq)) to $(last_seq vsock2)" \
	seq_past vsock2 1 "$(kv vsock1 last-seq)"
wait_for 10 guest_said restored vsock-reconnects 1
check "restored: the guest reconnected vsock once ($(guest_value restored vsock-reconnects))" \
	guest_said restored vsock-reconnects 1
host_agent vsock-send send tern-vsock "$OUT/v2.sock:$VSOCK_SERVE" 1048576 4>&-
sent=$(kv vsock-send sent-sha256)
check "restored: host->guest vsock: the host's agent succeeded (rc $(run_rc vsock-send))" [ "$(run_rc vsock-send)" = 0 ]
# The guest prints its rc and then the sums: wait for the last of them.
wait_for 20 guest_has restored vsock-serve-elapsed-ms
check "restored: host->guest vsock: the guest's agent succeeded (rc $(guest_value restored vsock-serve-rc))" \
	guest_said restored vsock-serve-rc 0
check "restored: host->guest vsock: sha256 of what the guest received = of what the host sent" \
	same_sum "$sent" "$(guest_value restored vsock-serve-received-sha256)"
check "restored: host->guest vsock: sha256 of what the host got back = of what it sent" \
	same_sum "$sent" "$(kv vsock-send echoed-sha256)"

# --- e: a full snapshot (the guest goes on), a few seconds, then a diff
# snapshot (the guest stays paused), merged into the full one.
"$TERN" snapshot create --api-socket "$OUT/api2.sock" --dir "$OUT/full2" --resume >"$OUT/create.log" 2>&1 4>&-
rc=$?
sed 's/^/[create full2] /' "$OUT/create.log"
check "tern snapshot create --resume exits 0 ($rc)" [ "$rc" = 0 ]
full2_counter=$(last_counter restored)
wait_for 20 counter_at_least restored "$((full2_counter + 2))"
check "the guest goes on after a snapshot with --resume (counter $full2_counter, then $(last_counter restored))" \
	counter_at_least restored "$((full2_counter + 2))"
# A pause ends vsock connections as a restore does (tern cannot keep its
# host ends across it): the guest dials again.
wait_for 20 seq_past vsock2 2 "$(last_seq vsock2 1)"
check "after the snapshot with --resume the guest's vsock lines go on, on a second connection (from $(sed -n 's/^line conn=2 seq=//p' "$OUT/vsock2.kv" | head -n 1), the first's last $(last_seq vsock2 1))" \
	seq_past vsock2 2 "$(last_seq vsock2 1)"
"$TERN" snapshot create --api-socket "$OUT/api2.sock" --dir "$OUT/diff2" --diff >"$OUT/create.log" 2>&1 4>&-
rc=$?
sed 's/^/[create diff2] /' "$OUT/create.log"
check "tern snapshot create --diff exits 0 ($rc)" [ "$rc" = 0 ]
sleep 1
console "$OUT/restored.out" >"$OUT/restored-at-diff.txt"
tcp_at_diff=$(last_seq tcp)
stop_run restored
check "restored: tern exits 143 on SIGTERM after the diff snapshot ($(run_rc restored))" [ "$(run_rc restored)" = 143 ]
check "restored: the paused guest printed nothing more after the diff snapshot ($(wc -c <"$OUT/restored-at-diff.txt") bytes then, $(console "$OUT/restored.out" | wc -c) at exit)" \
	same_console restored "$OUT/restored-at-diff.txt"
end_hold vsock2 stop
check "restored: the host never had two of the guest's vsock connections open at once (max-open=$(kv vsock2 max-open))" \
	[ "$(kv vsock2 max-open)" = 1 ]
full_kib=$(du -k "$OUT/full2/memory" | cut -f1)
diff_kib=$(du -k "$OUT/diff2/memory" | cut -f1)
check "the diff snapshot's memory takes less disk than the full one's ($diff_kib KiB vs $full_kib KiB)" \
	[ "$diff_kib" -lt "$full_kib" ]
"$TERN" snapshot merge --base "$OUT/full2" --diff "$OUT/diff2" >"$OUT/merge.log" 2>&1 4>&-
rc=$?
sed 's/^/[merge] /' "$OUT/merge.log"
check "tern snapshot merge exits 0 ($rc)" [ "$rc" = 0 ]

# The merged snapshot names the disk the restored guest used (data2.ext4),
# as the restored tern left it: paused from the diff snapshot on. It is
# confirmed as it is (--disk OLD=OLD), as is the TAP.
start_hold vsock3 unix "$OUT/v3.sock_$VSOCK_DIAL"
start_restore merged --dir "$OUT/full2" --disk "$OUT/data2.ext4=$OUT/data2.ext4" --tap "$TAP=$TAP" \
	--vsock-socket "$OUT/v3.sock"
cat "$OUT/source-final.txt" "$OUT/restored-at-diff.txt" >"$OUT/before-merged.txt"
shown=$(counter_split "$OUT/before-merged.txt" /dev/null | values_of b | tail -n 1)
wait_for 90 counter_at_least merged "$((shown + 2))"
check "merged: the counter goes on past the diff snapshot's $shown ($(last_counter merged))" \
	counter_at_least merged "$((shown + 2))"
console "$OUT/merged.out" >"$OUT/merged-now.txt"
counter_split "$OUT/before-merged.txt" "$OUT/merged-now.txt" >"$OUT/split2"
at_diff=$(values_of b "$OUT/split2" | tail -n 1)
first_merged=$(values_of a "$OUT/split2" | head -n 1)
values_of '[ab]' "$OUT/split2" >"$OUT/counters2"
check "merged: the first counter is $((at_diff + 1)), the one after the last before the diff snapshot ($at_diff): $first_merged" \
	[ "$first_merged" = "$((at_diff + 1))" ]
check "all three consoles count 1, 2, 3, ... $(tail -n 1 "$OUT/counters2") without a gap or repeat" consecutive "$OUT/counters2"
wait_for 30 seq_past tcp 1 "$((tcp_at_diff + 1))"
check "merged: TCP lines after the diff snapshot's $tcp_at_diff arrive on the first connection (up to $(last_seq tcp 1))" \
	seq_past tcp 1 "$((tcp_at_diff + 1))"
wait_for 30 seq_past vsock3 "" "$(kv vsock2 last-seq)"
check "merged: the guest dialled vsock again and its lines arrive (the last before $(kv vsock2 last-seq), now $(last_seq vsock3))" \
	seq_past vsock3 "" "$(kv vsock2 last-seq)"
wait_for 10 guest_said merged vsock-reconnects 3
check "merged: the guest reconnected vsock three times in all, after each restore and the snapshot with --resume ($(guest_value merged vsock-reconnects))" \
	guest_said merged vsock-reconnects 3

# --- f: the guest stops when told, unmounts its disk, powers off.
echo stop >&4
wait_guest merged
exec 4>&-
end_hold tcp
end_hold vsock3 stop
check "merged: the host never had two of the guest's vsock connections open at once (max-open=$(kv vsock3 max-open))" \
	[ "$(kv vsock3 max-open)" = 1 ]
check "merged: tern exits 0 after the guest powers off ($(run_rc merged))" powered_off merged
check "merged: the guest's TCP agent got the stop (rc $(guest_value merged tcp-rc))" guest_said merged tcp-rc 0
check "merged: the guest unmounted its disk" guest_said merged counter-stopped yes
check "the host's TCP end: one connection ($(kv tcp connections)), lines $(kv tcp first-seq) to $(kv tcp last-seq), $(kv tcp gaps) lost, $(kv tcp repeats) repeated, $(kv tcp bad-lines) garbled" \
	tcp_whole
check "the host's TCP end got every line the guest sent ($(kv tcp last-seq) of $(guest_value merged tcp-sent))" \
	[ "$(kv tcp last-seq)" = "$(guest_value merged tcp-sent)" ]
alarms=$(cat "$OUT/source.out" "$OUT/restored.out" "$OUT/merged.out" | grep -ciE "$ALARMS")
check "no soft lockup, RCU stall or hung task on the consoles ($alarms lines)" [ "$alarms" = 0 ]
check "no soft lockup, RCU stall or hung task in the guest's kernel log ($(guest_value merged dmesg-alarms) lines)" \
	guest_said merged dmesg-alarms 0

debugfs -R "cat /counter.log" "$OUT/data2.ext4" 2>/dev/null >"$OUT/disk-counters"
last=$(guest_value merged counter-last)
check "disk: counter.log in the restored image holds 1 to $(tail -n 1 "$OUT/disk-counters") ($(wc -l <"$OUT/disk-counters") lines), none missing or repeated" \
	consecutive "$OUT/disk-counters"
check "disk: counter.log ends at the guest's last counter $last" [ "$(tail -n 1 "$OUT/disk-counters")" = "$last" ]
check "disk: counter.log goes on past the diff snapshot's $at_diff" [ "$(tail -n 1 "$OUT/disk-counters")" -gt "$at_diff" ] 2>/dev/null
check "disk: the original image was not written after the source stopped" \
	[ "$(sha256sum "$OUT/data.ext4" | cut -d' ' -f1)" = "$orig_sum" ]
ip link delete "$TAP" 2>/dev/null

finish
