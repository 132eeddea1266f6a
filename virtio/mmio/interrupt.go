package mmio

import (
	"errors"
	"fmt"

	"github.com/ternvm/tern/virtio"
)

// Trigger raises one edge on the device's interrupt line; the VMM backs it
// with an irqfd. devices.Trigger has the same method.
type Trigger interface {
	Trigger() error
}

// errStaleActivation is returned to a device that signals after the
// transport reset it: its activation is over and the signal is dropped.
var errStaleActivation = errors.New("virtio-mmio: device signalled after reset")

// deviceInterrupt is the virtio.Interrupt of one activation. Its epoch ties
// it to that activation, so a device goroutine that outlives a reset can
// neither raise interrupts nor mark the next activation as broken.
type deviceInterrupt struct {
	t     *Transport
	epoch uint64
}

func (d deviceInterrupt) Signal(reason virtio.InterruptReason) error {
	if d.t.epoch.Load() != d.epoch {
		return errStaleActivation
	}
	return d.t.raise(reason)
}

func (d deviceInterrupt) NeedsReset(cause error) {
	if d.t.epoch.Load() != d.epoch {
		return
	}
	d.t.fail(cause)
}

// raise sets reason in InterruptStatus and fires the line. A configuration
// change also starts a new configuration generation, so a driver reading
// the configuration across it sees that it must read again.
func (t *Transport) raise(reason virtio.InterruptReason) error {
	if reason&virtio.InterruptConfigChange != 0 {
		t.configGeneration.Add(1)
	}
	t.interruptStatus.Or(uint32(reason))
	if err := t.irq.Trigger(); err != nil {
		return fmt.Errorf("virtio-mmio device %d: raise interrupt: %w", t.dev.DeviceID(), err)
	}
	return nil
}

// fail sets DEVICE_NEEDS_RESET and, once the driver is running the device,
// tells it with a configuration change interrupt (virtio 1.2 2.1.2).
func (t *Transport) fail(cause error) {
	t.errMu.Lock()
	if t.err == nil {
		t.err = cause
	}
	t.errMu.Unlock()
	if t.needsReset.Swap(true) {
		return
	}
	if t.onNeedsReset != nil {
		t.onNeedsReset(t.Err())
	}
	if t.driverOK.Load() {
		t.raise(virtio.InterruptConfigChange) // the error is in Err; a lost edge changes nothing more
	}
}
