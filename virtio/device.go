package virtio

// Device is one virtio device type (entropy, block, net, ...) as a transport
// drives it. The transport owns the registers, feature negotiation, the
// status machine and the Queue objects; the device owns what happens on
// its queues once the driver sets DRIVER_OK.
//
// Calls from the transport never overlap Activate, Reset and each other for
// one device, but QueueNotify, ReadConfig and WriteConfig can arrive from
// any vCPU or event-loop goroutine at any time, also before Activate and
// after Reset, so a device guards its state with its own lock and ignores
// notifications while it is not active.
type Device interface {
	// DeviceID is the virtio device type (DeviceIDRNG, ...).
	DeviceID() uint32
	// Features are the device-type feature bits it offers. Bits in
	// ReservedFeatures are ignored: the transport adds TransportFeatures.
	Features() uint64
	// QueueMaxSizes gives the largest size of each queue, a power of two
	// no larger than MaxQueueSize; its length is the number of queues.
	QueueMaxSizes() []uint16
	// ReadConfig fills data from the device configuration space at
	// offset. data arrives zeroed; bytes past the end stay zero.
	ReadConfig(offset uint64, data []byte)
	// WriteConfig writes the device configuration space at offset.
	// Writes to read-only fields or past the end are ignored.
	WriteConfig(offset uint64, data []byte)
	// Activate starts the device once the driver set DRIVER_OK. queues
	// holds one Queue per QueueMaxSizes entry, configured and checked by
	// the transport (queues the driver left disabled have Ready false);
	// acked is the negotiated feature set. The device has the queues and
	// memory to itself until Reset returns. An error leaves the device
	// inactive and the transport reports DEVICE_NEEDS_RESET.
	Activate(mem Memory, queues []*Queue, irq Interrupt, acked uint64) error
	// QueueNotify tells the device that the driver made buffers available
	// on queue index. It runs on the notifying goroutine; a device either
	// processes the queue there or hands the work to its own.
	QueueNotify(index int)
	// Reset stops the device: when it returns, the device no longer
	// touches the queues, the memory or the Interrupt it was activated
	// with, and it may be activated again.
	Reset()
}

// Interrupt is how an active device reaches its driver. Both methods are
// safe to call from any goroutine, also while the device holds its own
// lock: the transport takes none of its locks in them.
type Interrupt interface {
	// Signal records reason in the transport's interrupt status and
	// raises the device's interrupt line.
	Signal(reason InterruptReason) error
	// NeedsReset reports that the device hit an error it cannot recover
	// from without a reset (typically a malformed ring from the driver):
	// the transport sets DEVICE_NEEDS_RESET, keeps cause for the VMM's
	// logs and sends a configuration change interrupt as the
	// specification requires. The device should stop processing queues.
	NeedsReset(cause error)
}
