package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNoReader is OpenOutput's error for a FIFO nothing reads.
var ErrNoReader = errors.New("has no reader")

// OpenOutput opens path for tern to write a stream to (a guest console, a
// log, metrics): a regular file, created mode 0600 (what is written can
// hold secrets) and truncated or appended to, or a FIFO with a reader. A
// symbolic link is not followed (tern often runs as root; a link planted
// at a predictable path would have it write the link's target) and other
// kinds of file are refused. A FIFO without a reader fails at once
// instead of hanging.
func OpenOutput(path string, truncate bool) (*os.File, error) {
	flag := unix.O_WRONLY | unix.O_CREAT | unix.O_NOFOLLOW
	if truncate {
		flag |= unix.O_TRUNC
	} else {
		flag |= unix.O_APPEND
	}
	f, _, err := Open(path, flag, 0o600, Regular|FIFO)
	if errors.Is(err, unix.ENXIO) {
		if st, lerr := os.Lstat(path); lerr == nil && st.Mode()&fs.ModeNamedPipe != 0 {
			return nil, fmt.Errorf("FIFO %s %w", path, ErrNoReader)
		}
	}
	return f, err
}
