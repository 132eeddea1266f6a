package vmm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

// The counter guest has no keyboard handler: it ignores Ctrl+Alt+Del,
// so Shutdown runs into its deadline and stops the guest itself.
func TestShutdownStopsAGuestThatIgnoresIt(t *testing.T) {
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildCounter(t.TempDir(), tinyguest.CounterOptions{TickEvery: tickEvery})
	if err != nil {
		t.Fatal(err)
	}
	evs := &eventLog{}
	cons := &console{}
	log, hook := newLogger()
	v, err := vmm.New(vmm.Config{KernelPath: elf, PreferPVH: true, CPUs: 1, MemoryBytes: guestRAM, Console: cons, Logger: log, OnEvent: evs.add})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, v, cons, hook)
	r.waitTicks(t, 1)
	// Paused, it is resumed so that it could act on the keys.
	if err := v.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err = v.Shutdown(ctx)
	if !errors.Is(err, vmm.ErrShutdownTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown of a guest that ignores Ctrl+Alt+Del = %v, want ErrShutdownTimeout and the deadline", err)
	}
	res := r.wait(t)
	if res.reason != vmm.StopShutdownTimeout || res.err != nil {
		t.Errorf("Wait = %v, %v; want %v, nil", res.reason, res.err, vmm.StopShutdownTimeout)
	}
	if s := v.State(); s != vmm.StateStopped {
		t.Errorf("state %v after Shutdown, want stopped", s)
	}
	// Events reach OnEvent on a goroutine of their own: the stopped one
	// may come after Wait returns.
	waitFor(t, "the stopped event", func() bool { return evs.has(vmm.EventStopped) })
	if !evs.has(vmm.EventResumed) {
		t.Errorf("events %v; want resumed (to shut down) and stopped", evs.kinds())
	}
	// Once stopped, there is nobody to ask.
	if err := v.Shutdown(context.Background()); !errors.Is(err, vmm.ErrNotRunning) {
		t.Errorf("Shutdown of a stopped VM = %v, want ErrNotRunning", err)
	}
}

// A guest that powered off has nobody left to ask.
func TestShutdownOfAStoppedVM(t *testing.T) {
	r := startGuest(t, guestRAM, tinyguest.BuildHello)
	if res := r.wait(t); res.reason != vmm.StopPoweroff {
		t.Fatalf("hello guest ended with %v, %v", res.reason, res.err)
	}
	if err := r.vm.Shutdown(context.Background()); !errors.Is(err, vmm.ErrNotRunning) {
		t.Fatalf("Shutdown of a VM that powered off = %v, want ErrNotRunning", err)
	}
}
