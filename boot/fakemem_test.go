package boot

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
)

// fakeMem is sparse guest RAM of a given size, in 4 KiB pages allocated on
// first write; unwritten bytes read as fill. Accesses past size fail, as
// the real guest memory does outside RAM.
type fakeMem struct {
	size  uint64
	fill  byte
	pages map[uint64][]byte
}

func newFakeMem(size uint64) *fakeMem { return &fakeMem{size: size, pages: map[uint64][]byte{}} }

func (m *fakeMem) check(n int, off int64) error {
	if off < 0 || uint64(off)+uint64(n) > m.size {
		return fmt.Errorf("fake guest memory: [%#x, +%#x) is outside RAM of %#x", off, n, m.size)
	}
	return nil
}

func (m *fakeMem) page(addr uint64, create bool) []byte {
	p, ok := m.pages[addr/pageSize]
	if !ok && create {
		p = bytes.Repeat([]byte{m.fill}, pageSize)
		m.pages[addr/pageSize] = p
	}
	return p
}

func (m *fakeMem) ReadAt(b []byte, off int64) (int, error) {
	if err := m.check(len(b), off); err != nil {
		return 0, err
	}
	for i := range b {
		a := uint64(off) + uint64(i)
		if p := m.page(a, false); p != nil {
			b[i] = p[a%pageSize]
		} else {
			b[i] = m.fill
		}
	}
	return len(b), nil
}

func (m *fakeMem) WriteAt(b []byte, off int64) (int, error) {
	if err := m.check(len(b), off); err != nil {
		return 0, err
	}
	for i, v := range b {
		a := uint64(off) + uint64(i)
		m.page(a, true)[a%pageSize] = v
	}
	return len(b), nil
}

func (m *fakeMem) bytes(t *testing.T, addr uint64, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := m.ReadAt(b, int64(addr)); err != nil {
		t.Fatal(err)
	}
	return b
}

func (m *fakeMem) u8(t *testing.T, addr uint64) uint8 { return m.bytes(t, addr, 1)[0] }
func (m *fakeMem) u16(t *testing.T, addr uint64) uint16 {
	return binary.LittleEndian.Uint16(m.bytes(t, addr, 2))
}
func (m *fakeMem) u32(t *testing.T, addr uint64) uint32 {
	return binary.LittleEndian.Uint32(m.bytes(t, addr, 4))
}
func (m *fakeMem) u64(t *testing.T, addr uint64) uint64 {
	return binary.LittleEndian.Uint64(m.bytes(t, addr, 8))
}

// shortReader serves only the first n bytes of b, as a truncated file.
type shortReader struct {
	b []byte
	n int
}

func (r shortReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(r.n) {
		return 0, io.EOF
	}
	n := copy(p, r.b[off:r.n])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// pattern returns n bytes that differ from their neighbours and from any
// fill value, so misplaced copies show.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed | 1
	}
	return b
}

func put16(b []byte, off int, v uint16) { binary.LittleEndian.PutUint16(b[off:], v) }
func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func put64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
