package vmm

import (
	"path/filepath"

	"github.com/ternvm/tern/internal/safefile"
)

// snapshotFile is a snapshot file being written: a new file under a
// temporary name in the snapshot directory, opened by descriptor, which
// Commit renames over its final name.
type snapshotFile struct {
	*safefile.Pending
	dir *safefile.Dir
}

// createSnapshotFile starts the file that will replace path. Nothing
// already in path's directory is opened: a symbolic link or FIFO planted
// under path is replaced by the rename, never followed or waited on.
func createSnapshotFile(path string) (*snapshotFile, error) {
	dir, err := safefile.OpenDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	p, err := dir.Create(filepath.Base(path))
	if err != nil {
		dir.Close()
		return nil, err
	}
	return &snapshotFile{Pending: p, dir: dir}, nil
}

// Commit makes the file durable under its final name.
func (s *snapshotFile) Commit() error {
	err := s.Pending.Commit()
	s.dir.Close()
	return err
}

// Abort removes the unfinished file; after Commit it does nothing.
func (s *snapshotFile) Abort() {
	s.Pending.Abort()
	s.dir.Close()
}
