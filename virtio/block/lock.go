package block

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrLocked is wrapped (by a *LockedError) when a disk image is locked by
// another VM.
var ErrLocked = errors.New("disk image locked")

// LockedError says that the image at Path is in use by another VM:
// another process holds a lock on it that conflicts with the one this
// device needs (shared for read-only, exclusive for read-write).
type LockedError struct{ Path string }

func (e *LockedError) Error() string {
	return fmt.Sprintf("disk %s is in use by another VM (locked)", e.Path)
}

// Unwrap gives ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// lockImage takes an advisory flock(2) on the open image, without
// waiting: shared for a read-only disk, so that many VMs can read one
// image, exclusive for a read-write one, so that no two VMs write one
// image (or one writes what another reads) and corrupt it. The lock
// belongs to the open file: closing it releases the lock.
func lockImage(f *os.File, path string, readOnly bool) error {
	how := unix.LOCK_EX
	if readOnly {
		how = unix.LOCK_SH
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return &LockedError{Path: path}
		default:
			return fmt.Errorf("lock disk image %s: %w", path, err)
		}
	}
}

// Unlock releases the device's lock on its image, so that another
// process can take it: a migration's destination on this host takes it
// at switch-over. The image stays open; the device must not be run
// while another holds the lock.
func (d *Device) Unlock() error {
	d.imgMu.RLock()
	defer d.imgMu.RUnlock()
	if err := unix.Flock(int(d.disk.f.Fd()), unix.LOCK_UN); err != nil {
		return fmt.Errorf("unlock disk image %s: %w", d.cfg.Path, err)
	}
	return nil
}

// Lock takes the device's lock on its image again (after Unlock), without
// waiting; it fails with a *LockedError if another process holds a
// conflicting lock.
func (d *Device) Lock() error {
	d.imgMu.RLock()
	defer d.imgMu.RUnlock()
	return lockImage(d.disk.f, d.cfg.Path, d.cfg.ReadOnly)
}
