# Live migration between two test hosts: host A's half, the source
# (migrate-hosts-dst.sh is host B's; TestMigrateBetweenHosts runs the two on
# a pair of test hosts joined by a network, see nested.RunPair). Host A
# boots the console-only counter guest (tern.action=counter-console: it
# needs no disk, which the two hosts do not share), lets it count, waits
# until host B's tern migrate receive answers, and migrates the guest there
# over mutual TLS. tern migrate send must exit 0 with a completed JSON
# status, and the source tern must then exit 0 saying the guest migrated.
# The certificates are in $SCENARIO_DIR (ca.pem, client.pem, client-key.pem).
. "$SCENARIO_DIR/lib.sh"

PORT=7000
ALARMS='soft lockup|rcu.*stall|hung_task'
# From boot until the guest has left, under an emulator.
TERN_RUN_TIMEOUT=${MIGRATE_RUN_TIMEOUT:-360}
SEND_TIMEOUT=${MIGRATE_SEND_TIMEOUT:-180}

console() { tr -d '\r' 2>/dev/null <"$OUT/$1.out"; }
last_counter() { console "$1" | sed -n 's/.*TERN-GUEST counter=\([0-9]*\) .*/\1/p' | tail -n 1; }
counter_at_least() { v=$(last_counter "$1") && is_int "$v" && [ "$v" -ge "$2" ]; }
# is_number VALUE: whether VALUE is a JSON number (non-negative).
is_number() { printf '%s\n' "$1" | grep -Eq '^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$'; }
# json_field KEY: KEY's value in send's final status (numbers and strings).
json_field() { printf '%s\n' "$status" | sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }
booted_one_cpu() { [ -n "$(guest_value "$1" uname)" ] && [ "$(guest_value "$1" cpus)" = 1 ]; }
peer_answers() { "$AGENT" probe tcp "$LINK_PEER:$PORT" >/dev/null 2>&1; }
# report_src prints what report_run prints, but every console line ends
# with a newline, and a SCENARIO-CONSOLE-END line says whether the
# console's last line was whole: the guest may have been paused in the
# middle of one, which host B's console then completes (the test joins
# the two).
report_src() {
	console src | awk '{ print "[src guest] " $0 }'
	if [ -z "$(tail -c 1 "$OUT/src.out")" ]; then whole=yes; else whole=no; fi
	echo "SCENARIO-CONSOLE-END src last-line-whole=$whole"
	sed "s/^/[src tern] /" "$OUT/src.err"
	echo "SCENARIO-RUN-END src rc=$(run_rc src)"
}

start_guest src --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--api-socket "$OUT/api.sock" --cmdline "$GUEST_CMDLINE tern.action=counter-console"

wait_for 150 counter_at_least src 5
check "src: the guest booted ($(guest_value src uname)) with 1 CPU ($(guest_value src cpus))" booted_one_cpu src
check "src: the counter reached 5 ($(last_counter src))" counter_at_least src 5
echo "SCENARIO-CLOCK src host=$(date +%s) guest=$(console src | sed -n 's/.*TERN-GUEST counter=[0-9]* date=\([0-9]*\).*/\1/p' | tail -n 1)"
wait_for 120 peer_answers
check "host B's tern migrate receive answers on $LINK_PEER:$PORT (over the link from $LINK_ADDR)" peer_answers

echo "SCENARIO-RUN send: tern migrate send --to tcp:$LINK_PEER:$PORT (TLS) --output json, at counter $(last_counter src)"
timeout -k 10 "$SEND_TIMEOUT" "$TERN" migrate send --api-socket "$OUT/api.sock" --to "tcp:$LINK_PEER:$PORT" \
	--tls-cert "$SCENARIO_DIR/client.pem" --tls-key "$SCENARIO_DIR/client-key.pem" --tls-ca "$SCENARIO_DIR/ca.pem" \
	--output json </dev/null >"$OUT/send.stdout" 2>"$OUT/send.err"
rc=$?
sed 's/^/[send stdout] /' "$OUT/send.stdout"
sed 's/^/[send] /' "$OUT/send.err"
status=$(grep . "$OUT/send.stdout" | tail -n 1)
echo "SCENARIO-MIGRATION-STATUS $status"
check "tern migrate send exits 0 ($rc)" [ "$rc" = 0 ]
check "send: the final status says phase completed ($(json_field phase))" [ "$(json_field phase)" = completed ]
check "send: the final status gives downtime_ms as a number ($(json_field downtime_ms))" is_number "$(json_field downtime_ms)"
check "send: the final status gives total_time_ms as a number ($(json_field total_time_ms))" is_number "$(json_field total_time_ms)"

# The source stops by itself once host B runs the guest; when the
# migration failed it would run on, so stop it.
[ "$rc" = 0 ] || kill -TERM "$(cat "$OUT/src.pid")"
wait "$(cat "$OUT/src.pid")"
echo $? >"$OUT/src.rc"
report_src
check "src: tern exits 0 after the migration ($(run_rc src))" [ "$(run_rc src)" = 0 ]
check "src: tern says the guest migrated to another host" tern_logged src 'VM stopped.*reason="guest migrated to another host"'
alarms=$(console src | grep -ciE "$ALARMS")
check "src: no soft lockup, RCU stall or hung task on the guest's console ($alarms lines)" [ "$alarms" = 0 ]

finish
