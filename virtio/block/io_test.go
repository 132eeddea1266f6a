package block

import (
	"bytes"
	"testing"

	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed + byte(i*13) + byte(i>>8)
	}
	return p
}

func TestWriteThenReadBack(t *testing.T) {
	path, orig := image(t, 16)
	h := newHarness(t, Config{Path: path}, allFeatures)

	data := pattern(2*specSector, 0x40)
	r := h.do(specTOut, 3, data, 0)
	h.wantStatus("write", r, specSOK)
	if r.used != 1 {
		t.Errorf("write used length %d, want 1 (the status byte)", r.used)
	}
	want := bytes.Clone(orig)
	copy(want[3*specSector:], data)
	if got := fileBytes(t, path); !bytes.Equal(got, want) {
		t.Fatal("image after the write is not the original with sectors 3-4 replaced")
	}

	r = h.do(specTIn, 2, nil, 4*specSector)
	h.wantStatus("read", r, specSOK)
	if r.used != 4*specSector+1 {
		t.Errorf("read used length %d, want %d (data and status)", r.used, 4*specSector+1)
	}
	if !bytes.Equal(r.data, want[2*specSector:6*specSector]) {
		t.Error("read of sectors 2-5 does not match the image")
	}

	// The last sector of the disk is readable and writable.
	r = h.do(specTOut, 15, pattern(specSector, 9), 0)
	h.wantStatus("write of the last sector", r, specSOK)
	r = h.do(specTIn, 15, nil, specSector)
	h.wantStatus("read of the last sector", r, specSOK)
	if !bytes.Equal(r.data, pattern(specSector, 9)) {
		t.Error("last sector does not read back what was written")
	}
}

// The specification leaves framing to the driver: the header may share a
// buffer with the data, data may be split anywhere, and the status byte
// may be the last byte of a data buffer.
func TestRequestsAcrossOddBuffers(t *testing.T) {
	path, orig := image(t, 8)
	h := newHarness(t, Config{Path: path}, allFeatures)

	data := pattern(3*specSector, 0x11)
	first := append(header(specTOut, 1), data[:100]...)
	st := h.out(1)
	h.submit(h.in(first), h.in(data[100:611]), h.in(data[611:]), st)
	if s := h.segBytes(st)[0]; s != specSOK {
		t.Fatalf("split write: status %d", s)
	}
	want := bytes.Clone(orig)
	copy(want[specSector:], data)
	if !bytes.Equal(fileBytes(t, path), want) {
		t.Fatal("split write did not land at sectors 1-3")
	}

	// Read into three writable buffers, the status in the last one.
	a, b, c := h.out(7), h.out(1000), h.out(3*specSector-1007+1)
	used := h.submit(h.in(header(specTIn, 1)), a, b, c)
	got := append(append(bytes.Clone(h.segBytes(a)), h.segBytes(b)...), h.segBytes(c)...)
	if status := got[len(got)-1]; status != specSOK {
		t.Fatalf("split read: status %d", status)
	}
	if !bytes.Equal(got[:len(got)-1], data) {
		t.Error("split read returned other bytes than were written")
	}
	if used != 3*specSector+1 {
		t.Errorf("split read used length %d, want %d", used, 3*specSector+1)
	}
}

func TestFlush(t *testing.T) {
	path, _ := image(t, 8)
	h := newHarness(t, Config{Path: path}, allFeatures)
	h.wantStatus("write", h.do(specTOut, 0, pattern(specSector, 1), 0), specSOK)
	r := h.do(specTFlush, 0, nil, 0)
	h.wantStatus("flush", r, specSOK)
	if r.used != 1 {
		t.Errorf("flush used length %d, want 1", r.used)
	}
	// The sector field is unused for a flush.
	h.wantStatus("flush with a sector", h.do(specTFlush, 1<<40, nil, 0), specSOK)
	h.wantStatus("flush with data", h.do(specTFlush, 0, pattern(specSector, 1), 0), specSIOErr)
}

func TestGetID(t *testing.T) {
	tests := []struct {
		id   string
		room uint32
		want []byte
	}{
		{"tern-disk-0", 20, []byte("tern-disk-0\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
		{"01234567890123456789", 20, []byte("01234567890123456789")}, // no NUL at 20 bytes
		{"", 20, make([]byte, 20)},
		{"serial", 4, []byte("seri")},
	}
	for _, tt := range tests {
		path, _ := image(t, 1)
		h := newHarness(t, Config{Path: path, ID: tt.id}, allFeatures)
		r := h.do(specTGetID, 0, nil, tt.room)
		h.wantStatus("GET_ID", r, specSOK)
		if !bytes.Equal(r.data, tt.want) {
			t.Errorf("ID %q into %d bytes: got %q, want %q", tt.id, tt.room, r.data, tt.want)
		}
		if r.used != tt.room+1 {
			t.Errorf("ID %q: used length %d, want %d", tt.id, r.used, tt.room+1)
		}
	}
	path, _ := image(t, 1)
	h := newHarness(t, Config{Path: path, ID: "x"}, allFeatures)
	r := h.do(specTGetID, 0, nil, 64)
	if !bytes.Equal(r.data[:specIDBytes], []byte("x"+string(make([]byte, 19)))) {
		t.Errorf("GET_ID into 64 bytes: first 20 = %q", r.data[:specIDBytes])
	}
	h.wantStatus("GET_ID with no room", h.do(specTGetID, 0, nil, 0), specSIOErr)
}

func TestBeyondCapacityFailsAndChangesNothing(t *testing.T) {
	const sectors = 16
	path, orig := image(t, sectors)
	h := newHarness(t, Config{Path: path}, allFeatures)
	cases := []struct {
		name   string
		sector uint64
		n      int // sectors
	}{
		{"starts at capacity", sectors, 1},
		{"runs one sector past", sectors - 1, 2},
		{"starts far past", 1 << 40, 1},
		{"sector*512 overflows", 1 << 55, 1},
		{"sector+count wraps", ^uint64(0), 2},
		{"zero-length at capacity+1", sectors + 1, 0},
	}
	for _, c := range cases {
		r := h.do(specTOut, c.sector, pattern(c.n*specSector, 0x77), 0)
		h.wantStatus("write "+c.name, r, specSIOErr)
		if r.used != 1 {
			t.Errorf("write %s: used length %d, want 1", c.name, r.used)
		}
		if c.n == 0 {
			continue
		}
		r = h.do(specTIn, c.sector, nil, uint32(c.n*specSector))
		h.wantStatus("read "+c.name, r, specSIOErr)
		if !bytes.Equal(r.data, bytes.Repeat([]byte{0xee}, c.n*specSector)) {
			t.Errorf("read %s: the device wrote data into the buffer", c.name)
		}
		r = h.do(specTDiscard, 0, seg(c.sector, uint32(c.n), 0), 0)
		h.wantStatus("discard "+c.name, r, specSIOErr)
		r = h.do(specTWriteZeroes, 0, seg(c.sector, uint32(c.n), specUnmapFlag), 0)
		h.wantStatus("write-zeroes "+c.name, r, specSIOErr)
	}
	if !bytes.Equal(fileBytes(t, path), orig) {
		t.Fatal("image changed after requests past the capacity")
	}
	// A zero-length request exactly at the capacity is inside the disk.
	h.wantStatus("zero-length write at capacity", h.do(specTOut, sectors, nil, 0), specSOK)
}

func TestReadOnlyDiskRefusesChanges(t *testing.T) {
	path, orig := image(t, 16)
	h := newHarness(t, Config{Path: path, ReadOnly: true}, virtioV1|specFRO|specFFlush|specFBlkSize|specFSegMax)
	h.wantStatus("write", h.do(specTOut, 0, pattern(specSector, 3), 0), specSIOErr)
	h.wantStatus("discard", h.do(specTDiscard, 0, seg(0, 8, 0), 0), specSIOErr)
	h.wantStatus("write-zeroes", h.do(specTWriteZeroes, 0, seg(0, 8, 0), 0), specSIOErr)
	h.wantStatus("flush", h.do(specTFlush, 0, nil, 0), specSOK)
	r := h.do(specTIn, 4, nil, specSector)
	h.wantStatus("read", r, specSOK)
	if !bytes.Equal(r.data, orig[4*specSector:5*specSector]) {
		t.Error("read from a read-only disk returned other bytes than the image's")
	}
	if !bytes.Equal(fileBytes(t, path), orig) {
		t.Fatal("read-only image changed")
	}
}

const virtioV1 = 1 << 32

func TestMalformedRequestsFailAlone(t *testing.T) {
	path, orig := image(t, 16)
	h := newHarness(t, Config{Path: path}, allFeatures)

	short := h.out(1)
	h.submit(h.in(header(specTIn, 0)[:15]), short)
	if s := h.segBytes(short)[0]; s != specSIOErr {
		t.Errorf("15-byte header: status %d, want IOERR", s)
	}
	h.wantStatus("read with driver data", h.do(specTIn, 0, pattern(specSector, 1), specSector), specSIOErr)
	h.wantStatus("write with writable data", h.do(specTOut, 0, pattern(specSector, 1), specSector), specSIOErr)
	h.wantStatus("write of 511 bytes", h.do(specTOut, 0, pattern(511, 1), 0), specSIOErr)
	h.wantStatus("read of 513 bytes", h.do(specTIn, 0, nil, 513), specSIOErr)
	h.wantStatus("discard with writable data", h.do(specTDiscard, 0, seg(0, 1, 0), 16), specSIOErr)
	h.wantStatus("discard of 15 bytes", h.do(specTDiscard, 0, seg(0, 1, 0)[:15], 0), specSIOErr)
	h.wantStatus("discard without segments", h.do(specTDiscard, 0, nil, 0), specSIOErr)
	for _, typ := range []uint32{2, 3, 5, specTGetLifetime, specTSecureErase, 15, 16, 0x80000000, 0xffffffff} {
		r := h.do(typ, 0, nil, 0)
		h.wantStatus("unknown type", r, specSUnsupp)
	}
	if !bytes.Equal(fileBytes(t, path), orig) {
		t.Fatal("image changed after malformed requests")
	}
	// The device goes on serving well-formed requests.
	r := h.do(specTIn, 1, nil, specSector)
	h.wantStatus("read after malformed requests", r, specSOK)
	if !bytes.Equal(r.data, orig[specSector:2*specSector]) {
		t.Error("read after malformed requests returned wrong data")
	}
}

// A chain without a writable byte cannot be failed: the device gives it
// back with length 0 and asks for a reset, then serves nothing more.
func TestChainWithoutStatusNeedsReset(t *testing.T) {
	path, orig := image(t, 8)
	h := newHarness(t, Config{Path: path}, allFeatures)
	head := h.publish(h.in(append(header(specTOut, 0), pattern(specSector, 5)...)))
	err := <-h.irq.resets
	if err == nil {
		t.Fatal("NeedsReset with a nil cause")
	}
	<-h.irq.signals // the completion is signalled before the reset request
	id, length := h.drv.UsedElem(0)
	if h.drv.UsedIdx() != 1 || id != uint32(head) || length != 0 {
		t.Errorf("used ring: idx %d, elem (%d, %d), want idx 1, (%d, 0)", h.drv.UsedIdx(), id, length, head)
	}
	if !bytes.Equal(fileBytes(t, path), orig) {
		t.Error("a request without a status byte changed the image")
	}
	// Until reset, notifications are ignored.
	h.publish(h.in(header(specTFlush, 0)), h.out(1))
	h.dev.Reset()
	if got := h.drv.UsedIdx(); got != 1 {
		t.Errorf("used index %d after a notification to a device needing reset, want 1", got)
	}
}

func TestMalformedRingNeedsReset(t *testing.T) {
	path, _ := image(t, 8)
	h := newHarness(t, Config{Path: path}, allFeatures)
	// A chain whose descriptor points outside RAM.
	h.drv.WriteDesc(h.drv.Desc, 0, virtqtest.Desc{Addr: ramSize, Len: 16})
	h.drv.Publish(0)
	if err := h.dev.Activate(h.mem, h.queues(), h.irq, h.acked); err != nil {
		t.Fatal(err)
	}
	if err := <-h.irq.resets; err == nil {
		t.Fatal("NeedsReset with a nil cause")
	}
}

func TestResetAndActivateAgain(t *testing.T) {
	path, orig := image(t, 8)
	h := newHarness(t, Config{Path: path}, allFeatures)
	h.wantStatus("read", h.do(specTIn, 0, nil, specSector), specSOK)
	h.dev.Reset()
	h.dev.Reset() // idempotent

	// A fresh driver brings up the queue again. (Its harness's own
	// device, closed at once, gets another image: the first is locked.)
	other, _ := image(t, 8)
	h2 := newHarness(t, Config{Path: other}, allFeatures)
	h2.dev.Close()
	h2.dev = h.dev
	r := h2.do(specTIn, 2, nil, specSector)
	h2.wantStatus("read after reset", r, specSOK)
	if !bytes.Equal(r.data, orig[2*specSector:3*specSector]) {
		t.Error("read after reset returned wrong data")
	}
	if err := h.dev.Close(); err != nil {
		t.Fatalf("Close while active: %v", err)
	}
	if err := h.dev.Activate(h.mem, h.queues(), h.irq, h.acked); err == nil {
		t.Error("Activate after Close succeeded")
	}
}

func TestActivateChecksQueues(t *testing.T) {
	path, _ := image(t, 8)
	h := newHarness(t, Config{Path: path}, allFeatures)
	if err := h.dev.Activate(h.mem, nil, h.irq, h.acked); err == nil {
		t.Error("Activate with no queues succeeded")
	}
	h.q.SetReady(false)
	if err := h.dev.Activate(h.mem, h.queues(), h.irq, h.acked); err != nil {
		t.Errorf("Activate with a disabled queue: %v", err)
	}
	h.dev.QueueNotify(0) // nothing to serve, nothing to crash
	h.dev.QueueNotify(7)
	h.dev.Reset()
}

// Requests made available together are all served, in one batch, with
// VIRTIO_F_EVENT_IDX negotiated.
func TestBatchWithEventIdx(t *testing.T) {
	path, orig := image(t, 16)
	h := newHarness(t, Config{Path: path}, allFeatures|virtqtest.FeatureEventIdx)
	var outs []virtqtest.Seg
	for i := range 3 {
		hd := h.in(header(specTIn, uint64(4*i)))
		o := h.out(specSector + 1)
		outs = append(outs, o)
		head := h.drv.Chain(h.desc, hd, o)
		h.desc += 2
		h.drv.Publish(head)
	}
	if err := h.dev.Activate(h.mem, h.queues(), h.irq, h.acked); err != nil {
		t.Fatal(err)
	}
	h.active = true
	<-h.irq.signals
	if got := h.drv.UsedIdx(); got != 3 {
		t.Fatalf("used index %d after one interrupt, want 3", got)
	}
	for i, o := range outs {
		b := h.segBytes(o)
		if b[specSector] != specSOK || !bytes.Equal(b[:specSector], orig[4*i*specSector:(4*i+1)*specSector]) {
			t.Errorf("request %d: status %d or data wrong", i, b[specSector])
		}
	}
	// With EVENT_IDX the device asks to be notified at the next entry.
	if got := h.drv.AvailEvent(); got != 3 {
		t.Errorf("avail_event %d, want 3", got)
	}
}
