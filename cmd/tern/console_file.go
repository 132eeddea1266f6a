package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/ternvm/tern/internal/safefile"
	"golang.org/x/sys/unix"
)

// openConsoleFile opens --console PATH for the guest's output: a regular
// file, created mode 0600 (the guest's console can hold secrets) or
// truncated, or a FIFO with a reader. A symbolic link is not followed
// (tern often runs as root; a link planted at a predictable path would
// have it truncate the link's target) and other kinds of file are
// refused. A FIFO is opened without blocking, so one without a reader
// fails at once instead of hanging start-up.
func openConsoleFile(path string) (*os.File, error) {
	f, _, err := safefile.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW, 0o600, safefile.Regular|safefile.FIFO)
	if errors.Is(err, unix.ENXIO) {
		if st, lerr := os.Lstat(path); lerr == nil && st.Mode()&fs.ModeNamedPipe != 0 {
			return nil, fmt.Errorf("console FIFO %s has no reader", path)
		}
	}
	return f, err
}
