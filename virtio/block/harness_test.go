package block

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// Values the tests write by hand from the virtio 1.2 specification, 5.2.
const (
	specDeviceIDBlock = 2

	specFSizeMax     = 1 << 1
	specFSegMax      = 1 << 2
	specFRO          = 1 << 5
	specFBlkSize     = 1 << 6
	specFFlush       = 1 << 9
	specFConfigWCE   = 1 << 11
	specFMQ          = 1 << 12
	specFDiscard     = 1 << 13
	specFWriteZeroes = 1 << 14

	specTIn          = 0
	specTOut         = 1
	specTFlush       = 4
	specTGetID       = 8
	specTGetLifetime = 10
	specTDiscard     = 11
	specTWriteZeroes = 13
	specTSecureErase = 14

	specSOK     = 0
	specSIOErr  = 1
	specSUnsupp = 2

	specSector    = 512
	specIDBytes   = 20
	specUnmapFlag = 1

	// Test-side layout of the fake guest RAM.
	ramSize   = 1 << 20
	queueBase = 0x1000
	bufBase   = 0x10000
	qSize     = 256

	// Features every test driver accepts unless it says otherwise.
	allFeatures = virtio.FeatureVersion1 | specFSegMax | specFBlkSize | specFFlush | specFDiscard | specFWriteZeroes
)

// fakeIRQ records what the device tells its driver.
type fakeIRQ struct {
	signals chan virtio.InterruptReason
	resets  chan error
}

func newFakeIRQ() *fakeIRQ {
	return &fakeIRQ{signals: make(chan virtio.InterruptReason, 64), resets: make(chan error, 4)}
}

func (f *fakeIRQ) Signal(r virtio.InterruptReason) error { f.signals <- r; return nil }
func (f *fakeIRQ) NeedsReset(err error)                  { f.resets <- err }

// image creates a disk image of n sectors filled with a pattern that
// differs from sector to sector and returns its path and contents.
func image(t testing.TB, sectors int) (string, []byte) {
	t.Helper()
	data := make([]byte, sectors*specSector)
	for i := range data {
		data[i] = byte(i*7 + i/specSector + 1)
	}
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func fileBytes(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// header is struct virtio_blk_req's header: le32 type, le32 reserved,
// le64 sector.
func header(typ uint32, sector uint64) []byte {
	h := make([]byte, 16)
	binary.LittleEndian.PutUint32(h[0:], typ)
	binary.LittleEndian.PutUint64(h[8:], sector)
	return h
}

// segment is struct virtio_blk_discard_write_zeroes: le64 sector, le32
// num_sectors, le32 flags.
func seg(sector uint64, num, flags uint32) []byte {
	s := make([]byte, 16)
	binary.LittleEndian.PutUint64(s[0:], sector)
	binary.LittleEndian.PutUint32(s[8:], num)
	binary.LittleEndian.PutUint32(s[12:], flags)
	return s
}

// harness drives one device through a real split queue in fake RAM.
type harness struct {
	t      *testing.T
	mem    *virtqtest.Memory
	drv    *virtqtest.Driver
	q      *virtio.Queue
	dev    *Device
	irq    *fakeIRQ
	acked  uint64
	active bool
	next   uint64 // buffer allocator
	desc   uint16 // next free descriptor
}

func newHarness(t *testing.T, cfg Config, acked uint64) *harness {
	t.Helper()
	dev, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { dev.Close() })
	mem := virtqtest.NewMemory(0, ramSize)
	drv := virtqtest.Layout(mem, qSize, queueBase)
	q, err := virtio.NewQueue(qSize)
	if err != nil {
		t.Fatal(err)
	}
	q.SetDescTable(drv.Desc)
	q.SetAvailRing(drv.Avail)
	q.SetUsedRing(drv.Used)
	q.SetFeatures(acked)
	q.SetReady(true)
	if err := q.Validate(mem); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, mem: mem, drv: drv, q: q, dev: dev, irq: newFakeIRQ(), acked: acked, next: bufBase}
}

// alloc returns n bytes of RAM filled with fill, recycling the buffer area
// since requests complete one at a time.
func (h *harness) alloc(n uint32, fill byte) uint64 {
	if h.next+uint64(n) > ramSize {
		h.next = bufBase
	}
	a := h.next
	h.next = (h.next + uint64(n) + 15) &^ 15
	b, err := h.mem.Slice(a, uint64(n))
	if err != nil {
		h.t.Fatal(err)
	}
	for i := range b {
		b[i] = fill
	}
	return a
}

// in is a device-readable buffer holding p.
func (h *harness) in(p []byte) virtqtest.Seg {
	a := h.alloc(uint32(len(p)), 0)
	copy(h.bytes(a, uint32(len(p))), p)
	return virtqtest.Seg{Addr: a, Len: uint32(len(p))}
}

// out is a device-writable buffer of n bytes prefilled with 0xee, so that
// a test sees which bytes the device wrote.
func (h *harness) out(n uint32) virtqtest.Seg {
	return virtqtest.Seg{Addr: h.alloc(n, 0xee), Len: n, Write: true}
}

func (h *harness) bytes(addr uint64, n uint32) []byte {
	b, err := h.mem.Slice(addr, uint64(n))
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

func (h *harness) segBytes(s virtqtest.Seg) []byte { return h.bytes(s.Addr, s.Len) }

// publish makes a chain available and notifies the device, activating it
// on first use so that the device never runs while the test writes RAM.
func (h *harness) publish(segs ...virtqtest.Seg) uint16 {
	h.t.Helper()
	head := h.drv.Chain(h.desc, segs...)
	h.desc += uint16(len(segs))
	h.drv.Publish(head)
	if !h.active {
		if err := h.dev.Activate(h.mem, []*virtio.Queue{h.q}, h.irq, h.acked); err != nil {
			h.t.Fatalf("Activate: %v", err)
		}
		h.active = true
	} else {
		h.dev.QueueNotify(0)
	}
	return head
}

// submit publishes a chain, waits for the device's interrupt and returns
// the used length the device reported for it.
func (h *harness) submit(segs ...virtqtest.Seg) uint32 {
	h.t.Helper()
	want := h.drv.UsedIdx() + 1
	head := h.publish(segs...)
	select {
	case r := <-h.irq.signals:
		if r != virtio.InterruptUsedBuffer {
			h.t.Fatalf("interrupt reason %d, want used buffer", r)
		}
	case err := <-h.irq.resets:
		h.t.Fatalf("device needs reset: %v", err)
	case <-time.After(5 * time.Second):
		h.t.Fatal("no interrupt from the device within 5s")
	}
	if got := h.drv.UsedIdx(); got != want {
		h.t.Fatalf("used index %d, want %d", got, want)
	}
	id, length := h.drv.UsedElem(want - 1)
	if id != uint32(head) {
		h.t.Fatalf("used id %d, want head %d", id, head)
	}
	return length
}

// result is what a driver sees of a completed request.
type result struct {
	status byte
	data   []byte // the writable data area
	used   uint32
}

// do sends the usual layout: header, readable data (if any), writable data
// of outLen bytes (if any), status in a buffer of its own.
func (h *harness) do(typ uint32, sector uint64, data []byte, outLen uint32) result {
	h.t.Helper()
	segs := []virtqtest.Seg{h.in(header(typ, sector))}
	if len(data) > 0 {
		segs = append(segs, h.in(data))
	}
	var o virtqtest.Seg
	if outLen > 0 {
		o = h.out(outLen)
		segs = append(segs, o)
	}
	st := h.out(1)
	segs = append(segs, st)
	used := h.submit(segs...)
	r := result{status: h.segBytes(st)[0], used: used}
	if outLen > 0 {
		r.data = bytes.Clone(h.segBytes(o))
	}
	return r
}

func (h *harness) wantStatus(what string, r result, status byte) {
	h.t.Helper()
	if r.status != status {
		h.t.Errorf("%s: status %d, want %d", what, r.status, status)
	}
}

func (h *harness) queues() []*virtio.Queue { return []*virtio.Queue{h.q} }
