package mmio_test

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/ternvm/tern/devices"
	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
	"github.com/ternvm/tern/virtio/mmio"
)

// The transport sits on the MMIO bus.
var _ devices.Device = (*mmio.Transport)(nil)

// The VMM's irqfd-backed triggers fit.
var _ mmio.Trigger = devices.Trigger(nil)

// Register offsets and values, from virtio 1.2 4.2.2 (table 4.1), written
// out here rather than taken from the package under test.
const (
	regMagic          = 0x000
	regVersion        = 0x004
	regDeviceID       = 0x008
	regVendorID       = 0x00c
	regDevFeatures    = 0x010
	regDevFeaturesSel = 0x014
	regDrvFeatures    = 0x020
	regDrvFeaturesSel = 0x024
	regQueueSel       = 0x030
	regQueueNumMax    = 0x034
	regQueueNum       = 0x038
	regQueueReady     = 0x044
	regQueueNotify    = 0x050
	regIntStatus      = 0x060
	regIntACK         = 0x064
	regStatus         = 0x070
	regDescLow        = 0x080
	regDescHigh       = 0x084
	regDriverLow      = 0x090
	regDriverHigh     = 0x094
	regDeviceLow      = 0x0a0
	regDeviceHigh     = 0x0a4
	regSHMSel         = 0x0ac
	regSHMLenLow      = 0x0b0
	regSHMLenHigh     = 0x0b4
	regConfigGen      = 0x0fc
	regConfig         = 0x100
)

type countingTrigger struct {
	mu sync.Mutex
	n  int
}

func (c *countingTrigger) Trigger() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return nil
}

func (c *countingTrigger) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// fakeDevice records what the transport asks of it.
type fakeDevice struct {
	id        uint32
	features  uint64
	maxSizes  []uint16
	config    []byte
	activated int
	resets    int
	notified  []int
	acked     uint64
	queues    []*virtio.Queue
	irq       virtio.Interrupt
	failNext  error
}

func (d *fakeDevice) DeviceID() uint32        { return d.id }
func (d *fakeDevice) Features() uint64        { return d.features }
func (d *fakeDevice) QueueMaxSizes() []uint16 { return d.maxSizes }
func (d *fakeDevice) ReadConfig(off uint64, data []byte) {
	if off < uint64(len(d.config)) {
		copy(data, d.config[off:])
	}
}
func (d *fakeDevice) WriteConfig(off uint64, data []byte) {
	if off < uint64(len(d.config)) {
		copy(d.config[off:], data)
	}
}
func (d *fakeDevice) Activate(mem virtio.Memory, qs []*virtio.Queue, irq virtio.Interrupt, acked uint64) error {
	if d.failNext != nil {
		return d.failNext
	}
	d.activated++
	d.queues, d.irq, d.acked = qs, irq, acked
	return nil
}
func (d *fakeDevice) QueueNotify(i int) { d.notified = append(d.notified, i) }
func (d *fakeDevice) Reset()            { d.resets++ }

// guest accesses a transport the way a driver does: 32-bit registers.
type guest struct {
	t  testing.TB
	tr *mmio.Transport
}

func (g guest) read(off uint64) uint32 {
	var b [4]byte
	g.tr.Read(off, b[:])
	return binary.LittleEndian.Uint32(b[:])
}

func (g guest) write(off uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	g.tr.Write(off, b[:])
}

func newTransport(t testing.TB, dev virtio.Device) (guest, *virtqtest.Memory, *countingTrigger) {
	t.Helper()
	mem := virtqtest.NewMemory(0, 1<<20)
	irq := &countingTrigger{}
	tr, err := mmio.New(dev, mem, irq)
	if err != nil {
		t.Fatalf("mmio.New: %v", err)
	}
	return guest{t: t, tr: tr}, mem, irq
}

// negotiate does what Linux's virtio core and virtio_mmio do up to
// FEATURES_OK: reset, ACKNOWLEDGE, DRIVER, read both feature words, accept
// want of them, set FEATURES_OK and read it back. It returns the offered
// features and whether FEATURES_OK stuck.
func (g guest) negotiate(want uint64) (offered uint64, ok bool) {
	g.write(regStatus, 0)
	g.write(regStatus, virtqtest.StatusAcknowledge)
	g.write(regStatus, virtqtest.StatusAcknowledge|virtqtest.StatusDriver)
	g.write(regDevFeaturesSel, 1)
	offered = uint64(g.read(regDevFeatures)) << 32
	g.write(regDevFeaturesSel, 0)
	offered |= uint64(g.read(regDevFeatures))
	acked := offered & want
	g.write(regDrvFeaturesSel, 1)
	g.write(regDrvFeatures, uint32(acked>>32))
	g.write(regDrvFeaturesSel, 0)
	g.write(regDrvFeatures, uint32(acked))
	s := uint32(virtqtest.StatusAcknowledge | virtqtest.StatusDriver | virtqtest.StatusFeaturesOK)
	g.write(regStatus, s)
	return offered, g.read(regStatus)&virtqtest.StatusFeaturesOK != 0
}

// setupQueue configures queue sel as Linux's vm_setup_vq does and returns
// the driver side of it.
func (g guest) setupQueue(mem *virtqtest.Memory, sel uint32, size uint16, base uint64) *virtqtest.Driver {
	g.write(regQueueSel, sel)
	if g.read(regQueueReady) != 0 {
		g.t.Fatalf("queue %d already ready before setup", sel)
	}
	if max := g.read(regQueueNumMax); max < uint32(size) {
		g.t.Fatalf("QueueNumMax = %d, want at least %d", max, size)
	}
	drv := virtqtest.Layout(mem, size, base)
	g.write(regQueueNum, uint32(size))
	g.write(regDescLow, uint32(drv.Desc))
	g.write(regDescHigh, uint32(drv.Desc>>32))
	g.write(regDriverLow, uint32(drv.Avail))
	g.write(regDriverHigh, uint32(drv.Avail>>32))
	g.write(regDeviceLow, uint32(drv.Used))
	g.write(regDeviceHigh, uint32(drv.Used>>32))
	g.write(regQueueReady, 1)
	return drv
}

func (g guest) driverOK() {
	g.write(regStatus, g.read(regStatus)|virtqtest.StatusDriverOK)
}
