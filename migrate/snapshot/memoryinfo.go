package snapshot

import (
	"fmt"
	"math"
	"os"
)

// Memory file kinds, as MemoryInfo.Kind records them.
const (
	MemoryFull = "full" // every page; zero pages are holes
	MemoryDiff = "diff" // only the pages MemoryInfo.Dirty marks
)

// Bounds MemoryInfo.Validate enforces on what a (possibly hostile) state
// file describes.
const (
	MaxMemoryBytes   = 1 << 46 // total guest RAM: 64 TiB
	MaxMemoryRegions = 64
	maxGuestPhysEnd  = 1 << 52 // x86 MAXPHYADDR is at most 52 bits
)

// MemoryRegion is one guest RAM region: Size bytes at guest-physical
// address GPA. Its bytes sit in the memory file after those of the
// regions before it.
type MemoryRegion struct {
	GPA  uint64
	Size uint64
}

// MemoryInfo is the content of the "memory" section: how the memory file
// next to the state file maps onto guest RAM.
type MemoryInfo struct {
	Kind     string // MemoryFull or MemoryDiff
	PageSize uint64 // always PageSize
	Regions  []MemoryRegion
	// Dirty, for a diff, marks the pages the diff file holds; a full
	// file has none.
	Dirty Bitmap `json:",omitempty"`
	// Stats are what the writer reported; informational only, a reader
	// trusts the regions and the bitmap.
	Stats MemoryStats
}

// TotalBytes is the guest's RAM: the sum of the region sizes, which is
// also the memory file's size. It saturates instead of wrapping, so an
// unvalidated MemoryInfo cannot pass for a small one.
func (m MemoryInfo) TotalBytes() uint64 {
	var t uint64
	for _, r := range m.Regions {
		if r.Size > math.MaxUint64-t {
			return math.MaxUint64
		}
		t += r.Size
	}
	return t
}

// Validate checks that m describes a memory file this package can use:
// a known kind, 4 KiB pages, 1 to MaxMemoryRegions regions that are whole
// pages, ascending and non-overlapping, at most MaxMemoryBytes in all, and
// a dirty bitmap exactly when (and exactly as long as) a diff needs one.
func (m MemoryInfo) Validate() error {
	bad := func(format string, args ...any) error {
		return &detailError{kind: ErrMalformed, msg: "memory section: malformed: " + fmt.Sprintf(format, args...)}
	}
	if m.Kind != MemoryFull && m.Kind != MemoryDiff {
		return bad("kind %q (want %q or %q)", m.Kind, MemoryFull, MemoryDiff)
	}
	if m.PageSize != PageSize {
		return bad("page size %d (want %d)", m.PageSize, PageSize)
	}
	if len(m.Regions) == 0 || len(m.Regions) > MaxMemoryRegions {
		return bad("%d RAM regions (1 to %d allowed)", len(m.Regions), MaxMemoryRegions)
	}
	var total, prevEnd uint64
	for i, r := range m.Regions {
		if r.Size == 0 || r.Size%PageSize != 0 || r.GPA%PageSize != 0 {
			return bad("region %d (%#x bytes at %#x) is empty or not page-aligned", i, r.Size, r.GPA)
		}
		if r.GPA >= maxGuestPhysEnd || r.Size > maxGuestPhysEnd-r.GPA {
			return bad("region %d (%#x bytes at %#x) ends beyond the 52-bit physical address space", i, r.Size, r.GPA)
		}
		if i > 0 && r.GPA < prevEnd {
			return bad("region %d at %#x starts below the end %#x of region %d (regions must ascend without overlap)", i, r.GPA, prevEnd, i-1)
		}
		prevEnd = r.GPA + r.Size
		total += r.Size // cannot wrap: each term is below 1<<52, at most 64 terms
		if total > MaxMemoryBytes {
			return bad("more than %d bytes of RAM", uint64(MaxMemoryBytes))
		}
	}
	switch m.Kind {
	case MemoryFull:
		if m.Dirty != nil {
			return bad("a full memory file with a dirty bitmap")
		}
	case MemoryDiff:
		if err := checkBitmapCovers(m.Dirty, total/PageSize); err != nil {
			return fmt.Errorf("memory section: %w", err)
		}
	}
	return nil
}

// CheckMemoryFile checks, before anything maps it, that path is a regular
// file whose size is exactly the RAM info describes (info is validated
// first).
func CheckMemoryFile(path string, info MemoryInfo) error {
	if err := info.Validate(); err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("memory file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return &detailError{kind: ErrMalformed, msg: fmt.Sprintf("memory file %s is not a regular file (%v)", path, st.Mode().Type())}
	}
	return checkMemorySize(path, st.Size(), info.TotalBytes())
}

func checkMemorySize(path string, size int64, want uint64) error {
	if uint64(size) == want {
		return nil
	}
	kind := ErrTruncated
	if uint64(size) > want {
		kind = ErrMalformed
	}
	return &detailError{kind: kind, msg: fmt.Sprintf("memory file %s is %d bytes, the snapshot's guest has %d", path, size, want)}
}
