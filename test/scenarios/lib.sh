# Helpers shared by the scenarios; sourced, not run.
#
# boot_guest NAME ARGS... runs "$TERN run ARGS..." with a time limit and
# keeps its guest console in $OUT/NAME.out, its log in $OUT/NAME.err and
# its exit status in $OUT/NAME.rc. It prints both, each line prefixed with
# "[NAME guest] " or "[NAME tern] ", between SCENARIO-RUN lines.

fails=0
# The guest command line every run starts from; GUEST_QUIET= (empty) shows
# the guest kernel's boot messages.
GUEST_CMDLINE="console=ttyS0 ${GUEST_QUIET-quiet}"
# Seconds a single tern run may take (the nested host is an emulator).
TERN_RUN_TIMEOUT=${TERN_RUN_TIMEOUT:-120}

boot_guest() {
	name=$1
	shift
	echo "SCENARIO-RUN $name: tern run $*"
	date +%s >"$OUT/$name.t0"
	timeout -k 10 "$TERN_RUN_TIMEOUT" "$TERN" run "$@" </dev/null >"$OUT/$name.out" 2>"$OUT/$name.err"
	echo $? >"$OUT/$name.rc"
	note_limit "$name"
	report_run "$name"
}

# say_limit NAME [DETAIL] prints the line "SCENARIO-RUN-LIMIT NAME ..."
# that says tern's run NAME was stopped by its time limit rather than
# ending by itself: a guest that hung, as stock guests now and then do in
# the emulated test host (QEMU's microvm guests too). The e2e tests, the
# demo and the bench recognise it (nested.GuestHung) and give a run that
# failed with it a fresh test host.
say_limit() {
	echo "SCENARIO-RUN-LIMIT $1: tern was stopped after its ${TERN_RUN_TIMEOUT}s${2:+ ($2)}"
}

# note_limit NAME says it (say_limit) when run NAME, started at the time
# in $OUT/NAME.t0, ran into TERN_RUN_TIMEOUT. A run started without a
# time noted (by a scenario's own helper) is left unsaid.
note_limit() {
	[ -s "$OUT/$1.t0" ] || return 0
	if [ $(($(date +%s) - $(cat "$OUT/$1.t0"))) -ge "$TERN_RUN_TIMEOUT" ]; then
		say_limit "$1" "rc $(cat "$OUT/$1.rc")"
	fi
}

# report_run NAME prints what run NAME kept: the guest console and tern's
# log, each line prefixed with "[NAME guest] " or "[NAME tern] ", and a
# SCENARIO-RUN-END line with tern's exit status.
report_run() {
	# A tern command that runs no guest (tern migrate send) has no console.
	[ -e "$OUT/$1.out" ] && tr -d '\r' <"$OUT/$1.out" | sed "s/^/[$1 guest] /"
	[ -s "$OUT/$1.stdout" ] && sed "s/^/[$1 stdout] /" "$OUT/$1.stdout"
	sed "s/^/[$1 tern] /" "$OUT/$1.err"
	echo "SCENARIO-RUN-END $1 rc=$(cat "$OUT/$1.rc")"
}

# signal_guest NAME SIGNAL TEXT ARGS... starts "$TERN run ARGS..." in the
# background, waits until the guest console shows TEXT, sends SIGNAL to
# tern, and keeps what boot_guest keeps. Its rc is tern's exit status.
signal_guest() {
	name=$1
	sig=$2
	text=$3
	shift 3
	echo "SCENARIO-RUN $name: tern run $* (then SIG$sig once the guest prints $text)"
	"$TERN" run "$@" </dev/null >"$OUT/$name.out" 2>"$OUT/$name.err" &
	pid=$!
	waited=0
	while [ "$waited" -lt "$TERN_RUN_TIMEOUT" ] && ! grep -q "$text" "$OUT/$name.out"; do
		sleep 1
		waited=$((waited + 1))
	done
	kill "-$sig" "$pid"
	wait "$pid"
	echo $? >"$OUT/$name.rc"
	report_run "$name"
}

# start_guest NAME ARGS... starts "$TERN run ARGS..." in the background
# with boot_guest's time limit, for a scenario that talks to the guest
# while it runs; wait_guest NAME then waits for it and keeps and prints
# what boot_guest keeps and prints.
start_guest() {
	name=$1
	shift
	echo "SCENARIO-RUN $name: tern run $* (in the background)"
	date +%s >"$OUT/$name.t0"
	timeout -k 10 "$TERN_RUN_TIMEOUT" "$TERN" run "$@" </dev/null >"$OUT/$name.out" 2>"$OUT/$name.err" &
	echo $! >"$OUT/$name.pid"
}

wait_guest() {
	name=$1
	wait "$(cat "$OUT/$name.pid")"
	echo $? >"$OUT/$name.rc"
	note_limit "$name"
	report_run "$name"
}

# start_tern NAME ARGS... starts "$TERN ARGS..." in the background, for a
# tern command other than run (tern migrate receive, tern migrate send)
# that a scenario watches or signals while it works: its stdout goes to
# $OUT/NAME.stdout, its log to $OUT/NAME.err, and a guest it runs should
# print to $OUT/NAME.out (--console). It is not put under timeout(1), so
# that $OUT/NAME.pid is tern's own pid on every backend (coreutils'
# timeout would stand between, and SIGKILL would not reach tern);
# wait_tern NAME SECONDS bounds it instead: it waits at most SECONDS for
# tern to exit, kills it after that, and keeps and prints what boot_guest
# keeps and prints.
start_tern() {
	name=$1
	shift
	echo "SCENARIO-RUN $name: tern $* (in the background)"
	"$TERN" "$@" </dev/null >"$OUT/$name.stdout" 2>"$OUT/$name.err" 4>&- &
	echo $! >"$OUT/$name.pid"
}

# running NAME: whether the background tern (or agent) NAME still runs.
running() { kill -0 "$(cat "$OUT/$1.pid")" 2>/dev/null; }
stopped() { ! running "$1"; }

wait_tern() {
	if ! wait_for "$2" stopped "$1"; then
		echo "[$1 tern] still running after $2 s: killed"
		kill -KILL "$(cat "$OUT/$1.pid")"
	fi
	wait "$(cat "$OUT/$1.pid")"
	echo $? >"$OUT/$1.rc"
	report_run "$1"
}

# failed_with NAME PATTERN: whether tern in run NAME exited non-zero and
# said why in one line "tern: ..." on stderr that matches PATTERN (grep -E,
# any case), as tern reports every error.
failed_with() {
	[ "$(run_rc "$1")" != 0 ] && [ "$(grep -c '^tern: ' "$OUT/$1.err")" = 1 ] &&
		grep '^tern: ' "$OUT/$1.err" | grep -qiE "$2"
}
# error_line NAME: that line, for a check's description.
error_line() { grep '^tern: ' "$OUT/$1.err" | head -n 1; }

# tcp_listening PORT: whether a socket listens on TCP port PORT here (read
# from /proc, as busybox's netstat may be missing).
tcp_listening() {
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		awk -v p="$(printf ':%04X' "$1")" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }'
}

# wait_for SECONDS COMMAND... runs COMMAND once a second until it succeeds;
# it fails when COMMAND has not succeeded within SECONDS.
wait_for() {
	limit=$1
	shift
	waited=0
	until "$@"; do
		[ "$waited" -ge "$limit" ] && return 1
		sleep 1
		waited=$((waited + 1))
	done
}

# host_agent NAME ARGS... runs "$AGENT ARGS..." on the host, keeping its
# "key=value" lines in $OUT/NAME.kv and its exit status in $OUT/NAME.rc,
# and prints both, prefixed with "[NAME host] ". Put it in the background
# with & and then wait for it, to have it run beside a guest.
host_agent() {
	name=$1
	shift
	"$AGENT" "$@" >"$OUT/$name.kv" 2>"$OUT/$name.log" </dev/null
	echo $? >"$OUT/$name.rc"
	echo "[$name host] agent $* exited $(cat "$OUT/$name.rc")"
	cat "$OUT/$name.kv" "$OUT/$name.log" | sed "s/^/[$name host] /"
}

# kv NAME KEY: the value of KEY in the key=value lines of host_agent NAME.
kv() { sed -n "s/^$2=//p" "$OUT/$1.kv" | tail -n 1; }

# same_sum A B: whether A and B are the same sha256 sum (64 hex digits), so
# that two missing values never count as equal.
same_sum() {
	case "$1" in
	*[!0-9a-f]*) return 1 ;;
	esac
	[ "${#1}" -eq 64 ] && [ "$1" = "$2" ]
}

# check WHAT COMMAND... records one check: ok when COMMAND succeeds.
check() {
	what=$1
	shift
	if "$@"; then
		echo "SCENARIO-CHECK ok $what"
	else
		echo "SCENARIO-CHECK FAIL $what"
		fails=$((fails + 1))
	fi
}

# run_rc NAME: the exit status tern had in run NAME.
run_rc() { cat "$OUT/$1.rc"; }

# guest_value NAME KEY: the value of the guest's last "TERN-GUEST KEY=" line.
guest_value() {
	tr -d '\r' <"$OUT/$1.out" | sed -n "s/^.*TERN-GUEST $2=\([^ ]*\).*\$/\1/p" | tail -n 1
}

# tern_logged NAME TEXT: whether tern's log in run NAME has TEXT.
tern_logged() { grep -q "$2" "$OUT/$1.err"; }

# powered_off NAME: whether run NAME ended because its guest powered off:
# tern exited 0 and said why (a guest reset or crash also exits 0).
powered_off() {
	[ "$(run_rc "$1")" = 0 ] && tern_logged "$1" 'VM stopped.*reason="guest powered off"'
}

# is_int VALUE: whether VALUE is a (non-negative) decimal integer.
is_int() {
	case "$1" in
	'' | *[!0-9]*) return 1 ;;
	esac
	return 0
}

# within SECONDS A B: whether integers A and B differ by at most SECONDS.
within() {
	is_int "$2" && is_int "$3" || return 1
	d=$(($2 - $3))
	[ "$d" -le "$1" ] && [ "$d" -ge "-$1" ]
}

# --- Work in flight across a guest's moves (snapshot.sh, migrate.sh): the
# test guest's tern.action=counter, and the host's ends of its connections.

# console FILE: a console as text, without the serial line's CRs.
console() { tr -d '\r' 2>/dev/null <"$1"; }

# counter_split BEFORE AFTER: the counter values of the console text in
# file BEFORE followed by file AFTER, one per line, each as "b N" when its
# line started in BEFORE and "a N" when it started in AFTER. The texts are
# joined first, so that a line the guest had half sent when it was paused
# is whole and counts as started before.
counter_split() {
	m=$(awk 'END { print NR }' "$1")
	cat "$1" "$2" | awk -v m="$m" '
		match($0, /TERN-GUEST counter=[0-9]+ /) {
			v = substr($0, RSTART + 19, RLENGTH - 20)
			print (NR <= m ? "b " : "a ") v
		}'
}
# consecutive FILE: whether FILE holds 1, 2, 3, ... one a line, with
# nothing missing or repeated (and at least one value).
consecutive() { awk 'NR != $1 { bad = 1 } END { exit bad || NR == 0 }' "$1"; }
# values_of WORD [FILE]: the values of counter_split lines starting WORD.
values_of() { sed -n "s/^$1 //p" ${2:+"$2"}; }
# last_counter NAME: the last counter value on run NAME's console so far.
last_counter() { console "$OUT/$1.out" | sed -n 's/.*TERN-GUEST counter=\([0-9]*\) .*/\1/p' | tail -n 1; }
counter_at_least() { v=$(last_counter "$1") && is_int "$v" && [ "$v" -ge "$2" ]; }
# last_seq NAME [CONN]: the last numbered line hold-serve NAME recorded
# (on connection CONN only, when given).
last_seq() { sed -n "s/^line conn=${2:-[0-9]*} seq=\([0-9]*\)\$/\1/p" "$OUT/$1.kv" | tail -n 1; }
seq_past() { v=$(last_seq "$1" "$2") && is_int "$v" && [ "$v" -gt "$3" ]; }
guest_said() { [ "$(guest_value "$1" "$2")" = "$3" ]; }
guest_has() { [ -n "$(guest_value "$1" "$2")" ]; }

# start_hold NAME ARGS...: "$AGENT hold-serve ARGS..." in the background,
# its lines in $OUT/NAME.kv; end_hold NAME [stop] waits for it (with
# commands it ends once they and its connections have; "stop" ends it with
# SIGTERM, as one without commands needs) and prints what it kept, as
# host_agent does.
start_hold() {
	n=$1
	shift
	"$AGENT" hold-serve "$@" >"$OUT/$n.kv" 2>"$OUT/$n.log" </dev/null 4>&- &
	echo $! >"$OUT/$n.pid"
}
hold_ended() { ! kill -0 "$(cat "$OUT/$1.pid")" 2>/dev/null; }
end_hold() {
	[ "$2" = stop ] && kill -TERM "$(cat "$OUT/$1.pid")"
	if ! wait_for 30 hold_ended "$1"; then
		echo "[$1 host] still running after 30 s: stopped"
		kill "$(cat "$OUT/$1.pid")"
	fi
	wait "$(cat "$OUT/$1.pid")"
	echo $? >"$OUT/$1.rc"
	echo "[$1 host] agent hold-serve exited $(cat "$OUT/$1.rc")"
	grep -v '^line ' "$OUT/$1.kv" | cat - "$OUT/$1.log" | sed "s/^/[$1 host] /"
}

# --- Live migration (migrate.sh, migrate-disks.sh).

# json_str FILE KEY, json_num FILE KEY: a string or number field of the
# JSON object in FILE (one line or pretty-printed; busybox has no jq).
json_str() { tr -d '\n' <"$1" | sed -nE "s/.*\"$2\": *\"([^\"]*)\".*/\1/p"; }
json_num() { tr -d '\n' <"$1" | sed -nE "s/.*\"$2\": *(-?[0-9][0-9.eE+-]*).*/\1/p"; }
is_number() { echo "$1" | grep -qE '^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$'; }
# counter_values NAME: the counter values on run NAME's console, one a line.
counter_values() { console "$OUT/$1.out" | sed -n 's/.*TERN-GUEST counter=\([0-9]*\) .*/\1/p'; }
uname_lines() { console "$OUT/$1.out" | grep -c 'TERN-GUEST uname='; }

# host_bridge NAME ADDRESS/LEN: a bridge holding the host's address, for
# the guest's TAP: a TAP is open in one process at a time, so a migrated
# guest moves from the source's TAP to the destination's, both in it.
host_bridge() {
	ip link add "$1" type bridge
	# No spanning tree here; without a forward delay a TAP forwards as
	# soon as it joins (else the destination's would be mute for 15 s
	# after the switch).
	echo 0 >"/sys/class/net/$1/bridge/forward_delay"
	# A bridge without an address of its own takes the lowest of its
	# ports': when the source's TAP left and the destination's joined,
	# the host's MAC changed under the guest's ARP entry, and the guest's
	# TCP went nowhere until that entry expired (over 30 s). Hosts give
	# their bridges a fixed address (usually a NIC's); so does this one.
	ip link set "$1" address 02:00:00:00:00:01
	ip addr add "$2" dev "$1"
	ip link set "$1" up
}
in_bridge() { [ -e "/sys/class/net/$BRIDGE/brif/$1" ]; }

# finish exits with the number of failed checks (0 when all passed).
# seccomp_report: no tern of the scenario met its seccomp filter. A call
# the filter refuses ends tern with SIGSYS and a Go traceback naming it;
# the kernel logs it too (audit type=1326), as it logs every call let
# through by --seccomp-audit.
seccomp_report() {
	trapped=$(grep -l "SIGSYS: bad system call" "$OUT"/*.err 2>/dev/null)
	for f in $trapped; do
		echo "SECCOMP $(basename "$f" .err) trapped:"
		grep -A 14 "SIGSYS: bad system call" "$f" | sed 's/^/SECCOMP   /'
	done
	dmesg | grep "type=1326" | sed 's/^/SECCOMP-AUDIT /'
	check "no tern was stopped by its seccomp filter" [ -z "$trapped" ]
}

finish() {
	seccomp_report
	if [ "$fails" -eq 0 ]; then
		echo "SCENARIO-RESULT ok"
		exit 0
	fi
	echo "SCENARIO-RESULT FAIL ($fails checks failed)"
	exit 1
}
