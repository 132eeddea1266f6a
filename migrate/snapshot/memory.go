package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
)

// PageSize is the unit of the memory file and of dirty bitmaps.
const PageSize = 4096

// maxMemory bounds what a memory section may describe (64 TiB).
const maxMemory = 1 << 46

// MemoryStats count what a memory file write did.
type MemoryStats struct {
	TotalBytes  uint64
	StoredBytes uint64
	StoredPages uint64
	ZeroPages   uint64 // pages left as holes
}

// MemoryRegion is one RAM region as the memory section records it.
type MemoryRegion struct {
	GPA  uint64
	Size uint64
}

// MemoryInfo is the "memory" section: how the memory file maps onto the
// guest's RAM.
type MemoryInfo struct {
	Kind     string // "full" or "diff"
	PageSize uint64
	Regions  []MemoryRegion
	// Dirty marks, for a diff, the pages its memory file holds.
	Dirty Bitmap `json:",omitempty"`
	Stats MemoryStats
}

// TotalBytes is the guest's RAM, the memory file's size.
func (m MemoryInfo) TotalBytes() uint64 {
	var t uint64
	for _, r := range m.Regions {
		t += r.Size
	}
	return t
}

// Validate checks the section's own consistency.
func (m MemoryInfo) Validate() error {
	if m.Kind != "full" && m.Kind != "diff" {
		return fmt.Errorf("%w: memory kind %q (want full or diff)", ErrMalformed, m.Kind)
	}
	if m.PageSize != PageSize {
		return fmt.Errorf("%w: page size %d (want %d)", ErrMalformed, m.PageSize, PageSize)
	}
	if len(m.Regions) == 0 || len(m.Regions) > 64 {
		return fmt.Errorf("%w: %d memory regions", ErrMalformed, len(m.Regions))
	}
	var total, end uint64
	for i, r := range m.Regions {
		if r.Size == 0 || r.Size%PageSize != 0 || r.GPA%PageSize != 0 {
			return fmt.Errorf("%w: region %d [%#x,+%#x) is not whole pages", ErrMalformed, i, r.GPA, r.Size)
		}
		if r.Size > maxMemory || r.GPA > maxMemory || (i > 0 && r.GPA < end) {
			return fmt.Errorf("%w: region %d [%#x,+%#x) overlaps or is out of order or range", ErrMalformed, i, r.GPA, r.Size)
		}
		end = r.GPA + r.Size
		total += r.Size
	}
	if total > maxMemory {
		return fmt.Errorf("%w: %d bytes of RAM", ErrMalformed, total)
	}
	pages := total / PageSize
	switch m.Kind {
	case "full":
		if m.Dirty != nil {
			return fmt.Errorf("%w: a full snapshot with a dirty bitmap", ErrMalformed)
		}
	case "diff":
		if uint64(len(m.Dirty)) != (pages+63)/64 {
			return fmt.Errorf("%w: dirty bitmap of %d words for %d pages", ErrMalformed, len(m.Dirty), pages)
		}
		if r := pages % 64; r != 0 && m.Dirty[len(m.Dirty)-1]>>r != 0 {
			return fmt.Errorf("%w: dirty bitmap marks pages past the end of RAM", ErrMalformed)
		}
	}
	return nil
}

// Bitmap holds one bit per page: page p is bit p%64 of word p/64, as in
// KVM's dirty log.
type Bitmap []uint64

// NewBitmap returns an empty bitmap for totalBytes of RAM.
func NewBitmap(totalBytes uint64) Bitmap { return make(Bitmap, (totalBytes/PageSize+63)/64) }

// Set marks page p; a page past the bitmap is ignored.
func (b Bitmap) Set(p uint64) {
	if p/64 < uint64(len(b)) {
		b[p/64] |= 1 << (p % 64)
	}
}

// Test reports whether page p is marked.
func (b Bitmap) Test(p uint64) bool { return p/64 < uint64(len(b)) && b[p/64]&(1<<(p%64)) != 0 }

// Count is the number of marked pages.
func (b Bitmap) Count() uint64 {
	var n int
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return uint64(n)
}

// Or marks every page other marks.
func (b Bitmap) Or(other Bitmap) error {
	if len(b) != len(other) {
		return fmt.Errorf("bitmaps of %d and %d words", len(b), len(other))
	}
	for i := range b {
		b[i] |= other[i]
	}
	return nil
}

var zeroPage [PageSize]byte

// WriteMemory writes the regions to f back to back, leaving zero pages as
// holes, and syncs it.
func WriteMemory(f *os.File, regions [][]byte) (MemoryStats, error) {
	return writePages(f, regions, func(p uint64, page []byte) bool { return !bytes.Equal(page, zeroPage[:]) })
}

// WriteMemoryDiff writes only the pages dirty marks (zero pages too: in a
// diff a page that became zero must overwrite the base), leaving the rest
// as holes.
func WriteMemoryDiff(f *os.File, regions [][]byte, dirty Bitmap) (MemoryStats, error) {
	var total uint64
	for _, r := range regions {
		total += uint64(len(r))
	}
	if uint64(len(dirty)) != (total/PageSize+63)/64 {
		return MemoryStats{}, fmt.Errorf("dirty bitmap of %d words for %d pages", len(dirty), total/PageSize)
	}
	return writePages(f, regions, func(p uint64, _ []byte) bool { return dirty.Test(p) })
}

// writePages truncates f to the regions' total size and writes each run of
// pages keep selects with one WriteAt.
func writePages(f *os.File, regions [][]byte, keep func(page uint64, data []byte) bool) (MemoryStats, error) {
	var st MemoryStats
	for _, r := range regions {
		if len(r)%PageSize != 0 {
			return st, fmt.Errorf("a RAM region of %d bytes is not whole pages", len(r))
		}
		st.TotalBytes += uint64(len(r))
	}
	if err := f.Truncate(0); err != nil {
		return st, err
	}
	if err := f.Truncate(int64(st.TotalBytes)); err != nil {
		return st, err
	}
	var off, page uint64 // file offset and page number of the region start
	for _, r := range regions {
		runStart := -1
		flush := func(end int) error {
			if runStart < 0 {
				return nil
			}
			_, err := f.WriteAt(r[runStart:end], int64(off)+int64(runStart))
			runStart = -1
			return err
		}
		for i := 0; i < len(r); i += PageSize {
			if keep(page+uint64(i/PageSize), r[i:i+PageSize]) {
				st.StoredPages++
				if runStart < 0 {
					runStart = i
				}
				continue
			}
			st.ZeroPages++
			if err := flush(i); err != nil {
				return st, err
			}
		}
		if err := flush(len(r)); err != nil {
			return st, err
		}
		off += uint64(len(r))
		page += uint64(len(r)) / PageSize
	}
	st.StoredBytes = st.StoredPages * PageSize
	if err := f.Sync(); err != nil {
		return st, err
	}
	return st, nil
}

// CheckMemoryFile checks that path is a regular file of the size info
// describes.
func CheckMemoryFile(path string, info MemoryInfo) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("memory file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("memory file %s is not a regular file", path)
	}
	if uint64(st.Size()) != info.TotalBytes() {
		return fmt.Errorf("memory file %s is %d bytes, the snapshot's guest has %d: %w", path, st.Size(), info.TotalBytes(), ErrTruncated)
	}
	return nil
}

// MergeDiff copies the pages diff marks from diffPath into basePath.
func MergeDiff(basePath, diffPath string, diff MemoryInfo) error {
	if err := diff.Validate(); err != nil {
		return err
	}
	if diff.Kind != "diff" {
		return fmt.Errorf("merge: %s is not a diff", diffPath)
	}
	for _, p := range []string{basePath, diffPath} {
		if err := CheckMemoryFile(p, diff); err != nil {
			return err
		}
	}
	base, err := os.OpenFile(basePath, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer base.Close()
	src, err := os.Open(diffPath)
	if err != nil {
		return err
	}
	defer src.Close()
	pages := diff.TotalBytes() / PageSize
	buf := make([]byte, 256*PageSize)
	for p := uint64(0); p < pages; {
		if !diff.Dirty.Test(p) {
			p++
			continue
		}
		n := uint64(1)
		for p+n < pages && n < uint64(len(buf)/PageSize) && diff.Dirty.Test(p+n) {
			n++
		}
		chunk := buf[:n*PageSize]
		if _, err := src.ReadAt(chunk, int64(p*PageSize)); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("merge: read %s: %w", diffPath, err)
		}
		if _, err := base.WriteAt(chunk, int64(p*PageSize)); err != nil {
			return fmt.Errorf("merge: write %s: %w", basePath, err)
		}
		p += n
	}
	return base.Sync()
}
