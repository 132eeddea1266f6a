package vmm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mkfifo makes a FIFO in a fresh directory.
func mkfifo(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// returnsWithin runs f and fails the test if it has not returned within a
// few seconds; it then opens fifo read-write, which releases an open
// blocked on it, so the test process can end.
func returnsWithin(t *testing.T, fifo string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		if u, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			defer u.Close()
		}
		t.Fatalf("blocked on the FIFO %s", fifo)
		return nil
	}
}

func TestValidateRefusesAFIFOKernelOrInitrdWithoutHanging(t *testing.T) {
	fifo := mkfifo(t, "vmlinux")
	err := returnsWithin(t, fifo, Config{KernelPath: fifo}.Validate)
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), fifo+" is a FIFO") {
		t.Errorf("FIFO kernel: %v", err)
	}
	initrd := mkfifo(t, "initrd")
	// Validate needs a loadable kernel before it looks at the initrd;
	// the initrd's check alone.
	err = returnsWithin(t, initrd, func() error { return readable(initrd) })
	if err == nil || !strings.Contains(err.Error(), initrd+" is a FIFO") {
		t.Errorf("FIFO initrd: %v", err)
	}
}
