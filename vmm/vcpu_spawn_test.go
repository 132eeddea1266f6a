package vmm_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

// vcpuThreads counts the goroutines of vCPU threads, started or not yet
// (a goroutine not yet run shows only the go statement's wrapper, but
// every one names its creator).
func vcpuThreads() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "created by github.com/ternvm/tern/vmm.(*VM).spawnVCPUs")
}

// waitNoVCPUThreads fails t unless every vCPU thread ends within a second.
func waitNoVCPUThreads(t *testing.T, after string) {
	t.Helper()
	waitForWithin(t, time.Second, "every vCPU thread to end after "+after, func() bool { return vcpuThreads() == 0 })
}

// within runs f, failing t if it has not returned in 10 seconds (it is
// then left running: a vCPU thread that never ends blocks it for good).
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s has not returned after 10 s: a vCPU thread never ended?", what)
		return nil
	}
}

// New starts the vCPUs' threads before it loads the guest; a New that
// fails after that (here: an initrd too large for the guest's RAM) must
// end them, not leave them waiting for a configuration that never comes.
func TestFailedNewEndsTheVCPUThreadsItStarted(t *testing.T) {
	tinyguest.RequireKVM(t)
	dir := t.TempDir()
	elf, err := tinyguest.BuildHello(dir)
	if err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initrd")
	if err := os.WriteFile(initrd, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(initrd, 64<<20); err != nil { // sparse: larger than the 32 MiB guest
		t.Fatal(err)
	}
	log, _ := newLogger()
	waitNoVCPUThreads(t, "the test began")
	err = within(t, "New", func() error {
		_, err := vmm.New(vmm.Config{KernelPath: elf, InitrdPath: initrd, PreferPVH: true, CPUs: 2, MemoryBytes: 32 << 20, Console: &console{}, Logger: log})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "initrd") {
		t.Fatalf("New with a 64 MiB initrd in 32 MiB of RAM: %v, want an error naming the initrd", err)
	}
	waitNoVCPUThreads(t, "New failed")
}

// A VM built and closed without ever starting ends its configured vCPUs'
// threads.
func TestClosedUnstartedVMEndsItsVCPUThreads(t *testing.T) {
	v, _, _ := newGuest(t, 32<<20, tinyguest.BuildHello)
	if n := vcpuThreads(); n != 1 {
		t.Errorf("%d vCPU threads after New, want the guest's 1", n)
	}
	if err := within(t, "Close", v.Close); err != nil {
		t.Fatal(err)
	}
	waitNoVCPUThreads(t, "Close")
}

// Start hands the launch to the boot vCPU's thread, which orders the
// others: when BeforeRun fails there, every vCPU thread of an SMP guest
// must end (none left waiting for an order to run) and Start must say why.
func TestFailedLaunchEndsEveryVCPUThread(t *testing.T) {
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildHello(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log, _ := newLogger()
	waitNoVCPUThreads(t, "the test began")
	refused := errors.New("confinement refused")
	var mu sync.Mutex
	var events []vmm.EventKind
	v, err := vmm.New(vmm.Config{KernelPath: elf, PreferPVH: true, CPUs: 3, MemoryBytes: 32 << 20, Console: &console{}, Logger: log,
		BeforeRun: func() error { return refused },
		OnEvent: func(e vmm.Event) {
			mu.Lock()
			events = append(events, e.Kind)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	// No deferred Close: with a vCPU thread left waiting it would hang.
	if err := within(t, "Start", v.Start); !errors.Is(err, refused) {
		t.Fatalf("Start: %v, want the BeforeRun error", err)
	}
	waitNoVCPUThreads(t, "Start failed")
	if err := within(t, "Close", v.Close); err != nil {
		t.Errorf("Close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 0 {
		t.Errorf("events of a VM whose Start failed: %v, want none (it never ran)", events)
	}
}

// A VM closed before it started refuses to start instead of waiting for
// vCPU threads that have ended.
func TestStartAfterCloseFails(t *testing.T) {
	v, _, _ := newGuest(t, 32<<20, tinyguest.BuildHello)
	if err := within(t, "Close", v.Close); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := within(t, "Start", v.Start); !errors.Is(err, vmm.ErrNotRunning) {
		t.Errorf("Start after Close: %v, want ErrNotRunning", err)
	}
}
