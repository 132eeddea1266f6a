package snapshot

import (
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"
)

// A local user who can write into the snapshot directory plants links
// under the names tern writes; tern (often root) must not write through
// them.
func TestWriteStateFileDoesNotFollowPlantedLinks(t *testing.T) {
	dir := t.TempDir()
	victimDir := t.TempDir()
	victim := filepath.Join(victimDir, "shadow")
	if err := os.WriteFile(victim, []byte("root only"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "vmstate")
	for _, name := range []string{"vmstate", "vmstate.tmp"} {
		if err := os.Symlink(victim, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteStateFile(path, sampleSections()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "root only" {
		t.Fatalf("the link's target was overwritten: %q", b)
	}
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
		t.Fatalf("vmstate is %v (%v), want a regular file of mode 0600", st.Mode(), err)
	}
	if _, err := ReadStateFile(path); err != nil {
		t.Fatal(err)
	}
}

func TestWriteStateFileIsNotStalledByAPlantedFIFO(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vmstate")
	if err := syscall.Mkfifo(path+".tmp", 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- WriteStateFile(path, sampleSections()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		// Unblock the writer so the test process can end.
		if f, err := os.OpenFile(path+".tmp", os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			defer f.Close()
		}
		t.Fatal("WriteStateFile blocked on a FIFO named vmstate.tmp")
	}
	if names := dirNames(t, dir); !reflect.DeepEqual(names, []string{"vmstate", "vmstate.tmp"}) {
		t.Errorf("directory holds %v", names)
	}
}
