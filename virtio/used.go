package virtio

import (
	"encoding/binary"
	"fmt"
)

// AddUsed returns the chain with the given head to the driver, reporting
// that the device wrote written bytes into its writable buffers. The used
// element is stored before the used index that publishes it.
func (q *Queue) AddUsed(mem Memory, head uint16, written uint32) error {
	if !q.ready {
		return ErrQueueNotReady
	}
	if head >= q.size {
		return fmt.Errorf("%w: used head %d is outside the descriptor table of %d", ErrBadChain, head, q.size)
	}
	slot := q.usedRing + ringHeader + usedElemSize*uint64(q.nextUsed%q.size)
	elem, err := guestRange(mem, slot, usedElemSize)
	if err != nil {
		return fmt.Errorf("%w: used ring entry %d: %w", ErrBadRing, q.nextUsed%q.size, err)
	}
	binary.LittleEndian.PutUint32(elem[0:4], uint32(head))
	binary.LittleEndian.PutUint32(elem[4:8], written)
	if err := writeU16(mem, q.usedRing+2, q.nextUsed+1); err != nil {
		return fmt.Errorf("%w: used index: %w", ErrBadRing, err)
	}
	q.nextUsed++
	return nil
}

// usedEventAddr is where the driver asks to be interrupted: used_event,
// after the available ring's entries.
func (q *Queue) usedEventAddr() uint64 {
	return q.availRing + ringHeader + 2*uint64(q.size)
}

// availEventAddr is where the device asks to be notified: avail_event,
// after the used ring's entries.
func (q *Queue) availEventAddr() uint64 {
	return q.usedRing + ringHeader + usedElemSize*uint64(q.size)
}

// NeedsNotification reports whether the driver wants an interrupt for the
// buffers used since the last call. With VIRTIO_F_EVENT_IDX it applies the
// used_event test of virtio 1.2 2.7.10 (interrupt once the used index
// passes used_event); otherwise it honours VIRTQ_AVAIL_F_NO_INTERRUPT.
// Call it after a batch of AddUsed and signal the interrupt when it
// returns true.
func (q *Queue) NeedsNotification(mem Memory) (bool, error) {
	if !q.ready {
		return false, ErrQueueNotReady
	}
	// The used index we just published must be visible before we read
	// the driver's wish, or an interrupt could be lost.
	fullFence()
	if !q.eventIdx {
		flags, err := readU16(mem, q.availRing)
		if err != nil {
			return false, fmt.Errorf("%w: available ring flags: %w", ErrBadRing, err)
		}
		return flags&availFlagNoInterrupt == 0, nil
	}
	usedEvent, err := readU16(mem, q.usedEventAddr())
	if err != nil {
		return false, fmt.Errorf("%w: used_event: %w", ErrBadRing, err)
	}
	old, valid := q.signalledUsed, q.signalledUsedValid
	q.signalledUsed, q.signalledUsedValid = q.nextUsed, true
	if !valid {
		return true, nil
	}
	return needEvent(usedEvent, q.nextUsed, old), nil
}

// needEvent is the specification's vring_need_event: whether moving an
// index from old to new stepped past event, all modulo 2^16.
func needEvent(event, new, old uint16) bool {
	return new-event-1 < new-old
}

// DisableNotification asks the driver not to notify the device of new
// available buffers while it is processing the queue anyway. With
// VIRTIO_F_EVENT_IDX there is nothing to do: the driver notifies only when
// it passes avail_event, which stays behind while the device works.
func (q *Queue) DisableNotification(mem Memory) error {
	if !q.ready {
		return ErrQueueNotReady
	}
	if q.eventIdx {
		return nil
	}
	if err := writeU16(mem, q.usedRing, usedFlagNoNotify); err != nil {
		return fmt.Errorf("%w: used ring flags: %w", ErrBadRing, err)
	}
	return nil
}

// EnableNotification asks the driver to notify the device of the next
// available buffer: it clears VIRTQ_USED_F_NO_NOTIFY or, with
// VIRTIO_F_EVENT_IDX, sets avail_event to the next entry the device will
// consume. It then rechecks the available index and returns true when
// buffers arrived meanwhile; the device must process those itself, since
// the driver may have looked at the old setting and not notified.
//
// A device's processing loop is therefore:
//
//	for {
//		q.DisableNotification(mem)
//		for chain := q.Pop(mem); chain != nil; chain = q.Pop(mem) { ... }
//		if more, _ := q.EnableNotification(mem); !more { break }
//	}
func (q *Queue) EnableNotification(mem Memory) (bool, error) {
	if !q.ready {
		return false, ErrQueueNotReady
	}
	var err error
	if q.eventIdx {
		err = writeU16(mem, q.availEventAddr(), q.nextAvail)
	} else {
		err = writeU16(mem, q.usedRing, 0)
	}
	if err != nil {
		return false, fmt.Errorf("%w: enable notifications: %w", ErrBadRing, err)
	}
	// Our store must be visible before we look at the index again,
	// or a buffer added in between could go unnoticed by both sides.
	fullFence()
	availIdx, err := readU16(mem, q.availRing+2)
	if err != nil {
		return false, fmt.Errorf("%w: read available index: %w", ErrBadRing, err)
	}
	return availIdx != q.nextAvail, nil
}
