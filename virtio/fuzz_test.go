package virtio_test

import (
	"testing"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// FuzzQueuePop lets arbitrary bytes be guest RAM and arbitrary values be the
// queue configuration, then drives the queue as a device would. Whatever
// the driver wrote, the device must not panic, must not touch anything
// outside RAM (the guard bytes around the fake RAM stay intact), must
// return only chains whose buffers lie inside RAM and are no more than the
// queue size, and must finish.
func FuzzQueuePop(f *testing.F) {
	const base = 0x10000
	// A well-formed queue of 4 at base with one two-buffer chain.
	seed := make([]byte, 0x400)
	seedMem := virtqtest.NewMemory(base, len(seed))
	drv := virtqtest.Layout(seedMem, 4, base)
	drv.Publish(drv.Chain(0, virtqtest.Seg{Addr: base + 0x200, Len: 8}, virtqtest.Seg{Addr: base + 0x300, Len: 8, Write: true}))
	copy(seed, seedMem.Bytes())
	f.Add(seed, uint8(2), uint32(drv.Desc), uint32(drv.Avail), uint32(drv.Used), uint8(3), uint16(0))

	f.Fuzz(func(t *testing.T, ram []byte, sizeLog uint8, desc, avail, used uint32, features uint8, nextAvail uint16) {
		if len(ram) > 1<<16 {
			ram = ram[:1<<16]
		}
		mem := virtqtest.NewMemory(base, len(ram))
		copy(mem.Bytes(), ram)
		size := uint16(1) << (sizeLog % 16)
		q, err := virtio.NewQueue(size)
		if err != nil {
			t.Fatalf("NewQueue(%d): %v", size, err)
		}
		st := q.State()
		st.DescTable, st.AvailRing, st.UsedRing = uint64(desc), uint64(avail), uint64(used)
		st.Indirect, st.EventIdx = features&1 != 0, features&2 != 0
		st.NextAvail, st.NextUsed = nextAvail, nextAvail
		st.Ready = true
		if err := q.SetState(st); err != nil {
			t.Fatalf("SetState: %v", err)
		}
		q.Validate(mem) // the result does not matter: Pop must be safe regardless

		scratch := make([]byte, 64)
		// A device pops at most a ring's worth per batch; a few batches
		// are enough to exercise index wraparound without letting one
		// input take seconds.
		for range min(2*int(size)+2, 64) {
			c, err := q.Pop(mem)
			if err != nil || c == nil {
				break
			}
			if n := len(c.Readable) + len(c.Writable); n == 0 || n > int(size) {
				t.Fatalf("chain of %d buffers in a queue of %d", n, size)
			}
			var r, w uint64
			for _, b := range c.Readable {
				checkInside(t, mem, b)
				r += uint64(b.Len)
			}
			for _, b := range c.Writable {
				checkInside(t, mem, b)
				w += uint64(b.Len)
			}
			if r != uint64(c.ReadableLen()) || w != uint64(c.WritableLen()) {
				t.Fatalf("lengths %d/%d, buffers add up to %d/%d", c.ReadableLen(), c.WritableLen(), r, w)
			}
			c.ReadAt(mem, scratch, 0)
			n, _ := c.WriteAt(mem, scratch, 0)
			q.AddUsed(mem, c.Head, uint32(n))
			q.NeedsNotification(mem)
			q.EnableNotification(mem)
		}
		if !mem.GuardsIntact() {
			t.Fatalf("bytes outside fake RAM were written")
		}
	})
}

func checkInside(t *testing.T, mem *virtqtest.Memory, b virtio.Buffer) {
	t.Helper()
	if b.Addr < mem.Base || b.Addr > mem.End() || uint64(b.Len) > mem.End()-b.Addr {
		t.Fatalf("buffer [%#x, +%#x) outside RAM [%#x, %#x)", b.Addr, b.Len, mem.Base, mem.End())
	}
}
