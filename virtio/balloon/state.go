package balloon

import (
	"fmt"
	"time"
)

// State is the device's part of a snapshot; the transport saves the
// queues.
type State struct {
	// DeflateOnOOM and StatsPollInterval are the configuration the
	// driver negotiated against.
	DeflateOnOOM      bool
	StatsPollInterval time.Duration
	// NumPages is the target and Actual the driver's report, in pages.
	NumPages uint32
	Actual   uint32
	// Stats are the latest statistics by tag (Stat* constants).
	Stats map[uint16]uint64
	// StatsBufferHeld says the driver's statistics buffer, the chain
	// with head StatsBufferHead, is with the device and must be returned
	// for the next update.
	StatsBufferHeld bool
	StatsBufferHead uint16
	Counters        Counters
}

// State returns the device's state. Take it while the VM is paused, so
// the worker is idle.
func (d *Device) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return State{
		DeflateOnOOM:      d.deflateOnOOM,
		StatsPollInterval: d.statsEvery,
		NumPages:          d.numPages,
		Actual:            d.actual,
		Stats:             d.stats.byTag(),
		StatsBufferHeld:   d.statsHeld,
		StatsBufferHead:   d.statsHead,
		Counters:          d.counters,
	}
}

// SetState restores st into a device that is not active. The saved
// configuration must offer the same features and queues as the device's
// own (create it with the same Config); the statistics interval is taken
// from st.
func (d *Device) SetState(st State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active != nil {
		return fmt.Errorf("set state: %w", ErrActive)
	}
	if st.StatsPollInterval < 0 {
		return fmt.Errorf("virtio-balloon: saved statistics interval %v is negative", st.StatsPollInterval)
	}
	if st.DeflateOnOOM != d.deflateOnOOM || (st.StatsPollInterval > 0) != (d.statsEvery > 0) {
		return fmt.Errorf("virtio-balloon: saved state (deflate on OOM %t, statistics queue %t) does not match this device's (%t, %t)",
			st.DeflateOnOOM, st.StatsPollInterval > 0, d.deflateOnOOM, d.statsEvery > 0)
	}
	if st.StatsBufferHeld && (st.StatsPollInterval == 0 || st.StatsBufferHead >= QueueSize) {
		return fmt.Errorf("virtio-balloon: saved statistics buffer head %d is not a descriptor of a statistics queue", st.StatsBufferHead)
	}
	stats, err := statsFromTags(st.Stats)
	if err != nil {
		return fmt.Errorf("virtio-balloon: saved statistics: %w", err)
	}
	d.statsEvery = st.StatsPollInterval
	d.numPages = st.NumPages
	d.actual = st.Actual
	d.stats = stats
	d.statsHeld = st.StatsBufferHeld
	d.statsHead = st.StatsBufferHead
	d.counters = st.Counters
	d.lastErr = nil
	return nil
}
