package rng

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// Fuzz layout: a queue of 8 in 128 KiB of RAM, and room for an indirect
// table the descriptors may point at.
const (
	fuzzQueueSize = 8
	fuzzDesc      = 0x0
	fuzzAvail     = 0x80
	fuzzUsed      = 0x100
	fuzzIndirect  = 0x3000
	fuzzRAM       = 128 << 10
	fuzzHead      = 2 + 16*fuzzQueueSize + 2*fuzzQueueSize + 64
)

// FuzzRequest serves arbitrary entropy requests. The input is a byte of
// flags (INDIRECT_DESC, EVENT_IDX, a fill that fails), the available
// index, the descriptor table, the available ring and an indirect table.
// The fill only counts bytes, so the rings stay as the driver left them
// and the used lengths can be checked against it exactly.
func FuzzRequest(f *testing.F) {
	seed := func(flags, availIdx byte, descs ...virtqtest.Desc) []byte {
		in := make([]byte, fuzzHead)
		in[0], in[1] = flags, availIdx
		for i, d := range descs {
			e := in[2+16*i:]
			binary.LittleEndian.PutUint64(e, d.Addr)
			binary.LittleEndian.PutUint32(e[8:], d.Len)
			binary.LittleEndian.PutUint16(e[12:], d.Flags)
			binary.LittleEndian.PutUint16(e[14:], d.Next)
		}
		for i := range fuzzQueueSize {
			binary.LittleEndian.PutUint16(in[2+16*fuzzQueueSize+2*i:], uint16(i))
		}
		ind := in[2+16*fuzzQueueSize+2*fuzzQueueSize:]
		binary.LittleEndian.PutUint64(ind, 0x4000)
		binary.LittleEndian.PutUint32(ind[8:], 64)
		binary.LittleEndian.PutUint16(ind[12:], 2)
		return in
	}
	f.Add(seed(0, 1, virtqtest.Desc{Addr: 0x1000, Len: 64, Flags: 2}))
	f.Add(seed(0, 2, virtqtest.Desc{Addr: 0x1000, Len: 16, Flags: 3, Next: 2}, virtqtest.Desc{Addr: 0x2000, Len: 8}, virtqtest.Desc{Addr: 0x1100, Len: 100000, Flags: 2}))
	f.Add(seed(1, 1, virtqtest.Desc{Addr: fuzzIndirect, Len: 16, Flags: 4}))
	f.Add(seed(2, 3, virtqtest.Desc{Addr: 0x1000, Len: 8}, virtqtest.Desc{Addr: 0x1000, Len: 8, Flags: 2}, virtqtest.Desc{Addr: fuzzRAM - 4, Len: 8, Flags: 2}))
	f.Add(seed(4, 1, virtqtest.Desc{Addr: 0x1000, Len: 64, Flags: 2}))
	f.Add(seed(0, 200))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < fuzzHead {
			return
		}
		mem := virtqtest.NewMemory(0, fuzzRAM)
		ram := mem.Bytes()
		binary.LittleEndian.PutUint16(ram[fuzzAvail+2:], uint16(in[1]))
		copy(ram[fuzzDesc:], in[2:2+16*fuzzQueueSize])
		copy(ram[fuzzAvail+4:], in[2+16*fuzzQueueSize:2+16*fuzzQueueSize+2*fuzzQueueSize])
		copy(ram[fuzzIndirect:], in[2+16*fuzzQueueSize+2*fuzzQueueSize:fuzzHead])
		var acked uint64 = virtio.FeatureVersion1
		if in[0]&1 != 0 {
			acked |= 1 << 28
		}
		if in[0]&2 != 0 {
			acked |= 1 << 29
		}
		q, err := virtio.NewQueue(QueueMaxSize)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.SetSize(fuzzQueueSize); err != nil {
			t.Fatal(err)
		}
		q.SetDescTable(fuzzDesc)
		q.SetAvailRing(fuzzAvail)
		q.SetUsedRing(fuzzUsed)
		q.SetFeatures(acked)
		q.SetReady(true)

		d := New()
		var filled uint64
		fills := 0
		errFill := errors.New("no entropy")
		d.fill = func(p []byte) error {
			fills++
			if in[0]&4 != 0 && fills == 2 {
				return errFill
			}
			filled += uint64(len(p))
			return nil
		}
		irq := &fakeIRQ{}
		if err := d.Activate(mem, []*virtio.Queue{q}, irq, acked); err != nil {
			t.Fatal(err)
		}
		d.QueueNotify(0)
		if len(irq.needsReset) > 1 {
			t.Fatalf("%d resets for one notification", len(irq.needsReset))
		}
		if len(irq.needsReset) == 0 && q.NextUsed() != q.NextAvail() {
			t.Fatalf("served without error, yet %d chains popped and %d used", q.NextAvail(), q.NextUsed())
		}
		if n := q.NextUsed(); n > 16*fuzzQueueSize*2 {
			t.Fatalf("%d requests completed for one notification", n)
		}
		var sum uint64
		for i := range min(q.NextUsed(), fuzzQueueSize) {
			l := binary.LittleEndian.Uint32(ram[fuzzUsed+4+8*uint64(i)+4:])
			if l > MaxBytesPerRequest {
				t.Fatalf("used element %d reports %d bytes, over the %d limit", i, l, MaxBytesPerRequest)
			}
			sum += uint64(l)
		}
		// A failed request leaves what it filled unreported.
		if len(irq.needsReset) == 0 && q.NextUsed() <= fuzzQueueSize && sum != filled {
			t.Fatalf("used elements report %d bytes, the device filled %d", sum, filled)
		}
		// A device that asked for a reset stays quiet until it gets one.
		used := q.NextUsed()
		if len(irq.needsReset) > 0 {
			d.QueueNotify(0)
			if q.NextUsed() != used || len(irq.needsReset) != 1 {
				t.Fatal("a broken device served the queue again")
			}
		}
		if !mem.GuardsIntact() {
			t.Fatal("wrote outside guest RAM")
		}
	})
}
