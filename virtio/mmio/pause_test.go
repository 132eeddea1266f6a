package mmio_test

import (
	"testing"

	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// suspendingDevice is a fakeDevice that can also be suspended.
type suspendingDevice struct {
	fakeDevice
	suspends int
}

func (d *suspendingDevice) Suspend() { d.suspends++ }

func TestPauseKeepsRegistersAndResumeReactivatesAndKicks(t *testing.T) {
	dev := &fakeDevice{id: 4, features: 0, maxSizes: []uint16{8, 8}}
	g, mem, irq := newTransport(t, dev)
	g.negotiate(virtqtest.FeatureVersion1)
	g.setupQueue(mem, 0, 8, 0x1000)
	g.driverOK()
	if dev.activated != 1 {
		t.Fatalf("activated %d times before the pause, want 1", dev.activated)
	}
	before := g.tr.State()
	irqsBefore := irq.count()

	g.tr.Pause()
	if dev.resets != 1 {
		t.Errorf("a device without Suspend was reset %d times by Pause, want 1", dev.resets)
	}
	if !g.tr.Paused() {
		t.Error("Paused() = false after Pause")
	}
	g.tr.Notify(0) // a notification while paused reaches nobody
	if len(dev.notified) != 0 {
		t.Errorf("a paused device was notified: %v", dev.notified)
	}
	after := g.tr.State()
	if after.Status != before.Status || after.DriverFeatures != before.DriverFeatures || after.Queues[0] != before.Queues[0] {
		t.Errorf("Pause changed the transport state:\nbefore %+v\nafter  %+v", before, after)
	}

	g.tr.Resume()
	if dev.activated != 2 {
		t.Errorf("activated %d times after Resume, want 2", dev.activated)
	}
	// Only queue 0 is ready: Resume looks at it (a notification lost while
	// paused) and raises one used-buffer interrupt.
	if len(dev.notified) != 1 || dev.notified[0] != 0 {
		t.Errorf("after Resume the device was notified for queues %v, want [0]", dev.notified)
	}
	if irq.count() != irqsBefore+1 {
		t.Errorf("Resume raised %d interrupts, want 1", irq.count()-irqsBefore)
	}
	if g.read(regIntStatus)&1 == 0 {
		t.Error("InterruptStatus has no used-buffer bit after Resume")
	}
	g.tr.Resume() // not paused: nothing happens
	if dev.activated != 2 {
		t.Errorf("a second Resume activated again (%d)", dev.activated)
	}
}

func TestPauseSuspendsADeviceThatCan(t *testing.T) {
	dev := &suspendingDevice{fakeDevice: fakeDevice{id: 4, maxSizes: []uint16{8}}}
	g, mem, _ := newTransport(t, dev)
	g.negotiate(virtqtest.FeatureVersion1)
	g.setupQueue(mem, 0, 8, 0x1000)
	g.driverOK()
	g.tr.Pause()
	if dev.suspends != 1 || dev.resets != 0 {
		t.Errorf("Pause: %d suspends, %d resets; want 1 and 0", dev.suspends, dev.resets)
	}
}

func TestPauseOfAnInactiveDeviceDoesNothing(t *testing.T) {
	dev := &fakeDevice{id: 4, maxSizes: []uint16{8}}
	g, _, _ := newTransport(t, dev)
	g.tr.Pause()
	g.tr.Resume()
	if dev.resets != 0 || dev.activated != 0 || g.tr.Paused() {
		t.Errorf("pausing a device the driver never started: %d resets, %d activations", dev.resets, dev.activated)
	}
}
