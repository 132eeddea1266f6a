package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Split virtqueue layout (virtio 1.2 section 2.7). All fields are little
// endian.
//
//	descriptor: addr u64 | len u32 | flags u16 | next u16      (16 bytes)
//	avail ring: flags u16 | idx u16 | ring[size] u16 | used_event u16
//	used ring:  flags u16 | idx u16 | ring[size] {id u32, len u32} | avail_event u16
const (
	descSize     = 16
	usedElemSize = 8
	ringHeader   = 4 // flags and idx in front of both rings

	DescTableAlign = 16
	AvailRingAlign = 2
	UsedRingAlign  = 4
)

// Descriptor flags.
const (
	descFlagNext     = 1 // VIRTQ_DESC_F_NEXT
	descFlagWrite    = 2 // VIRTQ_DESC_F_WRITE
	descFlagIndirect = 4 // VIRTQ_DESC_F_INDIRECT
)

// Ring flags.
const (
	availFlagNoInterrupt = 1 // VIRTQ_AVAIL_F_NO_INTERRUPT
	usedFlagNoNotify     = 1 // VIRTQ_USED_F_NO_NOTIFY
)

// DescTableSize is the size in bytes of the descriptor table of a queue
// with size entries.
func DescTableSize(size uint16) uint64 { return descSize * uint64(size) }

// AvailRingSize is the size in bytes of the available ring, used_event
// included.
func AvailRingSize(size uint16) uint64 { return ringHeader + 2*uint64(size) + 2 }

// UsedRingSize is the size in bytes of the used ring, avail_event included.
func UsedRingSize(size uint16) uint64 { return ringHeader + usedElemSize*uint64(size) + 2 }

// descriptor is one entry of a descriptor table, copied out of guest
// memory so the driver cannot change it while the device looks at it.
type descriptor struct {
	addr  uint64
	len   uint32
	flags uint16
	next  uint16
}

// guestRange checks that [addr, addr+length) neither wraps nor leaves guest
// RAM and returns its bytes. The overflow check is ours so that no Memory
// implementation has to get it right.
func guestRange(mem Memory, addr, length uint64) ([]byte, error) {
	if addr+length < addr {
		return nil, fmt.Errorf("range [%#x, +%#x) wraps past the end of the address space", addr, length)
	}
	b, err := mem.Slice(addr, length)
	if err != nil {
		return nil, err
	}
	if uint64(len(b)) != length {
		return nil, fmt.Errorf("guest memory returned %d bytes for [%#x, +%#x)", len(b), addr, length)
	}
	return b, nil
}

func readU16(mem Memory, addr uint64) (uint16, error) {
	b, err := guestRange(mem, addr, 2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func writeU16(mem Memory, addr uint64, v uint16) error {
	b, err := guestRange(mem, addr, 2)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint16(b, v)
	return nil
}

func readDescriptor(mem Memory, table uint64, index uint16) (descriptor, error) {
	b, err := guestRange(mem, table+descSize*uint64(index), descSize)
	if err != nil {
		return descriptor{}, err
	}
	return descriptor{
		addr:  binary.LittleEndian.Uint64(b[0:8]),
		len:   binary.LittleEndian.Uint32(b[8:12]),
		flags: binary.LittleEndian.Uint16(b[12:14]),
		next:  binary.LittleEndian.Uint16(b[14:16]),
	}, nil
}

// Errors from queue operations. Each is wrapped with the details of what
// was wrong.
var (
	// ErrQueueNotReady: the queue is not enabled.
	ErrQueueNotReady = errors.New("virtqueue not ready")
	// ErrBadQueueConfig: the queue's size or ring addresses are invalid.
	ErrBadQueueConfig = errors.New("invalid virtqueue configuration")
	// ErrBadRing: the driver broke the ring protocol (an index moved by
	// more than the queue size, a ring outside guest RAM, ...). The queue
	// cannot be trusted any more.
	ErrBadRing = errors.New("malformed virtqueue ring")
	// ErrBadChain: one descriptor chain is malformed.
	ErrBadChain = errors.New("malformed descriptor chain")
)
