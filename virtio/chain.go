package virtio

import (
	"fmt"
	"io"
)

// Buffer is one guest buffer of a descriptor chain. It was inside guest RAM
// when the chain was popped.
type Buffer struct {
	Addr uint64 // guest physical address
	Len  uint32
}

// Chain is a descriptor chain taken from the available ring, flattened
// (indirect tables resolved) and checked. It holds guest addresses, not
// host pointers: the device passes the same Memory to its helpers.
type Chain struct {
	// Head is the index of the chain's first descriptor; it identifies
	// the chain in AddUsed.
	Head uint16
	// Readable are the buffers the device reads (driver to device), in
	// chain order; Writable, which follow them, are the buffers the
	// device writes.
	Readable []Buffer
	Writable []Buffer

	readableLen uint64 // no more than 2^32-1, enforced by add
	writableLen uint64
}

// ReadableLen is the total length of the readable buffers.
func (c *Chain) ReadableLen() uint32 { return uint32(c.readableLen) }

// WritableLen is the total length of the writable buffers.
func (c *Chain) WritableLen() uint32 { return uint32(c.writableLen) }

// ReadAt copies into p the readable bytes at offset off, counting across
// the readable buffers as if they were one. Like io.ReaderAt it returns
// io.EOF when the readable part ends before p is full.
func (c *Chain) ReadAt(mem Memory, p []byte, off uint64) (int, error) {
	return scatter(mem, c.Readable, p, off, false)
}

// WriteAt copies p into the writable buffers at offset off, counting across
// them as if they were one. It returns io.ErrShortWrite when they end
// before all of p is written.
func (c *Chain) WriteAt(mem Memory, p []byte, off uint64) (int, error) {
	n, err := scatter(mem, c.Writable, p, off, true)
	if err == io.EOF {
		err = io.ErrShortWrite
	}
	return n, err
}

// ReadAll returns all readable bytes, or an error when there are more than
// limit of them, so that a device never allocates more than it expects.
func (c *Chain) ReadAll(mem Memory, limit uint32) ([]byte, error) {
	if c.readableLen > uint64(limit) {
		return nil, fmt.Errorf("%w: %d readable bytes, more than the limit of %d", ErrBadChain, c.readableLen, limit)
	}
	p := make([]byte, c.readableLen)
	if _, err := c.ReadAt(mem, p, 0); err != nil {
		return nil, err
	}
	return p, nil
}

// scatter copies between p and the bytes of bufs starting at offset off.
func scatter(mem Memory, bufs []Buffer, p []byte, off uint64, toGuest bool) (int, error) {
	n := 0
	for _, b := range bufs {
		if len(p) == n {
			return n, nil
		}
		if off >= uint64(b.Len) {
			off -= uint64(b.Len)
			continue
		}
		chunk := min(uint64(b.Len)-off, uint64(len(p)-n))
		g, err := guestRange(mem, b.Addr+off, chunk)
		if err != nil {
			return n, err
		}
		if toGuest {
			copy(g, p[n:])
		} else {
			copy(p[n:], g)
		}
		n += int(chunk)
		off = 0
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
