# Live migration between two test hosts: host B's half, the destination
# (migrate-hosts-src.sh is host A's; TestMigrateBetweenHosts runs the two on
# a pair of test hosts joined by a network, see nested.RunPair, and checks
# across both consoles that the counter goes on without a gap). Host B waits
# in tern migrate receive over mutual TLS; once the guest runs here it must
# go on counting, without booting again, with its clock on this host's time
# (the hosts' clocks are their own), and stop on SIGTERM like any guest.
# The certificates are in $SCENARIO_DIR (ca.pem, server.pem, server-key.pem).
. "$SCENARIO_DIR/lib.sh"

PORT=7000
ALARMS='soft lockup|rcu.*stall|hung_task'
# From this host's start until the guest has arrived: host A boots it
# first and lets it count, all under an emulator.
TERN_RUN_TIMEOUT=${MIGRATE_RUN_TIMEOUT:-360}

console() { tr -d '\r' 2>/dev/null <"$OUT/$1.out"; }
counters() { console "$1" | sed -n 's/.*TERN-GUEST counter=\([0-9]*\) .*/\1/p'; }
last_counter() { counters "$1" | tail -n 1; }
counter_at_least() { v=$(last_counter "$1") && is_int "$v" && [ "$v" -ge "$2" ]; }
# consecutive FILE: whether FILE holds N, N+1, N+2, ... one a line, with
# nothing missing or repeated (and at least one value).
consecutive() { awk 'NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad || NR == 0 }' "$1"; }

echo "SCENARIO-RUN dst: tern migrate receive --listen tcp:0.0.0.0:$PORT (TLS) on $LINK_ADDR (in the background)"
timeout -k 10 "$TERN_RUN_TIMEOUT" "$TERN" migrate receive --listen "tcp:0.0.0.0:$PORT" \
	--tls-cert "$SCENARIO_DIR/server.pem" --tls-key "$SCENARIO_DIR/server-key.pem" --tls-ca "$SCENARIO_DIR/ca.pem" \
	--console "$OUT/dst.out" </dev/null >"$OUT/dst.stdout" 2>"$OUT/dst.err" &
echo $! >"$OUT/dst.pid"

# arrived_or_peer_gone: whether the guest arrived, or host A has stopped
# answering pings three times in a row (it powered off: no guest comes).
peer_misses=0
arrived_or_peer_gone() {
	tern_logged dst 'incoming migration complete' && return 0
	if ping -c 1 -W 2 "$LINK_PEER" >/dev/null 2>&1; then peer_misses=0; else peer_misses=$((peer_misses + 1)); fi
	[ "$peer_misses" -ge 3 ]
}
wait_for "$TERN_RUN_TIMEOUT" arrived_or_peer_gone
[ "$peer_misses" -ge 3 ] && echo "SCENARIO-NOTE host A ($LINK_PEER) stopped answering before any guest arrived"
check "dst: tern migrate receive says the guest runs here" tern_logged dst 'incoming migration complete: the guest runs here'
# The first value the guest prints here, then four more.
if tern_logged dst 'incoming migration complete'; then
	wait_for 30 counter_at_least dst 1
	first=$(counters dst | head -n 1)
	wait_for 60 counter_at_least dst "$((first + 4))"
fi
is_int "$first" || first=0
check "dst: the guest's counter goes on here, from $first to $(last_counter dst)" counter_at_least dst "$((first + 4))"
# The guest's clock: the date on its last counter line, against this
# host's clock (that line is at most a second or so old).
host_now=$(date +%s)
guest_now=$(console dst | sed -n 's/.*TERN-GUEST counter=[0-9]* date=\([0-9]*\).*/\1/p' | tail -n 1)
echo "SCENARIO-CLOCK dst host=$host_now guest=$guest_now"
check "dst: the guest's date is within 5 s of this host's (guest $guest_now, host $host_now)" within 5 "$guest_now" "$host_now"

kill -TERM "$(cat "$OUT/dst.pid")"
wait "$(cat "$OUT/dst.pid")"
echo $? >"$OUT/dst.rc"
report_run dst
check "dst: tern exits 143 on SIGTERM ($(run_rc dst))" [ "$(run_rc dst)" = 143 ]
check "dst: tern says the host stopped the guest" tern_logged dst 'VM stopped.*reason="stop requested by the host"'
counters dst >"$OUT/dst-counters"
check "dst: the counter here counts $(head -n 1 "$OUT/dst-counters") to $(tail -n 1 "$OUT/dst-counters") without a gap or repeat" \
	consecutive "$OUT/dst-counters"
check "dst: the guest did not boot again (no uname line)" sh -c "! grep -q 'TERN-GUEST uname=' '$OUT/dst.out'"
alarms=$(console dst | grep -ciE "$ALARMS")
check "dst: no soft lockup, RCU stall or hung task on the guest's console ($alarms lines)" [ "$alarms" = 0 ]

finish
