package virtio

import (
	"fmt"
	"math"
)

// MaxIndirectTable bounds the size of one indirect descriptor table, in
// descriptors. The specification caps chains at the queue size, and queues
// at MaxQueueSize, so no valid table needs more.
const MaxIndirectTable = MaxQueueSize

// ChainError reports a malformed descriptor chain. The available ring entry
// has been consumed; Head says which chain it was so that a device may
// complete it (typically with zero bytes) instead of resetting.
type ChainError struct {
	Head uint16
	Err  error
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("%v at head %d: %v", ErrBadChain, e.Head, e.Err)
}

// Unwrap lets errors.Is match ErrBadChain as well as the cause.
func (e *ChainError) Unwrap() []error { return []error{ErrBadChain, e.Err} }

// Pop takes the next available descriptor chain. It returns nil, nil when
// the driver has made nothing new available.
//
// An error wrapping ErrBadRing means the ring itself is broken (the
// available index ran ahead by more than the queue size, or a ring is
// outside RAM) and nothing was consumed; a *ChainError means one chain was
// malformed and was consumed.
func (q *Queue) Pop(mem Memory) (*Chain, error) {
	if !q.ready {
		return nil, ErrQueueNotReady
	}
	availIdx, err := readU16(mem, q.availRing+2)
	if err != nil {
		return nil, fmt.Errorf("%w: read available index: %w", ErrBadRing, err)
	}
	// Indices are free-running 16-bit counters, so the distance is taken
	// modulo 2^16.
	pending := availIdx - q.nextAvail
	if pending == 0 {
		return nil, nil
	}
	if pending > q.size {
		return nil, fmt.Errorf("%w: available index %d is %d entries past %d, more than the queue size %d",
			ErrBadRing, availIdx, pending, q.nextAvail, q.size)
	}
	slot := q.availRing + ringHeader + 2*uint64(q.nextAvail%q.size)
	head, err := readU16(mem, slot)
	if err != nil {
		return nil, fmt.Errorf("%w: read available ring entry %d: %w", ErrBadRing, q.nextAvail%q.size, err)
	}
	q.nextAvail++
	c, err := q.walk(mem, head)
	if err != nil {
		return nil, &ChainError{Head: head, Err: err}
	}
	return c, nil
}

// walk follows the chain starting at head, copying and checking each
// descriptor.
//
// Termination: a chain may hold at most q.size buffers (virtio 1.2
// 2.7.5.3.1), the direct table is walked at most q.size steps and an
// indirect table at most its own length, so a loop ends in an error after
// a bounded number of reads.
func (q *Queue) walk(mem Memory, head uint16) (*Chain, error) {
	if head >= q.size {
		return nil, fmt.Errorf("head index %d is outside the descriptor table of %d", head, q.size)
	}
	c := &Chain{Head: head}
	table, tableLen := q.descTable, uint32(q.size)
	steps := uint32(q.size) // descriptors still allowed to be read in this table
	inIndirect := false
	index := head
	for {
		if steps == 0 {
			return nil, fmt.Errorf("chain visits more than the %d descriptors of its table: it loops", tableLen)
		}
		steps--
		d, err := readDescriptor(mem, table, index)
		if err != nil {
			return nil, fmt.Errorf("read descriptor %d: %w", index, err)
		}
		if d.flags&descFlagIndirect != 0 {
			switch {
			case !q.indirect:
				return nil, fmt.Errorf("descriptor %d is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated", index)
			case inIndirect:
				return nil, fmt.Errorf("descriptor %d in an indirect table is itself indirect", index)
			case d.flags&descFlagNext != 0:
				return nil, fmt.Errorf("descriptor %d has both INDIRECT and NEXT set", index)
			case d.len == 0 || d.len%descSize != 0:
				return nil, fmt.Errorf("indirect table length %d is not a non-zero multiple of %d", d.len, descSize)
			case d.len/descSize > MaxIndirectTable:
				return nil, fmt.Errorf("indirect table of %d descriptors is larger than %d", d.len/descSize, MaxIndirectTable)
			}
			if _, err := guestRange(mem, d.addr, uint64(d.len)); err != nil {
				return nil, fmt.Errorf("indirect table: %w", err)
			}
			// The WRITE flag of the descriptor naming the table means
			// nothing and is ignored (2.7.5.3.2).
			table, tableLen, steps = d.addr, d.len/descSize, d.len/descSize
			inIndirect = true
			index = 0
			continue
		}
		if err := c.add(mem, d, uint32(q.size)); err != nil {
			return nil, fmt.Errorf("descriptor %d: %w", index, err)
		}
		if d.flags&descFlagNext == 0 {
			return c, nil
		}
		if uint32(d.next) >= tableLen {
			return nil, fmt.Errorf("descriptor %d's next %d is outside its table of %d", index, d.next, tableLen)
		}
		index = d.next
	}
}

// add appends the buffer d describes, enforcing the chain rules: inside
// guest RAM, readable buffers first, no more than limit buffers and no more
// than 2^32-1 bytes in either direction.
func (c *Chain) add(mem Memory, d descriptor, limit uint32) error {
	if uint32(len(c.Readable)+len(c.Writable)) >= limit {
		return fmt.Errorf("chain has more than %d buffers, the queue size", limit)
	}
	if _, err := guestRange(mem, d.addr, uint64(d.len)); err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	b := Buffer{Addr: d.addr, Len: d.len}
	if d.flags&descFlagWrite != 0 {
		if c.writableLen+uint64(d.len) > math.MaxUint32 {
			return fmt.Errorf("writable buffers total more than %d bytes", uint64(math.MaxUint32))
		}
		c.writableLen += uint64(d.len)
		c.Writable = append(c.Writable, b)
		return nil
	}
	if len(c.Writable) > 0 {
		return fmt.Errorf("readable buffer follows a writable one")
	}
	if c.readableLen+uint64(d.len) > math.MaxUint32 {
		return fmt.Errorf("readable buffers total more than %d bytes", uint64(math.MaxUint32))
	}
	c.readableLen += uint64(d.len)
	c.Readable = append(c.Readable, b)
	return nil
}
