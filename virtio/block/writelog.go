package block

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// LogChunk is the granularity of the write log: a write of one byte
// marks the whole chunk. 64 KiB keeps the log of a 1 TiB disk at 2 MiB
// while a re-sent chunk costs a migration little next to the round trip
// of finding out which sectors changed.
const LogChunk = 64 << 10

// writeLog records which chunks of the image the guest changed while a
// migration streams the disk. The worker marks it; the migration takes it
// from another goroutine, so it is guarded.
type writeLog struct {
	mu   sync.Mutex
	on   bool
	bits []uint64
}

// chunks is how many LogChunk chunks cover the disk; the caller holds
// imgMu.
func (d *Device) chunks() uint64 {
	return (d.capacity*SectorSize + LogChunk - 1) / LogChunk
}

// StartWriteLog starts recording the chunks that writes, discards and
// write-zeroes change, from now on. Starting a log that is on clears it.
func (d *Device) StartWriteLog() {
	d.log.mu.Lock()
	defer d.log.mu.Unlock()
	d.log.on = true
	d.imgMu.RLock()
	d.log.bits = make([]uint64, (d.chunks()+63)/64)
	d.imgMu.RUnlock()
}

// TakeWritten returns the chunks changed since StartWriteLog or the
// previous TakeWritten, as a bitmap (bit i of word i/64: bytes
// [i*LogChunk, (i+1)*LogChunk)), and starts a new record. A change is
// marked once it is on the image, so a reader that takes the log and then
// reads the image either sees the change or finds it in the next log. It
// returns nil when no log is on.
func (d *Device) TakeWritten() []uint64 {
	d.log.mu.Lock()
	defer d.log.mu.Unlock()
	if !d.log.on {
		return nil
	}
	b := d.log.bits
	d.log.bits = make([]uint64, len(b))
	return b
}

// StopWriteLog ends the record.
func (d *Device) StopWriteLog() {
	d.log.mu.Lock()
	defer d.log.mu.Unlock()
	d.log.on, d.log.bits = false, nil
}

// markWritten records that bytes [off, off+n) may have changed. Callers
// mark after the host operation returns, failed or not: a failed write
// may still have changed part of the range.
func (d *Device) markWritten(off, n int64) {
	if n <= 0 {
		return
	}
	d.log.mu.Lock()
	defer d.log.mu.Unlock()
	if !d.log.on {
		return
	}
	last := uint64(off+n-1) / LogChunk
	for c := uint64(off) / LogChunk; c <= last && c/64 < uint64(len(d.log.bits)); c++ {
		d.log.bits[c/64] |= 1 << (c % 64)
	}
}

// Path is the image's path, as configured.
func (d *Device) Path() string {
	d.imgMu.RLock()
	defer d.imgMu.RUnlock()
	return d.cfg.Path
}

// Size is the disk's size in bytes.
func (d *Device) Size() int64 {
	d.imgMu.RLock()
	defer d.imgMu.RUnlock()
	return d.size()
}

func (d *Device) size() int64 { return int64(d.capacity * SectorSize) }

// ReadAt fills p from the image at off, for a migration streaming the
// disk; it may run while the worker serves requests (the write log says
// what changed meanwhile).
func (d *Device) ReadAt(p []byte, off int64) error {
	d.imgMu.RLock()
	defer d.imgMu.RUnlock()
	if off < 0 || int64(len(p)) > d.size()-off {
		return fmt.Errorf("disk %s: read of %d bytes at %d passes its %d bytes", d.cfg.Path, len(p), off, d.size())
	}
	if err := d.disk.readAt(p, off); err != nil {
		return fmt.Errorf("disk %s: %w", d.cfg.Path, err)
	}
	return nil
}

// DataExtents calls fn with each range of the image that may hold data,
// in order, skipping holes (SEEK_DATA and SEEK_HOLE); where the host
// cannot tell, the whole disk is one range. Ranges outside the ones fn
// sees read as zeroes.
func (d *Device) DataExtents(fn func(off, n int64) error) error {
	// imgMu is held only around each seek: fn may read the disk, and a
	// shared lock taken again behind a waiting SwapImage would deadlock.
	size := d.Size()
	for off := int64(0); off < size; {
		var start, end int64
		d.imgMu.RLock()
		err := d.disk.control(func(fd int) error {
			var err error
			start, err = unix.Seek(fd, off, unix.SEEK_DATA)
			if err != nil {
				return err
			}
			end, err = unix.Seek(fd, start, unix.SEEK_HOLE)
			return err
		})
		d.imgMu.RUnlock()
		switch {
		case errors.Is(err, unix.ENXIO):
			return nil // only a hole follows
		case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP):
			return fn(off, size-off)
		case err != nil:
			return fmt.Errorf("disk %s: find data after %d: %w", d.cfg.Path, off, err)
		}
		end = min(end, size)
		if start >= end {
			return nil
		}
		if err := fn(start, end-start); err != nil {
			return err
		}
		off = end
	}
	return nil
}
