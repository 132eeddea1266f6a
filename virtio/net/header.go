package virtionet

import "encoding/binary"

// struct virtio_net_hdr_v1 (virtio 1.2 section 5.1.6): flags, gso_type,
// hdr_len, gso_size, csum_start, csum_offset, num_buffers.
const (
	headerLen        = 12
	hdrFlagsOff      = 0
	hdrGSOTypeOff    = 1
	hdrNumBuffersOff = 10
	hdrFNeedsCsum    = 1
	hdrFDataValid    = 2
	gsoNone          = 0
	gsoTCPv4         = 1
	gsoUDP           = 3
	gsoTCPv6         = 4
	gsoECN           = 0x80
	maxFrameLen      = 65550                   // largest Ethernet frame after the header
	maxPacketLen     = headerLen + maxFrameLen // 65562, header included
)

// txHeaderAllowed checks a transmitted header against what the driver
// negotiated: offloads it did not accept are bad requests (5.1.6.2.1).
func txHeaderAllowed(hdr []byte, acked uint64) bool {
	flags := hdr[hdrFlagsOff]
	if flags&^hdrFNeedsCsum != 0 {
		return false
	}
	if flags&hdrFNeedsCsum != 0 && acked&FeatureCsum == 0 {
		return false
	}
	gso := hdr[hdrGSOTypeOff]
	if gso&gsoECN != 0 && acked&FeatureHostECN == 0 {
		return false
	}
	switch gso &^ gsoECN {
	case gsoNone:
		return gso&gsoECN == 0
	case gsoTCPv4:
		return acked&FeatureHostTSO4 != 0
	case gsoTCPv6:
		return acked&FeatureHostTSO6 != 0
	default:
		return false
	}
}

// fixRxHeader makes the header the kernel wrote fit what the driver
// negotiated. It returns false when the frame needs an offload the driver
// refused and must be dropped; TUNSETOFFLOAD keeps the kernel from sending
// such frames, so that is a safety net.
func fixRxHeader(hdr []byte, acked uint64) bool {
	flags := hdr[hdrFlagsOff]
	if acked&FeatureGuestCsum == 0 {
		if flags&hdrFNeedsCsum != 0 {
			return false
		}
		// DATA_VALID is only allowed with GUEST_CSUM (5.1.6.4.1); without
		// it the driver checks the checksum itself, which is always safe.
		flags &^= hdrFDataValid
	}
	hdr[hdrFlagsOff] = flags & (hdrFNeedsCsum | hdrFDataValid)
	gso := hdr[hdrGSOTypeOff]
	if gso&gsoECN != 0 && acked&FeatureGuestECN == 0 {
		return false
	}
	switch gso &^ gsoECN {
	case gsoNone:
	case gsoTCPv4:
		if acked&FeatureGuestTSO4 == 0 {
			return false
		}
	case gsoTCPv6:
		if acked&FeatureGuestTSO6 == 0 {
			return false
		}
	default:
		return false
	}
	return true
}

// setNumBuffers stores num_buffers. The kernel leaves those two bytes
// alone (its header is 10 bytes; it only skips the rest of the 12).
func setNumBuffers(hdr []byte, n uint16) {
	binary.LittleEndian.PutUint16(hdr[hdrNumBuffersOff:], n)
}
