package vmm_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

// BeforeRun is where tern confines itself (its seccomp filter): it must
// come after everything the VM's build does and before any guest code.
func TestBeforeRunComesJustBeforeTheGuestRuns(t *testing.T) {
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildCounter(t.TempDir(), tinyguest.CounterOptions{TickEvery: tickEvery})
	if err != nil {
		t.Fatal(err)
	}
	cons := &console{}
	log, hook := newLogger()
	var v *vmm.VM
	var called atomic.Int32
	cfg := vmm.Config{KernelPath: elf, PreferPVH: true, MemoryBytes: guestRAM, Console: cons, Logger: log,
		BeforeRun: func() error {
			called.Add(1)
			if st := v.State(); st != vmm.StateCreated {
				t.Errorf("BeforeRun saw state %v, want %v", st, vmm.StateCreated)
			}
			if out := cons.String(); out != "" {
				t.Errorf("the guest wrote %q before BeforeRun", out)
			}
			return nil
		}}
	if v, err = vmm.New(cfg); err != nil {
		t.Fatal(err)
	}
	if n := called.Load(); n != 0 {
		t.Fatalf("BeforeRun called %d times by New", n)
	}
	r := start(t, v, cons, hook)
	r.waitTicks(t, 2)
	if n := called.Load(); n != 1 {
		t.Errorf("BeforeRun called %d times, want 1", n)
	}
	v.Stop()
	r.wait(t)
}

func TestBeforeRunErrorFailsTheStart(t *testing.T) {
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildCounter(t.TempDir(), tinyguest.CounterOptions{TickEvery: tickEvery})
	if err != nil {
		t.Fatal(err)
	}
	cons := &console{}
	refused := errors.New("confinement refused")
	v, err := vmm.New(vmm.Config{KernelPath: elf, PreferPVH: true, MemoryBytes: guestRAM, Console: cons,
		BeforeRun: func() error { return refused }})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if _, err := v.Run(ctx); !errors.Is(err, refused) {
		t.Fatalf("Run: %v, want the BeforeRun error", err)
	}
	time.Sleep(quiet)
	if out := cons.String(); out != "" {
		t.Errorf("the guest ran after a failed BeforeRun: %q", out)
	}
}
