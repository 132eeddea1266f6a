package block

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNewRefusesAFIFOImageWithoutHanging(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "disk.img")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{true, false} {
		done := make(chan error, 1)
		go func() {
			d, err := New(Config{Path: fifo, ReadOnly: ro})
			if err == nil {
				d.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), fifo+" is a FIFO, not a regular file or block device") {
				t.Errorf("read-only %v: %v", ro, err)
			}
		case <-time.After(5 * time.Second):
			if u, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
				defer u.Close()
			}
			t.Fatalf("read-only %v: New blocked on a FIFO", ro)
		}
	}
}
