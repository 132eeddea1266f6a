#!/bin/sh
# /init of the tern test guest. It reports what a test checks as lines
# "TERN-GUEST key=value" on the console, then does what tern.action= on the
# kernel command line says.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp

# The stock kernel has its virtio drivers as modules; a device tern does not
# offer just leaves its driver idle.
# On the root disk (see below) they are loaded already.
if [ ! -e /etc/tern-rootfs ]; then
	while read -r mod; do
		insmod "/lib/modules/$mod" 2>/dev/null || echo "TERN-GUEST error=insmod-$mod"
	done </lib/modules/order
fi

# With root=/dev/vdX on the command line this initramfs only loads the
# drivers, mounts that virtio-blk disk (ro or rw as the command line says)
# and runs the disk's copy of this script, which finds /etc/tern-rootfs.
if [ ! -e /etc/tern-rootfs ]; then
	rootdev=
	rootmode=ro
	for arg in $(cat /proc/cmdline); do
		case "$arg" in
		root=/dev/vd*) rootdev=${arg#root=} ;;
		rw) rootmode=rw ;;
		ro) rootmode=ro ;;
		esac
	done
	if [ -n "$rootdev" ]; then
		mkdir -p /newroot
		if mount -t ext4 -o "$rootmode" "$rootdev" /newroot; then
			umount /dev /sys /proc 2>/dev/null
			exec switch_root /newroot /init
		fi
		echo "TERN-GUEST error=mount-root-$rootdev-failed"
	fi
fi

# Signal "booted" to the monitor's boot timer as early as userspace can.
/agent boot-done || echo "TERN-GUEST error=agent-boot-done-failed"

echo "TERN-GUEST uname=$(uname -r)"
echo "TERN-GUEST cpus=$(grep -c '^processor' /proc/cpuinfo)"
echo "TERN-GUEST date=$(date +%s)"
# The CPU as the guest sees it, for CPU template checks: family/model, and
# which of a few flags the static templates pin are present.
echo "TERN-GUEST cpumodel=$(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -n 1)/$(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
cpuflags=$(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
picked=
for f in sse4a mmxext misalignsse 3dnowprefetch fxsr_opt pdpe1gb erms lahf_lm sse4_2; do
	case " $cpuflags " in *" $f "*) picked="$picked${picked:+,}$f" ;; esac
done
echo "TERN-GUEST cpuflags=${picked:-none}"
echo "TERN-GUEST rootfs=$(awk '$2 == "/" { print $3 ":" $4 }' /proc/mounts | tail -n 1 | cut -d, -f1)"

# What virtio devices the guest found, as a test checks them.
if [ -e /dev/hwrng ] && [ "$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)" != none ]; then
	echo "TERN-GUEST hwrng=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
	echo "TERN-GUEST hwrng-bytes=$(dd if=/dev/hwrng bs=4096 count=1 2>/dev/null | wc -c)"
	echo "TERN-GUEST hwrng-distinct=$(dd if=/dev/hwrng bs=256 count=1 2>/dev/null | od -An -v -tx1 | tr ' ' '\n' | grep . | sort -u | wc -l)"
fi

action=poweroff
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	tern.action=*) action=${arg#tern.action=} ;;
	esac
done
echo "TERN-GUEST action=$action"

# tern_param KEY: the value of tern.KEY= on the kernel command line.
tern_param() { tr ' ' '\n' </proc/cmdline | sed -n "s/^tern\.$1=//p" | tail -n 1; }

# net_up: brings up the first interface with a device behind it (not lo,
# not a tunnel), named in $dev, with the address tern.ip= gives.
net_up() {
	dev=
	for d in /sys/class/net/*; do
		[ -e "$d/device" ] && dev=${d##*/} && break
	done
	ip link set "$dev" up
	ip addr add "$(tern_param ip)" dev "$dev"
}

# tern.cad=reboot: Ctrl+Alt+Del makes the kernel itself restart at once
# (with reboot=k, through the keyboard controller), whatever this script
# is waiting on; by default Linux signals this script instead, which only
# the mmds action traps.
if [ "$(tern_param cad)" = reboot ]; then
	echo 1 >/proc/sys/kernel/ctrl-alt-del
	echo "TERN-GUEST cad=reboot"
fi
# guest_agent NAME ARGS... runs the agent and reports its exit status and
# its "key=value" lines as TERN-GUEST NAME-rc= and NAME-key= lines.
guest_agent() {
	n=$1
	shift
	/agent "$@" >"/tmp/$n.kv"
	echo "TERN-GUEST $n-rc=$?"
	sed "s/^/TERN-GUEST $n-/" "/tmp/$n.kv"
}

case "$action" in
reboot)
	reboot -f
	;;
shell)
	# cttyhack gives the shell the console as its controlling terminal.
	setsid cttyhack sh
	poweroff -f
	;;
disk-write)
	# A file on the root disk, flushed, for the host to read back with
	# debugfs once tern has exited.
	echo "written by the tern test guest at $(date +%s)" >/tern-written
	echo "TERN-GUEST disk-write-rc=$?"
	echo "TERN-GUEST disk-sha=$(sha256sum /tern-written | cut -d' ' -f1)"
	sync
	mount -o remount,ro /
	poweroff -f
	;;
balloon-fill)
	# Touch 96 MiB (a tmpfs file), free it again, then report MemTotal
	# each time it changes until it has dropped and come back: the host
	# inflates the balloon over the freed memory, then deflates it.
	mkdir -p /fill
	mount -t tmpfs -o size=160m tmpfs /fill
	dd if=/dev/zero of=/fill/f bs=1M count=96 2>/dev/null
	rm -f /fill/f
	base=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
	echo "TERN-GUEST memtotal-base=$base"
	echo "TERN-GUEST filled=96"
	last=$base
	dropped=0
	n=0
	while [ "$n" -lt 150 ]; do
		cur=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
		if [ "$cur" != "$last" ]; then
			echo "TERN-GUEST memtotal-now=$cur"
			last=$cur
		fi
		[ "$cur" -lt "$base" ] && dropped=1
		[ "$dropped" = 1 ] && [ "$cur" = "$base" ] && break
		n=$((n + 1))
		sleep 1
	done
	echo "TERN-GUEST balloon-cycle=$dropped"
	poweroff -f
	;;
balloon-wait)
	# Report MemTotal once it has stopped changing, i.e. once a balloon
	# driver (if any) has reached its target.
	prev=0
	n=0
	while [ "$n" -lt 60 ]; do
		cur=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
		[ "$cur" = "$prev" ] && [ "$n" -ge 3 ] && break
		prev=$cur
		n=$((n + 1))
		sleep 1
	done
	echo "TERN-GUEST memtotal-kib=$cur"
	poweroff -f
	;;
disk-ro)
	if (echo x >/tern-ro-test) 2>/dev/null; then r=allowed; else r=refused; fi
	echo "TERN-GUEST ro-write=$r"
	if mount -o remount,rw / 2>/dev/null; then r=allowed; else r=refused; fi
	echo "TERN-GUEST ro-remount=$r"
	poweroff -f
	;;
sleep)
	# Stays idle until the monitor is stopped from outside; the line says
	# everything above has been printed.
	echo "TERN-GUEST idle=yes"
	while :; do sleep 3600; done
	;;
vsock-guest)
	# Data both ways over virtio-vsock, each side echoing the other's: first
	# the guest connects to the host (CID 2, a Unix socket there), then the
	# host connects to the guest through tern's socket.
	guest_agent vsock-dial send vsock "2:$(tern_param vsock-dial)" "$(tern_param bytes)"
	guest_agent vsock-serve serve vsock "$(tern_param vsock-serve)"
	poweroff -f
	;;
net-guest)
	# Traffic with the host over virtio-net: the guest pings the host's end
	# of the TAP until it answers, then echoes one TCP stream from the host
	# (who pings the guest meanwhile).
	net_up
	echo "TERN-GUEST net-dev=$dev"
	echo "TERN-GUEST net-mac=$(cat "/sys/class/net/$dev/address")"
	tries=0
	r=fail
	while [ "$tries" -lt 40 ]; do
		tries=$((tries + 1))
		if ping -c 1 -W 1 "$(tern_param peer)" >/dev/null 2>&1; then
			r=ok
			break
		fi
		sleep 1
	done
	echo "TERN-GUEST net-ping-peer=$r"
	echo "TERN-GUEST net-ping-tries=$tries"
	guest_agent net-serve serve tcp ":$(tern_param port)"
	poweroff -f
	;;
mmds)
	# The metadata service (version 2) and then Ctrl+Alt+Del. tern itself
	# answers 169.254.169.254 on this interface; nothing on the host side
	# of the TAP is configured. A GET without a session token is refused;
	# with one from PUT /latest/api/token (busybox wget cannot PUT: nc) it
	# is answered.
	net_up
	ip route add 169.254.169.254 dev "$dev"
	md=http://169.254.169.254/latest/meta-data
	if wget -q -O /tmp/md-untokened "$md/instance-id" 2>/dev/null; then r=answered; else r=refused; fi
	echo "TERN-GUEST mmds-without-token=$r"
	printf 'PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n' |
		nc -w 10 169.254.169.254 80 >/tmp/token.http
	echo "TERN-GUEST mmds-token-status=$(head -n 1 /tmp/token.http | cut -d' ' -f2)"
	tok=$(tail -n 1 /tmp/token.http)
	echo "TERN-GUEST mmds-instance-id=$(wget -q -O - --header "X-metadata-token: $tok" "$md/instance-id")"
	echo "TERN-GUEST mmds-keys=$(wget -q -O - --header "X-metadata-token: $tok" "$md/" | tr '\n' ',')"
	# Ctrl+Alt+Del: with the sysctl at 0 Linux signals init (this script,
	# pid 1) with SIGINT instead of rebooting at once, as most inits ask.
	echo 0 >/proc/sys/kernel/ctrl-alt-del
	trap 'echo "TERN-GUEST ctrl-alt-del=received"; poweroff -f' INT
	echo "TERN-GUEST keyboard=$(sed -n 's/^N: Name="\(.*\)"$/\1/p' /proc/bus/input/devices | grep -i keyboard | head -n 1 | tr ' ' _)"
	# What the kernel said of the keyboard controller, for a failing check.
	dmesg | grep -iE 'i8042|serio|atkbd|keyboard' | sed 's/^/TERN-GUEST kbd-dmesg: /'
	grep -i i8042 /proc/interrupts | sed 's/^/TERN-GUEST kbd-irq: /'
	echo "TERN-GUEST cad-ready=yes"
	n=0
	while [ "$n" -lt 60 ]; do
		sleep 1
		n=$((n + 1))
	done
	echo "TERN-GUEST ctrl-alt-del=not-received"
	poweroff -f
	;;
mmds-v1)
	# The metadata service, version 1: plain GETs, no session token.
	net_up
	ip route add 169.254.169.254 dev "$dev"
	md=http://169.254.169.254/latest/meta-data
	echo "TERN-GUEST mmds-v1-instance-id=$(wget -q -O - "$md/instance-id")"
	echo "TERN-GUEST mmds-v1-zone=$(wget -q -O - "$md/placement/zone")"
	poweroff -f
	;;
counter)
	# Work in flight for the snapshot scenario, until the host says stop:
	# a counter printed every second as "counter=N date=..." and appended
	# (then synced) to counter.log on the ext4 data disk /dev/vda; one TCP
	# connection to tern.peer:tern.port that numbered lines go out on and
	# the host's "stop" comes in on (agent hold-dial); a vsock connection
	# to the host's port tern.vsock-dial, dialled again when it breaks (a
	# restore resets vsock connections); and vsock port tern.vsock-serve
	# echoing what the host sends, one connection after another. With
	# tern.dirty=MIB and tern.dirty-rate=MIB_PER_S (migration tests), a busy
	# process rewrites MIB of memory at that rate besides (agent dirty).
	mkdir -p /mnt
	mount -t ext4 /dev/vda /mnt || echo "TERN-GUEST error=mount-data-disk"
	net_up
	tries=0
	until ping -c 1 -W 1 "$(tern_param peer)" >/dev/null 2>&1 || [ "$tries" -ge 40 ]; do
		tries=$((tries + 1))
		sleep 1
	done
	echo "TERN-GUEST counter-ping-tries=$tries"
	(
		while :; do
			AGENT_TIMEOUT=10m /agent serve vsock "$(tern_param vsock-serve)" >/tmp/vserve.kv 2>/tmp/vserve.err
			echo "TERN-GUEST vsock-serve-rc=$?"
			sed "s/^/TERN-GUEST vsock-serve-/" /tmp/vserve.kv
			sed "s/^/TERN-GUEST vsock-serve-error=/" /tmp/vserve.err
		done
	) &
	(
		/agent hold-dial vsock "2:$(tern_param vsock-dial)" 2>&1
		echo "rc=$?"
	) | while read -r l; do echo "TERN-GUEST vsock-$l"; done &
	(
		n=0
		while [ ! -e /tmp/stop ]; do
			n=$((n + 1))
			echo "TERN-GUEST counter=$n date=$(date +%s)"
			echo "$n" >>/mnt/counter.log
			sync
			sleep 1
		done
		echo "TERN-GUEST counter-last=$n"
	) &
	counter_pid=$!
	dirty_pid=
	if [ -n "$(tern_param dirty)" ]; then
		# Through a FIFO, so that $! is the agent's pid, to stop it.
		mkfifo /tmp/dirty.out
		while read -r l; do echo "TERN-GUEST $l"; done </tmp/dirty.out &
		/agent dirty "$(tern_param dirty)" "$(tern_param dirty-rate)" >/tmp/dirty.out 2>&1 &
		dirty_pid=$!
	fi
	# Until the host sends "stop" on the TCP connection.
	(
		/agent hold-dial tcp "$(tern_param peer):$(tern_param port)" 2>&1
		echo "rc=$?"
	) | while read -r l; do echo "TERN-GUEST tcp-$l"; done
	touch /tmp/stop
	if [ -n "$dirty_pid" ]; then
		kill "$dirty_pid" && echo "TERN-GUEST dirty-stopped=yes"
	fi
	wait "$counter_pid"
	sync
	umount /mnt && echo "TERN-GUEST counter-stopped=yes"
	alarms='soft lockup|rcu.*stall|hung_task'
	echo "TERN-GUEST dmesg-alarms=$(dmesg | grep -ciE "$alarms")"
	dmesg | grep -iE "$alarms" | sed "s/^/TERN-GUEST dmesg-alarm: /"
	poweroff -f
	;;
hostile)
	# A guest attacking its monitor for tern.hostile-seconds (agent
	# hostile): ports, unbacked MMIO, a console flood of escape sequences
	# and the boot timer, all at once (or those tern.hostile-attacks
	# lists); its lines arrive live, each as one console write, then the
	# guest powers off.
	(
		/agent hostile "$(tern_param hostile-seconds)" "$(tern_param hostile-attacks)" 2>&1
		echo "rc=$?"
	) | while read -r l; do echo "TERN-GUEST hostile-$l"; done
	poweroff -f
	;;
counter-console)
	# A counter on the console only ("counter=N date=..." every second),
	# until tern is stopped: work in flight that needs nothing on the host
	# but tern, for a migration between hosts that share no disk, TAP or
	# vsock socket.
	n=0
	while :; do
		n=$((n + 1))
		echo "TERN-GUEST counter=$n date=$(date +%s)"
		sleep 1
	done
	;;
*)
	poweroff -f
	;;
esac
# Only reached if the power-off or reset request failed.
echo "TERN-GUEST error=$action-returned"
sleep 5
