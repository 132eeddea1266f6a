package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// makeGuest returns RAM regions of the given page counts in which about a
// third of the pages hold data: some a single non-zero byte (first, last
// or anywhere in the page), some random bytes throughout, some in runs.
func makeGuest(seed uint64, pages ...int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 99))
	var regions [][]byte
	for _, n := range pages {
		r := make([]byte, n*PageSize)
		for p := 0; p < n; p++ {
			page := r[p*PageSize : (p+1)*PageSize]
			switch rng.IntN(9) {
			case 0:
				page[0] = 1
			case 1:
				page[PageSize-1] = 0x80
			case 2:
				page[rng.IntN(PageSize)] = byte(1 + rng.IntN(255))
			case 3:
				for i := range page {
					page[i] = byte(rng.Uint32())
				}
			}
		}
		regions = append(regions, r)
	}
	return regions
}

// nonZeroPages counts, byte by byte, the pages holding a non-zero byte.
func nonZeroPages(regions [][]byte) uint64 {
	var n uint64
	for _, r := range regions {
		for p := 0; p < len(r); p += PageSize {
			for _, c := range r[p : p+PageSize] {
				if c != 0 {
					n++
					break
				}
			}
		}
	}
	return n
}

func concat(regions [][]byte) []byte { return bytes.Join(regions, nil) }

func createFile(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func fileBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteMemoryReadsBackAsTheRegions(t *testing.T) {
	regions := makeGuest(1, 37, 91, 5)
	path := filepath.Join(t.TempDir(), "memory")
	f := createFile(t, path)
	// Leftovers from an earlier, larger snapshot must not survive.
	f.Write(bytes.Repeat([]byte{0xee}, 200*PageSize))

	st, err := WriteMemory(f, regions)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fileBytes(t, path), concat(regions)) {
		t.Error("the memory file is not the regions back to back")
	}
	stored := nonZeroPages(regions)
	want := MemoryStats{
		TotalBytes:  133 * PageSize,
		StoredBytes: stored * PageSize,
		StoredPages: stored,
		ZeroPages:   133 - stored,
	}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	if stored == 0 || stored == 133 {
		t.Fatalf("the test guest has %d non-zero pages of 133; it should have a mix", stored)
	}
}

func TestWriteMemoryRefusesPartialPages(t *testing.T) {
	f := createFile(t, filepath.Join(t.TempDir(), "memory"))
	if _, err := WriteMemory(f, [][]byte{make([]byte, PageSize), make([]byte, 1000)}); err == nil {
		t.Error("a 1000-byte region was accepted")
	}
}

// fsName names a filesystem type for skip messages.
func fsName(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	names := map[int64]string{
		unix.EXT4_SUPER_MAGIC: "ext2/3/4", unix.TMPFS_MAGIC: "tmpfs", unix.XFS_SUPER_MAGIC: "xfs",
		unix.BTRFS_SUPER_MAGIC: "btrfs", unix.OVERLAYFS_SUPER_MAGIC: "overlayfs", unix.NFS_SUPER_MAGIC: "nfs",
		unix.FUSE_SUPER_MAGIC: "fuse", 0x2fc12fc1: "zfs", unix.V9FS_MAGIC: "9p",
	}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("filesystem type %#x", st.Type)
}

// allocated is the disk space the file at path takes.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512 // st_blocks counts 512-byte units whatever the block size
}

// skipWithoutHoles skips the test when dir's filesystem stores a file
// with a hole in full.
func skipWithoutHoles(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, "probe")
	f := createFile(t, path)
	f.Truncate(16 << 20)
	f.WriteAt([]byte{1}, 8<<20)
	f.Sync()
	if allocated(t, path) >= 8<<20 {
		t.Skipf("the temporary directory's filesystem (%s) does not keep holes in files", fsName(dir))
	}
	os.Remove(path)
}

func TestWriteMemoryLeavesZeroPagesAsHoles(t *testing.T) {
	dir := t.TempDir()
	const total = 64 << 20
	ram := make([]byte, total)
	// Ten scattered non-zero pages in a 64 MiB guest.
	for i := range 10 {
		ram[i*(total/10)+123] = 0x5a
	}
	path := filepath.Join(dir, "memory")
	f := createFile(t, path)
	st, err := WriteMemory(f, [][]byte{ram[:total/2], ram[total/2:]})
	if err != nil {
		t.Fatal(err)
	}
	if st.StoredPages != 10 {
		t.Errorf("stored %d pages, want 10", st.StoredPages)
	}
	if fi, _ := f.Stat(); fi.Size() != total {
		t.Errorf("file size %d, want %d", fi.Size(), total)
	}
	skipWithoutHoles(t, dir)
	// Ten pages of data plus filesystem metadata; far below 64 MiB.
	if used := allocated(t, path); used > 1<<20 {
		t.Errorf("a 64 MiB guest with 10 non-zero pages takes %d bytes of disk", used)
	}
	// The first data the filesystem reports is the first non-zero page.
	if off, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_DATA); err != nil || off > 123 {
		t.Errorf("SEEK_DATA from 0: %d, %v; want the page at offset 0", off, err)
	}
	if off, err := unix.Seek(int(f.Fd()), PageSize, unix.SEEK_DATA); err != nil || off < total/10-PageSize || off > total/10 {
		t.Errorf("SEEK_DATA from %d: %d, %v; want the page holding offset %d", PageSize, off, err, total/10+123)
	}
}

// stateAB returns guest state A and state B, B being A with the pages in
// changed rewritten: to zero, to new data, or left equal. It also returns
// the dirty bitmap of exactly those pages.
func stateAB(pages ...int) (a, b [][]byte, dirty Bitmap, changed []uint64) {
	a = makeGuest(7, pages...)
	b = make([][]byte, len(a))
	var total int
	for i := range a {
		b[i] = bytes.Clone(a[i])
		total += len(a[i])
	}
	flat := func(p uint64) []byte { // page p of B across regions
		for _, r := range b {
			if n := uint64(len(r) / PageSize); p < n {
				return r[p*PageSize : (p+1)*PageSize]
			} else {
				p -= n
			}
		}
		panic("page out of range")
	}
	// Singles, a run crossing the region boundary (pages 39..41 with a
	// first region of 40 pages), and a run longer than a merge chunk.
	changed = []uint64{0, 3, 5, 39, 40, 41}
	for p := uint64(100); p < 420; p++ {
		changed = append(changed, p)
	}
	changed = append(changed, uint64(total/PageSize-1))
	dirty = NewBitmap(uint64(total))
	for i, p := range changed {
		dirty.Set(p)
		page := flat(p)
		switch i % 4 {
		case 0:
			clear(page)
		case 1:
			for j := range page {
				page[j] = byte(p) ^ byte(j) | 1
			}
		case 2:
			page[PageSize/2] ^= 0xff
		case 3: // marked dirty but written back with the same content
		}
	}
	return a, b, dirty, changed
}

func TestDiffAndMergeRebuildStateB(t *testing.T) {
	dir := t.TempDir()
	basePath, diffPath := filepath.Join(dir, "memory"), filepath.Join(dir, "memory.diff")
	a, b, dirty, changed := stateAB(40, 600)
	regions := []MemoryRegion{{GPA: 0, Size: 40 * PageSize}, {GPA: 1 << 32, Size: 600 * PageSize}}

	if _, err := WriteMemory(createFile(t, basePath), a); err != nil {
		t.Fatal(err)
	}
	st, err := WriteMemoryDiff(createFile(t, diffPath), b, dirty)
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(len(changed))
	if want := (MemoryStats{TotalBytes: 640 * PageSize, StoredBytes: n * PageSize, StoredPages: n, ZeroPages: 640 - n}); st != want {
		t.Errorf("diff stats %+v, want %+v", st, want)
	}
	// The diff holds B's marked pages and zeros elsewhere.
	diff, wantB := fileBytes(t, diffPath), concat(b)
	for p := uint64(0); p < 640; p++ {
		got := diff[p*PageSize : (p+1)*PageSize]
		want := make([]byte, PageSize)
		if dirty.Test(p) {
			want = wantB[p*PageSize : (p+1)*PageSize]
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("diff page %d (dirty %v) is wrong", p, dirty.Test(p))
		}
	}

	info := MemoryInfo{Kind: MemoryDiff, PageSize: PageSize, Regions: regions, Dirty: dirty, Stats: st}
	if err := MergeDiff(basePath, diffPath, info); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fileBytes(t, basePath), wantB) {
		t.Error("the base after the merge differs from state B")
	}
	if !bytes.Equal(fileBytes(t, diffPath), diff) {
		t.Error("the merge changed the diff file")
	}
}

func TestWriteMemoryDiffRefusesAMismatchedBitmap(t *testing.T) {
	f := createFile(t, filepath.Join(t.TempDir(), "diff"))
	regions := [][]byte{make([]byte, 100*PageSize)}
	past := NewBitmap(100 * PageSize)
	past[1] |= 1 << 40 // page 104
	for name, b := range map[string]Bitmap{"short": {0}, "long": make(Bitmap, 3), "past the end": past} {
		if _, err := WriteMemoryDiff(f, regions, b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s bitmap: %v, want ErrMalformed", name, err)
		}
	}
}

func TestMergeDiffRefusesMismatchedFiles(t *testing.T) {
	dir := t.TempDir()
	_, b, dirty, _ := stateAB(40, 600)
	info := MemoryInfo{Kind: MemoryDiff, PageSize: PageSize, Regions: []MemoryRegion{{0, 40 * PageSize}, {1 << 32, 600 * PageSize}}, Dirty: dirty}
	diffPath, basePath, shortPath := filepath.Join(dir, "diff"), filepath.Join(dir, "base"), filepath.Join(dir, "short")
	if _, err := WriteMemoryDiff(createFile(t, diffPath), b, dirty); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(basePath, make([]byte, 640*PageSize), 0o600)
	os.WriteFile(shortPath, make([]byte, 1000), 0o600)
	full := info
	full.Kind, full.Dirty = MemoryFull, nil

	for _, c := range []struct {
		name       string
		base, diff string
		info       MemoryInfo
		want       error
	}{
		{"short base", shortPath, diffPath, info, ErrTruncated},
		{"short diff", basePath, shortPath, info, ErrTruncated},
		{"not a diff", basePath, diffPath, full, ErrMalformed},
		{"missing base", filepath.Join(dir, "nope"), diffPath, info, os.ErrNotExist},
		{"same file", diffPath, diffPath, info, nil},
	} {
		before := fileBytes(t, diffPath)
		err := MergeDiff(c.base, c.diff, c.info)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if !bytes.Equal(fileBytes(t, diffPath), before) {
			t.Fatalf("%s: a refused merge changed a file", c.name)
		}
	}
	if got := fileBytes(t, basePath); !bytes.Equal(got, make([]byte, 640*PageSize)) {
		t.Error("a refused merge changed the base")
	}
}

func BenchmarkWriteMemory(b *testing.B) {
	const total = 256 << 20
	ram := make([]byte, total)
	for p := 0; p < total; p += 64 * PageSize { // one page in 64 holds data
		ram[p+7] = 1
	}
	f := createFile(b, filepath.Join(b.TempDir(), "memory"))
	b.SetBytes(total)
	for b.Loop() {
		if _, err := WriteMemory(f, [][]byte{ram[:total/4], ram[total/4:]}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestIsZeroPageSeesEveryByte(t *testing.T) {
	page := make([]byte, PageSize)
	if !IsZeroPage(page) {
		t.Fatal("a zero page reported non-zero")
	}
	for i := range page {
		page[i] = 0x10
		if IsZeroPage(page) {
			t.Fatalf("a page with byte %d set reported zero", i)
		}
		page[i] = 0
	}
}

// With candidate pages, only those are read and written: a page outside
// them is a hole whatever it holds (the caller knows it is zero), and one
// inside is stored exactly when it is non-zero.
func TestWriteMemorySparseReadsOnlyCandidates(t *testing.T) {
	regions := makeGuest(1, 37, 91, 5)
	all := concat(regions)
	pages := uint64(len(all) / PageSize)
	cand := NewBitmap(uint64(len(all)))
	for p := uint64(0); p < pages; p += 3 {
		cand.Set(p)
	}
	path := filepath.Join(t.TempDir(), "memory")
	st, err := WriteMemorySparse(createFile(t, path), regions, cand)
	if err != nil {
		t.Fatal(err)
	}
	got := fileBytes(t, path)
	var stored uint64
	for p := uint64(0); p < pages; p++ {
		page := all[p*PageSize : (p+1)*PageSize]
		want := make([]byte, PageSize)
		if cand.Test(p) {
			want = page
			if !bytes.Equal(page, make([]byte, PageSize)) {
				stored++
			}
		}
		if !bytes.Equal(got[p*PageSize:(p+1)*PageSize], want) {
			t.Fatalf("page %d (candidate %v) is wrong in the file", p, cand.Test(p))
		}
	}
	if st.StoredPages != stored || st.ZeroPages != pages-stored || st.TotalBytes != uint64(len(all)) {
		t.Errorf("stats %+v, want %d stored of %d", st, stored, pages)
	}
	if _, err := WriteMemorySparse(createFile(t, path+"2"), regions, NewBitmap(PageSize)); !errors.Is(err, ErrMalformed) {
		t.Errorf("a candidate bitmap of the wrong size: %v, want ErrMalformed", err)
	}
}
