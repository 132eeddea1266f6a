package devices

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Device is anything that can sit on a Bus. offset is the distance of the
// access from the base the device was registered at; len(data) is the
// access width. Read fills data, Write consumes it.
type Device interface {
	Read(offset uint64, data []byte)
	Write(offset uint64, data []byte)
}

// Errors returned by Bus.Register.
var (
	ErrZeroSize  = errors.New("zero-sized range")
	ErrOverflow  = errors.New("range wraps past the end of the address space")
	ErrOverlap   = errors.New("ranges overlap")
	ErrNilDevice = errors.New("nil device")
)

// busRange is one registered device: it covers [base, last] inclusive, so a
// range may end at the very top of the 64-bit space.
type busRange struct {
	base, last uint64
	dev        Device
}

// Bus routes accesses in one address space (port I/O or MMIO) to the
// device whose range holds them.
//
// Lookups run on every vCPU exit, so ranges are kept in a slice sorted by
// base and found by binary search. Registration is meant to finish before
// any vCPU runs; the RWMutex only makes a late registration safe, it is
// not there to make one cheap. Devices are called with no bus lock held.
type Bus struct {
	name   string
	mu     sync.RWMutex
	ranges []busRange // sorted by base, non-overlapping
}

// NewBus returns an empty bus; name appears in its error messages.
func NewBus(name string) *Bus {
	return &Bus{name: name}
}

// Name returns the name the bus was created with.
func (b *Bus) Name() string { return b.name }

// Register places d at [base, base+size).
func (b *Bus) Register(base, size uint64, d Device) error {
	if d == nil {
		return fmt.Errorf("%s bus: register at %#x: %w", b.name, base, ErrNilDevice)
	}
	if size == 0 {
		return fmt.Errorf("%s bus: register at %#x: %w", b.name, base, ErrZeroSize)
	}
	if size-1 > ^uint64(0)-base {
		return fmt.Errorf("%s bus: register %#x bytes at %#x: %w", b.name, size, base, ErrOverflow)
	}
	r := busRange{base: base, last: base + (size - 1), dev: d}

	b.mu.Lock()
	defer b.mu.Unlock()
	// i is the first range starting above base; only it and its
	// predecessor can overlap the new one.
	i := sort.Search(len(b.ranges), func(i int) bool { return b.ranges[i].base > base })
	if i > 0 && b.ranges[i-1].last >= r.base {
		return b.overlapError(r, b.ranges[i-1])
	}
	if i < len(b.ranges) && b.ranges[i].base <= r.last {
		return b.overlapError(r, b.ranges[i])
	}
	b.ranges = append(b.ranges, busRange{})
	copy(b.ranges[i+1:], b.ranges[i:])
	b.ranges[i] = r
	return nil
}

func (b *Bus) overlapError(r, old busRange) error {
	return fmt.Errorf("%s bus: new range [%#x, %#x] (%T) overlaps [%#x, %#x] (%T): %w",
		b.name, r.base, r.last, r.dev, old.base, old.last, old.dev, ErrOverlap)
}

// find returns the device that covers all of [addr, addr+n) and the offset
// of addr within it.
func (b *Bus) find(addr uint64, n int) (Device, uint64, bool) {
	if n <= 0 || uint64(n-1) > ^uint64(0)-addr {
		return nil, 0, false
	}
	end := addr + uint64(n-1)
	b.mu.RLock()
	defer b.mu.RUnlock()
	i := sort.Search(len(b.ranges), func(i int) bool { return b.ranges[i].base > addr })
	if i == 0 {
		return nil, 0, false
	}
	r := b.ranges[i-1]
	if end > r.last {
		return nil, 0, false
	}
	return r.dev, addr - r.base, true
}

// Read dispatches a read of len(data) bytes at addr. It returns false, and
// leaves data alone, when no single device covers the whole access,
// including one that starts inside a device and runs past its end.
func (b *Bus) Read(addr uint64, data []byte) bool {
	d, off, ok := b.find(addr, len(data))
	if ok {
		d.Read(off, data)
	}
	return ok
}

// Write dispatches a write of data at addr, under the same rule as Read.
func (b *Bus) Write(addr uint64, data []byte) bool {
	d, off, ok := b.find(addr, len(data))
	if ok {
		d.Write(off, data)
	}
	return ok
}
