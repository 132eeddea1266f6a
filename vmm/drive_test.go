package vmm_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/virtio/block"
	"github.com/ternvm/tern/vmm"
)

// A guest reading its disk's capacity from the virtio-mmio configuration
// space sees the new size once UpdateDrive swaps the image.
func TestUpdateDriveGuestSeesNewCapacity(t *testing.T) {
	tinyguest.RequireKVM(t)
	dir := t.TempDir()
	small, big := filepath.Join(dir, "small.img"), filepath.Join(dir, "big.img")
	if err := os.WriteFile(small, make([]byte, 8*512), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, make([]byte, 40*512), 0o600); err != nil {
		t.Fatal(err)
	}
	elf, err := tinyguest.BuildDiskCap(dir, boot.VirtioMMIOBase+0x100) // disk0's window
	if err != nil {
		t.Fatal(err)
	}
	cons := &console{}
	log, hook := newLogger()
	v, err := vmm.New(vmm.Config{
		KernelPath: elf, PreferPVH: true, CPUs: 1, MemoryBytes: 32 << 20, Console: cons, Logger: log,
		Disks: []vmm.DiskConfig{{Config: block.Config{Path: small, ID: "data"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, v, cons, hook)
	waitFor(t, "the guest to print the capacity", func() bool { return strings.Contains(cons.String(), tinyguest.CapPrefix) })

	if err := v.UpdateDrive("nope", big); !errors.Is(err, vmm.ErrNotFound) {
		t.Errorf("UpdateDrive of an unknown drive: %v, want ErrNotFound", err)
	}
	if err := v.UpdateDrive("data", filepath.Join(dir, "missing.img")); err == nil {
		t.Error("UpdateDrive to a missing file succeeded")
	}
	if err := v.UpdateDrive("data", big); err != nil {
		t.Fatal(err)
	}
	if res := r.wait(t); res.err != nil || res.reason != vmm.StopPoweroff {
		t.Fatalf("Run = %v, %v; want the guest's power-off once it saw the change", res.reason, res.err)
	}
	var caps []string
	for _, l := range strings.Split(cons.String(), "\n") {
		if c, ok := strings.CutPrefix(l, tinyguest.CapPrefix); ok {
			caps = append(caps, c)
		}
	}
	if strings.Join(caps, " ") != "00000008 00000028" {
		t.Errorf("guest saw capacities %v, want 8 then 40 (0x28) sectors", caps)
	}
}
