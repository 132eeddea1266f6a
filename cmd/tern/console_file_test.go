package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ternvm/tern/internal/safefile"
)

func TestConsoleFileIsPrivateAndNotFollowed(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	path := filepath.Join(dir, "console.log")
	w, _, closeFn, err := openConsole(path, false)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("secret"))
	closeFn()
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("a new console file has mode %v (%v), want 0600", st.Mode().Perm(), err)
	}

	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep me"), 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(victim, link)
	if _, _, _, err := openConsole(link, false); !errors.Is(err, safefile.ErrSymlink) {
		t.Errorf("a link as console: %v, want ErrSymlink", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep me" {
		t.Errorf("the link's target was truncated to %q", b)
	}
	if _, _, _, err := openConsole("/dev/null", false); !errors.Is(err, safefile.ErrNotRegular) {
		t.Errorf("a character device as console: %v, want it refused", err)
	}
}

func TestConsoleFIFOWithoutReaderFailsAtOnce(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "console")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, _, _, err := openConsole(fifo, false); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "console FIFO "+fifo+" has no reader") {
			t.Errorf("got %v", err)
		}
	case <-time.After(5 * time.Second):
		if u, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			defer u.Close()
		}
		t.Fatal("opening a console FIFO without a reader hung")
	}
	// With a reader it opens, and writes get through.
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, _, closeFn, err := openConsole(fifo, false)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	w.Write([]byte("hi"))
	buf := make([]byte, 8)
	if n, _ := r.Read(buf); string(buf[:n]) != "hi" {
		t.Errorf("read %q through the FIFO", buf[:n])
	}
}
