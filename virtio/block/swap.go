package block

import (
	"errors"
	"fmt"
	"os"

	"github.com/ternvm/tern/virtio"
	"golang.org/x/sys/unix"
)

// ErrWriteLogOn is returned by SwapImage while a write log is on: a
// migration is streaming the image, and a new one would mix two disks.
var ErrWriteLogOn = errors.New("the disk is being streamed by a migration (write log on)")

// SwapImage replaces the image behind a running disk with the one at path,
// as Firecracker's PATCH /drives does: the file is checked, opened and
// locked as New does it (a regular file or block device, safefile's rules,
// a shared lock for a read-only disk and an exclusive one otherwise), in the
// disk's mode, which does not change. path may name the image in use, to
// take a new size. Requests in progress finish on the old image before it
// is closed; later ones see the new one. The capacity in the configuration
// space becomes the new image's and, once the driver runs the device, a
// configuration change interrupt (which starts a new configuration
// generation) tells it so; on an inactive device (a paused VM's) that
// interrupt comes when it is activated again. On error the old image
// stays in place.
func (d *Device) SwapImage(path string) error {
	d.imgMu.RLock()
	cfg := d.cfg
	d.imgMu.RUnlock()
	cfg.Path = path
	if err := cfg.Validate(); err != nil {
		return err
	}
	f, capacity, err := openImage(cfg)
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
		}
	}()

	// d.mu keeps Reset and Close out until the change is signalled.
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	d.log.mu.Lock()
	logging := d.log.on
	d.log.mu.Unlock()
	if logging {
		return fmt.Errorf("swap disk image to %s: %w", path, ErrWriteLogOn)
	}
	same, err := sameFile(d.disk.f, f)
	if err != nil {
		return fmt.Errorf("swap disk image to %s: %w", path, err)
	}
	if !same {
		if err := lockImage(f, path, cfg.ReadOnly); err != nil {
			return err
		}
	}

	d.imgMu.Lock()
	old := d.disk
	if same {
		// flock belongs to the open file: the new descriptor of the same
		// file must take over the lock the old one holds, and would
		// conflict with it while both hold it.
		if err := unix.Flock(int(old.f.Fd()), unix.LOCK_UN); err != nil {
			d.imgMu.Unlock()
			return fmt.Errorf("swap disk image to %s: unlock the old descriptor: %w", path, err)
		}
		if err := lockImage(f, path, cfg.ReadOnly); err != nil {
			if rerr := lockImage(old.f, d.cfg.Path, cfg.ReadOnly); rerr != nil {
				err = errors.Join(err, fmt.Errorf("lock the old image again: %w", rerr))
			}
			d.imgMu.Unlock()
			return err
		}
	}
	d.disk = &disk{f: f}
	d.cfg.Path = path
	d.capacity = capacity
	d.config = configSpace(capacity, cfg.ReadOnly)
	d.imgMu.Unlock()
	keep = true

	// Nothing uses the old image any more: requests hold imgMu.
	cerr := old.f.Close()
	if d.w == nil {
		d.configChanged = true
	} else if err := d.w.irq.Signal(virtio.InterruptConfigChange); err != nil {
		return fmt.Errorf("disk %s: signal the new capacity: %w", path, err)
	}
	if cerr != nil {
		return fmt.Errorf("disk %s: close the old image: %w", path, cerr)
	}
	return nil
}

// sameFile reports whether a and b are one file (device and inode).
func sameFile(a, b *os.File) (bool, error) {
	ai, err := a.Stat()
	if err != nil {
		return false, err
	}
	bi, err := b.Stat()
	if err != nil {
		return false, err
	}
	return os.SameFile(ai, bi), nil
}
