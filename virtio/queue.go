package virtio

import "fmt"

// MaxQueueSize is the largest split virtqueue the specification allows.
const MaxQueueSize = 32768

// Queue is the device side of one split virtqueue. It holds the queue's
// configuration (size, ring addresses, negotiated ring features) and the
// device's position in the rings; guest memory is passed to each method
// that reads or writes a ring.
//
// A Queue is not safe for concurrent use: the transport configures it while
// the device is inactive, and the active device uses it from one goroutine
// at a time.
type Queue struct {
	maxSize   uint16
	size      uint16
	ready     bool
	descTable uint64
	availRing uint64
	usedRing  uint64
	eventIdx  bool
	indirect  bool

	nextAvail uint16 // next avail ring entry the device will consume
	nextUsed  uint16 // next used ring entry the device will fill

	// signalledUsed is nextUsed when NeedsNotification last ran, the "old"
	// index of the event-index test; until then every check notifies.
	signalledUsed      uint16
	signalledUsedValid bool
}

// NewQueue returns a disabled queue whose size may be set up to maxSize, a
// power of two between 1 and MaxQueueSize. Its size starts at maxSize.
func NewQueue(maxSize uint16) (*Queue, error) {
	if !validSize(maxSize, MaxQueueSize) {
		return nil, fmt.Errorf("%w: maximum size %d is not a power of two in [1, %d]", ErrBadQueueConfig, maxSize, MaxQueueSize)
	}
	return &Queue{maxSize: maxSize, size: maxSize}, nil
}

func validSize(size uint16, limit uint32) bool {
	return size != 0 && size&(size-1) == 0 && uint32(size) <= limit
}

// MaxSize is the largest size the queue accepts.
func (q *Queue) MaxSize() uint16 { return q.maxSize }

// Size is the number of descriptors (and ring entries) of the queue.
func (q *Queue) Size() uint16 { return q.size }

// SetSize sets the queue size: a power of two no larger than MaxSize, as
// the split ring layout requires.
func (q *Queue) SetSize(size uint16) error {
	if !validSize(size, uint32(q.maxSize)) {
		return fmt.Errorf("%w: size %d is not a power of two in [1, %d]", ErrBadQueueConfig, size, q.maxSize)
	}
	q.size = size
	return nil
}

// Ready reports whether the driver enabled the queue.
func (q *Queue) Ready() bool { return q.ready }

// SetReady enables or disables the queue.
func (q *Queue) SetReady(ready bool) { q.ready = ready }

// DescTable is the guest physical address of the descriptor table.
func (q *Queue) DescTable() uint64 { return q.descTable }

// SetDescTable sets the descriptor table address; Validate checks it.
func (q *Queue) SetDescTable(gpa uint64) { q.descTable = gpa }

// AvailRing is the guest physical address of the available (driver) ring.
func (q *Queue) AvailRing() uint64 { return q.availRing }

// SetAvailRing sets the available ring address; Validate checks it.
func (q *Queue) SetAvailRing(gpa uint64) { q.availRing = gpa }

// UsedRing is the guest physical address of the used (device) ring.
func (q *Queue) UsedRing() uint64 { return q.usedRing }

// SetUsedRing sets the used ring address; Validate checks it.
func (q *Queue) SetUsedRing(gpa uint64) { q.usedRing = gpa }

// SetFeatures applies the negotiated features that change how the rings
// are used: FeatureEventIdx and FeatureIndirectDesc.
func (q *Queue) SetFeatures(acked uint64) {
	q.eventIdx = acked&FeatureEventIdx != 0
	q.indirect = acked&FeatureIndirectDesc != 0
}

// EventIdx reports whether VIRTIO_F_EVENT_IDX is in use on this queue.
func (q *Queue) EventIdx() bool { return q.eventIdx }

// Validate checks the configuration the driver wrote before the device
// starts using the queue: the size, and that each ring is aligned as the
// specification requires and lies wholly inside guest RAM.
func (q *Queue) Validate(mem Memory) error {
	if !validSize(q.size, uint32(q.maxSize)) {
		return fmt.Errorf("%w: size %d is not a power of two in [1, %d]", ErrBadQueueConfig, q.size, q.maxSize)
	}
	parts := []struct {
		name       string
		addr, size uint64
		align      uint64
	}{
		{"descriptor table", q.descTable, DescTableSize(q.size), DescTableAlign},
		{"available ring", q.availRing, AvailRingSize(q.size), AvailRingAlign},
		{"used ring", q.usedRing, UsedRingSize(q.size), UsedRingAlign},
	}
	for _, p := range parts {
		if p.addr%p.align != 0 {
			return fmt.Errorf("%w: %s at %#x is not %d-byte aligned", ErrBadQueueConfig, p.name, p.addr, p.align)
		}
		if _, err := guestRange(mem, p.addr, p.size); err != nil {
			return fmt.Errorf("%w: %s of %d bytes at %#x: %w", ErrBadQueueConfig, p.name, p.size, p.addr, err)
		}
	}
	return nil
}

// Reset returns the queue to its state after NewQueue.
func (q *Queue) Reset() { *q = Queue{maxSize: q.maxSize, size: q.maxSize} }

// NextAvail is the index of the next available ring entry Pop consumes.
func (q *Queue) NextAvail() uint16 { return q.nextAvail }

// NextUsed is the index of the next used ring entry AddUsed fills.
func (q *Queue) NextUsed() uint16 { return q.nextUsed }
