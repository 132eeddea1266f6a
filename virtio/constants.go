package virtio

// Device types (virtio 1.2 section 5), as the transport reports them in
// its DeviceID register.
const (
	DeviceIDNet     = 1
	DeviceIDBlock   = 2
	DeviceIDConsole = 3
	DeviceIDRNG     = 4
	DeviceIDBalloon = 5
	DeviceIDVsock   = 19
)

// Device status bits (virtio 1.2 section 2.1).
const (
	StatusAcknowledge = 1
	StatusDriver      = 2
	StatusDriverOK    = 4
	StatusFeaturesOK  = 8
	StatusNeedsReset  = 0x40
	StatusFailed      = 0x80
)

// Reserved feature bits (virtio 1.2 section 6) that concern the rings and
// the transport rather than one device type.
const (
	FeatureIndirectDesc = 1 << 28 // VIRTIO_F_INDIRECT_DESC
	FeatureEventIdx     = 1 << 29 // VIRTIO_F_EVENT_IDX
	FeatureVersion1     = 1 << 32 // VIRTIO_F_VERSION_1
)

// TransportFeatures are the reserved feature bits every tern transport
// offers on top of a device's own: modern (1.x) devices with split rings
// that understand indirect descriptors and event-index suppression.
const TransportFeatures = FeatureVersion1 | FeatureIndirectDesc | FeatureEventIdx

// ReservedFeatures covers bits 24 to 49, which the specification keeps for
// the transport and the rings. A device's Features must leave them clear;
// the transport decides which of them it offers.
const ReservedFeatures uint64 = (1<<50 - 1) &^ (1<<24 - 1)

// InterruptReason says why a device interrupts its driver. The values are
// the bits of the virtio-mmio InterruptStatus register (and of the PCI ISR).
type InterruptReason uint32

const (
	// InterruptUsedBuffer: the device put buffers in a used ring.
	InterruptUsedBuffer InterruptReason = 1
	// InterruptConfigChange: the device configuration space changed.
	InterruptConfigChange InterruptReason = 2
)
