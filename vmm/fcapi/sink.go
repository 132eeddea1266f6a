package fcapi

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ternvm/tern/internal/safefile"
	"golang.org/x/sys/unix"
)

// lineSink is where the log and the metrics go: a regular file or a FIFO.
// Its writes never block, whatever the reader does: the descriptor is
// non-blocking and a write the reader has no room for is dropped and
// counted (Firecracker's missed_log_count and missed_metrics_count),
// because the log is written from vCPU threads and the metrics from the
// API, neither of which may wait on a stalled reader.
type lineSink struct {
	mu     sync.Mutex // one line at a time, so lines do not interleave
	f      *os.File
	rc     syscall.RawConn
	missed atomic.Uint64
}

// openSink opens path as Firecracker opens its log and metrics outputs:
// a regular file (created 0600 if missing, appended to) or a FIFO. A
// FIFO nothing reads yet is opened read-write, as Firecracker opens it,
// so that configuring it succeeds and a reader may come later; what is
// written before then waits in the pipe, as much as it holds. A symbolic
// link is not followed.
func openSink(path string) (*lineSink, error) {
	if path == "" {
		return nil, errors.New("no path given")
	}
	f, err := safefile.OpenOutput(path, false)
	if errors.Is(err, safefile.ErrNoReader) {
		f, _, err = safefile.Open(path, unix.O_RDWR|unix.O_NOFOLLOW, 0o600, safefile.FIFO)
	}
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err == nil {
		var serr error
		err = rc.Control(func(fd uintptr) { serr = unix.SetNonblock(int(fd), true) })
		if err == nil {
			err = serr
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &lineSink{f: f, rc: rc}, nil
}

// Write writes p whole if the reader has room, else drops what is left
// and counts one missed write. It reports len(p) written either way, so
// that a logger does not report its own output failing.
func (w *lineSink) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		w.missed.Add(1)
		return len(p), nil
	}
	var err error
	cerr := w.rc.Control(func(fd uintptr) {
		for off := 0; off < len(p); {
			n, e := unix.Write(int(fd), p[off:])
			if e == unix.EINTR {
				continue
			}
			if e != nil {
				err = e
				return
			}
			off += n
		}
	})
	if err != nil || cerr != nil {
		w.missed.Add(1)
	}
	return len(p), nil
}

// Missed is how many writes were dropped.
func (w *lineSink) Missed() uint64 {
	if w == nil {
		return 0
	}
	return w.missed.Load()
}

// Close closes the file; later writes are dropped and counted.
func (w *lineSink) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
