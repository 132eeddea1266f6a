package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadStateFileRefusesAFIFOWithoutHanging(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "vmstate")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadStateFile(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), fifo+" is a FIFO") {
			t.Errorf("got %v, want an error saying %s is a FIFO", err, fifo)
		}
	case <-time.After(5 * time.Second):
		if u, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			defer u.Close()
		}
		t.Fatal("ReadStateFile blocked on a FIFO")
	}
}

// MergeDiff writes into the base: a link in its place is refused, not
// written through.
func TestMergeDiffDoesNotFollowALinkedBase(t *testing.T) {
	dir := t.TempDir()
	_, b, dirty, _ := stateAB(40, 600)
	info := MemoryInfo{Kind: MemoryDiff, PageSize: PageSize, Regions: []MemoryRegion{{0, 40 * PageSize}, {1 << 32, 600 * PageSize}}, Dirty: dirty}
	diffPath, victim, basePath := filepath.Join(dir, "diff"), filepath.Join(dir, "victim"), filepath.Join(dir, "base")
	if _, err := WriteMemoryDiff(createFile(t, diffPath), b, dirty); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(victim, make([]byte, 640*PageSize), 0o600)
	os.Symlink(victim, basePath)
	err := MergeDiff(basePath, diffPath, info)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("linked base: %v, want ErrMalformed naming the link", err)
	}
	for _, c := range fileBytes(t, victim) {
		if c != 0 {
			t.Fatal("the merge wrote through the link")
		}
	}
}
