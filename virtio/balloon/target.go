package balloon

import (
	"fmt"

	"github.com/ternvm/tern/virtio"
)

// SetTarget asks the guest to size the balloon to mib MiB: it updates
// num_pages and, while the driver runs the device, raises a configuration
// change interrupt so the driver rereads it. Before activation the driver
// reads the new value when it starts.
func (d *Device) SetTarget(mib uint32) error {
	pages, err := mibToPages(mib)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.numPages = pages
	if d.active == nil {
		return nil
	}
	// Signalling under the lock keeps a concurrent Reset from returning
	// before the signal is out; Interrupt allows it.
	if err := d.active.irq.Signal(virtio.InterruptConfigChange); err != nil {
		return fmt.Errorf("virtio-balloon: signal the new target of %d pages: %w", pages, err)
	}
	return nil
}
