package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
)

// MaxStateSize is the largest state file ReadStateFile accepts, and so the
// largest WriteStateFile writes. Device and vCPU state is kilobytes; the
// bound is there so that a hostile file cannot make a restore allocate at
// will.
const MaxStateSize = 64 << 20

// WriteStateFile writes a state file at path so that a crash never leaves
// a partial file under that name: it writes path+".tmp", syncs it, renames
// it over path and syncs the directory.
func WriteStateFile(path string, sections []Section) (err error) {
	if err := checkSections(sections); err != nil {
		return fmt.Errorf("vmstate %s: %w", path, err)
	}
	if n := EncodedSize(sections); n > MaxStateSize {
		return &detailError{kind: ErrTooLarge, msg: fmt.Sprintf("vmstate %s: too large: %d bytes, a reader accepts at most %d", path, n, MaxStateSize)}
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := WriteState(f, sections); err != nil {
		return fmt.Errorf("%s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	// The rename is durable only once the directory entry is on disk.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("vmstate %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadStateFile reads and checks the state file at path (at most
// MaxStateSize bytes). Its errors name the path.
func ReadStateFile(path string) ([]Section, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vmstate: %w", err)
	}
	defer f.Close()
	label := "vmstate " + path
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("vmstate: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%v)", label, st.Mode().Type())
	}
	if st.Size() > MaxStateSize {
		return nil, stateErr(label, ErrTooLarge, "too large: %d bytes, at most %d", st.Size(), MaxStateSize)
	}
	return readState(f, MaxStateSize, label)
}
