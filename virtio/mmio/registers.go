// Package mmio is the virtio-mmio transport (virtio 1.2 section 4.2),
// version 2 only: a 4 KiB register window per device on the MMIO bus,
// with the device configuration space from offset 0x100 and one interrupt
// line. It negotiates features (VIRTIO_F_VERSION_1 is required), runs the
// device status state machine, owns the device's virtqueues while the
// driver sets them up, and hands them to the device at DRIVER_OK.
//
// Registers are 32 bits wide and accessed as such: an access of another
// width or alignment below 0x100 reads as zero and is ignored on write, as
// the specification leaves it undefined. The configuration space takes any
// width.
package mmio

// Register offsets (virtio 1.2 table 4.1).
const (
	RegMagicValue        = 0x000
	RegVersion           = 0x004
	RegDeviceID          = 0x008
	RegVendorID          = 0x00c
	RegDeviceFeatures    = 0x010
	RegDeviceFeaturesSel = 0x014
	RegDriverFeatures    = 0x020
	RegDriverFeaturesSel = 0x024
	RegQueueSel          = 0x030
	RegQueueNumMax       = 0x034
	RegQueueNum          = 0x038
	RegQueueReady        = 0x044
	RegQueueNotify       = 0x050
	RegInterruptStatus   = 0x060
	RegInterruptACK      = 0x064
	RegStatus            = 0x070
	RegQueueDescLow      = 0x080
	RegQueueDescHigh     = 0x084
	RegQueueDriverLow    = 0x090
	RegQueueDriverHigh   = 0x094
	RegQueueDeviceLow    = 0x0a0
	RegQueueDeviceHigh   = 0x0a4
	RegSHMSel            = 0x0ac
	RegSHMLenLow         = 0x0b0
	RegSHMLenHigh        = 0x0b4
	RegSHMBaseLow        = 0x0b8
	RegSHMBaseHigh       = 0x0bc
	RegQueueReset        = 0x0c0
	RegConfigGeneration  = 0x0fc
	RegConfig            = 0x100
)

const (
	// MagicValue is "virt" in little-endian ASCII.
	MagicValue = 0x74726976
	// Version is the modern (non-legacy) virtio-mmio interface.
	Version = 2
	// VendorID is "TERN" in little-endian ASCII; drivers only print it.
	VendorID = 0x4e524554
	// WindowSize is the size of one device's register window.
	WindowSize = 0x1000
)
