// Package guest holds what runs inside the test guests: the /init script
// (init.sh, embedded here) and the agent binary (package guest/agent).
package guest

import _ "embed"

// InitScript is the guest's /init, a busybox sh script. It prints
// "TERN-GUEST key=value" lines and then does what the kernel command line's
// tern.action= asks: poweroff (the default), reboot, shell, sleep, or one of
// the device roles (disk-write, disk-ro, balloon-wait, balloon-fill,
// vsock-guest, net-guest), or counter (work in flight for snapshot and
// migration tests, with tern.dirty= a busy guest rewriting its memory too)
// or counter-console (the same counter on the console alone, for
// migrations between hosts that share no disk), or hostile (a guest
// attacking its monitor for tern.hostile-seconds, then powering off).
// With root=/dev/vdX it first switches to that
// virtio-blk disk.
//
//go:embed init.sh
var InitScript []byte

// AgentPackage is the import path of the guest agent, to build it.
const AgentPackage = "./test/guest/agent"

// Modules are the guest kernel's modules the test guest loads at start, in
// load order (each after what it depends on), as paths under the modules
// tree's kernel/ directory. A stock distribution kernel has its virtio
// drivers as modules; init.sh loads every one of these that is present.
var Modules = []string{
	"drivers/virtio/virtio_ring.ko",
	"drivers/virtio/virtio.ko",
	"drivers/virtio/virtio_mmio.ko",
	"drivers/char/hw_random/virtio-rng.ko",
	"drivers/block/virtio_blk.ko",
	"net/core/failover.ko",
	"drivers/net/net_failover.ko",
	"drivers/net/virtio_net.ko",
	"drivers/virtio/virtio_balloon.ko",
	"net/vmw_vsock/vsock.ko",
	"net/vmw_vsock/vmw_vsock_virtio_transport_common.ko",
	"net/vmw_vsock/vmw_vsock_virtio_transport.ko",
}
