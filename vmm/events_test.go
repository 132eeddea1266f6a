package vmm_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

// eventLog collects what OnEvent hears.
type eventLog struct {
	mu sync.Mutex
	ev []vmm.Event
}

func (l *eventLog) add(e vmm.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ev = append(l.ev, e)
}

func (l *eventLog) kinds() []vmm.EventKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ks []vmm.EventKind
	for _, e := range l.ev {
		ks = append(ks, e.Kind)
	}
	return ks
}

func (l *eventLog) has(k vmm.EventKind) bool {
	for _, x := range l.kinds() {
		if x == k {
			return true
		}
	}
	return false
}

func TestEventsAndStateFollowTheLifecycle(t *testing.T) {
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildCounter(t.TempDir(), tinyguest.CounterOptions{TickEvery: tickEvery})
	if err != nil {
		t.Fatal(err)
	}
	evs := &eventLog{}
	// A slow consumer must not hold the guest up: the events queue.
	slow := func(e vmm.Event) { time.Sleep(time.Millisecond); evs.add(e) }
	cons := &console{}
	log, hook := newLogger()
	v, err := vmm.New(vmm.Config{KernelPath: elf, PreferPVH: true, CPUs: 1, MemoryBytes: guestRAM, Console: cons, Logger: log, OnEvent: slow})
	if err != nil {
		t.Fatal(err)
	}
	if s := v.State(); s != vmm.StateCreated {
		t.Errorf("State after New = %v, want created", s)
	}
	if err := v.Start(); err != nil {
		t.Fatal(err)
	}
	r := &running{vm: v, cons: cons, log: hook}
	defer v.Close()
	if s := v.State(); s != vmm.StateRunning {
		t.Errorf("State after Start = %v, want running", s)
	}
	waitFor(t, "boot done", func() bool { return evs.has(vmm.EventBootDone) })
	r.waitTicks(t, 1)
	if err := v.Pause(); err != nil {
		t.Fatal(err)
	}
	if s := v.State(); s != vmm.StatePaused {
		t.Errorf("State after Pause = %v, want paused", s)
	}
	if err := v.Resume(); err != nil {
		t.Fatal(err)
	}
	if s := v.State(); s != vmm.StateRunning {
		t.Errorf("State after Resume = %v, want running", s)
	}
	v.Stop()
	reason, err := v.Wait(context.Background())
	if reason != vmm.StopRequested || err != nil {
		t.Fatalf("Wait = %v, %v", reason, err)
	}
	if s := v.State(); s != vmm.StateStopped {
		t.Errorf("State after Wait = %v, want stopped", s)
	}
	want := []vmm.EventKind{vmm.EventStarted, vmm.EventBootDone, vmm.EventPaused, vmm.EventResumed, vmm.EventStopped}
	waitFor(t, "the stopped event", func() bool { return len(evs.kinds()) >= len(want) })
	got := evs.kinds()
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	evs.mu.Lock()
	last, boot := evs.ev[4], evs.ev[1]
	evs.mu.Unlock()
	if last.Reason != vmm.StopRequested || last.Err != nil {
		t.Errorf("stopped event %v, want a requested stop without error", last)
	}
	if boot.BootTime <= 0 {
		t.Errorf("boot-done event without a boot time: %v", boot)
	}
}

func TestStoppedEventCarriesThePoweroff(t *testing.T) {
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildHello(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan vmm.Event, 1)
	on := func(e vmm.Event) {
		if e.Kind == vmm.EventStopped {
			stopped <- e
		}
	}
	log, _ := newLogger()
	v, err := vmm.New(vmm.Config{KernelPath: elf, PreferPVH: true, CPUs: 1, MemoryBytes: guestRAM, Console: &console{}, Logger: log, OnEvent: on})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if reason, err := v.Run(context.Background()); reason != vmm.StopPoweroff || err != nil {
		t.Fatalf("Run = %v, %v", reason, err)
	}
	select {
	case e := <-stopped:
		if e.Reason != vmm.StopPoweroff || e.Err != nil {
			t.Errorf("stopped event %v", e)
		}
	case <-time.After(patience):
		t.Fatal("no stopped event")
	}
}
