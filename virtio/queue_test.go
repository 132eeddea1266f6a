package virtio_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

type seg = virtqtest.Seg

func TestNewQueueSizes(t *testing.T) {
	for _, n := range []uint16{0, 3, 100, 65535} {
		if _, err := virtio.NewQueue(n); !errors.Is(err, virtio.ErrBadQueueConfig) {
			t.Errorf("NewQueue(%d) error = %v, want ErrBadQueueConfig", n, err)
		}
	}
	q, err := virtio.NewQueue(256)
	if err != nil {
		t.Fatal(err)
	}
	if q.Size() != 256 || q.MaxSize() != 256 || q.Ready() {
		t.Errorf("new queue: size %d max %d ready %v; want 256 256 false", q.Size(), q.MaxSize(), q.Ready())
	}
	for _, n := range []uint16{1, 2, 64, 256} {
		if err := q.SetSize(n); err != nil || q.Size() != n {
			t.Errorf("SetSize(%d) = %v, size %d", n, err, q.Size())
		}
	}
	for _, n := range []uint16{0, 3, 255, 512} {
		if err := q.SetSize(n); !errors.Is(err, virtio.ErrBadQueueConfig) {
			t.Errorf("SetSize(%d) error = %v, want ErrBadQueueConfig", n, err)
		}
	}
}

func TestValidate(t *testing.T) {
	mem := virtqtest.NewMemory(0x10000, 0x10000) // RAM is [0x10000, 0x20000)
	cases := []struct {
		name              string
		desc, avail, used uint64
		ok                bool
	}{
		{"packed at start", 0x10000, 0x10100, 0x10200, true},
		{"used ends at end of RAM", 0x10000, 0x10100, 0x20000 - (6 + 8*16), false /* misaligned: 0x1ff7a */},
		{"desc misaligned", 0x10008, 0x10100, 0x10200, false},
		{"avail misaligned", 0x10000, 0x10101, 0x10200, false},
		{"used misaligned", 0x10000, 0x10100, 0x10202, false},
		{"desc below RAM", 0xff00, 0x10100, 0x10200, false},
		{"used runs past RAM", 0x10000, 0x10100, 0x1ff80, false},
		{"desc wraps", 0xfffffffffffffff0, 0x10100, 0x10200, false},
	}
	for _, c := range cases {
		q, _ := virtio.NewQueue(16)
		q.SetDescTable(c.desc)
		q.SetAvailRing(c.avail)
		q.SetUsedRing(c.used)
		err := q.Validate(mem)
		if c.ok && err != nil {
			t.Errorf("%s: Validate = %v, want nil", c.name, err)
		}
		if !c.ok && !errors.Is(err, virtio.ErrBadQueueConfig) {
			t.Errorf("%s: Validate = %v, want ErrBadQueueConfig", c.name, err)
		}
	}
	// Used ring of 16 entries is 134 bytes; placed 4-aligned so that it
	// ends exactly at the end of RAM minus 2 it is still inside.
	q, _ := virtio.NewQueue(16)
	q.SetDescTable(0x10000)
	q.SetAvailRing(0x10100)
	q.SetUsedRing(0x20000 - 136)
	if err := q.Validate(mem); err != nil {
		t.Errorf("used ring in the last 136 bytes: Validate = %v", err)
	}
}

func TestPopEmptyAndNotReady(t *testing.T) {
	mem, _, q := setup(t, 8, 0)
	if c, err := q.Pop(mem); c != nil || err != nil {
		t.Errorf("Pop on an empty ring = %v, %v; want nil, nil", c, err)
	}
	q.SetReady(false)
	if _, err := q.Pop(mem); !errors.Is(err, virtio.ErrQueueNotReady) {
		t.Errorf("Pop on a disabled queue: %v, want ErrQueueNotReady", err)
	}
	if err := q.AddUsed(mem, 0, 0); !errors.Is(err, virtio.ErrQueueNotReady) {
		t.Errorf("AddUsed on a disabled queue: %v, want ErrQueueNotReady", err)
	}
}

func TestPopAddUsedRoundTrip(t *testing.T) {
	mem, drv, q := setup(t, 8, 0)
	ram := mem.Bytes()
	copy(ram[0x8000:], "hello, ")
	copy(ram[0x8100:], "device")
	drv.Publish(drv.Chain(5,
		seg{Addr: 0x8000, Len: 7},
		seg{Addr: 0x8100, Len: 6},
		seg{Addr: 0x9000, Len: 3, Write: true},
		seg{Addr: 0x9100, Len: 5, Write: true}))

	c, err := q.Pop(mem)
	if err != nil || c == nil {
		t.Fatalf("Pop = %v, %v", c, err)
	}
	if c.Head != 5 {
		t.Errorf("Head = %d, want 5", c.Head)
	}
	// Chain wraps in the table: descriptors 5, 6, 7, 0.
	wantR := []virtio.Buffer{{Addr: 0x8000, Len: 7}, {Addr: 0x8100, Len: 6}}
	wantW := []virtio.Buffer{{Addr: 0x9000, Len: 3}, {Addr: 0x9100, Len: 5}}
	if !equalBufs(c.Readable, wantR) || !equalBufs(c.Writable, wantW) {
		t.Fatalf("buffers = %v / %v, want %v / %v", c.Readable, c.Writable, wantR, wantW)
	}
	if c.ReadableLen() != 13 || c.WritableLen() != 8 {
		t.Errorf("lengths = %d, %d; want 13, 8", c.ReadableLen(), c.WritableLen())
	}
	all, err := c.ReadAll(mem, 13)
	if err != nil || string(all) != "hello, device" {
		t.Errorf("ReadAll = %q, %v", all, err)
	}
	if _, err := c.ReadAll(mem, 12); !errors.Is(err, virtio.ErrBadChain) {
		t.Errorf("ReadAll over its limit: %v, want ErrBadChain", err)
	}
	part := make([]byte, 4)
	if n, err := c.ReadAt(mem, part, 5); n != 4 || err != nil || string(part) != ", de" {
		t.Errorf("ReadAt(off 5) = %d, %v, %q; want 4, nil, \", de\"", n, err, part)
	}
	if n, err := c.ReadAt(mem, make([]byte, 4), 11); n != 2 || err != io.EOF {
		t.Errorf("ReadAt past the end = %d, %v; want 2, EOF", n, err)
	}
	if n, err := c.WriteAt(mem, []byte("abcdefgh"), 0); n != 8 || err != nil {
		t.Errorf("WriteAt = %d, %v", n, err)
	}
	if string(ram[0x9000:0x9003]) != "abc" || string(ram[0x9100:0x9105]) != "defgh" {
		t.Errorf("scattered bytes = %q %q", ram[0x9000:0x9003], ram[0x9100:0x9105])
	}
	if n, err := c.WriteAt(mem, []byte("xyz"), 6); n != 2 || err != io.ErrShortWrite {
		t.Errorf("WriteAt past the end = %d, %v; want 2, ErrShortWrite", n, err)
	}
	if c, err := q.Pop(mem); c != nil || err != nil {
		t.Errorf("second Pop = %v, %v; want empty", c, err)
	}

	if err := q.AddUsed(mem, 5, 8); err != nil {
		t.Fatal(err)
	}
	if id, n := drv.UsedElem(0); id != 5 || n != 8 || drv.UsedIdx() != 1 {
		t.Errorf("used = {%d, %d} idx %d; want {5, 8} idx 1", id, n, drv.UsedIdx())
	}
	if err := q.AddUsed(mem, 8, 0); !errors.Is(err, virtio.ErrBadChain) {
		t.Errorf("AddUsed with head 8 of 8: %v, want ErrBadChain", err)
	}
	if drv.UsedIdx() != 1 {
		t.Errorf("a rejected AddUsed moved the used index to %d", drv.UsedIdx())
	}
}

func equalBufs(a, b []virtio.Buffer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestIndexWraparound runs the free-running 16-bit indices across 65535.
func TestIndexWraparound(t *testing.T) {
	mem, drv, q := setup(t, 4, 0)
	st := q.State()
	st.NextAvail, st.NextUsed = 65534, 65534
	if err := q.SetState(st); err != nil {
		t.Fatal(err)
	}
	drv.SetAvailIdx(65534)
	for i := range uint16(4) {
		drv.Chain(i, seg{Addr: 0x8000 + 0x100*uint64(i), Len: 16, Write: true})
		drv.Publish(i) // slots 2, 3, 0, 1; idx runs 65535, 0, 1, 2
	}
	if drv.AvailIdx != 2 {
		t.Fatalf("driver avail idx = %d, want 2", drv.AvailIdx)
	}
	for i := range uint16(4) {
		c, err := q.Pop(mem)
		if err != nil || c == nil || c.Head != i {
			t.Fatalf("Pop %d = %+v, %v; want head %d", i, c, err, i)
		}
		if err := q.AddUsed(mem, c.Head, uint32(i)); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := q.Pop(mem); c != nil || err != nil {
		t.Errorf("Pop after draining = %v, %v", c, err)
	}
	if q.NextAvail() != 2 || q.NextUsed() != 2 || drv.UsedIdx() != 2 {
		t.Errorf("next avail %d, next used %d, used idx %d; want 2, 2, 2", q.NextAvail(), q.NextUsed(), drv.UsedIdx())
	}
	// Used slots are idx mod 4: 65534 -> 2, 65535 -> 3, 0 -> 0, 1 -> 1.
	for slot, want := range []uint32{2, 3, 0, 1} {
		if id, _ := drv.UsedElem(uint16(slot)); id != want {
			t.Errorf("used slot %d holds head %d, want %d", slot, id, want)
		}
	}
}

func TestIndirectChain(t *testing.T) {
	mem, drv, q := setup(t, 8, virtqtest.FeatureIndirectDesc)
	const table = 0x6000
	drv.ChainIn(table, 3, 0,
		seg{Addr: 0x8000, Len: 16},
		seg{Addr: 0x9000, Len: 512, Write: true},
		seg{Addr: 0x9400, Len: 1, Write: true})
	// A direct readable descriptor, then one naming the indirect table.
	drv.WriteDesc(drv.Desc, 2, virtqtest.Desc{Addr: 0x7000, Len: 4, Flags: virtqtest.DescFNext, Next: 6})
	drv.WriteDesc(drv.Desc, 6, virtqtest.Desc{Addr: table, Len: 3 * 16, Flags: virtqtest.DescFIndirect})
	drv.Publish(2)
	c, err := q.Pop(mem)
	if err != nil || c == nil {
		t.Fatalf("Pop = %v, %v", c, err)
	}
	wantR := []virtio.Buffer{{Addr: 0x7000, Len: 4}, {Addr: 0x8000, Len: 16}}
	wantW := []virtio.Buffer{{Addr: 0x9000, Len: 512}, {Addr: 0x9400, Len: 1}}
	if c.Head != 2 || !equalBufs(c.Readable, wantR) || !equalBufs(c.Writable, wantW) {
		t.Errorf("chain = head %d %v / %v, want head 2 %v / %v", c.Head, c.Readable, c.Writable, wantR, wantW)
	}
}

// TestIndirectChainAsLongAsQueue: a chain may hold as many buffers as the
// queue has entries, even though the indirect table adds one descriptor
// in the main table (Linux's virtio-blk sizes requests that way).
func TestIndirectChainAsLongAsQueue(t *testing.T) {
	mem, drv, q := setup(t, 8, virtqtest.FeatureIndirectDesc)
	segs := make([]seg, 8)
	for i := range segs {
		segs[i] = seg{Addr: 0x8000 + 0x10*uint64(i), Len: 0x10, Write: i > 0}
	}
	drv.ChainIn(0x6000, 8, 0, segs...)
	drv.WriteDesc(drv.Desc, 0, virtqtest.Desc{Addr: 0x6000, Len: 8 * 16, Flags: virtqtest.DescFIndirect})
	drv.Publish(0)
	if c, err := q.Pop(mem); err != nil || len(c.Readable)+len(c.Writable) != 8 {
		t.Fatalf("Pop = %+v, %v; want 8 buffers", c, err)
	}
}

// TestPopRejects checks every malformed chain the device must refuse.
// Each case builds its chain at head 0 of an 8-entry queue in 1 MiB of RAM.
func TestPopRejects(t *testing.T) {
	const ramEnd = 1 << 20
	type D = virtqtest.Desc
	const (
		N = virtqtest.DescFNext
		W = virtqtest.DescFWrite
		I = virtqtest.DescFIndirect
	)
	cases := []struct {
		name     string
		features uint64
		direct   []D // descriptors 0.. of the queue's table
		indirect []D // descriptors of the table at 0x6000
	}{
		{"buffer past end of RAM", 0, []D{{Addr: ramEnd - 8, Len: 9}}, nil},
		{"buffer wholly outside RAM", 0, []D{{Addr: 0x200000, Len: 1}}, nil},
		{"buffer address wraps", 0, []D{{Addr: 0xfffffffffffffff0, Len: 0x20}}, nil},
		{"next outside table", 0, []D{{Addr: 0x8000, Len: 1, Flags: N, Next: 8}}, nil},
		{"loop to self", 0, []D{{Addr: 0x8000, Len: 1, Flags: N, Next: 0}}, nil},
		{"loop of two", 0, []D{{Addr: 0x8000, Len: 1, Flags: N, Next: 1}, {Addr: 0x8000, Len: 1, Flags: N, Next: 0}}, nil},
		{"readable after writable", 0, []D{{Addr: 0x8000, Len: 1, Flags: W | N, Next: 1}, {Addr: 0x8000, Len: 1}}, nil},
		{"indirect not negotiated", 0, []D{{Addr: 0x6000, Len: 16, Flags: I}}, []D{{Addr: 0x8000, Len: 1}}},
		{"indirect with next", virtqtest.FeatureIndirectDesc, []D{{Addr: 0x6000, Len: 16, Flags: I | N, Next: 1}, {Addr: 0x8000, Len: 1}}, []D{{Addr: 0x8000, Len: 1}}},
		{"indirect length zero", virtqtest.FeatureIndirectDesc, []D{{Addr: 0x6000, Len: 0, Flags: I}}, nil},
		{"indirect length not multiple of 16", virtqtest.FeatureIndirectDesc, []D{{Addr: 0x6000, Len: 24, Flags: I}}, []D{{Addr: 0x8000, Len: 1}}},
		{"indirect table too large", virtqtest.FeatureIndirectDesc, []D{{Addr: 0x6000, Len: 16 * (virtio.MaxIndirectTable + 1), Flags: I}}, nil},
		{"indirect table outside RAM", virtqtest.FeatureIndirectDesc, []D{{Addr: ramEnd - 16, Len: 32, Flags: I}}, nil},
		{"nested indirect", virtqtest.FeatureIndirectDesc, []D{{Addr: 0x6000, Len: 16, Flags: I}}, []D{{Addr: 0x6000, Len: 16, Flags: I}}},
		{"loop inside indirect", virtqtest.FeatureIndirectDesc, []D{{Addr: 0x6000, Len: 32, Flags: I}}, []D{{Addr: 0x8000, Len: 1, Flags: N, Next: 1}, {Addr: 0x8000, Len: 1, Flags: N, Next: 0}}},
		{"next outside indirect table", virtqtest.FeatureIndirectDesc, []D{{Addr: 0x6000, Len: 32, Flags: I}}, []D{{Addr: 0x8000, Len: 1, Flags: N, Next: 2}, {}}},
		{"indirect buffer outside RAM", virtqtest.FeatureIndirectDesc, []D{{Addr: 0x6000, Len: 16, Flags: I}}, []D{{Addr: ramEnd, Len: 1}}},
		{"readable after writable across indirect", virtqtest.FeatureIndirectDesc,
			[]D{{Addr: 0x8000, Len: 1, Flags: W | N, Next: 1}, {Addr: 0x6000, Len: 16, Flags: I}}, []D{{Addr: 0x8000, Len: 1}}},
		{"chain longer than the queue", virtqtest.FeatureIndirectDesc, []D{{Addr: 0x6000, Len: 9 * 16, Flags: I}}, chainOf(9)},
		{"direct plus indirect longer than the queue", virtqtest.FeatureIndirectDesc,
			[]D{{Addr: 0x8000, Len: 1, Flags: N, Next: 1}, {Addr: 0x6000, Len: 8 * 16, Flags: I}}, chainOf(8)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem, drv, q := setup(t, 8, c.features)
			for i, d := range c.direct {
				drv.WriteDesc(drv.Desc, uint16(i), d)
			}
			for i, d := range c.indirect {
				drv.WriteDesc(0x6000, uint16(i), d)
			}
			drv.Publish(0)
			ch, err := q.Pop(mem)
			var ce *virtio.ChainError
			if ch != nil || !errors.As(err, &ce) || !errors.Is(err, virtio.ErrBadChain) {
				t.Fatalf("Pop = %+v, %v; want a ChainError wrapping ErrBadChain", ch, err)
			}
			if ce.Head != 0 {
				t.Errorf("ChainError.Head = %d, want 0", ce.Head)
			}
			// The bad chain was consumed; the ring is usable again.
			drv.WriteDesc(drv.Desc, 3, D{Addr: 0x8000, Len: 4, Flags: W})
			drv.Publish(3)
			if ch, err := q.Pop(mem); err != nil || ch == nil || ch.Head != 3 {
				t.Errorf("Pop after a rejected chain = %+v, %v; want head 3", ch, err)
			}
		})
	}
}

// chainOf returns n linked readable descriptors 0..n-1.
func chainOf(n int) []virtqtest.Desc {
	out := make([]virtqtest.Desc, n)
	for i := range out {
		out[i] = virtqtest.Desc{Addr: 0x8000, Len: 1}
		if i+1 < n {
			out[i].Flags = virtqtest.DescFNext
			out[i].Next = uint16(i + 1)
		}
	}
	return out
}

func TestAvailIndexJump(t *testing.T) {
	mem, drv, q := setup(t, 8, 0)
	drv.Chain(0, seg{Addr: 0x8000, Len: 1})
	drv.SetAvailIdx(9) // 9 new entries in a queue of 8
	if c, err := q.Pop(mem); c != nil || !errors.Is(err, virtio.ErrBadRing) {
		t.Fatalf("Pop with avail idx 9 ahead = %v, %v; want ErrBadRing", c, err)
	}
	if q.NextAvail() != 0 {
		t.Errorf("rejected jump consumed entries: next avail %d", q.NextAvail())
	}
	drv.SetAvailIdx(0xffff) // "behind" is 65535 ahead modulo 2^16
	if _, err := q.Pop(mem); !errors.Is(err, virtio.ErrBadRing) {
		t.Errorf("Pop with avail idx moved back: %v, want ErrBadRing", err)
	}
	drv.SetAvailIdx(8) // a full ring is fine
	if c, err := q.Pop(mem); err != nil || c == nil {
		t.Errorf("Pop with a full ring = %v, %v", c, err)
	}
}

func TestHeadOutsideTable(t *testing.T) {
	mem, drv, q := setup(t, 8, 0)
	drv.Publish(8)
	var ce *virtio.ChainError
	if _, err := q.Pop(mem); !errors.As(err, &ce) || ce.Head != 8 {
		t.Errorf("Pop of head 8 in a queue of 8: %v, want ChainError for head 8", err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	mem, drv, q := setup(t, 8, virtqtest.FeatureEventIdx|virtqtest.FeatureIndirectDesc)
	drv.Publish(drv.Chain(0, seg{Addr: 0x8000, Len: 4, Write: true}))
	c, _ := q.Pop(mem)
	q.AddUsed(mem, c.Head, 4)
	q.NeedsNotification(mem)
	st := q.State()
	want := virtio.QueueState{
		MaxSize: 8, Size: 8, Ready: true,
		DescTable: drv.Desc, AvailRing: drv.Avail, UsedRing: drv.Used,
		EventIdx: true, Indirect: true, NextAvail: 1, NextUsed: 1,
		SignalledUsed: 1, SignalledUsedValid: true,
	}
	if st != want {
		t.Fatalf("State = %+v\nwant    %+v", st, want)
	}
	q2, _ := virtio.NewQueue(8)
	if err := q2.SetState(st); err != nil || q2.State() != st {
		t.Errorf("SetState round trip: %v, %+v", err, q2.State())
	}
	bad := st
	bad.MaxSize = 16
	if err := q2.SetState(bad); !errors.Is(err, virtio.ErrBadQueueConfig) {
		t.Errorf("SetState with another max size: %v", err)
	}
	bad = st
	bad.Size = 6
	if err := q2.SetState(bad); !errors.Is(err, virtio.ErrBadQueueConfig) {
		t.Errorf("SetState with size 6: %v", err)
	}
	q2.Reset()
	if got := q2.State(); got != (virtio.QueueState{MaxSize: 8, Size: 8}) {
		t.Errorf("after Reset: %+v", got)
	}
}

func TestReadAtAcrossManyBuffers(t *testing.T) {
	mem, drv, q := setup(t, 8, 0)
	ram := mem.Bytes()
	want := []byte("0123456789abcdef")
	for i := range 4 {
		copy(ram[0x8000+0x100*i:], want[4*i:4*i+4])
	}
	drv.Publish(drv.Chain(0,
		seg{Addr: 0x8000, Len: 4}, seg{Addr: 0x8100, Len: 4},
		seg{Addr: 0x8200, Len: 0}, seg{Addr: 0x8200, Len: 4}, seg{Addr: 0x8300, Len: 4}))
	c, err := q.Pop(mem)
	if err != nil {
		t.Fatal(err)
	}
	for off := range uint64(16) {
		p := make([]byte, 16-off)
		if n, err := c.ReadAt(mem, p, off); n != len(p) || err != nil || !bytes.Equal(p, want[off:]) {
			t.Errorf("ReadAt(off %d) = %d, %v, %q", off, n, err, p)
		}
	}
}
