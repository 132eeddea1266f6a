package block

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// disk is the image file and the host operations on it. Offsets and
// lengths are in bytes and have been checked against the capacity.
type disk struct {
	f *os.File
	// zeros is the source for writing zeroes where fallocate cannot;
	// allocated on first use.
	zeros []byte
}

// zeroChunk bounds one pwrite of zeroes.
const zeroChunk = 64 << 10

// maxEINTR bounds the retries of a system call interrupted by a signal.
const maxEINTR = 64

// readAt fills p from the image at off (pread).
func (d *disk) readAt(p []byte, off int64) error {
	if _, err := d.f.ReadAt(p, off); err != nil {
		return fmt.Errorf("read %d bytes at %d: %w", len(p), off, err)
	}
	return nil
}

// writeAt writes p to the image at off (pwrite).
func (d *disk) writeAt(p []byte, off int64) error {
	if _, err := d.f.WriteAt(p, off); err != nil {
		return fmt.Errorf("write %d bytes at %d: %w", len(p), off, err)
	}
	return nil
}

// flush makes completed writes stable. Only data and the metadata needed
// to read it back matter, so fdatasync is enough.
func (d *disk) flush() error {
	if err := d.control(unix.Fdatasync); err != nil {
		return fmt.Errorf("fdatasync: %w", err)
	}
	return nil
}

// punch deallocates [off, off+n); reads of it return zeroes afterwards.
func (d *disk) punch(off, n int64) error {
	return d.fallocate(unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}

// zeroRange zeroes [off, off+n) keeping it allocated, falling back to
// writing zeroes where the host cannot.
func (d *disk) zeroRange(off, n int64) error {
	err := d.fallocate(unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if err == nil || !isUnsupported(err) {
		return err
	}
	return d.writeZeroes(off, n)
}

// writeZeroes writes n zero bytes at off, zeroChunk at a time.
func (d *disk) writeZeroes(off, n int64) error {
	if d.zeros == nil {
		d.zeros = make([]byte, zeroChunk)
	}
	for n > 0 {
		chunk := min(n, zeroChunk)
		if err := d.writeAt(d.zeros[:chunk], off); err != nil {
			return err
		}
		off += chunk
		n -= chunk
	}
	return nil
}

func (d *disk) fallocate(mode uint32, off, n int64) error {
	err := d.control(func(fd int) error { return unix.Fallocate(fd, mode, off, n) })
	if err != nil {
		return fmt.Errorf("fallocate(mode %#x, offset %d, length %d): %w", mode, off, n, err)
	}
	return nil
}

// control runs op on the image's descriptor without letting the file be
// closed under it, retrying when a signal interrupted it.
func (d *disk) control(op func(fd int) error) error {
	rc, err := d.f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	err = rc.Control(func(fd uintptr) {
		for range maxEINTR {
			if opErr = op(int(fd)); !errors.Is(opErr, syscall.EINTR) {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return opErr
}
