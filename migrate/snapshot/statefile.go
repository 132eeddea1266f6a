package snapshot

import (
	"fmt"
	"path/filepath"

	"github.com/ternvm/tern/internal/safefile"
)

// MaxStateSize is the largest state file ReadStateFile accepts, and so the
// largest WriteStateFile writes. Device and vCPU state is kilobytes; the
// bound is there so that a hostile file cannot make a restore allocate at
// will.
const MaxStateSize = 64 << 20

// WriteStateFile writes a state file at path so that a crash never leaves
// a partial file under that name, and so that nothing already in path's
// directory is opened or followed: it opens the directory once, creates a
// new file there under a random temporary name (O_EXCL|O_NOFOLLOW, mode
// 0600), writes and syncs it, renames it over path's name and syncs the
// directory. A link or FIFO planted under path, or under any temporary
// name, is replaced or left alone, never written through.
func WriteStateFile(path string, sections []Section) (err error) {
	if err := checkSections(sections); err != nil {
		return fmt.Errorf("vmstate %s: %w", path, err)
	}
	if n := EncodedSize(sections); n > MaxStateSize {
		return &detailError{kind: ErrTooLarge, msg: fmt.Sprintf("vmstate %s: too large: %d bytes, a reader accepts at most %d", path, n, MaxStateSize)}
	}
	dir, err := safefile.OpenDir(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	defer dir.Close()
	p, err := dir.Create(filepath.Base(path))
	if err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	defer p.Abort()
	if err := WriteState(p.File(), sections); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := p.Commit(); err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	return nil
}

// ReadStateFile reads and checks the state file at path (at most
// MaxStateSize bytes). Its errors name the path.
func ReadStateFile(path string) ([]Section, error) {
	// Opened without blocking and checked on the descriptor: a FIFO in
	// place of the state file is refused, not waited on.
	f, st, err := safefile.OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("vmstate: %w", err)
	}
	defer f.Close()
	label := "vmstate " + path
	if st.Size() > MaxStateSize {
		return nil, stateErr(label, ErrTooLarge, "too large: %d bytes, at most %d", st.Size(), MaxStateSize)
	}
	return readState(f, MaxStateSize, st.Size(), label)
}
