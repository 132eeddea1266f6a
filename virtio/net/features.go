package virtionet

import (
	"golang.org/x/sys/unix"
)

// Feature bits of the network device (virtio 1.2 section 5.1.3).
const (
	FeatureCsum      = 1 << 0  // VIRTIO_NET_F_CSUM: device takes partially checksummed frames
	FeatureGuestCsum = 1 << 1  // VIRTIO_NET_F_GUEST_CSUM: driver takes partially checksummed frames
	FeatureMAC       = 1 << 5  // VIRTIO_NET_F_MAC: config space holds the MAC address
	FeatureGuestTSO4 = 1 << 7  // VIRTIO_NET_F_GUEST_TSO4
	FeatureGuestTSO6 = 1 << 8  // VIRTIO_NET_F_GUEST_TSO6
	FeatureGuestECN  = 1 << 9  // VIRTIO_NET_F_GUEST_ECN
	FeatureGuestUFO  = 1 << 10 // VIRTIO_NET_F_GUEST_UFO (not offered)
	FeatureHostTSO4  = 1 << 11 // VIRTIO_NET_F_HOST_TSO4
	FeatureHostTSO6  = 1 << 12 // VIRTIO_NET_F_HOST_TSO6
	FeatureHostECN   = 1 << 13 // VIRTIO_NET_F_HOST_ECN
	FeatureHostUFO   = 1 << 14 // VIRTIO_NET_F_HOST_UFO (not offered)
	FeatureMrgRxbuf  = 1 << 15 // VIRTIO_NET_F_MRG_RXBUF
	FeatureStatus    = 1 << 16 // VIRTIO_NET_F_STATUS: config space holds the link status
	FeatureCtrlVQ    = 1 << 17 // VIRTIO_NET_F_CTRL_VQ (not offered)
)

// OfferedFeatures is what the device offers. UFO is left out: Linux
// guests stopped using it and the kernel's TAP support for it is only
// kept for compatibility. There is no control queue, so no feature that
// depends on one.
const OfferedFeatures uint64 = FeatureCsum | FeatureGuestCsum | FeatureMAC |
	FeatureGuestTSO4 | FeatureGuestTSO6 | FeatureGuestECN |
	FeatureHostTSO4 | FeatureHostTSO6 | FeatureHostECN |
	FeatureMrgRxbuf | FeatureStatus

// tapOffloads turns the features the driver accepted into the TUNSETOFFLOAD
// flags, which say what the kernel may hand to the TAP's reader, that is
// to the guest's receive queue. The kernel refuses segmentation offloads
// without checksum offload, and so does the specification (GUEST_TSO*
// require GUEST_CSUM), so a driver that accepted TSO without checksum
// offload gets neither.
func tapOffloads(acked uint64) int {
	if acked&FeatureGuestCsum == 0 {
		return 0
	}
	flags := unix.TUN_F_CSUM
	if acked&FeatureGuestTSO4 != 0 {
		flags |= unix.TUN_F_TSO4
	}
	if acked&FeatureGuestTSO6 != 0 {
		flags |= unix.TUN_F_TSO6
	}
	if acked&FeatureGuestECN != 0 && flags&(unix.TUN_F_TSO4|unix.TUN_F_TSO6) != 0 {
		flags |= unix.TUN_F_TSO_ECN
	}
	return flags
}
