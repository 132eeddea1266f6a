package memory

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestFromFileMapsPrivatelyAndLeavesTheFileAlone(t *testing.T) {
	const size = 64 << 10
	want := make([]byte, size)
	for i := range want {
		want[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "memory")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := FromFile(path, size)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got := make([]byte, size)
	if _, err := m.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("guest RAM differs from the file (err %v)", err)
	}
	if _, err := m.WriteAt([]byte("guest write"), 100); err != nil {
		t.Fatal(err)
	}
	onDisk, _ := os.ReadFile(path)
	if !bytes.Equal(onDisk, want) {
		t.Error("a guest write reached the memory file; the mapping must be private")
	}
	if !m.BackedBy(path) {
		t.Error("BackedBy(its own file) = false")
	}
	if m.BackedBy(filepath.Join(t.TempDir(), "other")) {
		t.Error("BackedBy(another path) = true")
	}
}

func TestFromFileRefusesAFileOfTheWrongSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "memory")
	os.WriteFile(path, make([]byte, 8192), 0o600)
	if _, err := FromFile(path, 16384); err == nil {
		t.Fatal("a 8 KiB file mapped as 16 KiB of RAM")
	}
	if _, err := FromFile(filepath.Join(t.TempDir(), "missing"), 4096); err == nil {
		t.Fatal("a missing file mapped")
	}
}

func TestHostAccessTrackingMarksTheTouchedPages(t *testing.T) {
	m, err := New(1<<20, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.TakeHostDirty() != nil {
		t.Fatal("tracking reported pages before it was started")
	}
	m.TrackHostAccess(true)
	m.WriteAt(make([]byte, 2), PageSize*3+PageSize-1) // pages 3 and 4
	m.Slice(PageSize*10, 1)                           // page 10
	d := m.TakeHostDirty()
	var pages []int
	for p := 0; p < 256; p++ {
		if d[p/64]&(1<<(p%64)) != 0 {
			pages = append(pages, p)
		}
	}
	if len(pages) != 3 || pages[0] != 3 || pages[1] != 4 || pages[2] != 10 {
		t.Errorf("marked pages %v, want [3 4 10]", pages)
	}
	d = m.TakeHostDirty()
	for _, w := range d {
		if w != 0 {
			t.Fatal("TakeHostDirty did not clear the record")
		}
	}
}

func TestRegionsNumberTheirPagesInOrder(t *testing.T) {
	m, err := New(3<<30+1<<20, Options{}) // past the MMIO hole: two regions
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rs := m.Regions()
	if len(rs) != 2 || rs[0].FirstPage != 0 || rs[1].FirstPage != (3<<30)/PageSize {
		t.Fatalf("regions %+v: want the second to start at page %d", rs, (3<<30)/PageSize)
	}
	m.TrackHostAccess(true)
	m.WriteAt([]byte{1}, 4<<30) // first byte above 4 GiB: page 3 GiB/4 KiB
	d := m.TakeHostDirty()
	p := uint64(3<<30) / PageSize
	if d[p/64]&(1<<(p%64)) == 0 {
		t.Errorf("a write at 4 GiB did not mark page %d", p)
	}
}
