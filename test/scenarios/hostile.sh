# A hostile guest: for a bounded time it sweeps the I/O port space, reads
# and writes every page of the unbacked MMIO hole, floods its console with
# terminal escape sequences (clipboard writes, window titles, queries) and
# writes the boot-timer port in a tight loop, all at once (agent hostile).
# Meanwhile tern must stay what its operator relies on: its memory and its
# log bounded (the unhandled-access table and the rate-limited log lines),
# its API answering (pause, resume, snapshot), a SIGTERM obeyed at once;
# and a console on stdio must reach the terminal without a single escape.
. "$SCENARIO_DIR/lib.sh"

# The attack outlasts everything the host does during it, so that the
# SIGTERM at the end also lands mid-attack.
ATTACK_SECONDS=90
# How far tern's RSS may rise over the attack, in KiB: the guest touches no
# new memory during it, so tern may grow only by what it keeps per access.
RSS_SLACK_KIB=8192
# How much tern may log over the whole attack, in bytes: about 20 short
# lines a second (10 for unhandled accesses, 10 for the boot timer) when
# the guest generates thousands of each.
LOG_LIMIT=102400

# uptime_cs: the host's uptime in centiseconds, a clock busybox sh can read.
uptime_cs() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }
rss_within() { is_int "$1" && is_int "$2" && [ "$2" -le "$(($1 + RSS_SLACK_KIB))" ]; }
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null; }
size_of() { wc -c <"$1" | tr -d ' '; }
# esc_bytes FILE: how many ESC (0x1b) bytes FILE holds; c1_csi FILE: how
# many C1 CSIs written as UTF-8 (c2 9b).
esc_bytes() { tr -cd '\033' <"$1" | wc -c | tr -d ' '; }
c1_csi() { od -An -v -tx1 "$1" | tr -s ' \n' '\n\n' | awk 'p == "c2" && $0 == "9b" { n++ } { p = $0 } END { print n + 0 }'; }
has_console() { [ -e "$OUT/$1.out" ]; }
# flood_numbers NAME: the numbers of the whole flood lines on run NAME's
# console, one a line; flood_fragments NAME: how many lines are neither a
# whole flood line, a TERN-GUEST line nor a kernel message, i.e. what is
# left of lines that lost bytes on the way (the last line, cut by the
# SIGTERM, is not counted).
flood_numbers() { console "$OUT/$1.out" | sed -n 's/^hostile flood \([0-9]*\) .* end$/\1/p'; }
flood_fragments() {
	console "$OUT/$1.out" | sed '$d' | grep -av -e '^hostile flood [0-9]* .* end$' -e 'TERN-GUEST' -e '^\[ *[0-9]*\.[0-9]*\] ' | grep -c .
}
# missing_numbers FILE: the numbers from_zero finds missing, at most 5.
missing_numbers() { awk 'BEGIN { n = 0 } { while (n < $1) { print n; n++ } n = $1 + 1 }' "$1" | head -n 5 | tr '\n' ' '; }
# fragment_offsets NAME: the byte offsets in run NAME's console where the
# fragments flood_fragments counts end, to place them against the sizes
# logged at the pause, resume and snapshot.
fragment_offsets() {
	awk '{ off += length($0) + 1; sub(/\r$/, "") } $0 != "" && !/^hostile flood [0-9]* .* end$/ && !/TERN-GUEST/ && !/^\[ *[0-9]*\.[0-9]*\] / { print off }' "$OUT/$1.out" | head -n 5 | tr '\n' ' '
}
# from_zero FILE: whether FILE holds 0, 1, 2, ... one a line, none missing.
from_zero() { awk 'NR - 1 != $1 { bad = 1 } END { exit bad || NR == 0 }' "$1"; }
last_tick() { v=$(guest_value "$1" hostile-tick) && echo "${v:-0}"; }
ticked_past() { [ "$(last_tick "$1")" -gt "$2" ]; }
console_grew() { [ "$(size_of "$OUT/$1.out")" -gt "$2" ]; }

# report_hostile NAME: what report_run prints, without the flood: the
# guest's TERN-GUEST lines but the ticks, and tern's log with the two
# rate-limited kinds of line cut to their first few and counted.
report_hostile() {
	console "$OUT/$1.out" | grep -a 'TERN-GUEST' | grep -av 'hostile-tick=' | sed "s/^.*TERN-GUEST/[$1 guest] TERN-GUEST/"
	# Lines that are neither the flood nor the agent's, escapes shown as ^[.
	console "$OUT/$1.out" | grep -av -e '^hostile flood [0-9]* .* end$' -e 'TERN-GUEST' | head -n 20 |
		sed -e "s/$(printf '\033')/^[/g" -e "s/^/[$1 guest] (other) /"
	echo "[$1 guest] (last tick $(last_tick "$1"); console $(size_of "$OUT/$1.out") bytes)"
	for kind in 'guest access to nothing' 'guest signalled boot done'; do
		echo "[$1 tern] ($(grep -c "$kind" "$OUT/$1.err") lines \"$kind\"; the first 5:)"
		grep "$kind" "$OUT/$1.err" | head -n 5 | sed "s/^/[$1 tern] /"
	done
	grep -v -e 'guest access to nothing' -e 'guest signalled boot done' "$OUT/$1.err" | sed "s/^/[$1 tern] /"
	echo "SCENARIO-RUN-END $1 rc=$(cat "$OUT/$1.rc")"
}

api() {
	"$TERN" "$@" --api-socket "$OUT/api.sock" >"$OUT/api.log" 2>&1 4>&-
	rc=$?
	sed "s/^/[tern $1] /" "$OUT/api.log"
	return $rc
}

# --- 1: the attack, with the console in a file, tern's log at debug (so
# that every unhandled access is one it would log) and its API socket.
start_tern attack --log-level debug run --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--console "$OUT/attack.out" --api-socket "$OUT/api.sock" \
	--cmdline "$GUEST_CMDLINE tern.action=hostile tern.hostile-seconds=$ATTACK_SECONDS"
pid=$(cat "$OUT/attack.pid")
wait_for 150 has_console attack
wait_for 150 guest_has attack hostile-started
check "attack: the guest booted and started its attack" guest_said attack hostile-started yes
check "attack: the guest has the I/O ports (iopl: $(guest_value attack hostile-iopl))" guest_said attack hostile-iopl ok
check "attack: the guest spams the boot timer ($(guest_value attack hostile-boottimer))" guest_said attack hostile-boottimer ok
check "attack: the guest floods /dev/ttyS0 ($(guest_value attack hostile-flood))" guest_said attack hostile-flood ok
# STRICT_DEVMEM lets the stock kernel map what is neither RAM nor a
# driver's; if it ever refuses, the unbacked accesses are the ports only.
devmem=$(guest_value attack hostile-devmem)
echo "attack: /dev/mem in the MMIO hole: $devmem"

# The baseline, two seconds into the attack (the agent's own memory is
# in place by then).
sleep 2
rss0=$(rss_kib "$pid")
log0=$(size_of "$OUT/attack.err")
cons0=$(size_of "$OUT/attack.out")
t0=$(uptime_cs)
rm -f "$OUT/sampling.stop"
(
	while [ ! -e "$OUT/sampling.stop" ]; do
		rss_kib "$pid"
		sleep 1
	done
) >"$OUT/rss.txt" &
sampler=$!

# --- 2: the API during the attack: pause (the console stops), resume (it
# goes on), a snapshot that resumes the guest.
sleep 8
api pause
check "attack: tern pause exits 0 mid-attack" [ $? = 0 ]
sleep 1 # output sent before the pause may still be on its way to the file
paused_size=$(size_of "$OUT/attack.out")
echo "attack: console $paused_size bytes at the pause"
paused_tick=$(last_tick attack)
sleep 3
check "attack: the paused guest printed nothing more in 3 s ($paused_size bytes, then $(size_of "$OUT/attack.out"))" \
	[ "$(size_of "$OUT/attack.out")" = "$paused_size" ]
api resume
check "attack: tern resume exits 0 mid-attack" [ $? = 0 ]
wait_for 20 ticked_past attack "$((paused_tick + 2))"
check "attack: the resumed guest goes on attacking (tick $paused_tick at the pause, $(last_tick attack) now)" \
	ticked_past attack "$((paused_tick + 2))"
before_snap=$(last_tick attack)
echo "attack: console $(size_of "$OUT/attack.out") bytes before the snapshot"
api snapshot create --dir "$OUT/snap" --resume
check "attack: tern snapshot create --resume exits 0 mid-attack" [ $? = 0 ]
check "attack: the snapshot holds vmstate and memory ($(ls "$OUT/snap" 2>/dev/null | tr '\n' ' '))" \
	[ -s "$OUT/snap/vmstate" -a -e "$OUT/snap/memory" ]
rm -rf "$OUT/snap" # the test host's disk is its memory
wait_for 20 ticked_past attack "$((before_snap + 2))"
check "attack: the guest goes on after the snapshot (tick $before_snap before, $(last_tick attack) now)" \
	ticked_past attack "$((before_snap + 2))"
cons1=$(size_of "$OUT/attack.out")
sleep 5

# --- 3: what the attack cost tern, up to now.
touch "$OUT/sampling.stop"
wait "$sampler"
t1=$(uptime_cs)
log1=$(size_of "$OUT/attack.err")
rss_max=$(sort -n "$OUT/rss.txt" | tail -n 1)
secs=$(((t1 - t0) / 100))
check "attack: tern still runs ($secs s into the measurement, tick $(last_tick attack))" running attack
check "attack: the guest was still attacking (it has not printed hostile-done)" [ -z "$(guest_value attack hostile-done)" ]
check "attack: tern's RSS stayed within $RSS_SLACK_KIB KiB of its $rss0 KiB at the start ($(wc -l <"$OUT/rss.txt") samples, highest $rss_max KiB)" \
	rss_within "$rss0" "$rss_max"
check "attack: tern's log grew by $((log1 - log0)) bytes in $secs s (limit $LOG_LIMIT)" \
	[ "$((log1 - log0))" -lt "$LOG_LIMIT" ]
check "attack: tern logged unhandled port accesses" grep -q 'guest access to nothing.*space=port' "$OUT/attack.err"
if [ "$devmem" = ok ]; then
	check "attack: tern logged unhandled MMIO accesses" grep -q 'guest access to nothing.*space=mmio' "$OUT/attack.err"
fi
check "attack: tern's unhandled-access lines say how many were dropped" \
	sh -c "grep 'guest access to nothing' '$OUT/attack.err' | grep -q 'dropped='"
check "attack: tern's boot-timer lines say how many were dropped" \
	sh -c "grep 'guest signalled boot done' '$OUT/attack.err' | grep -q 'dropped='"
check "attack: the console file grew during the attack ($cons0 bytes at the start, $cons1 after the snapshot)" [ "$cons1" -gt "$cons0" ]
flood_numbers attack >"$OUT/flood.txt"
check "attack: the console file holds every flood line the guest wrote, none lost ($(wc -l <"$OUT/flood.txt") lines, the last numbered $(tail -n 1 "$OUT/flood.txt"))" \
	from_zero "$OUT/flood.txt"
echo "attack: flood lines missing: $(missing_numbers "$OUT/flood.txt"); fragments end at console offsets $(fragment_offsets attack)"
check "attack: no flood line reached the console file cut short ($(flood_fragments attack) fragments)" [ "$(flood_fragments attack)" = 0 ]
check "attack: the console file holds the guest's escape sequences raw ($(esc_bytes "$OUT/attack.out") ESC bytes)" \
	grep -q "$(printf '\033]52;c;')" "$OUT/attack.out"

# --- 4: SIGTERM mid-attack ends tern within a second, 128+15.
(
	sleep 30
	kill -KILL "$pid" 2>/dev/null
) &
watchdog=$!
running attack
was_running=$?
s0=$(uptime_cs)
kill -TERM "$pid"
wait "$pid"
echo $? >"$OUT/attack.rc"
s1=$(uptime_cs)
kill "$watchdog" 2>/dev/null
check "attack: SIGTERM mid-attack: tern exits 143 ($(run_rc attack))" [ "$(run_rc attack)" = 143 ]
# It counts only if tern was still there to be stopped.
gone_in_a_second() { [ "$was_running" = 0 ] && [ "$((s1 - s0))" -lt 100 ]; }
check "attack: SIGTERM mid-attack: tern was gone $((s1 - s0))0 ms later (limit 1000 ms)" gone_in_a_second
report_hostile attack

# --- 5: a shorter attack with the console on stdio, into a pipe as an
# operator's terminal would get it: not one escape may come through.
echo "SCENARIO-RUN stdio: tern run --console stdio | (a pipe), tern.hostile-seconds=10"
{
	timeout -k 10 "$TERN_RUN_TIMEOUT" "$TERN" run --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
		--console stdio --cmdline "$GUEST_CMDLINE tern.action=hostile tern.hostile-seconds=10" \
		</dev/null 2>"$OUT/stdio.err"
	echo $? >"$OUT/stdio.rc"
} | cat >"$OUT/stdio.out"
check "stdio: tern exits 0 after the guest's attack and poweroff" powered_off stdio
check "stdio: the guest finished its attack ($(guest_value stdio hostile-port-accesses) port, $(guest_value stdio hostile-mmio-accesses) MMIO accesses, $(guest_value stdio hostile-console-bytes) console bytes, $(guest_value stdio hostile-boottimer-writes) boot-timer writes)" \
	guest_said stdio hostile-done yes
check "stdio: the flood's text came through ($(grep -ac 'hostile flood' "$OUT/stdio.out") lines)" grep -aq 'hostile flood [0-9]* .* end' "$OUT/stdio.out"
check "stdio: no ESC byte came through ($(esc_bytes "$OUT/stdio.out") in $(size_of "$OUT/stdio.out") bytes)" [ "$(esc_bytes "$OUT/stdio.out")" = 0 ]
check "stdio: no C1 CSI (UTF-8 c2 9b) came through ($(c1_csi "$OUT/stdio.out"))" [ "$(c1_csi "$OUT/stdio.out")" = 0 ]
check "stdio: neither the window title nor the clipboard payload came through" \
	sh -c "! grep -aq -e 'hostile title' -e 'aG9zdGlsZSBjbGlwYm9hcmQ=' '$OUT/stdio.out'"
flood_numbers stdio >"$OUT/flood.txt"
check "stdio: every flood line came through, none lost ($(wc -l <"$OUT/flood.txt") lines, missing: $(missing_numbers "$OUT/flood.txt"))" \
	from_zero "$OUT/flood.txt"
report_hostile stdio

finish
