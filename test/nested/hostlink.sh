# Sourced by the test host's /init, after its environment, when the host is
# one of a pair (see pair.go): it loads the drivers of the virtio-net NIC
# that joins it to the other host and gives that NIC its address.
# TEST_HOST_LINK_MAC names the NIC, TEST_HOST_LINK_ADDR is its address/prefix.
# What this host's kernel calibrated its TSC to. A guest that moves keeps
# its TSC rate, and this host's kvm-amd cannot scale a guest's TSC (TCG's
# SVM has no TSC ratio MSR): it refuses a rate below its own by more than
# kvm.tsc_tolerance_ppm (250 by default), and a migration then fails at
# its very end ("user requested TSC rate below hardware speed" here). The
# two hosts' TSCs are one counter, this machine's (TCG reads it for the
# guest's rdtsc); only each kernel's measurement of its rate, under
# emulation and on a busy machine, differs, at times by more than 250 ppm.
# Take rates within 1% as equal: the margin within which Linux itself
# refines its TSC calibration.
dmesg | sed -n 's/.*\(tsc: .*\(MHz\|calibration\).*\)/TEST-HOST \1/p'
echo 10000 >/sys/module/kvm/parameters/tsc_tolerance_ppm
echo "TEST-HOST kvm.tsc_tolerance_ppm=$(cat /sys/module/kvm/parameters/tsc_tolerance_ppm)"
# Dependencies first, as modules.dep of the fixture's kernel has them.
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net; do
	insmod "/modules/$m.ko" || echo "TEST-HOST insmod $m.ko failed"
done
# The driver probes the NIC as it loads; wait a little all the same.
link_dev=
link_waited=0
while [ -z "$link_dev" ] && [ "$link_waited" -lt 10 ]; do
	for d in /sys/class/net/*; do
		[ "$(cat "$d/address" 2>/dev/null)" = "$TEST_HOST_LINK_MAC" ] && link_dev=${d##*/}
	done
	[ -n "$link_dev" ] || sleep 1
	link_waited=$((link_waited + 1))
done
if [ -n "$link_dev" ]; then
	ip link set "$link_dev" up
	ip addr add "$TEST_HOST_LINK_ADDR" dev "$link_dev"
	# The carrier comes a moment after the link is set up.
	link_waited=0
	while [ "$(cat "/sys/class/net/$link_dev/operstate")" != up ] && [ "$link_waited" -lt 5 ]; do
		sleep 1
		link_waited=$((link_waited + 1))
	done
	echo "TEST-HOST link $link_dev ($TEST_HOST_LINK_MAC) $TEST_HOST_LINK_ADDR: $(cat "/sys/class/net/$link_dev/operstate")"
else
	echo "TEST-HOST link: no NIC with MAC $TEST_HOST_LINK_MAC"
fi
