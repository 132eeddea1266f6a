package memory

import (
	"bytes"
	"errors"
	"testing"
)

func TestLayoutSplitsAroundTheMMIOHole(t *testing.T) {
	const gib = 1 << 30
	cases := []struct {
		size uint64
		want [][2]uint64
	}{
		{128 << 20, [][2]uint64{{0, 128 << 20}}},
		{3 * gib, [][2]uint64{{0, 3 * gib}}},
		{5 * gib, [][2]uint64{{0, 3 * gib}, {4 * gib, 2 * gib}}},
	}
	for _, c := range cases {
		got := Layout(c.size)
		if len(got) != len(c.want) {
			t.Fatalf("Layout(%d) = %v, want %v", c.size, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("Layout(%d)[%d] = %#x, want %#x", c.size, i, got[i], c.want[i])
			}
		}
	}
}

func TestReadWriteStayInsideRAM(t *testing.T) {
	m, err := New(2<<20, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want := []byte("hello guest")
	if _, err := m.WriteAt(want, 0x1000); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := m.ReadAt(got, 0x1000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read back %q, want %q", got, want)
	}
	// The last byte is reachable; one past it is not.
	if _, err := m.WriteAt([]byte{1}, 2<<20-1); err != nil {
		t.Errorf("write of the last byte: %v", err)
	}
	for _, bad := range []struct {
		off int64
		n   int
	}{{2 << 20, 1}, {2<<20 - 1, 2}, {-1, 1}, {1 << 62, 8}, {0x1000, 2 << 20}} {
		if _, err := m.WriteAt(make([]byte, bad.n), bad.off); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("WriteAt(%d bytes at %#x) = %v, want ErrOutOfRange", bad.n, bad.off, err)
		}
		if _, err := m.ReadAt(make([]byte, bad.n), bad.off); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("ReadAt(%d bytes at %#x) = %v, want ErrOutOfRange", bad.n, bad.off, err)
		}
	}
	if _, err := m.Slice(^uint64(0)-4, 16); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Slice with a wrapping range = %v, want ErrOutOfRange", err)
	}
}

func TestNewRejectsBadSizes(t *testing.T) {
	for _, size := range []uint64{0, 4095, 1<<20 + 1} {
		if _, err := New(size, Options{}); err == nil {
			t.Errorf("New(%d) succeeded, want an error", size)
		}
	}
}

func TestHighRegionIsSeparate(t *testing.T) {
	// MAP_NORESERVE keeps this cheap: nothing is touched but two pages.
	m, err := New(3<<30+4<<20, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if n := len(m.Regions()); n != 2 {
		t.Fatalf("got %d regions, want 2", n)
	}
	if _, err := m.WriteAt([]byte{7}, 4<<30); err != nil {
		t.Errorf("write at 4 GiB: %v", err)
	}
	if _, err := m.WriteAt([]byte{7}, 3<<30); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("write inside the MMIO hole = %v, want ErrOutOfRange", err)
	}
	// An access may not run from the low region across the hole.
	if _, err := m.WriteAt(make([]byte, 2), 3<<30-1); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("write across the hole = %v, want ErrOutOfRange", err)
	}
}

// Populated must mark every page the guest wrote and none it never
// touched, so a migration sends the first and skips the second.
func TestPopulatedMarksWrittenPagesOnly(t *testing.T) {
	m, err := New(64<<20, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	written := []uint64{0, 1, 77, 4095, 16383}
	for _, p := range written {
		if _, err := m.WriteAt([]byte{1}, int64(p*PageSize+5)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := m.Populated()
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]bool{}
	for _, p := range written {
		want[p] = true
	}
	for p := uint64(0); p < 16384; p++ {
		if set := got[p/64]&(1<<(p%64)) != 0; set != want[p] {
			t.Errorf("page %d: marked %v, written %v", p, set, want[p])
		}
	}
}
