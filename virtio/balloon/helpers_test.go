package balloon

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// Values from the specification, written out here rather than taken from
// the package (virtio 1.2 section 5.5).
const (
	specDeviceID         = 5
	specFStatsVQ         = 1 << 1
	specFDeflateOnOOM    = 1 << 2
	specOffNumPages      = 0
	specOffActual        = 4
	specPageSize         = 4096
	specIntUsedBuffer    = 1 // virtio-mmio InterruptStatus bits
	specIntConfigChange  = 2
	specStatEntryBytes   = 10 // struct virtio_balloon_stat, packed
	testQueueSize        = 16
	testRAMSize          = 1 << 20
	testDataBase         = 0x10000 // buffers the test driver posts
	testRingBase         = 0x1000  // queue i's rings at testRingBase + i*0x1000
	testEventuallyPeriod = 5 * time.Second
)

// fakeIRQ records what the device signalled.
type fakeIRQ struct {
	mu      sync.Mutex
	reasons []virtio.InterruptReason
	resets  []error
}

func (f *fakeIRQ) Signal(r virtio.InterruptReason) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reasons = append(f.reasons, r)
	return nil
}

func (f *fakeIRQ) NeedsReset(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resets = append(f.resets, err)
}

func (f *fakeIRQ) count(r virtio.InterruptReason) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, x := range f.reasons {
		if x == r {
			n++
		}
	}
	return n
}

func (f *fakeIRQ) resetErrors() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]error(nil), f.resets...)
}

// recorder is a release function that remembers its calls.
type recorder struct {
	mu     sync.Mutex
	ranges [][2]uint64
	err    error
}

func (r *recorder) release(gpa, length uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ranges = append(r.ranges, [2]uint64{gpa, length})
	return r.err
}

func (r *recorder) calls() [][2]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][2]uint64(nil), r.ranges...)
}

// rig is an active balloon with a test driver on each of its queues.
type rig struct {
	t       *testing.T
	mem     virtio.Memory
	ram     *virtqtest.Memory // where the rings and buffers live
	dev     *Device
	irq     *fakeIRQ
	rec     *recorder
	drivers []*virtqtest.Driver
	queues  []*virtio.Queue
	next    uint64 // next free byte for buffers
	desc    []uint16

	// The test and the device's worker share the fake RAM as a driver
	// and a device share guest memory. gate orders their accesses for
	// the race detector: while running, the test touches RAM only when
	// the worker says it is idle (Device.idleHook).
	gate    sync.Mutex
	cond    *sync.Cond
	running bool
	idle    bool
}

// newRig makes a device from cfg over 1 MiB of fake RAM at 0 and sets up
// its queues there, ready for activate.
func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	ram := virtqtest.NewMemory(0, testRAMSize)
	return newRigMem(t, cfg, ram, ram)
}

// newRigMem is newRig with the rings and buffers in ram and the device
// seeing mem, which must contain ram.
func newRigMem(t *testing.T, cfg Config, ram *virtqtest.Memory, mem virtio.Memory) *rig {
	t.Helper()
	r := &rig{t: t, mem: mem, ram: ram, irq: &fakeIRQ{}, rec: &recorder{}, next: testDataBase}
	r.cond = sync.NewCond(&r.gate)
	dev, err := New(cfg, r.rec.release)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	dev.idleHook = r.workerIdle
	r.dev = dev
	acked := uint64(virtio.FeatureVersion1) | dev.Features()
	for i, maxSize := range dev.QueueMaxSizes() {
		drv := virtqtest.Layout(ram, testQueueSize, testRingBase+uint64(i)*0x1000)
		q, err := virtio.NewQueue(maxSize)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.SetSize(testQueueSize); err != nil {
			t.Fatal(err)
		}
		q.SetDescTable(drv.Desc)
		q.SetAvailRing(drv.Avail)
		q.SetUsedRing(drv.Used)
		q.SetFeatures(acked)
		q.SetReady(true)
		if err := q.Validate(mem); err != nil {
			t.Fatalf("queue %d: %v", i, err)
		}
		r.drivers = append(r.drivers, drv)
		r.queues = append(r.queues, q)
		r.desc = append(r.desc, 0)
	}
	return r
}

func (r *rig) workerIdle(idle bool) {
	r.gate.Lock()
	r.idle = idle
	r.cond.Broadcast()
	r.gate.Unlock()
}

// withRAM runs f while the device's worker is not touching guest memory.
func (r *rig) withRAM(f func()) {
	r.gate.Lock()
	defer r.gate.Unlock()
	for r.running && !r.idle {
		r.cond.Wait()
	}
	f()
}

// activate activates the device with every feature it offers.
func (r *rig) activate() {
	r.t.Helper()
	r.activateWith(uint64(virtio.FeatureVersion1) | r.dev.Features())
}

func (r *rig) activateWith(acked uint64) {
	r.t.Helper()
	r.gate.Lock()
	r.running, r.idle = true, false
	r.gate.Unlock()
	if err := r.dev.Activate(r.mem, r.queues, r.irq, acked); err != nil {
		r.gate.Lock()
		r.running = false
		r.gate.Unlock()
		r.t.Fatalf("Activate: %v", err)
	}
	r.t.Cleanup(r.reset)
}

// reset resets the device; its worker is gone when it returns.
func (r *rig) reset() {
	r.dev.Reset()
	r.gate.Lock()
	r.running = false
	r.gate.Unlock()
}

// post copies data into fresh RAM, makes it a one-buffer driver-to-device
// chain on queue qi and notifies the device. It returns the chain's head.
func (r *rig) post(qi int, data []byte) uint16 {
	r.t.Helper()
	addr := r.next
	r.next += (uint64(len(data)) + 15) &^ 15
	var head uint16
	r.withRAM(func() {
		if _, err := r.ram.WriteAt(data, int64(addr)); err != nil {
			r.t.Fatalf("write buffer: %v", err)
		}
		drv := r.drivers[qi]
		head = drv.Chain(r.desc[qi], virtqtest.Seg{Addr: addr, Len: uint32(len(data))})
		r.desc[qi] = (r.desc[qi] + 1) % testQueueSize
		drv.Publish(head)
	})
	r.dev.QueueNotify(qi)
	return head
}

// usedIdx reads queue qi's used index.
func (r *rig) usedIdx(qi int) (idx uint16) {
	r.withRAM(func() { idx = r.drivers[qi].UsedIdx() })
	return idx
}

// usedElem reads entry slot of queue qi's used ring.
func (r *rig) usedElem(qi int, slot uint16) (id, length uint32) {
	r.withRAM(func() { id, length = r.drivers[qi].UsedElem(slot) })
	return id, length
}

// waitUsed waits until queue qi's used index reaches n.
func (r *rig) waitUsed(qi int, n uint16) {
	r.t.Helper()
	eventually(r.t, func() bool { return r.usedIdx(qi) == n },
		"used index of queue %d to reach %d", qi, n)
}

func eventually(t *testing.T, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(testEventuallyPeriod)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+what, args...)
		}
		time.Sleep(time.Millisecond)
	}
}

// pfnArray encodes PFNs as the driver does: le32 each.
func pfnArray(pfns ...uint32) []byte {
	b := make([]byte, 4*len(pfns))
	for i, p := range pfns {
		binary.LittleEndian.PutUint32(b[4*i:], p)
	}
	return b
}

// statEntries encodes struct virtio_balloon_stat entries: le16 tag, le64
// value, packed (10 bytes each).
func statEntries(pairs ...[2]uint64) []byte {
	b := make([]byte, 0, specStatEntryBytes*len(pairs))
	for _, p := range pairs {
		b = binary.LittleEndian.AppendUint16(b, uint16(p[0]))
		b = binary.LittleEndian.AppendUint64(b, p[1])
	}
	return b
}
