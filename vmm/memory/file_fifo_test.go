package memory

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFromFileRefusesAFIFOWithoutHanging(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "memory")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := FromFile(fifo, 1<<20); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), fifo+" is a FIFO") {
			t.Errorf("got %v, want an error saying %s is a FIFO", err, fifo)
		}
	case <-time.After(5 * time.Second):
		if u, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			defer u.Close()
		}
		t.Fatal("FromFile blocked on a FIFO")
	}
}
