package vmm_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

// kvmVMFds counts this process's open KVM VM descriptors.
func kvmVMFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == "anon_inode:kvm-vm" {
			n++
		}
	}
	return n
}

// waitVMFds waits up to a second for the count of KVM VM descriptors to
// be want.
func waitVMFds(t *testing.T, want int, after string) {
	t.Helper()
	waitForWithin(t, time.Second, fmt.Sprintf("%d KVM VMs open %s", want, after), func() bool { return kvmVMFds(t) == want })
}

// New takes the VM PrepareHost made for its KVM device instead of making
// a second one, and the guest runs in it.
func TestNewTakesThePreparedHost(t *testing.T) {
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildHello(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := kvmVMFds(t)
	vmm.PrepareHost(vmm.DefaultKVMPath)
	waitVMFds(t, base+1, "after PrepareHost")
	cons := &console{}
	log, _ := newLogger()
	v, err := vmm.New(vmm.Config{KernelPath: elf, PreferPVH: true, CPUs: 1, MemoryBytes: 32 << 20, Console: cons, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if n := kvmVMFds(t); n != base+1 {
		t.Errorf("%d KVM VMs open after New, want %d: New did not take the prepared one", n, base+1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if reason, err := v.Run(ctx); err != nil || reason != vmm.StopPoweroff {
		t.Errorf("Run: %v, %v; want a poweroff", reason, err)
	}
	if !strings.Contains(cons.String(), tinyguest.HelloLine) {
		t.Errorf("console %q lacks %q", cons.String(), tinyguest.HelloLine)
	}
	v.Close()
	waitVMFds(t, base, "after Close")
}

// A preparation for a device that does not exist changes nothing: New
// reports the device as it always does; one for another device is left
// for a New of that device, and released by the next PrepareHost.
func TestPreparedHostOfAnotherDevice(t *testing.T) {
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildHello(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no-kvm")
	vmm.PrepareHost(missing)
	log, _ := newLogger()
	_, err = vmm.New(vmm.Config{KernelPath: elf, PreferPVH: true, CPUs: 1, MemoryBytes: 32 << 20, Console: &console{}, Logger: log, KVMPath: missing})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("New with a prepared missing device: %v, want it named as missing", err)
	}

	base := kvmVMFds(t)
	vmm.PrepareHost(vmm.DefaultKVMPath)
	waitVMFds(t, base+1, "after PrepareHost")
	// A New of another device neither takes nor releases it...
	if _, err := vmm.New(vmm.Config{KernelPath: elf, PreferPVH: true, CPUs: 1, MemoryBytes: 32 << 20, Console: &console{}, Logger: log, KVMPath: missing}); err == nil {
		t.Fatal("New of a missing device succeeded")
	}
	if n := kvmVMFds(t); n != base+1 {
		t.Errorf("%d KVM VMs open after a New of another device, want the prepared one only (%d)", n, base+1)
	}
	// ...and the next PrepareHost releases it.
	vmm.PrepareHost(missing)
	waitVMFds(t, base, "after a second PrepareHost")
	vmm.PrepareHost(missing + "-too") // leave nothing prepared for /dev/kvm
}
