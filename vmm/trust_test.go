package vmm

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/migrate/snapshot"
	virtionet "github.com/ternvm/tern/virtio/net"
	"github.com/ternvm/tern/virtio/vsock"
)

// hostNamingSnapshot is a snapshot whose configuration names a read-write
// disk image (a root-only file), a TAP on a bridge and a vsock socket: what
// a crafted snapshot would name to take over host resources.
func hostNamingSnapshot(t *testing.T) (dir, disk string) {
	t.Helper()
	dir, disk = writeSnapshot(t, func(c *snapshotConfig, _ *snapshot.MemoryInfo, _ *[]vcpuState) {
		c.Nets = []virtionet.Config{{TAP: "tap-victim", Bridge: "br-prod"}}
		c.Vsock = &vsock.Config{GuestCID: 3, SocketPath: "/run/victim.sock"}
	})
	if err := os.Chmod(disk, 0o400); err != nil {
		t.Fatal(err)
	}
	return dir, disk
}

func unconfirmedOf(t *testing.T, err error) []HostResource {
	t.Helper()
	var ue *UnconfirmedError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnconfirmed) || !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("error %v: want an *UnconfirmedError matching ErrUnconfirmed and ErrInvalidConfig", err)
	}
	return ue.Resources
}

func TestRestoreRefusesHostResourcesTheCallerDidNotConfirm(t *testing.T) {
	dir, disk := hostNamingSnapshot(t)
	// A KVM device that does not exist: had Restore got as far as
	// opening anything, it would fail on that instead.
	_, err := Restore(RestoreOptions{Dir: dir, KVMPath: filepath.Join(t.TempDir(), "no-kvm")})
	got := unconfirmedOf(t, err)
	want := []HostResource{
		{Kind: ResourceDisk, Name: disk},
		{Kind: ResourceTAP, Name: "tap-victim"},
		{Kind: ResourceBridge, Name: "br-prod"},
		{Kind: ResourceVsockSocket, Name: "/run/victim.sock"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("unconfirmed %+v, want %+v", got, want)
	}
	for _, s := range []string{"snapshot " + dir, "disk image " + disk + " (read-write)", "TAP tap-victim", "bridge br-prod", "vsock socket /run/victim.sock"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message %q does not name %q", err, s)
		}
	}
}

// SnapshotResources lists what Restore would ask to have confirmed, and
// nothing for a snapshot naming no host resource.
func TestSnapshotResourcesListsWhatRestoreWouldAskFor(t *testing.T) {
	dir, disk := hostNamingSnapshot(t)
	got, err := SnapshotResources(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []HostResource{
		{Kind: ResourceDisk, Name: disk},
		{Kind: ResourceTAP, Name: "tap-victim"},
		{Kind: ResourceBridge, Name: "br-prod"},
		{Kind: ResourceVsockSocket, Name: "/run/victim.sock"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("SnapshotResources = %+v, want %+v", got, want)
	}
	bare, _ := writeSnapshot(t, func(c *snapshotConfig, _ *snapshot.MemoryInfo, _ *[]vcpuState) { c.Disks = nil })
	if got, err := SnapshotResources(bare); err != nil || len(got) != 0 {
		t.Errorf("a snapshot naming nothing: %+v, %v; want none, nil", got, err)
	}
	if _, err := SnapshotResources(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing snapshot: %v, want fs.ErrNotExist", err)
	}
}

func TestRestoreConfirmationsAndOverrides(t *testing.T) {
	dir, disk := hostNamingSnapshot(t)
	ls, err := readSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(t.TempDir(), "moved.img")
	os.WriteFile(moved, make([]byte, 1<<20), 0o600)
	all := RestoreOptions{
		DiskPaths: map[string]string{disk: disk}, TAPs: map[string]string{"tap-victim": "tap-victim"},
		Bridges: map[string]string{"br-prod": "br-prod"}, VsockSocket: "/run/victim.sock",
	}
	for name, c := range map[string]struct {
		opts RestoreOptions
		left []string // kinds still unconfirmed; nil: accepted
	}{
		"nothing confirmed": {RestoreOptions{}, []string{ResourceDisk, ResourceTAP, ResourceBridge, ResourceVsockSocket}},
		"the disk moved":    {RestoreOptions{DiskPaths: map[string]string{disk: moved}}, []string{ResourceTAP, ResourceBridge, ResourceVsockSocket}},
		"the TAP replaced, not its bridge": {RestoreOptions{DiskPaths: all.DiskPaths, TAPs: map[string]string{"tap-victim": "tap1"}, VsockSocket: "/tmp/v.sock"},
			[]string{ResourceBridge}},
		"each confirmed as itself":   {all, nil},
		"TrustSnapshotPaths":         {RestoreOptions{TrustSnapshotPaths: true}, nil},
		"trust with a disk override": {RestoreOptions{TrustSnapshotPaths: true, DiskPaths: map[string]string{disk: moved}}, nil},
		"every resource replaced":    {RestoreOptions{DiskPaths: map[string]string{disk: moved}, TAPs: map[string]string{"tap-victim": "tap1"}, Bridges: map[string]string{"br-prod": "br0"}, VsockSocket: "/tmp/v.sock"}, nil},
	} {
		_, err := ls.config(c.opts, dir)
		if c.left == nil {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		var kinds []string
		for _, r := range unconfirmedOf(t, err) {
			kinds = append(kinds, r.Kind)
		}
		if !slices.Equal(kinds, c.left) {
			t.Errorf("%s: unconfirmed %v, want %v", name, kinds, c.left)
		}
	}
	cfg, err := ls.config(RestoreOptions{DiskPaths: map[string]string{disk: moved}, TAPs: map[string]string{"tap-victim": "tap1"}, Bridges: map[string]string{"br-prod": "br0"}, VsockSocket: "/tmp/v.sock"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Disks[0].Path != moved || cfg.Nets[0].TAP != "tap1" || cfg.Nets[0].Bridge != "br0" || cfg.Vsock.SocketPath != "/tmp/v.sock" {
		t.Errorf("replacements not applied: %+v %+v %+v", cfg.Disks[0], cfg.Nets[0], *cfg.Vsock)
	}
	if _, err := ls.config(RestoreOptions{TrustSnapshotPaths: true, Bridges: map[string]string{"br-other": "br0"}}, dir); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "bridge override br-other") {
		t.Errorf("an override of a bridge the snapshot lacks: %v", err)
	}
}

// TestReceiveRefusesHostResourcesTheCallerDidNotConfirm: an incoming
// migration's configuration comes from the peer, and is held to the same
// rule, checked in Prepare before KVM or any device is opened.
func TestReceiveRefusesHostResourcesTheCallerDidNotConfirm(t *testing.T) {
	_, disk := hostNamingSnapshot(t)
	cfg := snapshotConfig{CPUs: 1, MemoryBytes: 16 << 20,
		Disks: []DiskConfig{{}}, Nets: []virtionet.Config{{TAP: "tap-victim"}},
		Vsock: &vsock.Config{GuestCID: 3, SocketPath: "/run/victim.sock"}}
	cfg.Disks[0].Path = disk
	raw, _ := json.Marshal(migrationConfig{Config: cfg, CPUIDs: make([][]kvm.CPUIDEntry2, 1)})
	hello := migrate.Hello{Config: raw, Regions: []snapshot.MemoryRegion{{GPA: 0, Size: 16 << 20}}}
	noKVM := filepath.Join(t.TempDir(), "no-kvm")

	d := &migrationDest{opts: ReceiveOptions{KVMPath: noKVM}}
	_, err := d.Prepare(hello)
	if got := unconfirmedOf(t, err); len(got) != 3 || !strings.Contains(err.Error(), "the incoming VM names") {
		t.Errorf("unconfirmed %+v (%v), want the disk, the TAP and the vsock socket", got, err)
	}
	if d.v != nil {
		t.Error("Prepare built a VM before refusing")
	}
	// Confirmed (or trusted), Prepare goes on to open KVM.
	for _, o := range []ReceiveOptions{
		{KVMPath: noKVM, TrustSourcePaths: true},
		{KVMPath: noKVM, DiskPaths: map[string]string{disk: disk}, TAPs: map[string]string{"tap-victim": "tap-victim"}, VsockSocket: "/tmp/v.sock"},
	} {
		d := &migrationDest{opts: o}
		if _, err := d.Prepare(hello); errors.Is(err, ErrUnconfirmed) || err == nil || !strings.Contains(err.Error(), noKVM) {
			t.Errorf("%+v: %v, want the missing KVM device", o, err)
		}
		if d.v != nil {
			d.v.Close()
		}
	}
}
