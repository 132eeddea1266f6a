package vmm

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/migrate/snapshot"
	"golang.org/x/sys/unix"
)

// The other things a snapshot was trusted with, each already refused:
// these tests keep them so.

// TestRestoreRefusesAVCPUWithoutCPUID: a vCPU section with an empty CPUID
// list would restore a guest whose CPU cannot be checked against this
// host; Restore refuses it before any vCPU exists.
func TestRestoreRefusesAVCPUWithoutCPUID(t *testing.T) {
	dir, disk := writeSnapshot(t, func(c *snapshotConfig, _ *snapshot.MemoryInfo, v *[]vcpuState) {
		c.HostCPUID = []kvm.CPUIDEntry2{{Function: 0}}
		(*v)[0].CPUID = nil
	})
	if _, err := readSnapshot(dir); err != nil {
		t.Fatalf("readSnapshot: %v (the CPUID is checked against the host's, in Restore)", err)
	}
	v, err := Restore(RestoreOptions{Dir: dir, DiskPaths: map[string]string{disk: disk}})
	if err == nil {
		v.Close()
		t.Fatal("Restore accepted a vCPU without CPUID")
	}
	if strings.Contains(err.Error(), DefaultKVMPath) {
		t.Skipf("no usable KVM here: %v", err)
	}
	if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), "vCPU 0: ") || !strings.Contains(err.Error(), "CPUID is missing") {
		t.Errorf("%v, want ErrBadSnapshot saying vCPU 0's CPUID is missing", err)
	}
}

// TestRestoreAndReceiveRefuseMoreRAMThanTheHostHas: 1 TiB of guest RAM
// declared in a snapshot or a migration's hello is refused from the
// configuration alone, before the memory file is looked at or KVM opened.
func TestRestoreAndReceiveRefuseMoreRAMThanTheHostHas(t *testing.T) {
	const tib = 1 << 40
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil || uint64(si.Totalram)*uint64(si.Unit) >= tib {
		t.Skip("this host has 1 TiB of RAM or cannot say")
	}
	dir, _ := writeSnapshot(t, func(c *snapshotConfig, m *snapshot.MemoryInfo, _ *[]vcpuState) {
		c.MemoryBytes = tib
	})
	_, err := Restore(RestoreOptions{Dir: dir, TrustSnapshotPaths: true, KVMPath: filepath.Join(t.TempDir(), "no-kvm")})
	if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), "guest memory of 1048576 MiB is more than this host's") {
		t.Errorf("restore: %v, want ErrBadSnapshot saying the guest's memory is more than the host's", err)
	}
	raw, _ := json.Marshal(migrationConfig{Config: snapshotConfig{CPUs: 1, MemoryBytes: tib}, CPUIDs: make([][]kvm.CPUIDEntry2, 1)})
	d := &migrationDest{opts: ReceiveOptions{TrustSourcePaths: true, KVMPath: filepath.Join(t.TempDir(), "no-kvm")}}
	_, err = d.Prepare(migrate.Hello{Config: raw, Regions: []snapshot.MemoryRegion{{GPA: 0, Size: tib}}})
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "more than this host's") || d.v != nil {
		t.Errorf("receive: %v, want the guest's memory refused before any VM is built", err)
	}
}

// TestRestoreRefusesAFIFOStateFileWithoutHanging: a FIFO planted as the
// vmstate is refused at once, not waited on for a writer.
func TestRestoreRefusesAFIFOStateFileWithoutHanging(t *testing.T) {
	dir, _ := writeSnapshot(t, nil)
	state := filepath.Join(dir, SnapshotStateFile)
	os.Remove(state)
	if err := syscall.Mkfifo(state, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Restore(RestoreOptions{Dir: dir, TrustSnapshotPaths: true, KVMPath: filepath.Join(t.TempDir(), "no-kvm")})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), state+" is a FIFO") {
			t.Errorf("%v, want an error saying %s is a FIFO", err, state)
		}
	case <-time.After(5 * time.Second):
		if w, err := os.OpenFile(state, os.O_RDWR, 0); err == nil {
			defer w.Close()
		}
		t.Fatal("Restore blocked on a FIFO vmstate")
	}
}
