# virtio-vsock: a host program and a guest program exchange data both ways
# through tern's Unix-socket host side, once guest-initiated (the guest
# connects to CID 2 port 5001, which tern hands to "$OUT/v.sock_5001") and
# once host-initiated (the host connects to "$OUT/v.sock" and asks for guest
# port 5000). Each time the initiator sends pseudo-random data and
# half-closes, the other side echoes it all back, and both print sha256
# sums of what they saw.
. "$SCENARIO_DIR/lib.sh"

BYTES=2097152
SOCK="$OUT/v.sock"

# The guest-initiated exchange needs its listener before the guest boots.
host_agent vsock-host-serve serve unix "${SOCK}_5001" &
serve_pid=$!
start_guest vsock --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--vsock "cid=3,socket=$SOCK" \
	--cmdline "$GUEST_CMDLINE tern.action=vsock-guest tern.vsock-dial=5001 tern.vsock-serve=5000 tern.bytes=$BYTES"
# Retried until the guest listens on port 5000; the agent's own time limit
# bounds it, as it bounds the listener.
host_agent vsock-host-send send tern-vsock "$SOCK:5000" "$BYTES"
wait "$serve_pid"
wait_guest vsock

check "vsock guest: tern exits 0 after guest poweroff" powered_off vsock

# Guest-initiated: the guest sends, the host echoes.
sent=$(guest_value vsock vsock-dial-sent-sha256)
check "guest->host: the guest's agent succeeded (rc $(guest_value vsock vsock-dial-rc))" \
	[ "$(guest_value vsock vsock-dial-rc)" = 0 ]
check "guest->host: the host's agent succeeded (rc $(run_rc vsock-host-serve))" \
	[ "$(run_rc vsock-host-serve)" = 0 ]
check "guest->host: the guest sent $BYTES bytes ($(guest_value vsock vsock-dial-sent))" \
	[ "$(guest_value vsock vsock-dial-sent)" = "$BYTES" ]
check "guest->host: the host received $BYTES bytes ($(kv vsock-host-serve received))" \
	[ "$(kv vsock-host-serve received)" = "$BYTES" ]
check "guest->host: sha256 of what the host received = of what the guest sent" \
	same_sum "$sent" "$(kv vsock-host-serve received-sha256)"
check "guest->host: the guest got $BYTES bytes back ($(guest_value vsock vsock-dial-echoed))" \
	[ "$(guest_value vsock vsock-dial-echoed)" = "$BYTES" ]
check "guest->host: sha256 of what the guest got back = of what it sent" \
	same_sum "$sent" "$(guest_value vsock vsock-dial-echoed-sha256)"

# Host-initiated: the host sends, the guest echoes.
sent=$(kv vsock-host-send sent-sha256)
check "host->guest: the host's agent succeeded (rc $(run_rc vsock-host-send))" \
	[ "$(run_rc vsock-host-send)" = 0 ]
check "host->guest: the guest's agent succeeded (rc $(guest_value vsock vsock-serve-rc))" \
	[ "$(guest_value vsock vsock-serve-rc)" = 0 ]
check "host->guest: the host sent $BYTES bytes ($(kv vsock-host-send sent))" \
	[ "$(kv vsock-host-send sent)" = "$BYTES" ]
check "host->guest: the guest received $BYTES bytes ($(guest_value vsock vsock-serve-received))" \
	[ "$(guest_value vsock vsock-serve-received)" = "$BYTES" ]
check "host->guest: sha256 of what the guest received = of what the host sent" \
	same_sum "$sent" "$(guest_value vsock vsock-serve-received-sha256)"
check "host->guest: the host got $BYTES bytes back ($(kv vsock-host-send echoed))" \
	[ "$(kv vsock-host-send echoed)" = "$BYTES" ]
check "host->guest: sha256 of what the host got back = of what it sent" \
	same_sum "$sent" "$(kv vsock-host-send echoed-sha256)"

finish
