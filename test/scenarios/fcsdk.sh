# The Firecracker Go SDK drives tern (test/fcsdk/cmd/sdklife, in the
# scenario directory as sdklife): the SDK finds tern as firecracker on
# PATH, NewMachine with the stock kernel (ELF), the test initramfs, a root
# drive (the test root image: root=/dev/vda), a TAP interface and vsock;
# Start; the guest (tern.action=counter) answers pings, sends TCP and vsock
# lines and echoes vsock from the host. Then pause, CreateSnapshot (the
# root image copied while paused, as an orchestrator keeps a snapshot's
# disk), resume; Shutdown (Ctrl+Alt+Del, which must work; StopVMM only so
# that a failed one still ends the process) and the process exits; then a
# fresh tern loads the snapshot through WithSnapshot and the guest goes on
# from where it was. sdklife
# waits for a line on its stdin after each step, so that the checks here
# see the guest between the SDK's calls.
. "$SCENARIO_DIR/lib.sh"

TAP=tern0
HOST_IP=10.0.0.1
GUEST_IP=10.0.0.2
TCP_PORT=5000
VSOCK_DIAL=5001  # the host's port the guest holds a connection to
VSOCK_SERVE=5000 # the guest's port the host sends to
export AGENT_TIMEOUT=300s

# The SDK gives each API call 500 ms and the process 3 s to make its
# socket; the test host is an emulator, where loading a stock kernel alone
# takes longer. Its own knobs for slow hosts lift both.
export FIRECRACKER_GO_SDK_REQUEST_TIMEOUT_MILLISECONDS=60000
export FIRECRACKER_GO_SDK_INIT_TIMEOUT_SECONDS=60

# firecracker on PATH is tern.
mkdir -p "$OUT/bin"
ln -s "$TERN" "$OUT/bin/firecracker"
export PATH="$OUT/bin:$PATH"

# The TAP outlives each tern; the host's ends of the guest's connections.
"$AGENT" mktap "$TAP"
ip addr add "$HOST_IP/24" dev "$TAP"
ip link set "$TAP" up
mkfifo "$OUT/tcp.cmd"
start_hold tcp tcp ":$TCP_PORT" "$OUT/tcp.cmd"
exec 4<>"$OUT/tcp.cmd"
start_hold vsock1 unix "$OUT/v.sock_$VSOCK_DIAL"
cp "$ROOT_IMAGE" "$OUT/root.ext4"

# sdklife reads "go" lines from fd 5's FIFO; its key=value lines go to
# sdk.kv. The guest consoles are one.out and two.out, tern's logs
# one.out.err and two.out.err.
mkfifo "$OUT/sdk.in"
exec 5<>"$OUT/sdk.in"
echo "SCENARIO-RUN sdk: sdklife (the Firecracker Go SDK) in the background"
"$SCENARIO_DIR/sdklife" -dir "$OUT" -kernel "$KERNEL_ELF" -initrd "$INITRD" -root "$OUT/root.ext4" \
	-tap "$TAP" -mac 02:00:00:00:00:02 -mem 256 \
	-cmdline "$GUEST_CMDLINE reboot=k panic=1 i8042.noaux i8042.nomux i8042.dumbkbd tern.cad=reboot tern.action=counter tern.ip=$GUEST_IP/24 tern.peer=$HOST_IP tern.port=$TCP_PORT tern.vsock-dial=$VSOCK_DIAL tern.vsock-serve=$VSOCK_SERVE" \
	<"$OUT/sdk.in" >"$OUT/sdk.kv" 2>"$OUT/sdk.log" 4>&- 5>&- &
echo $! >"$OUT/sdk.pid"

sdk() { kv sdk "$1"; }
reached() { grep -qx "step=$1" "$OUT/sdk.kv" || grep -q '^error=' "$OUT/sdk.kv" || stopped sdk; }
# at_step NAME SECONDS: wait until sdklife reports step NAME (or fails).
at_step() {
	wait_for "$2" reached "$1"
	err=$(grep '^error=' "$OUT/sdk.kv")
	check "SDK: step $1 reached${err:+ ($err)}" grep -qx "step=$1" "$OUT/sdk.kv"
}
go_on() { echo go >&5; }
ping_guest() { ping -c 1 -W 1 "$GUEST_IP" >/dev/null 2>&1; }
# vsock_echo NAME CONSOLE: the host sends 256 KiB to the guest's port
# VSOCK_SERVE through tern's socket; the guest echoes it; both sums match.
vsock_echo() {
	before=$(console "$OUT/$2.out" | grep -c 'TERN-GUEST vsock-serve-elapsed-ms=')
	host_agent "$1" send tern-vsock "$OUT/v.sock:$VSOCK_SERVE" 262144 4>&- 5>&-
	wait_for 20 sh -c "[ \$(tr -d '\r' <'$OUT/$2.out' | grep -c 'TERN-GUEST vsock-serve-elapsed-ms=') -gt $before ]"
	sent=$(kv "$1" sent-sha256)
	check "$2: host->guest vsock: the host's agent succeeded (rc $(run_rc "$1"))" [ "$(run_rc "$1")" = 0 ]
	check "$2: host->guest vsock: sha256 of what the guest received = of what the host sent" \
		same_sum "$sent" "$(guest_value "$2" vsock-serve-received-sha256)"
	check "$2: host->guest vsock: sha256 of what the host got back = of what it sent" \
		same_sum "$sent" "$(kv "$1" echoed-sha256)"
}

# --- Start: the SDK configured and booted the guest.
at_step started 150
check "SDK: Start succeeded ($(sdk start)), instance state $(sdk state)" [ "$(sdk start)/$(sdk state)" = ok/Running ]
wait_for 150 counter_at_least one 3
check "one: the guest booted ($(guest_value one uname)) with 1 CPU ($(guest_value one cpus))" \
	sh -c '[ -n "$1" ] && [ "$2" = 1 ]' - "$(guest_value one uname)" "$(guest_value one cpus)"
check "one: its root filesystem is the root drive, ext4 read-write ($(guest_value one rootfs))" guest_said one rootfs ext4:rw
check "one: the counter runs ($(last_counter one))" counter_at_least one 3
check "one: the host pings the guest at $GUEST_IP" wait_for 30 ping_guest
wait_for 30 seq_past tcp 1 1
check "one: the guest's TCP lines reach the host (up to $(last_seq tcp))" seq_past tcp 1 1
wait_for 30 seq_past vsock1 1 1
check "one: the guest's vsock lines reach the host (up to $(last_seq vsock1))" seq_past vsock1 1 1
vsock_echo vsock-echo1 one
go_on

# --- Pause and CreateSnapshot: the guest stands still; its disk is kept.
at_step snapshot 60
check "SDK: CreateSnapshot succeeded ($(sdk snapshot)); the files exist" \
	sh -c '[ "$1" = ok ] && [ -s "$2/vm.snap" ] && [ -s "$2/vm.mem" ]' - "$(sdk snapshot)" "$OUT"
# tern's counters (GET /metrics, read by sdklife while the guest is
# paused) saw the guest's disk and network traffic: it read its root
# filesystem (the SDK names the root drive root_drive and the interface 1), answered pings and sent TCP and vsock lines.
metric() { sed -n "s/^metric $1=//p" "$OUT/sdk.kv"; }
positive() { is_int "$1" && [ "$1" -gt 0 ]; }
check "metrics: the root drive was read ($(metric 'firecracker_block_read_bytes_total{drive_id="root_drive"}') bytes in $(metric 'firecracker_block_read_count_total{drive_id="root_drive"}') reads)" \
	positive "$(metric 'firecracker_block_read_bytes_total{drive_id="root_drive"}')"
check "metrics: the interface received $(metric 'firecracker_net_rx_packets_count_total{iface_id="1"}') and sent $(metric 'firecracker_net_tx_packets_count_total{iface_id="1"}') frames" \
	sh -c 'positive() { [ -n "$1" ] && [ "$1" -gt 0 ]; }; positive "$1" && positive "$2"' - \
	"$(metric 'firecracker_net_rx_packets_count_total{iface_id="1"}')" "$(metric 'firecracker_net_tx_packets_count_total{iface_id="1"}')"
check "metrics: vCPU exits were counted ($(metric firecracker_vcpu_exit_mmio_write_total) MMIO writes, $(metric firecracker_vcpu_exit_io_out_total) port writes)" \
	positive "$(metric firecracker_vcpu_exit_io_out_total)"
sleep 1 # output sent before the pause may still be on its way to the file
console "$OUT/one.out" >"$OUT/one-at-snapshot.txt"
at_snapshot=$(last_counter one)
cp "$OUT/root.ext4" "$OUT/root-at-snapshot.ext4"
sleep 2
check "one: the paused guest counts no further ($at_snapshot, then $(last_counter one))" [ "$(last_counter one)" = "$at_snapshot" ]
go_on

# --- Resume.
at_step resumed 30
wait_for 30 counter_at_least one "$((at_snapshot + 2))"
check "SDK: ResumeVM ($(sdk resume)); the counter goes on ($at_snapshot, then $(last_counter one))" \
	counter_at_least one "$((at_snapshot + 2))"
go_on

# --- Shutdown: the firecracker process exits.
at_step stopped 90
[ "$(sdk shutdown)" = stopvmm ] && echo "[sdk] Shutdown (Ctrl+Alt+Del) failed: $(sdk shutdown-error); StopVMM used instead"
check "SDK: Shutdown sent Ctrl+Alt+Del ($(sdk shutdown))" [ "$(sdk shutdown)" = ctrl-alt-del ]
check "SDK: after Ctrl+Alt+Del the process exited ($(sdk exit))" [ -n "$(sdk exit)" ]
check "SDK: the guest's kernel restarted on Ctrl+Alt+Del (tern.cad=reboot), as tern logged" grep -q 'VM stopped.*reason=.*guest requested reset' "$OUT/one.out.err"
# The disk as the snapshot saw it, for the load.
cp "$OUT/root-at-snapshot.ext4" "$OUT/root.ext4"
end_hold vsock1 stop
start_hold vsock2 unix "$OUT/v.sock_$VSOCK_DIAL"
go_on

# --- A fresh tern loads the snapshot: the guest goes on from the pause.
at_step loaded 120
check "SDK: the load succeeded ($(sdk load)), instance state $(sdk loaded-state)" [ "$(sdk load)/$(sdk loaded-state)" = ok/Running ]
wait_for 90 counter_at_least two "$((at_snapshot + 2))"
console "$OUT/two.out" >"$OUT/two-now.txt"
counter_split "$OUT/one-at-snapshot.txt" "$OUT/two-now.txt" >"$OUT/split"
last_before=$(values_of b "$OUT/split" | tail -n 1)
first_after=$(values_of a "$OUT/split" | head -n 1)
check "two: the first counter after the load ($first_after) follows the last before the snapshot ($last_before)" \
	[ "$first_after" = "$((last_before + 1))" ]
check "two: the guest did not boot again (no uname line)" sh -c "! grep -q 'TERN-GUEST uname=' '$OUT/two.out'"
check "two: the host pings the guest" wait_for 30 ping_guest
wait_for 30 seq_past vsock2 "" 0
check "two: the guest dialled vsock again and its lines arrive (up to $(last_seq vsock2))" seq_past vsock2 "" 0
vsock_echo vsock-echo2 two
go_on

at_step done 60
wait "$(cat "$OUT/sdk.pid")"
echo $? >"$OUT/sdk.rc"
check "sdklife exits 0 ($(cat "$OUT/sdk.rc"))" [ "$(cat "$OUT/sdk.rc")" = 0 ]
exec 5>&-
echo stop >&4
exec 4>&-
end_hold tcp stop
end_hold vsock2 stop
for f in sdk.kv sdk.log; do sed "s/^/[$f] /" "$OUT/$f"; done
for n in one two; do
	console "$OUT/$n.out" | sed "s/^/[$n guest] /"
	sed "s/^/[$n tern] /" "$OUT/$n.out.err"
done
ip link delete "$TAP" 2>/dev/null

finish
