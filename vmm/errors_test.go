package vmm

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/ternvm/tern/migrate/snapshot"
	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/virtio/block"
)

// Validate used to flatten its causes with %v: a caller could not tell a
// missing kernel from a malformed one without parsing the message.
func TestValidateKeepsCauses(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	kernel, err := tinyguest.BuildHello(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]Config{
		"kernel": {KernelPath: missing},
		"initrd": {KernelPath: kernel, InitrdPath: missing},
		"disk":   {KernelPath: kernel, Disks: []DiskConfig{{Config: block.Config{Path: missing}}}},
	} {
		err := cfg.Validate()
		if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("missing %s: %v, want fs.ErrNotExist and ErrInvalidConfig", name, err)
		}
		if _, err := New(cfg); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("New with a missing %s: %v, want fs.ErrNotExist", name, err)
		}
	}
}

// readSnapshot flattened the snapshot package's sentinels with %v.
func TestRestoreKeepsSnapshotSentinels(t *testing.T) {
	dir, disk := writeSnapshot(t, nil)
	state := filepath.Join(dir, SnapshotStateFile)
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	good := append([]byte(nil), b...)
	b[len(b)/2] ^= 0xff
	os.WriteFile(state, b, 0o600)
	if _, err := Restore(RestoreOptions{Dir: dir}); !errors.Is(err, snapshot.ErrChecksum) {
		t.Errorf("a corrupt state file: %v, want snapshot.ErrChecksum", err)
	}
	os.WriteFile(state, good, 0o600)

	os.Truncate(filepath.Join(dir, SnapshotMemoryFile), 4096)
	if _, err := Restore(RestoreOptions{Dir: dir}); !errors.Is(err, ErrBadSnapshot) || !errors.Is(err, snapshot.ErrTruncated) {
		t.Errorf("a short memory file: %v, want ErrBadSnapshot and snapshot.ErrTruncated", err)
	}
	os.Truncate(filepath.Join(dir, SnapshotMemoryFile), 16<<20)

	os.Remove(disk)
	if _, err := Restore(RestoreOptions{Dir: dir, TrustSnapshotPaths: true}); !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("a missing disk: %v, want fs.ErrNotExist and ErrInvalidConfig", err)
	}
}
