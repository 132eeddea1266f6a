package block

import (
	"fmt"

	"github.com/ternvm/tern/virtio"
)

// span is a byte range of a chain's readable or writable buffers, counted
// across them as if they were one, as the specification's framing rules
// require: a request's parts need not sit in buffers of their own.
type span struct {
	bufs []virtio.Buffer
	off  uint64
	len  uint64
}

// each hands fn the guest memory of the span piece by piece, in order,
// with the offset of each piece inside the span. It makes at most one
// call per buffer, and the chain has at most the queue size of buffers.
func (s span) each(mem virtio.Memory, fn func(p []byte, pos uint64) error) error {
	off, left, pos := s.off, s.len, uint64(0)
	for _, b := range s.bufs {
		if left == 0 {
			break
		}
		if off >= uint64(b.Len) {
			off -= uint64(b.Len)
			continue
		}
		n := min(uint64(b.Len)-off, left)
		p, err := mem.Slice(b.Addr+off, n)
		if err != nil {
			return fmt.Errorf("guest buffer [%#x, +%#x): %w", b.Addr+off, n, err)
		}
		if uint64(len(p)) != n {
			return fmt.Errorf("guest memory gave %d bytes for [%#x, +%#x)", len(p), b.Addr+off, n)
		}
		if err := fn(p, pos); err != nil {
			return err
		}
		pos += n
		left -= n
		off = 0
	}
	if left != 0 {
		return fmt.Errorf("buffers end %d bytes short of the span", left)
	}
	return nil
}

// read copies the span into p, which is no longer than the span.
func (s span) read(mem virtio.Memory, p []byte) error {
	s.len = min(s.len, uint64(len(p)))
	return s.each(mem, func(g []byte, pos uint64) error {
		copy(p[pos:], g)
		return nil
	})
}

// write copies p into the span, which is no shorter than p.
func (s span) write(mem virtio.Memory, p []byte) error {
	s.len = min(s.len, uint64(len(p)))
	return s.each(mem, func(g []byte, pos uint64) error {
		copy(g, p[pos:])
		return nil
	})
}
