package mmio_test

import (
	"errors"
	"testing"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
	"github.com/ternvm/tern/virtio/mmio"
)

const (
	fACK  = virtqtest.StatusAcknowledge
	fDRV  = virtqtest.StatusDriver
	fFOK  = virtqtest.StatusFeaturesOK
	fDOK  = virtqtest.StatusDriverOK
	fNR   = virtqtest.StatusNeedsReset
	fFAIL = virtqtest.StatusFailed
)

func TestIdentityRegisters(t *testing.T) {
	g, _, _ := newTransport(t, &fakeDevice{id: 2, maxSizes: []uint16{128}})
	checks := []struct {
		off  uint64
		want uint32
	}{
		{regMagic, 0x74726976}, // "virt"
		{regVersion, 2},
		{regDeviceID, 2},
		{regQueueNumMax, 128}, // QueueSel starts at 0, the device's first queue
		{regSHMLenLow, 0xffffffff},
		{regSHMLenHigh, 0xffffffff},
		{regIntStatus, 0},
		{regStatus, 0},
	}
	for _, c := range checks {
		if got := g.read(c.off); got != c.want {
			t.Errorf("register %#x = %#x, want %#x", c.off, got, c.want)
		}
	}
	if g.read(regVendorID) == 0xffffffff {
		t.Errorf("VendorID reads as all ones")
	}
	// Registers are 32-bit: narrower or misaligned accesses read as zero.
	b2 := []byte{0xaa, 0xaa}
	g.tr.Read(regMagic, b2)
	if b2[0] != 0 || b2[1] != 0 {
		t.Errorf("16-bit read of MagicValue = %x, want zeros", b2)
	}
	b4 := []byte{1, 2, 3, 4}
	g.tr.Read(regMagic+1, b4)
	if b4[0]|b4[1]|b4[2]|b4[3] != 0 {
		t.Errorf("misaligned read = %x, want zeros", b4)
	}
	// Narrow writes are ignored: a 1-byte ACKNOWLEDGE does nothing.
	g.tr.Write(regStatus, []byte{fACK})
	if g.read(regStatus) != 0 {
		t.Errorf("a 1-byte status write took effect")
	}
	// Writes to read-only registers are ignored.
	g.write(regMagic, 0)
	g.write(regDeviceID, 7)
	if g.read(regMagic) != 0x74726976 || g.read(regDeviceID) != 2 {
		t.Errorf("read-only registers changed by writes")
	}
	if g.tr.NotifyOffset() != 0x050 {
		t.Errorf("NotifyOffset = %#x, want 0x50", g.tr.NotifyOffset())
	}
}

func TestNewRejectsBadQueueSizes(t *testing.T) {
	mem := virtqtest.NewMemory(0, 4096)
	if _, err := mmio.New(&fakeDevice{maxSizes: []uint16{100}}, mem, &countingTrigger{}); err == nil {
		t.Errorf("New accepted a queue maximum of 100")
	}
	if _, err := mmio.New(nil, mem, &countingTrigger{}); err == nil {
		t.Errorf("New accepted a nil device")
	}
}

func TestFeatureOffer(t *testing.T) {
	// Device bits 0 and 5, plus bits 28 and 33 that belong to the
	// transport and must not leak through.
	dev := &fakeDevice{id: 1, features: 1<<0 | 1<<5 | 1<<28 | 1<<33, maxSizes: []uint16{16}}
	g, _, _ := newTransport(t, dev)
	g.write(regDevFeaturesSel, 0)
	// Bits 0, 5, 28 (INDIRECT_DESC), 29 (EVENT_IDX).
	if got, want := g.read(regDevFeatures), uint32(1<<0|1<<5|1<<28|1<<29); got != want {
		t.Errorf("features word 0 = %#x, want %#x", got, want)
	}
	g.write(regDevFeaturesSel, 1)
	// Bit 32 (VERSION_1) only.
	if got := g.read(regDevFeatures); got != 1 {
		t.Errorf("features word 1 = %#x, want 0x1", got)
	}
	g.write(regDevFeaturesSel, 2)
	if got := g.read(regDevFeatures); got != 0 {
		t.Errorf("features word 2 = %#x, want 0", got)
	}
}

func TestFeatureNegotiation(t *testing.T) {
	const version1 = 1 << 32
	cases := []struct {
		name string
		want uint64 // what the driver accepts (masked by the offer in negotiate)
		ok   bool
	}{
		{"version 1 and everything", ^uint64(0), true},
		{"version 1 only", version1, true},
		{"legacy driver without VERSION_1", 1 << 5, false},
	}
	for _, c := range cases {
		dev := &fakeDevice{id: 1, features: 1 << 5, maxSizes: []uint16{16}}
		g, _, _ := newTransport(t, dev)
		if _, ok := g.negotiate(c.want); ok != c.ok {
			t.Errorf("%s: FEATURES_OK accepted = %v, want %v", c.name, ok, c.ok)
		}
	}
	// Accepting a feature that was not offered fails FEATURES_OK.
	dev := &fakeDevice{id: 1, maxSizes: []uint16{16}}
	g, _, _ := newTransport(t, dev)
	g.write(regStatus, fACK)
	g.write(regStatus, fACK|fDRV)
	g.write(regDrvFeaturesSel, 1)
	g.write(regDrvFeatures, 1) // VERSION_1
	g.write(regDrvFeaturesSel, 0)
	g.write(regDrvFeatures, 1<<7) // not offered
	g.write(regStatus, fACK|fDRV|fFOK)
	if g.read(regStatus) != fACK|fDRV {
		t.Errorf("FEATURES_OK with unoffered bit 7: status %#x, want %#x", g.read(regStatus), fACK|fDRV)
	}
	g.write(regDrvFeatures, 0)
	g.write(regDrvFeaturesSel, 3)
	g.write(regDrvFeatures, 1) // bit 96
	g.write(regStatus, fACK|fDRV|fFOK)
	if g.read(regStatus)&fFOK != 0 {
		t.Errorf("FEATURES_OK accepted with feature bit 96 set")
	}
}

func TestStatusMachine(t *testing.T) {
	dev := &fakeDevice{id: 4, maxSizes: []uint16{16}}
	g, _, _ := newTransport(t, dev)
	// Skipping ACKNOWLEDGE is ignored.
	g.write(regStatus, fDRV)
	if g.read(regStatus) != 0 {
		t.Errorf("DRIVER without ACKNOWLEDGE: status %#x", g.read(regStatus))
	}
	// DRIVER_OK before FEATURES_OK is ignored and activates nothing.
	g.write(regStatus, fACK)
	g.write(regStatus, fACK|fDRV)
	g.write(regStatus, fACK|fDRV|fDOK)
	if g.read(regStatus) != fACK|fDRV || dev.activated != 0 {
		t.Errorf("DRIVER_OK before FEATURES_OK: status %#x, activations %d", g.read(regStatus), dev.activated)
	}
	// Clearing a bit without a reset is ignored.
	g.write(regStatus, fACK)
	if g.read(regStatus) != fACK|fDRV {
		t.Errorf("clearing DRIVER: status %#x", g.read(regStatus))
	}
	// The driver cannot set DEVICE_NEEDS_RESET.
	g.write(regStatus, fACK|fDRV|fNR)
	if g.read(regStatus) != fACK|fDRV {
		t.Errorf("driver wrote NEEDS_RESET: status %#x", g.read(regStatus))
	}
	if _, ok := g.negotiate(1 << 32); !ok {
		t.Fatal("negotiation failed")
	}
	g.setupQueue(virtqtest.NewMemory(0, 0), 0, 16, 0) // memory unused: addresses only
	g.driverOK()
	if g.read(regStatus) != fACK|fDRV|fFOK|fDOK || dev.activated != 1 {
		t.Fatalf("after DRIVER_OK: status %#x, activations %d", g.read(regStatus), dev.activated)
	}
	if dev.acked != 1<<32 {
		t.Errorf("device activated with features %#x, want VERSION_1", dev.acked)
	}
	// FAILED can be added at any time.
	g.write(regStatus, fACK|fDRV|fFOK|fDOK|fFAIL)
	if g.read(regStatus) != fACK|fDRV|fFOK|fDOK|fFAIL {
		t.Errorf("FAILED: status %#x", g.read(regStatus))
	}
	// Writing 0 resets the device and its queues.
	g.write(regStatus, 0)
	if g.read(regStatus) != 0 || dev.resets != 1 {
		t.Errorf("after reset: status %#x, resets %d", g.read(regStatus), dev.resets)
	}
	g.write(regQueueSel, 0)
	if g.read(regQueueReady) != 0 {
		t.Errorf("queue still ready after reset")
	}
	if st := g.tr.State(); st.Queues[0] != (virtio.QueueState{MaxSize: 16, Size: 16}) || st.DriverFeatures != 0 {
		t.Errorf("state after reset: %+v", st)
	}
}

func TestQueueRegisters(t *testing.T) {
	dev := &fakeDevice{id: 1, maxSizes: []uint16{256, 64}}
	g, _, _ := newTransport(t, dev)
	// Before FEATURES_OK queue setup is ignored.
	g.write(regQueueSel, 0)
	g.write(regQueueNum, 8)
	g.write(regQueueReady, 1)
	if g.read(regQueueReady) != 0 || g.tr.State().Queues[0].Size != 256 {
		t.Errorf("queue configured before FEATURES_OK")
	}
	g.negotiate(1 << 32)
	g.write(regQueueSel, 1)
	if g.read(regQueueNumMax) != 64 {
		t.Errorf("QueueNumMax of queue 1 = %d, want 64", g.read(regQueueNumMax))
	}
	g.write(regQueueSel, 2)
	if g.read(regQueueNumMax) != 0 || g.read(regQueueReady) != 0 {
		t.Errorf("queue 2 (absent): QueueNumMax %d, QueueReady %d; want 0, 0", g.read(regQueueNumMax), g.read(regQueueReady))
	}
	g.write(regQueueReady, 1) // absent queue: ignored, no panic
	g.write(regQueueSel, 1)
	g.write(regQueueNum, 32)
	g.write(regDescLow, 0x12345000)
	g.write(regDescHigh, 0x1)
	g.write(regDriverLow, 0x2000)
	g.write(regDeviceLow, 0x3000)
	g.write(regDeviceHigh, 0x2)
	q := g.tr.State().Queues[1]
	if q.Size != 32 || q.DescTable != 0x1_12345000 || q.AvailRing != 0x2000 || q.UsedRing != 0x2_00003000 {
		t.Errorf("queue 1 = %+v", q)
	}
	// Queue registers are write-only: they read as zero.
	if g.read(regQueueNum) != 0 || g.read(regDescLow) != 0 {
		t.Errorf("write-only queue registers read back non-zero")
	}
	// Once ready, the queue's configuration is frozen.
	g.write(regQueueReady, 1)
	g.write(regQueueNum, 16)
	g.write(regDescLow, 0)
	if q := g.tr.State().Queues[1]; q.Size != 32 || q.DescTable != 0x1_12345000 || !q.Ready {
		t.Errorf("ready queue changed: %+v", q)
	}
	if g.read(regQueueReady) != 1 {
		t.Errorf("QueueReady does not read back 1")
	}
	g.write(regQueueReady, 0)
	if g.read(regQueueReady) != 0 {
		t.Errorf("QueueReady 0 before DRIVER_OK did not disable the queue")
	}
	// A size that is not a power of two makes the device need a reset.
	g.write(regQueueNum, 48)
	if g.read(regStatus)&fNR == 0 || g.tr.Err() == nil {
		t.Errorf("QueueNum 48: status %#x, Err %v; want NEEDS_RESET", g.read(regStatus), g.tr.Err())
	}
}

// TestLinuxInitAndEntropyRequest drives the whole Linux virtio_mmio probe
// sequence against the entropy device, then one request end to end.
func TestLinuxInitAndEntropyRequest(t *testing.T) {
	g, mem, irq := newRNG(t)
	if g.read(regMagic) != 0x74726976 || g.read(regVersion) != 2 || g.read(regDeviceID) != 4 {
		t.Fatalf("not a version 2 entropy device")
	}
	offered, ok := g.negotiate(1<<32 | 1<<29 | 1<<28)
	if !ok || offered&(1<<32) == 0 {
		t.Fatalf("negotiation: offered %#x, FEATURES_OK %v", offered, ok)
	}
	drv := g.setupQueue(mem, 0, 64, 0x10000)
	g.driverOK()
	if g.read(regStatus) != fACK|fDRV|fFOK|fDOK {
		t.Fatalf("status after DRIVER_OK = %#x", g.read(regStatus))
	}

	drv.Publish(drv.Chain(0, virtqtest.Seg{Addr: 0x20000, Len: 64, Write: true}))
	g.write(regQueueNotify, 0)

	if drv.UsedIdx() != 1 {
		t.Fatalf("used idx = %d, want 1", drv.UsedIdx())
	}
	if id, n := drv.UsedElem(0); id != 0 || n != 64 {
		t.Errorf("used elem = {%d, %d}, want {0, 64}", id, n)
	}
	if allZero(mem.Bytes()[0x20000 : 0x20000+64]) {
		t.Errorf("buffer still all zero after an entropy request")
	}
	if g.read(regIntStatus) != 1 || irq.count() != 1 {
		t.Errorf("InterruptStatus %#x, triggers %d; want 0x1, 1", g.read(regIntStatus), irq.count())
	}
	g.write(regIntACK, 1)
	if g.read(regIntStatus) != 0 {
		t.Errorf("InterruptStatus after ACK = %#x", g.read(regIntStatus))
	}
	// EVENT_IDX: the device asked to hear about the next entry (1).
	if drv.AvailEvent() != 1 {
		t.Errorf("avail_event = %d, want 1", drv.AvailEvent())
	}
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func TestBadChainNeedsReset(t *testing.T) {
	g, mem, irq := newRNG(t)
	var heard []error
	g.tr.OnNeedsReset(func(err error) { heard = append(heard, err) })
	g.negotiate(1 << 32)
	drv := g.setupQueue(mem, 0, 16, 0x10000)
	g.driverOK()
	// A chain that loops on itself.
	drv.WriteDesc(drv.Desc, 0, virtqtest.Desc{Addr: 0x20000, Len: 8, Flags: virtqtest.DescFWrite | virtqtest.DescFNext, Next: 0})
	drv.Publish(0)
	g.write(regQueueNotify, 0)
	if g.read(regStatus)&fNR == 0 {
		t.Fatalf("status %#x lacks DEVICE_NEEDS_RESET after a looping chain", g.read(regStatus))
	}
	if !errors.Is(g.tr.Err(), virtio.ErrBadChain) {
		t.Errorf("Err = %v, want ErrBadChain", g.tr.Err())
	}
	// With DRIVER_OK set the device must send a configuration change
	// notification (virtio 1.2 2.1.2).
	if g.read(regIntStatus)&2 == 0 || irq.count() == 0 {
		t.Errorf("InterruptStatus %#x, triggers %d; want a config change interrupt", g.read(regIntStatus), irq.count())
	}
	gen := g.read(regConfigGen)
	// Further notifications are not passed on.
	drv.Publish(drv.Chain(1, virtqtest.Seg{Addr: 0x20000, Len: 8, Write: true}))
	g.write(regQueueNotify, 0)
	// The VMM hears of the move once, with its cause.
	if len(heard) != 1 || !errors.Is(heard[0], virtio.ErrBadChain) {
		t.Errorf("OnNeedsReset heard %v, want one ErrBadChain", heard)
	}
	if drv.UsedIdx() != 0 {
		t.Errorf("device served a request while needing reset")
	}
	// Reset recovers; the generation never goes back.
	g.write(regStatus, 0)
	if g.read(regStatus) != 0 || g.tr.Err() != nil || g.read(regIntStatus) != 0 {
		t.Errorf("after reset: status %#x, Err %v, InterruptStatus %#x", g.read(regStatus), g.tr.Err(), g.read(regIntStatus))
	}
	if g.read(regConfigGen) < gen {
		t.Errorf("ConfigGeneration went back from %d to %d", gen, g.read(regConfigGen))
	}
	g.negotiate(1 << 32)
	drv = g.setupQueue(mem, 0, 16, 0x10000)
	g.driverOK()
	drv.Publish(drv.Chain(2, virtqtest.Seg{Addr: 0x20000, Len: 8, Write: true}))
	g.write(regQueueNotify, 0)
	if drv.UsedIdx() != 1 {
		t.Errorf("device not working after reset: used idx %d", drv.UsedIdx())
	}
}

func TestActivationChecksRings(t *testing.T) {
	dev := &fakeDevice{id: 4, maxSizes: []uint16{16}}
	g, _, irq := newTransport(t, dev) // 1 MiB of RAM
	g.negotiate(1 << 32)
	g.write(regQueueSel, 0)
	g.write(regQueueNum, 16)
	g.write(regDescLow, 0x1000)
	g.write(regDriverLow, 0x2000)
	g.write(regDeviceLow, 0xfffff0) // past the end of RAM
	g.write(regQueueReady, 1)
	g.driverOK()
	if dev.activated != 0 {
		t.Errorf("device activated with a used ring outside RAM")
	}
	if g.read(regStatus)&fNR == 0 || irq.count() != 1 {
		t.Errorf("status %#x, triggers %d; want NEEDS_RESET and one interrupt", g.read(regStatus), irq.count())
	}
	g.write(regQueueNotify, 0)
	if len(dev.notified) != 0 {
		t.Errorf("inactive device got notifications %v", dev.notified)
	}
}

func TestActivateError(t *testing.T) {
	dev := &fakeDevice{id: 4, maxSizes: []uint16{16}, failNext: errors.New("no backend")}
	g, mem, _ := newTransport(t, dev)
	g.negotiate(1 << 32)
	g.setupQueue(mem, 0, 16, 0x10000)
	g.driverOK()
	if g.read(regStatus)&fNR == 0 || g.tr.Err() == nil {
		t.Errorf("failed activation: status %#x, Err %v", g.read(regStatus), g.tr.Err())
	}
	g.write(regStatus, 0)
	if dev.resets != 0 {
		t.Errorf("a device that never activated was reset %d times", dev.resets)
	}
}

func TestNotifyRouting(t *testing.T) {
	dev := &fakeDevice{id: 1, maxSizes: []uint16{16, 16}}
	g, mem, _ := newTransport(t, dev)
	g.write(regQueueNotify, 0)
	if len(dev.notified) != 0 {
		t.Errorf("notification reached an inactive device")
	}
	g.negotiate(1 << 32)
	g.setupQueue(mem, 0, 16, 0x10000)
	g.driverOK()
	g.write(regQueueNotify, 1)
	g.write(regQueueNotify, 2) // no such queue
	g.tr.Notify(0)             // the ioeventfd path
	if len(dev.notified) != 2 || dev.notified[0] != 1 || dev.notified[1] != 0 {
		t.Errorf("notified %v, want [1 0]", dev.notified)
	}
	if len(dev.queues) != 2 || !dev.queues[0].Ready() || dev.queues[1].Ready() {
		t.Errorf("device got queues %v", dev.queues)
	}
}

func TestConfigSpaceAndGeneration(t *testing.T) {
	dev := &fakeDevice{id: 2, maxSizes: []uint16{16}, config: []byte{1, 2, 3, 4, 5, 6, 7, 8}}
	g, mem, irq := newTransport(t, dev)
	b := make([]byte, 8)
	g.tr.Read(regConfig, b)
	if string(b) != "\x01\x02\x03\x04\x05\x06\x07\x08" {
		t.Errorf("8-byte config read = %x", b)
	}
	b1 := []byte{0}
	g.tr.Read(regConfig+5, b1)
	if b1[0] != 6 {
		t.Errorf("1-byte config read at 5 = %d, want 6", b1[0])
	}
	b2 := []byte{0xff, 0xff}
	g.tr.Read(regConfig+7, b2)
	if b2[0] != 8 || b2[1] != 0 {
		t.Errorf("read across the end of config = %x, want 08 00", b2)
	}
	g.tr.Write(regConfig+2, []byte{0xaa, 0xbb})
	if dev.config[2] != 0xaa || dev.config[3] != 0xbb {
		t.Errorf("config write did not reach the device: %x", dev.config)
	}

	g.negotiate(1 << 32)
	g.setupQueue(mem, 0, 16, 0x10000)
	g.driverOK()
	gen := g.read(regConfigGen)
	if err := dev.irq.Signal(virtio.InterruptConfigChange); err != nil {
		t.Fatal(err)
	}
	if g.read(regConfigGen) == gen {
		t.Errorf("ConfigGeneration unchanged by a configuration change")
	}
	if g.read(regIntStatus) != 2 || irq.count() != 1 {
		t.Errorf("InterruptStatus %#x, triggers %d; want 0x2, 1", g.read(regIntStatus), irq.count())
	}
	dev.irq.Signal(virtio.InterruptUsedBuffer)
	g.write(regIntACK, 2)
	if g.read(regIntStatus) != 1 {
		t.Errorf("ACK of bit 1 left InterruptStatus %#x, want 0x1", g.read(regIntStatus))
	}
	// After a reset the old activation's Interrupt is dead.
	old := dev.irq
	g.write(regStatus, 0)
	if err := old.Signal(virtio.InterruptUsedBuffer); err == nil || g.read(regIntStatus) != 0 {
		t.Errorf("stale Signal = %v, InterruptStatus %#x; want an error and 0", err, g.read(regIntStatus))
	}
	old.NeedsReset(errors.New("late"))
	if g.read(regStatus)&fNR != 0 {
		t.Errorf("stale NeedsReset marked the reset device")
	}
}

func TestStateRestore(t *testing.T) {
	g, mem, _ := newRNG(t)
	g.negotiate(1<<32 | 1<<29)
	drv := g.setupQueue(mem, 0, 16, 0x10000)
	g.driverOK()
	drv.Publish(drv.Chain(0, virtqtest.Seg{Addr: 0x20000, Len: 8, Write: true}))
	g.write(regQueueNotify, 0)
	st := g.tr.State()
	if st.Status != fACK|fDRV|fFOK|fDOK || st.DriverFeatures != 1<<32|1<<29 ||
		st.InterruptStatus != 1 || st.Queues[0].NextUsed != 1 || !st.Queues[0].EventIdx {
		t.Fatalf("State = %+v", st)
	}

	// A new VM with the same memory restores the transport and goes on.
	g2, _, _ := newRNGOn(t, mem)
	if err := g2.tr.Restore(st); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if g2.read(regStatus) != fACK|fDRV|fFOK|fDOK || g2.read(regIntStatus) != 1 {
		t.Errorf("restored status %#x, InterruptStatus %#x", g2.read(regStatus), g2.read(regIntStatus))
	}
	drv.Publish(drv.Chain(1, virtqtest.Seg{Addr: 0x20100, Len: 8, Write: true}))
	g2.write(regQueueNotify, 0)
	if drv.UsedIdx() != 2 {
		t.Errorf("restored device did not serve: used idx %d", drv.UsedIdx())
	}
	if got := g2.tr.State(); got.Queues[0].NextAvail != 2 {
		t.Errorf("restored queue next avail = %d, want 2", got.Queues[0].NextAvail)
	}

	bad := st
	bad.Status = fACK | fFOK
	if err := g2.tr.Restore(bad); !errors.Is(err, mmio.ErrBadState) {
		t.Errorf("Restore of a status that skips DRIVER: %v", err)
	}
	bad = st
	bad.DriverFeatures = 1 << 29 // no VERSION_1
	if err := g2.tr.Restore(bad); !errors.Is(err, mmio.ErrBadState) {
		t.Errorf("Restore without VERSION_1: %v", err)
	}
	bad = st
	bad.Queues = nil
	if err := g2.tr.Restore(bad); !errors.Is(err, mmio.ErrBadState) {
		t.Errorf("Restore without queues: %v", err)
	}
}
