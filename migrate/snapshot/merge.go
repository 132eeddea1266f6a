package snapshot

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/ternvm/tern/internal/safefile"
)

// mergeChunkPages bounds one read/write of MergeDiff (1 MiB).
const mergeChunkPages = 256

// MergeDiff applies a diff memory file to a base one: every page diff.Dirty
// marks is copied from diffPath to the same offset in basePath, so that
// basePath then holds the guest's RAM as of the diff. Runs of marked
// pages are copied together; pages of the diff that are all zeros become
// holes in the base where the filesystem can punch them (zeros are
// written otherwise), so the base reads back the same either way and
// stays sparse. Both files must be exactly the size diff describes. The
// base is synced before return.
func MergeDiff(basePath, diffPath string, diff MemoryInfo) error {
	if err := diff.Validate(); err != nil {
		return fmt.Errorf("merge %s into %s: %w", diffPath, basePath, err)
	}
	if diff.Kind != MemoryDiff {
		return &detailError{kind: ErrMalformed, msg: fmt.Sprintf("merge %s into %s: the memory section says kind %q, not %q", diffPath, basePath, diff.Kind, MemoryDiff)}
	}
	total := diff.TotalBytes()
	base, err := openMemory(basePath, os.O_RDWR, total)
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	defer base.Close()
	src, err := openMemory(diffPath, os.O_RDONLY, total)
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	defer src.Close()
	if bs, err1 := base.Stat(); err1 == nil {
		if ss, err2 := src.Stat(); err2 == nil && os.SameFile(bs, ss) {
			return fmt.Errorf("merge: %s and %s are the same file", basePath, diffPath)
		}
	}

	pages := total / PageSize
	buf := make([]byte, mergeChunkPages*PageSize)
	canPunch := true
	for p := uint64(0); ; {
		start, n := diff.Dirty.NextRun(p, pages)
		if n == 0 {
			break
		}
		n = min(n, mergeChunkPages)
		chunk := buf[:n*PageSize]
		off := int64(start * PageSize)
		if _, err := src.ReadAt(chunk, off); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		if err := writeChunk(base, chunk, off, &canPunch); err != nil {
			return fmt.Errorf("merge into %s: %w", basePath, err)
		}
		p = start + n
	}
	if err := base.Sync(); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	if err := base.Close(); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	return nil
}

// openMemory opens a memory file and checks, on the open file, that it is
// a regular file of the expected size. A symbolic link in its place is not
// followed (the base is written to) and a FIFO does not block the open.
func openMemory(path string, flag int, want uint64) (*os.File, error) {
	f, st, err := safefile.Open(path, flag|syscall.O_NOFOLLOW, 0, safefile.Regular)
	if errors.Is(err, safefile.ErrNotRegular) || errors.Is(err, safefile.ErrSymlink) {
		return nil, &detailError{kind: ErrMalformed, msg: "memory file " + err.Error()}
	}
	if err != nil {
		return nil, err
	}
	err = checkMemorySize(path, st.Size(), want)
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// writeChunk writes chunk at off in f, its non-zero page runs as data and
// its zero page runs as holes (or zeros, once punching proved unsupported).
func writeChunk(f *os.File, chunk []byte, off int64, canPunch *bool) error {
	for i := 0; i < len(chunk); {
		zero := IsZeroPage(chunk[i : i+PageSize])
		j := i + PageSize
		for j < len(chunk) && IsZeroPage(chunk[j:j+PageSize]) == zero {
			j += PageSize
		}
		if zero && *canPunch {
			err := punchHole(f, off+int64(i), int64(j-i))
			if err == nil {
				i = j
				continue
			}
			if !errors.Is(err, errors.ErrUnsupported) {
				return err
			}
			*canPunch = false
		}
		if _, err := f.WriteAt(chunk[i:j], off+int64(i)); err != nil {
			return err
		}
		i = j
	}
	return nil
}
