package vmm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternvm/tern/migrate/snapshot"
	"github.com/ternvm/tern/virtio/block"
)

// writeSnapshot makes a snapshot directory of a 1-vCPU, 16 MiB guest with
// one disk, as Snapshot lays it out; edit changes the sections first.
func writeSnapshot(t *testing.T, edit func(cfg *snapshotConfig, mem *snapshot.MemoryInfo, vcpus *[]vcpuState)) (dir, disk string) {
	t.Helper()
	dir = t.TempDir()
	disk = filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	const size = 16 << 20
	cfg := snapshotConfig{CPUs: 1, MemoryBytes: size, Disks: []DiskConfig{{Config: block.Config{Path: disk, ID: "data"}}}}
	mem := snapshot.MemoryInfo{Kind: "full", PageSize: snapshot.PageSize, Regions: []snapshot.MemoryRegion{{GPA: 0, Size: size}}}
	vcpus := []vcpuState{{ID: 0}}
	if edit != nil {
		edit(&cfg, &mem, &vcpus)
	}
	st, _ := snapshot.NewState(nil)
	st.PutJSON("config", cfg)
	st.PutJSON("vm", vmState{})
	for i, v := range vcpus {
		st.PutJSON("vcpu/"+string(rune('0'+i)), v)
	}
	for _, name := range deviceNames(cfg) {
		st.PutJSON("device/"+name, deviceState{Name: name})
	}
	st.PutJSON("memory", mem)
	if err := snapshot.WriteStateFile(filepath.Join(dir, SnapshotStateFile), st.Sections()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, SnapshotMemoryFile))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	return dir, disk
}

// deviceNames names the virtio devices cfg makes, as addConfiguredVirtio
// does.
func deviceNames(cfg snapshotConfig) []string {
	var names []string
	for i := range cfg.Disks {
		names = append(names, fmt.Sprintf("disk%d", i))
	}
	for i := range cfg.Nets {
		names = append(names, fmt.Sprintf("net%d", i))
	}
	if cfg.Vsock != nil {
		names = append(names, "vsock")
	}
	if cfg.Balloon != nil {
		names = append(names, "balloon")
	}
	if cfg.RNG {
		names = append(names, "rng")
	}
	return names
}

func TestReadSnapshotAndOverrides(t *testing.T) {
	dir, disk := writeSnapshot(t, nil)
	ls, err := readSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(t.TempDir(), "moved.img")
	os.WriteFile(moved, make([]byte, 1<<20), 0o600)
	cfg, err := ls.config(RestoreOptions{DiskPaths: map[string]string{disk: moved}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Disks[0].Path != moved || cfg.Disks[0].ID != "data" || cfg.CPUs != 1 {
		t.Errorf("restored config %+v: want the disk moved to %s, serial and vCPUs kept", cfg, moved)
	}
	for name, opts := range map[string]RestoreOptions{
		"an override of a disk the snapshot lacks": {DiskPaths: map[string]string{"/nope.img": moved}},
		"an override to a missing image":           {DiskPaths: map[string]string{disk: "/missing/disk.img"}},
		"a TAP override without a network":         {TAPs: map[string]string{"tap0": "tap1"}},
		"a vsock socket without a vsock device":    {VsockSocket: "/tmp/v.sock"},
	} {
		if _, err := ls.config(opts, dir); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestReadSnapshotRefusesWhatItCannotRestore(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*snapshotConfig, *snapshot.MemoryInfo, *[]vcpuState)
		want string
	}{
		{"a diff", func(_ *snapshotConfig, m *snapshot.MemoryInfo, _ *[]vcpuState) {
			m.Kind, m.Dirty = "diff", snapshot.NewBitmap(16<<20)
		}, "merge it onto its full snapshot first"},
		{"vCPU sections missing", func(c *snapshotConfig, _ *snapshot.MemoryInfo, _ *[]vcpuState) { c.CPUs = 2 }, "1 vCPU sections for 2 vCPUs"},
		{"memory of another size", func(c *snapshotConfig, _ *snapshot.MemoryInfo, _ *[]vcpuState) { c.MemoryBytes = 32 << 20 }, "describes 16777216 bytes, the configuration 33554432"},
		{"a region where RAM is not", func(_ *snapshotConfig, m *snapshot.MemoryInfo, _ *[]vcpuState) { m.Regions[0].GPA = 1 << 20 }, "memory region 0"},
		{"a vCPU section holding another vCPU", func(_ *snapshotConfig, _ *snapshot.MemoryInfo, v *[]vcpuState) { (*v)[0].ID = 3 }, "section vcpu/0 holds vCPU 3"},
	} {
		dir, _ := writeSnapshot(t, c.edit)
		_, err := readSnapshot(dir)
		if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrBadSnapshot saying %q", c.name, err, c.want)
		}
	}
	dir, _ := writeSnapshot(t, nil)
	os.Truncate(filepath.Join(dir, SnapshotMemoryFile), 4096)
	if _, err := readSnapshot(dir); err == nil || !strings.Contains(err.Error(), "memory file") {
		t.Errorf("a short memory file: %v", err)
	}
	os.Remove(filepath.Join(dir, SnapshotStateFile))
	if _, err := readSnapshot(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no state file: %v", err)
	}
}

func TestMergeSnapshotRefusesMismatches(t *testing.T) {
	full, _ := writeSnapshot(t, nil)
	other, _ := writeSnapshot(t, nil)
	if err := MergeSnapshot(full, other); err == nil || !strings.Contains(err.Error(), "not a diff") {
		t.Errorf("merging a full snapshot as a diff: %v", err)
	}
	diff, _ := writeSnapshot(t, func(_ *snapshotConfig, m *snapshot.MemoryInfo, _ *[]vcpuState) {
		m.Kind, m.Dirty = "diff", snapshot.NewBitmap(16<<20)
	})
	if err := MergeSnapshot(diff, diff); err == nil || !strings.Contains(err.Error(), "the base must be full") {
		t.Errorf("a diff as the base: %v", err)
	}
	if err := MergeSnapshot(full, diff); err != nil {
		t.Errorf("a matching diff: %v", err)
	}
	if _, err := readSnapshot(full); err != nil {
		t.Errorf("the merged base no longer reads: %v", err)
	}
}
