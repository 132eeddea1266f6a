package block

import (
	"errors"
	"fmt"
	"path/filepath"
)

// State is what a snapshot records of a disk: its configuration and the
// capacity the guest saw, so that a restore can check it is given the
// same disk. The device keeps no other runtime state; the queue's is the
// transport's.
type State struct {
	Path     string
	ReadOnly bool
	ID       string
	Capacity uint64 // in 512-byte sectors
}

// State returns the disk's state.
func (d *Device) State() State {
	d.imgMu.RLock()
	defer d.imgMu.RUnlock()
	return State{Path: d.cfg.Path, ReadOnly: d.cfg.ReadOnly, ID: d.cfg.ID, Capacity: d.capacity}
}

// SetState checks that st describes this disk: same image path, mode,
// serial and capacity. The device has nothing else to restore; a
// mismatch means the snapshot would see a different disk.
func (d *Device) SetState(st State) error {
	cur := d.State()
	switch {
	case filepath.Clean(st.Path) != filepath.Clean(cur.Path):
		return fmt.Errorf("%w: snapshot disk image %q, device has %q", ErrStateMismatch, st.Path, cur.Path)
	case st.ReadOnly != cur.ReadOnly:
		return fmt.Errorf("%w: snapshot disk %q read-only %v, device read-only %v", ErrStateMismatch, cur.Path, st.ReadOnly, cur.ReadOnly)
	case st.ID != cur.ID:
		return fmt.Errorf("%w: snapshot disk %q serial %q, device serial %q", ErrStateMismatch, cur.Path, st.ID, cur.ID)
	case st.Capacity != cur.Capacity:
		return fmt.Errorf("%w: snapshot disk %q had %d sectors, the image now has %d", ErrStateMismatch, cur.Path, st.Capacity, cur.Capacity)
	}
	return nil
}

// Restore opens the disk st describes and checks that it still matches.
func Restore(st State) (*Device, error) {
	d, err := New(Config{Path: st.Path, ReadOnly: st.ReadOnly, ID: st.ID})
	if err != nil {
		return nil, err
	}
	if err := d.SetState(st); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// ErrStateMismatch is wrapped by SetState's errors.
var ErrStateMismatch = errors.New("virtio-blk state does not match the disk")
