package mmio

import (
	"fmt"

	"github.com/ternvm/tern/virtio"
)

// writeStatus runs the device status state machine of virtio 1.2 3.1.1.
// Writing 0 resets the device. Otherwise the driver may only add bits, in
// the order ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK (several in one
// write are taken in that order), and FAILED at any time; a write that
// clears a bit or skips a step is ignored. FEATURES_OK is kept only if the
// negotiated features are acceptable, which the driver checks by reading
// the status back. DRIVER_OK starts the device.
func (t *Transport) writeStatus(v uint32) {
	if v == 0 {
		t.resetLocked()
		return
	}
	v &^= virtio.StatusNeedsReset // the device's bit, not the driver's
	if v&t.status != t.status {
		return
	}
	if v&virtio.StatusFailed != 0 {
		t.status |= virtio.StatusFailed
	}
	steps := []struct {
		bit, needs uint32
	}{
		{virtio.StatusAcknowledge, 0},
		{virtio.StatusDriver, virtio.StatusAcknowledge},
		{virtio.StatusFeaturesOK, virtio.StatusDriver},
		{virtio.StatusDriverOK, virtio.StatusFeaturesOK},
	}
	for _, s := range steps {
		if v&s.bit == 0 || t.status&s.bit != 0 {
			continue
		}
		if t.status&s.needs != s.needs || t.status&virtio.StatusFailed != 0 {
			return
		}
		switch s.bit {
		case virtio.StatusFeaturesOK:
			if err := t.checkFeatures(); err != nil {
				return // FEATURES_OK stays clear; the driver sees that and gives up
			}
		case virtio.StatusDriverOK:
			t.status |= s.bit
			t.driverOK.Store(true)
			t.activateLocked()
			continue
		}
		t.status |= s.bit
	}
}

// checkFeatures accepts the driver's features if they are a subset of
// those offered and include VIRTIO_F_VERSION_1, which this modern-only
// transport requires.
func (t *Transport) checkFeatures() error {
	if extra := t.driverFeatures &^ t.offered; extra != 0 || t.unofferedHigh {
		return fmt.Errorf("driver accepted features %#x that were not offered", extra)
	}
	if t.driverFeatures&virtio.FeatureVersion1 == 0 {
		return fmt.Errorf("driver did not accept VIRTIO_F_VERSION_1")
	}
	return nil
}

// activateLocked checks the queues the driver enabled and starts the
// device. A failure leaves the device inactive and needing a reset.
func (t *Transport) activateLocked() {
	if t.needsReset.Load() {
		return
	}
	for i, q := range t.queues {
		q.SetFeatures(t.driverFeatures)
		if !q.Ready() {
			continue
		}
		if err := q.Validate(t.mem); err != nil {
			t.fail(fmt.Errorf("virtio-mmio device %d queue %d: %w", t.dev.DeviceID(), i, err))
			return
		}
	}
	irq := deviceInterrupt{t: t, epoch: t.epoch.Add(1)}
	if err := t.dev.Activate(t.mem, t.queues, irq, t.driverFeatures); err != nil {
		t.fail(fmt.Errorf("virtio-mmio device %d: activate: %w", t.dev.DeviceID(), err))
		return
	}
	t.active = true
}

// resetLocked stops the device and returns every register and queue to its
// initial value (virtio 1.2 2.4). The configuration generation keeps
// counting so that it never repeats a value a driver saw.
func (t *Transport) resetLocked() {
	if t.active {
		t.dev.Reset()
		t.active = false
	}
	t.paused = false
	t.epoch.Add(1) // detach any Interrupt handed out before
	for _, q := range t.queues {
		q.Reset()
	}
	t.status = 0
	t.deviceFeaturesSel, t.driverFeaturesSel = 0, 0
	t.driverFeatures, t.unofferedHigh = 0, false
	t.queueSel, t.shmSel = 0, 0
	t.interruptStatus.Store(0)
	t.driverOK.Store(false)
	t.needsReset.Store(false)
	t.errMu.Lock()
	t.err = nil
	t.errMu.Unlock()
}
