package rng

import (
	"errors"
	"testing"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// fakeIRQ records what the device reports.
type fakeIRQ struct {
	signals    []virtio.InterruptReason
	needsReset []error
}

func (f *fakeIRQ) Signal(r virtio.InterruptReason) error {
	f.signals = append(f.signals, r)
	return nil
}
func (f *fakeIRQ) NeedsReset(err error) { f.needsReset = append(f.needsReset, err) }

// active returns an activated device with a queue of 16 at 0x1000 in
// 16 MiB of fake RAM, and a fill that writes a counting pattern so tests
// can tell which bytes were written.
func active(t *testing.T, features uint64) (*Device, *virtqtest.Memory, *virtqtest.Driver, *fakeIRQ) {
	t.Helper()
	mem := virtqtest.NewMemory(0, 16<<20)
	drv := virtqtest.Layout(mem, 16, 0x1000)
	q, err := virtio.NewQueue(QueueMaxSize)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.SetSize(16); err != nil {
		t.Fatal(err)
	}
	q.SetDescTable(drv.Desc)
	q.SetAvailRing(drv.Avail)
	q.SetUsedRing(drv.Used)
	q.SetFeatures(features)
	q.SetReady(true)
	d := New()
	d.fill = func(p []byte) error {
		for i := range p {
			p[i] = byte(i) | 0x80
		}
		return nil
	}
	irq := &fakeIRQ{}
	if err := d.Activate(mem, []*virtio.Queue{q}, irq, features); err != nil {
		t.Fatal(err)
	}
	return d, mem, drv, irq
}

func TestIdentity(t *testing.T) {
	d := New()
	if d.DeviceID() != 4 || d.Features() != 0 || len(d.QueueMaxSizes()) != 1 || d.QueueMaxSizes()[0] != 256 {
		t.Errorf("id %d features %#x queues %v; want 4, 0, [256]", d.DeviceID(), d.Features(), d.QueueMaxSizes())
	}
	b := []byte{0xff, 0xff}
	d.ReadConfig(0, b)
	if b[0] != 0xff { // the transport zeroes data; the device leaves it
		t.Errorf("ReadConfig wrote into data: %x", b)
	}
}

func TestFillsWritableBuffers(t *testing.T) {
	d, mem, drv, irq := active(t, 0)
	ram := mem.Bytes()
	drv.Publish(drv.Chain(0,
		virtqtest.Seg{Addr: 0x10000, Len: 4}, // readable: ignored, left alone
		virtqtest.Seg{Addr: 0x20000, Len: 3, Write: true},
		virtqtest.Seg{Addr: 0x30000, Len: 5, Write: true}))
	d.QueueNotify(0)
	if drv.UsedIdx() != 1 {
		t.Fatalf("used idx = %d, want 1", drv.UsedIdx())
	}
	if id, n := drv.UsedElem(0); id != 0 || n != 8 {
		t.Errorf("used = {%d, %d}, want {0, 8}", id, n)
	}
	if ram[0x10000] != 0 || ram[0x20000] != 0x80 || ram[0x20002] != 0x82 || ram[0x30004] != 0x84 || ram[0x30005] != 0 {
		t.Errorf("bytes written wrongly: %x %x %x", ram[0x10000:0x10001], ram[0x20000:0x20003], ram[0x30000:0x30006])
	}
	if len(irq.signals) != 1 || irq.signals[0] != virtio.InterruptUsedBuffer {
		t.Errorf("signals = %v, want one used-buffer interrupt", irq.signals)
	}
}

func TestRequestBounded(t *testing.T) {
	d, mem, drv, _ := active(t, 0)
	drv.Publish(drv.Chain(0,
		virtqtest.Seg{Addr: 0x100000, Len: 40 << 10, Write: true},
		virtqtest.Seg{Addr: 0x200000, Len: 1 << 20, Write: true}))
	d.QueueNotify(0)
	if _, n := drv.UsedElem(0); n != 64<<10 {
		t.Errorf("used length = %d, want %d", n, 64<<10)
	}
	ram := mem.Bytes()
	end := 0x200000 + (64<<10 - 40<<10)
	if ram[end-1] == 0 || ram[end] != 0 {
		t.Errorf("second buffer filled up to the wrong place")
	}
}

func TestNoWritableBuffer(t *testing.T) {
	d, _, drv, irq := active(t, 0)
	drv.Publish(drv.Chain(3, virtqtest.Seg{Addr: 0x10000, Len: 16}))
	d.QueueNotify(0)
	if id, n := drv.UsedElem(0); drv.UsedIdx() != 1 || id != 3 || n != 0 {
		t.Errorf("used idx %d elem {%d, %d}; want 1 {3, 0}", drv.UsedIdx(), id, n)
	}
	if len(irq.needsReset) != 0 {
		t.Errorf("NeedsReset for a valid chain: %v", irq.needsReset)
	}
}

func TestManyRequestsAndSuppression(t *testing.T) {
	d, _, drv, irq := active(t, virtqtest.FeatureEventIdx)
	for i := range uint16(16) {
		drv.Publish(drv.Chain(i, virtqtest.Seg{Addr: 0x10000 + 0x100*uint64(i), Len: 16, Write: true}))
	}
	drv.SetUsedEvent(100) // the driver wants no interrupt before the 101st
	d.QueueNotify(0)
	if drv.UsedIdx() != 16 {
		t.Errorf("used idx = %d, want 16", drv.UsedIdx())
	}
	// The first check after activation always interrupts (no history).
	if len(irq.signals) != 1 {
		t.Errorf("signals = %v, want 1", irq.signals)
	}
	drv.Publish(drv.Chain(0, virtqtest.Seg{Addr: 0x10000, Len: 16, Write: true}))
	d.QueueNotify(0)
	if len(irq.signals) != 1 {
		t.Errorf("interrupt despite used_event 100: %v", irq.signals)
	}
	if drv.AvailEvent() != 17 {
		t.Errorf("avail_event = %d, want 17", drv.AvailEvent())
	}
}

func TestBadRingNeedsReset(t *testing.T) {
	d, _, drv, irq := active(t, 0)
	drv.Publish(drv.Chain(0, virtqtest.Seg{Addr: 0xfffffff0, Len: 16, Write: true}))
	d.QueueNotify(0)
	if len(irq.needsReset) != 1 || !errors.Is(irq.needsReset[0], virtio.ErrBadChain) {
		t.Fatalf("NeedsReset calls = %v, want one ErrBadChain", irq.needsReset)
	}
	// Stopped: later notifications do nothing.
	drv.Publish(drv.Chain(1, virtqtest.Seg{Addr: 0x10000, Len: 16, Write: true}))
	d.QueueNotify(0)
	if drv.UsedIdx() != 0 || len(irq.needsReset) != 1 {
		t.Errorf("device kept working after NeedsReset")
	}
}

func TestFillErrorNeedsReset(t *testing.T) {
	d, _, drv, irq := active(t, 0)
	d.fill = func([]byte) error { return errors.New("host entropy gone") }
	drv.Publish(drv.Chain(0, virtqtest.Seg{Addr: 0x10000, Len: 16, Write: true}))
	d.QueueNotify(0)
	if len(irq.needsReset) != 1 {
		t.Errorf("NeedsReset calls = %v, want 1", irq.needsReset)
	}
}

func TestInactiveAndReset(t *testing.T) {
	d := New()
	d.QueueNotify(0) // not active: nothing to do, no panic
	d, _, drv, _ := active(t, 0)
	d.QueueNotify(1) // no such queue
	d.Reset()
	drv.Publish(drv.Chain(0, virtqtest.Seg{Addr: 0x10000, Len: 16, Write: true}))
	d.QueueNotify(0)
	if drv.UsedIdx() != 0 {
		t.Errorf("device served a request after Reset")
	}
	q, _ := virtio.NewQueue(QueueMaxSize)
	if err := d.Activate(virtqtest.NewMemory(0, 4096), []*virtio.Queue{q}, &fakeIRQ{}, 0); err == nil {
		t.Errorf("Activate accepted a queue the driver did not enable")
	}
	if err := d.SetState(d.State()); err != nil {
		t.Errorf("state round trip: %v", err)
	}
}

func TestGetrandom(t *testing.T) {
	p := make([]byte, 1<<20)
	if err := getrandom(p); err != nil {
		t.Fatal(err)
	}
	zeros := 0
	for _, b := range p[len(p)-4096:] {
		if b == 0 {
			zeros++
		}
	}
	if zeros > 100 { // about 16 expected
		t.Errorf("%d zero bytes in the last 4 KiB of getrandom output", zeros)
	}
}
