# virtio-net on a TAP: tern creates the TAP tern0 as it starts; the host
# gives it 10.0.0.1/24, the guest configures 10.0.0.2/24 on its virtio-net
# interface. Each pings the other, then the host sends a TCP stream of
# pseudo-random data to the guest, which echoes it back; both print sha256
# sums of what they saw.
. "$SCENARIO_DIR/lib.sh"

BYTES=4194304
TAP=tern0
HOST_IP=10.0.0.1
GUEST_IP=10.0.0.2
PORT=5000

start_guest net --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--net "tap=$TAP,mac=02:00:00:00:00:02" \
	--cmdline "$GUEST_CMDLINE tern.action=net-guest tern.ip=$GUEST_IP/24 tern.peer=$HOST_IP tern.port=$PORT"

tap_exists() { ip link show "$TAP" >/dev/null 2>&1; }
check "tern created the TAP $TAP" wait_for 30 tap_exists
ip addr add "$HOST_IP/24" dev "$TAP"
ip link set "$TAP" up
ip addr show "$TAP" | sed "s/^/[net host] /"

ping_guest() { ping -c 1 -W 1 "$GUEST_IP" >/dev/null 2>&1; }
check "the host pings the guest at $GUEST_IP" wait_for 90 ping_guest
ping -c 3 -W 2 "$GUEST_IP" | sed "s/^/[net host] /"

# Retried until the guest listens; the agent's own time limit bounds it.
host_agent net-host-send send tcp "$GUEST_IP:$PORT" "$BYTES"
wait_guest net

check "net guest: tern exits 0 after guest poweroff" powered_off net
check "the guest has a virtio-net interface ($(guest_value net net-dev), MAC $(guest_value net net-mac))" \
	[ "$(guest_value net net-mac)" = 02:00:00:00:00:02 ]
check "the guest pings the host at $HOST_IP ($(guest_value net net-ping-tries) tries)" \
	[ "$(guest_value net net-ping-peer)" = ok ]

sent=$(kv net-host-send sent-sha256)
check "TCP: the host's agent succeeded (rc $(run_rc net-host-send))" [ "$(run_rc net-host-send)" = 0 ]
check "TCP: the guest's agent succeeded (rc $(guest_value net net-serve-rc))" \
	[ "$(guest_value net net-serve-rc)" = 0 ]
check "TCP: the host sent $BYTES bytes ($(kv net-host-send sent))" [ "$(kv net-host-send sent)" = "$BYTES" ]
check "TCP: the guest received $BYTES bytes ($(guest_value net net-serve-received))" \
	[ "$(guest_value net net-serve-received)" = "$BYTES" ]
check "TCP: sha256 of what the guest received = of what the host sent" \
	same_sum "$sent" "$(guest_value net net-serve-received-sha256)"
check "TCP: the host got $BYTES bytes back ($(kv net-host-send echoed))" [ "$(kv net-host-send echoed)" = "$BYTES" ]
check "TCP: sha256 of what the host got back = of what it sent" \
	same_sum "$sent" "$(kv net-host-send echoed-sha256)"
check "tern removed the TAP $TAP when it exited" sh -c "! ip link show $TAP >/dev/null 2>&1"

# The metadata service (MMDS, version 2) on a second TAP that nothing on
# the host configures: tern answers 169.254.169.254 itself. Then
# Ctrl+Alt+Del through tern's API: the guest's init traps the SIGINT Linux
# sends it, reports, and powers off. The i8042 options are those of tern's
# default command line, which --cmdline replaces (no i8042.nopnp: the
# driver learns its interrupt from ACPI).
echo '{"latest": {"meta-data": {"instance-id": "i-tern-e2e", "local-hostname": "guest", "placement": {"zone": "z1"}}}}' >"$OUT/mmds.json"
start_guest mmds --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--net "tap=tern1,mac=02:00:00:00:00:03,mmds=on" --mmds-data "$OUT/mmds.json" --mmds-version 2 \
	--api-socket "$OUT/mmds.sock" \
	--cmdline "$GUEST_CMDLINE i8042.noaux i8042.nomux i8042.dumbkbd tern.action=mmds tern.ip=10.0.1.2/24"
if check "mmds: the guest got to waiting for Ctrl+Alt+Del" wait_for 100 guest_said mmds cad-ready yes; then
	"$TERN" ctrl-alt-del --api-socket "$OUT/mmds.sock"
	check "tern ctrl-alt-del succeeded" [ $? = 0 ]
fi
wait_guest mmds
check "mmds: a GET without a session token was refused" guest_said mmds mmds-without-token refused
check "mmds: PUT /latest/api/token answered 200" guest_said mmds mmds-token-status 200
check "mmds: the guest read instance-id with its token ($(guest_value mmds mmds-instance-id))" \
	guest_said mmds mmds-instance-id i-tern-e2e
check "mmds: the guest listed meta-data/ in IMDS format ($(guest_value mmds mmds-keys))" \
	guest_said mmds mmds-keys "instance-id,local-hostname,placement/"
check "Ctrl+Alt+Del: the guest has a keyboard ($(guest_value mmds keyboard))" guest_has mmds keyboard
check "Ctrl+Alt+Del: tern logged sending it" tern_logged mmds "sent Ctrl+Alt+Del"
check "Ctrl+Alt+Del: the guest's init got SIGINT" guest_said mmds ctrl-alt-del received
check "Ctrl+Alt+Del: the guest powered off after it (tern exits 0)" powered_off mmds

# MMDS version 1: plain GETs answered, on the same kind of unconfigured TAP.
start_guest mmds1 --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--net "tap=tern1,mac=02:00:00:00:00:03,mmds=on" --mmds-data "$OUT/mmds.json" --mmds-version 1 \
	--cmdline "$GUEST_CMDLINE tern.action=mmds-v1 tern.ip=10.0.1.2/24"
wait_guest mmds1
check "mmds v1: the guest read instance-id without a token ($(guest_value mmds1 mmds-v1-instance-id))" \
	guest_said mmds1 mmds-v1-instance-id i-tern-e2e
check "mmds v1: the guest read a nested value, placement/zone ($(guest_value mmds1 mmds-v1-zone))" \
	guest_said mmds1 mmds-v1-zone z1
check "mmds v1: the guest powered off (tern exits 0)" powered_off mmds1

finish
