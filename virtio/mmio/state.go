package mmio

import (
	"errors"
	"fmt"

	"github.com/ternvm/tern/virtio"
)

// State is the transport's guest-visible state for snapshots: the register
// file and the queues. The device's own state is saved separately.
type State struct {
	Status            uint32 // bits the driver set; DEVICE_NEEDS_RESET is NeedsReset
	NeedsReset        bool
	DeviceFeaturesSel uint32
	DriverFeaturesSel uint32
	DriverFeatures    uint64
	// UnofferedFeatures: the driver wrote a non-zero feature word above
	// the second, so FEATURES_OK will be refused.
	UnofferedFeatures bool
	QueueSel          uint32
	SHMSel            uint32
	InterruptStatus   uint32
	ConfigGeneration  uint32
	Queues            []virtio.QueueState
}

// ErrBadState reports a State that this transport could not have produced.
var ErrBadState = errors.New("invalid virtio-mmio state")

// State returns the transport's state. The VMM takes it with the vCPUs and
// the device's event sources paused, since an active device moves its
// queues' indices.
func (t *Transport) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := State{
		Status:            t.status,
		NeedsReset:        t.needsReset.Load(),
		DeviceFeaturesSel: t.deviceFeaturesSel,
		DriverFeaturesSel: t.driverFeaturesSel,
		DriverFeatures:    t.driverFeatures,
		UnofferedFeatures: t.unofferedHigh,
		QueueSel:          t.queueSel,
		SHMSel:            t.shmSel,
		InterruptStatus:   t.interruptStatus.Load(),
		ConfigGeneration:  t.configGeneration.Load(),
	}
	for _, q := range t.queues {
		st.Queues = append(st.Queues, q.State())
	}
	return st
}

// Restore replaces the transport's state with st. If the driver had the
// device running (DRIVER_OK without FAILED or DEVICE_NEEDS_RESET), the
// device is activated again with the restored queues, so the VMM restores
// the device's own state first. Restore raises no interrupt: a pending one
// is part of the interrupt controller's snapshot.
func (t *Transport) Restore(st State) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.checkState(st); err != nil {
		return err
	}
	t.resetLocked()
	for i, qs := range st.Queues {
		if err := t.queues[i].SetState(qs); err != nil {
			t.resetLocked()
			return fmt.Errorf("%w: queue %d: %w", ErrBadState, i, err)
		}
	}
	t.status = st.Status
	t.deviceFeaturesSel, t.driverFeaturesSel = st.DeviceFeaturesSel, st.DriverFeaturesSel
	t.driverFeatures, t.unofferedHigh = st.DriverFeatures, st.UnofferedFeatures
	t.queueSel, t.shmSel = st.QueueSel, st.SHMSel
	t.interruptStatus.Store(st.InterruptStatus)
	t.configGeneration.Store(st.ConfigGeneration)
	t.needsReset.Store(st.NeedsReset)
	t.driverOK.Store(st.Status&virtio.StatusDriverOK != 0)
	if st.Status&virtio.StatusDriverOK != 0 && st.Status&virtio.StatusFailed == 0 && !st.NeedsReset {
		t.activateLocked()
		if !t.active {
			return fmt.Errorf("virtio-mmio device %d: reactivate after restore: %w", t.dev.DeviceID(), t.Err())
		}
	}
	return nil
}

func (t *Transport) checkState(st State) error {
	const known = virtio.StatusAcknowledge | virtio.StatusDriver | virtio.StatusFeaturesOK |
		virtio.StatusDriverOK | virtio.StatusFailed
	if st.Status&^known != 0 {
		return fmt.Errorf("%w: status %#x has unknown bits", ErrBadState, st.Status)
	}
	order := []uint32{virtio.StatusAcknowledge, virtio.StatusDriver, virtio.StatusFeaturesOK, virtio.StatusDriverOK}
	for i := 1; i < len(order); i++ {
		if st.Status&order[i] != 0 && st.Status&order[i-1] == 0 {
			return fmt.Errorf("%w: status %#x skips a step", ErrBadState, st.Status)
		}
	}
	if st.Status&virtio.StatusFeaturesOK != 0 {
		if st.DriverFeatures&^t.offered != 0 || st.UnofferedFeatures || st.DriverFeatures&virtio.FeatureVersion1 == 0 {
			return fmt.Errorf("%w: features %#x were not acceptable for this device", ErrBadState, st.DriverFeatures)
		}
	}
	if st.InterruptStatus&^uint32(virtio.InterruptUsedBuffer|virtio.InterruptConfigChange) != 0 {
		return fmt.Errorf("%w: interrupt status %#x has unknown bits", ErrBadState, st.InterruptStatus)
	}
	if len(st.Queues) != len(t.queues) {
		return fmt.Errorf("%w: %d queues saved, device has %d", ErrBadState, len(st.Queues), len(t.queues))
	}
	return nil
}
