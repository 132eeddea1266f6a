package block

import "fmt"

// Sync makes every write the device completed stable on the image, so
// another host reading the same storage sees them (a migration flushes
// before the destination takes the disk over).
func (d *Device) Sync() error {
	d.imgMu.RLock()
	defer d.imgMu.RUnlock()
	if err := d.disk.flush(); err != nil {
		return fmt.Errorf("disk %s: %w", d.cfg.Path, err)
	}
	return nil
}
