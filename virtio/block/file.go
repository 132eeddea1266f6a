package block

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// adoptImage takes a duplicate of the image the caller opened
// (Config.File), after checking that its access mode allows what the disk
// does: a read-write disk on a descriptor opened read-only would fail at
// the guest's first write instead of here.
func adoptImage(cfg Config) (*os.File, uint64, error) {
	rc, err := cfg.File.SyscallConn()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: disk image %q: %w", ErrBadConfig, cfg.Path, err)
	}
	var dup, fl int
	var opErr error
	if err := rc.Control(func(fd uintptr) {
		if fl, opErr = unix.FcntlInt(fd, unix.F_GETFL, 0); opErr != nil {
			opErr = fmt.Errorf("F_GETFL: %w", opErr)
			return
		}
		if dup, opErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); opErr != nil {
			opErr = fmt.Errorf("duplicate the descriptor: %w", opErr)
		}
	}); err != nil {
		return nil, 0, fmt.Errorf("%w: disk image %q: %w", ErrBadConfig, cfg.Path, err)
	}
	if opErr != nil {
		return nil, 0, fmt.Errorf("%w: disk image %q: %w", ErrBadConfig, cfg.Path, opErr)
	}
	f := os.NewFile(uintptr(dup), cfg.Path)
	switch mode := fl & unix.O_ACCMODE; {
	case mode == unix.O_WRONLY:
		f.Close()
		return nil, 0, fmt.Errorf("%w: disk image %q was opened write-only; a disk must be readable", ErrBadConfig, cfg.Path)
	case mode == unix.O_RDONLY && !cfg.ReadOnly:
		f.Close()
		return nil, 0, fmt.Errorf("%w: disk image %q was opened read-only, but the disk is read-write (open it read-write, or make the disk read-only)", ErrBadConfig, cfg.Path)
	}
	capacity, err := imageCapacity(f, cfg.Path)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, capacity, nil
}
