package vmm

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ternvm/tern/vmm/memory"
)

func vmWithMemory(t *testing.T, size uint64) *VM {
	t.Helper()
	m, err := memory.New(size, memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &VM{mem: m}
}

// A link planted at DIR/memory must be replaced, not written through:
// root tern would otherwise overwrite any file the link names.
func TestWriteMemoryDoesNotFollowAPlantedLink(t *testing.T) {
	v := vmWithMemory(t, 1<<20)
	v.mem.WriteAt([]byte("guest"), 4096)
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(victim, []byte("root only"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, SnapshotMemoryFile)
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	info, err := v.writeMemory(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "root only" {
		t.Fatalf("the link's target was overwritten: %d bytes", len(b))
	}
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 || uint64(st.Size()) != info.TotalBytes() {
		t.Fatalf("memory is %v, %d bytes (%v); want a regular 0600 file of %d", st.Mode(), st.Size(), err, info.TotalBytes())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only memory", len(entries))
	}
}

func TestWriteMemoryIsNotStalledByAPlantedFIFO(t *testing.T) {
	v := vmWithMemory(t, 1<<20)
	path := filepath.Join(t.TempDir(), SnapshotMemoryFile)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := v.writeMemory(path, false); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		if f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			defer f.Close()
		}
		t.Fatal("writeMemory blocked on a FIFO named memory")
	}
	if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() {
		t.Errorf("memory is %v (%v), want a regular file", st.Mode(), err)
	}
}
