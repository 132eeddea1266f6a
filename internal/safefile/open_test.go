package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// within fails the test if f has not returned after a few seconds; then
// it opens fifo read-write, which releases an open blocked on it.
func within(t *testing.T, fifo string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		if u, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			defer u.Close()
		}
		t.Fatalf("blocked on the FIFO %s", fifo)
	}
}

func TestOpenRefusesAFIFOWithoutBlocking(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	within(t, fifo, func() { _, _, err = OpenRegular(fifo) })
	var ke *KindError
	if !errors.Is(err, ErrNotRegular) || !errors.As(err, &ke) || !strings.Contains(err.Error(), fifo+" is a FIFO, not a regular file") {
		t.Errorf("got %v, want %q is a FIFO", err, fifo)
	}
	// A FIFO the caller accepts, opened for writing with no reader:
	// ENXIO at once.
	within(t, fifo, func() { _, _, err = Open(fifo, unix.O_WRONLY, 0, Regular|FIFO) })
	if !errors.Is(err, unix.ENXIO) {
		t.Errorf("FIFO without a reader: %v, want ENXIO", err)
	}
}

func TestOpenChecksTheKind(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "f")
	os.WriteFile(reg, []byte("content"), 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(reg, link)

	if _, _, err := OpenRegular(dir); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("a directory: %v", err)
	}
	if _, _, err := OpenRegular("/dev/null"); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "character device, not a regular file") {
		t.Errorf("/dev/null: %v", err)
	}
	if _, _, err := Open(link, unix.O_RDONLY|unix.O_NOFOLLOW, 0, Regular); !errors.Is(err, ErrSymlink) {
		t.Errorf("a link opened with O_NOFOLLOW: %v, want ErrSymlink", err)
	}
	// Without O_NOFOLLOW the caller's link is followed.
	f, st, err := OpenRegular(link)
	if err != nil || st.Size() != 7 {
		t.Fatalf("a link to a regular file: %v", err)
	}
	// The descriptor handed back blocks again.
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Errorf("flags %#x (%v): O_NONBLOCK still set", fl, err)
	}
	f.Close()
	// O_TRUNC empties a regular file, and only once it proved regular.
	f, _, err = Open(reg, unix.O_WRONLY|unix.O_TRUNC, 0, Regular)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if b, _ := os.ReadFile(reg); len(b) != 0 {
		t.Errorf("O_TRUNC left %q", b)
	}
	if got := (Regular | BlockDevice).String(); got != "regular file or block device" {
		t.Errorf("Kind string %q", got)
	}
}
