package virtio

import "fmt"

// QueueState is everything about a Queue that a snapshot must carry.
type QueueState struct {
	MaxSize   uint16
	Size      uint16
	Ready     bool
	DescTable uint64
	AvailRing uint64
	UsedRing  uint64
	EventIdx  bool
	Indirect  bool
	NextAvail uint16
	NextUsed  uint16
	// SignalledUsed is the used index at the last NeedsNotification,
	// meaningful when SignalledUsedValid.
	SignalledUsed      uint16
	SignalledUsedValid bool
}

// State returns the queue's state.
func (q *Queue) State() QueueState {
	return QueueState{
		MaxSize: q.maxSize, Size: q.size, Ready: q.ready,
		DescTable: q.descTable, AvailRing: q.availRing, UsedRing: q.usedRing,
		EventIdx: q.eventIdx, Indirect: q.indirect,
		NextAvail: q.nextAvail, NextUsed: q.nextUsed,
		SignalledUsed: q.signalledUsed, SignalledUsedValid: q.signalledUsedValid,
	}
}

// SetState replaces the queue's state with st. The maximum size is the
// device's and must match; the size must be valid for it. Ring addresses
// are checked against guest memory by Validate, as for a driver's setup.
func (q *Queue) SetState(st QueueState) error {
	if st.MaxSize != q.maxSize {
		return fmt.Errorf("%w: saved maximum size %d differs from this queue's %d", ErrBadQueueConfig, st.MaxSize, q.maxSize)
	}
	if !validSize(st.Size, uint32(q.maxSize)) {
		return fmt.Errorf("%w: saved size %d is not a power of two in [1, %d]", ErrBadQueueConfig, st.Size, q.maxSize)
	}
	*q = Queue{
		maxSize: q.maxSize, size: st.Size, ready: st.Ready,
		descTable: st.DescTable, availRing: st.AvailRing, usedRing: st.UsedRing,
		eventIdx: st.EventIdx, indirect: st.Indirect,
		nextAvail: st.NextAvail, nextUsed: st.NextUsed,
		signalledUsed: st.SignalledUsed, signalledUsedValid: st.SignalledUsedValid,
	}
	return nil
}
