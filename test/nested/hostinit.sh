#!/bin/sh
# /init of the nested test host: a Linux under QEMU TCG whose emulated CPU
# has SVM, so kvm-amd gives it a real /dev/kvm. It runs one scenario script
# and reports its exit status as @@TERN-SCENARIO-RC=<rc>@@, then powers off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
# Booted quiet; from here on warnings reach the console too, so a soft
# lockup or a KVM warning comes with its stack trace.
dmesg -n 5

# The heartbeat: a line on the second serial port every 5 s, which the
# harness watches to tell a stopped test host from a slow scenario.
if echo "TEST-HOST up" >/dev/ttyS1; then
	(while sleep 5; do echo "TEST-HOST alive $(cut -d' ' -f1 /proc/uptime)"; done >/dev/ttyS1) &
else
	echo "TEST-HOST no heartbeat: cannot write /dev/ttyS1"
fi

for m in irqbypass kvm kvm-amd; do
	insmod "/modules/$m.ko" || echo "TEST-HOST insmod $m.ko failed"
done
# tun gives tern's virtio-net its TAPs (/dev/net/tun, made by devtmpfs);
# bridge (after llc and stp, which it needs) lets a scenario put TAPs in a
# bridge that holds the host's address.
# Loopback, for scenarios that talk TCP over 127.0.0.1 (nothing else in
# the test host brings it up).
ip link set lo up || echo "TEST-HOST cannot bring lo up"
for m in tun llc stp bridge; do
	insmod "/modules/$m.ko" || echo "TEST-HOST insmod $m.ko failed"
done
# Where the modules sit, for the report of a wedged host.
sed 's/^/TEST-HOST module /' /proc/modules >/dev/ttyS1 2>/dev/null
if [ -c /dev/kvm ]; then
	echo "TEST-HOST /dev/kvm ready ($(grep -c '^processor' /proc/cpuinfo) cpus, kernel $(uname -r))"
fi

. /etc/scenario.env
# One of a pair of test hosts: bring up the NIC that joins it to the other.
if [ -f /etc/hostlink.sh ]; then
	. /etc/hostlink.sh
fi
mkdir -p "$OUT"
cd "$OUT" || exit 1
if [ -c /dev/kvm ]; then
	echo "TEST-HOST running scenario $SCENARIO_ENTRY"
	sh "$SCENARIO_DIR/$SCENARIO_ENTRY" </dev/null
	rc=$?
else
	echo "TEST-HOST /dev/kvm missing after insmod: scenario not run"
	rc=125
fi
echo "@@TERN-SCENARIO-RC=$rc@@"
poweroff -f
