package boot

import (
	"errors"
	"fmt"
	"io"
)

// GuestMemory is guest RAM as boot sees it: offsets are guest physical
// addresses, and an access outside RAM fails.
type GuestMemory interface {
	io.ReaderAt
	io.WriterAt
}

// copyChunk bounds the buffer used to stream images into guest memory, so
// loading a large kernel or initrd never holds it all in host memory twice.
const copyChunk = 1 << 20

// writeGuest writes b at guest physical address addr.
func writeGuest(mem GuestMemory, addr uint64, b []byte) error {
	if addr > uint64(maxInt64) || uint64(len(b)) > uint64(maxInt64)-addr {
		return fmt.Errorf("guest write of %d bytes at %#x overflows", len(b), addr)
	}
	n, err := mem.WriteAt(b, int64(addr))
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("write %d bytes at guest address %#x: %w", len(b), addr, err)
	}
	return nil
}

// copyToGuest streams size bytes from src at offset off into guest memory
// at addr. A source shorter than size is reported as truncated.
func copyToGuest(mem GuestMemory, addr uint64, src io.ReaderAt, off, size int64) error {
	buf := make([]byte, min(size, copyChunk))
	for done := int64(0); done < size; {
		chunk := buf[:min(size-done, int64(len(buf)))]
		n, err := src.ReadAt(chunk, off+done)
		if n < len(chunk) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read %d bytes at file offset %#x: %w", len(chunk), off+done, err)
		}
		if err := writeGuest(mem, addr+uint64(done), chunk); err != nil {
			return err
		}
		done += int64(n)
	}
	return nil
}

// zeroGuest clears size bytes of guest memory at addr.
func zeroGuest(mem GuestMemory, addr, size uint64) error {
	zeros := make([]byte, min(size, copyChunk))
	for done := uint64(0); done < size; {
		chunk := zeros[:min(size-done, uint64(len(zeros)))]
		if err := writeGuest(mem, addr+done, chunk); err != nil {
			return err
		}
		done += uint64(len(chunk))
	}
	return nil
}

// readFull reads exactly len(b) bytes at off, treating a short read as a
// truncated file.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

const maxInt64 = 1<<63 - 1

// alignUp rounds v up to a multiple of align (a power of two); ok is false
// on overflow.
func alignUp(v, align uint64) (uint64, bool) {
	r := (v + align - 1) &^ (align - 1)
	return r, r >= v
}

// alignDown rounds v down to a multiple of align (a power of two).
func alignDown(v, align uint64) uint64 { return v &^ (align - 1) }
