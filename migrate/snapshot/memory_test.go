package snapshot

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// guestRAM builds two regions with every fifth page non-zero.
func guestRAM(pages [2]int) ([][]byte, int) {
	var regions [][]byte
	nonZero := 0
	n := 0
	for _, p := range pages {
		r := make([]byte, p*PageSize)
		for i := 0; i < p; i++ {
			if n%5 == 0 {
				r[i*PageSize+n%PageSize] = byte(n | 1)
				nonZero++
			}
			n++
		}
		regions = append(regions, r)
	}
	return regions, nonZero
}

func readAll(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteMemoryIsSparseAndExact(t *testing.T) {
	regions, nonZero := guestRAM([2]int{100, 28})
	path := filepath.Join(t.TempDir(), "memory")
	f, _ := os.Create(path)
	st, err := WriteMemory(f, regions)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st.StoredPages != uint64(nonZero) || st.ZeroPages != uint64(128-nonZero) || st.TotalBytes != 128*PageSize {
		t.Errorf("stats %+v, want %d stored of 128", st, nonZero)
	}
	if got := readAll(t, path); !bytes.Equal(got, append(bytes.Clone(regions[0]), regions[1]...)) {
		t.Error("the memory file is not the regions back to back")
	}
}

func TestWriteMemoryLeavesHolesOnDisk(t *testing.T) {
	regions := [][]byte{make([]byte, 64<<20)} // 64 MiB, one page set
	regions[0][12345] = 1
	path := filepath.Join(t.TempDir(), "memory")
	f, _ := os.Create(path)
	defer f.Close()
	if _, err := WriteMemory(f, regions); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE); err != nil {
		t.Skipf("the temporary directory's filesystem does not report holes: %v", err)
	}
	if used := st.Blocks * 512; used > 1<<20 {
		t.Errorf("a 64 MiB guest with one non-zero page takes %d bytes on disk", used)
	}
}

func TestDiffAndMerge(t *testing.T) {
	dir := t.TempDir()
	a, _ := guestRAM([2]int{60, 4})
	basePath, diffPath := filepath.Join(dir, "base"), filepath.Join(dir, "diff")
	f, _ := os.Create(basePath)
	if _, err := WriteMemory(f, a); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// State B: page 0 becomes zero, page 3 gets data, page 62 (second
	// region) changes.
	b := [][]byte{bytes.Clone(a[0]), bytes.Clone(a[1])}
	clear(b[0][:PageSize])
	b[0][3*PageSize+9] = 0xAA
	b[1][2*PageSize+1] = 0xBB
	dirty := NewBitmap(64 * PageSize)
	dirty.Set(0)
	dirty.Set(3)
	dirty.Set(62)
	f, _ = os.Create(diffPath)
	st, err := WriteMemoryDiff(f, b, dirty)
	f.Close()
	if err != nil || st.StoredPages != 3 {
		t.Fatalf("diff stats %+v, %v; want 3 pages", st, err)
	}
	info := MemoryInfo{Kind: "diff", PageSize: PageSize, Regions: []MemoryRegion{{0, 60 * PageSize}, {1 << 32, 4 * PageSize}}, Dirty: dirty}
	if err := MergeDiff(basePath, diffPath, info); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, basePath); !bytes.Equal(got, append(bytes.Clone(b[0]), b[1]...)) {
		t.Error("base after the merge differs from state B")
	}
}

func TestMemoryInfoValidate(t *testing.T) {
	ok := MemoryInfo{Kind: "full", PageSize: PageSize, Regions: []MemoryRegion{{0, 1 << 20}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	diff := ok
	diff.Kind, diff.Dirty = "diff", NewBitmap(1<<20)
	if err := diff.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]MemoryInfo{
		"kind":       {Kind: "half", PageSize: PageSize, Regions: ok.Regions},
		"page size":  {Kind: "full", PageSize: 512, Regions: ok.Regions},
		"no regions": {Kind: "full", PageSize: PageSize},
		"unaligned":  {Kind: "full", PageSize: PageSize, Regions: []MemoryRegion{{0, 1000}}},
		"overlap":    {Kind: "full", PageSize: PageSize, Regions: []MemoryRegion{{0, 1 << 20}, {4096, 4096}}},
		"short map":  {Kind: "diff", PageSize: PageSize, Regions: ok.Regions, Dirty: Bitmap{0}},
		"full+map":   {Kind: "full", PageSize: PageSize, Regions: ok.Regions, Dirty: NewBitmap(1 << 20)},
		"huge":       {Kind: "full", PageSize: PageSize, Regions: []MemoryRegion{{0, 1 << 50}}},
	} {
		if m.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	path := filepath.Join(t.TempDir(), "m")
	os.WriteFile(path, make([]byte, 4096), 0o600)
	if err := CheckMemoryFile(path, ok); err == nil {
		t.Error("a 4 KiB file passed for a 1 MiB guest")
	}
}
