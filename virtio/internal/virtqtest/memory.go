// Package virtqtest holds test doubles for the virtio packages: guest RAM
// backed by a byte slice, and the driver side of a split virtqueue written
// from the virtio 1.2 specification independently of package virtio, so
// that tests check the device code against the layout the specification
// gives rather than against itself. It is imported only by tests.
package virtqtest

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrOutOfRange reports an access outside the fake RAM.
var ErrOutOfRange = errors.New("access outside fake guest RAM")

// guardLen bytes of a fixed pattern surround the RAM, so a test can tell
// that nothing wrote past either end.
const guardLen = 4096

const guardByte = 0xa5

// Memory is guest RAM of a fixed size starting at guest physical address
// Base. It implements virtio.Memory.
type Memory struct {
	Base uint64
	all  []byte // guard | RAM | guard
	ram  []byte
}

// NewMemory returns size bytes of zeroed RAM at base.
func NewMemory(base uint64, size int) *Memory {
	all := make([]byte, guardLen+size+guardLen)
	for i := range guardLen {
		all[i] = guardByte
		all[guardLen+size+i] = guardByte
	}
	return &Memory{Base: base, all: all, ram: all[guardLen : guardLen+size : guardLen+size]}
}

// Bytes is the RAM itself, for tests to fill or inspect directly.
func (m *Memory) Bytes() []byte { return m.ram }

// End is the first guest physical address after RAM.
func (m *Memory) End() uint64 { return m.Base + uint64(len(m.ram)) }

// GuardsIntact reports whether the bytes around RAM are untouched.
func (m *Memory) GuardsIntact() bool {
	want := bytes.Repeat([]byte{guardByte}, guardLen)
	return bytes.Equal(m.all[:guardLen], want) && bytes.Equal(m.all[len(m.all)-guardLen:], want)
}

// Slice returns the RAM bytes at [gpa, gpa+length), capacity capped so
// that no caller can grow the slice past them.
func (m *Memory) Slice(gpa, length uint64) ([]byte, error) {
	size := uint64(len(m.ram))
	if gpa < m.Base || gpa-m.Base > size || length > size-(gpa-m.Base) {
		return nil, fmt.Errorf("%w: [%#x, +%#x)", ErrOutOfRange, gpa, length)
	}
	off := gpa - m.Base
	return m.ram[off : off+length : off+length], nil
}

// ReadAt reads RAM at guest physical address off.
func (m *Memory) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative address", ErrOutOfRange)
	}
	b, err := m.Slice(uint64(off), uint64(len(p)))
	if err != nil {
		return 0, err
	}
	return copy(p, b), nil
}

// WriteAt writes RAM at guest physical address off.
func (m *Memory) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative address", ErrOutOfRange)
	}
	b, err := m.Slice(uint64(off), uint64(len(p)))
	if err != nil {
		return 0, err
	}
	return copy(b, p), nil
}
