package virtio_test

import (
	"encoding/binary"
	"testing"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// TestRingSizes checks the part sizes of virtio 1.2 2.7 ("Descriptor Table
// 16 * Queue Size; Available Ring 6 + 2 * Queue Size; Used Ring 6 + 8 *
// Queue Size") and the alignments (16, 2, 4).
func TestRingSizes(t *testing.T) {
	for _, n := range []uint16{1, 2, 256, 32768} {
		if got, want := virtio.DescTableSize(n), 16*uint64(n); got != want {
			t.Errorf("DescTableSize(%d) = %d, want %d", n, got, want)
		}
		if got, want := virtio.AvailRingSize(n), 6+2*uint64(n); got != want {
			t.Errorf("AvailRingSize(%d) = %d, want %d", n, got, want)
		}
		if got, want := virtio.UsedRingSize(n), 6+8*uint64(n); got != want {
			t.Errorf("UsedRingSize(%d) = %d, want %d", n, got, want)
		}
	}
	if virtio.DescTableAlign != 16 || virtio.AvailRingAlign != 2 || virtio.UsedRingAlign != 4 {
		t.Errorf("alignments = %d, %d, %d; want 16, 2, 4", virtio.DescTableAlign, virtio.AvailRingAlign, virtio.UsedRingAlign)
	}
}

// TestRawLayout writes a queue byte by byte at the offsets of the
// specification's structs, without the driver harness, and checks what the
// device reads and writes.
func TestRawLayout(t *testing.T) {
	mem := virtqtest.NewMemory(0, 0x10000)
	ram := mem.Bytes()
	const (
		size  = 4
		desc  = 0x100 // 16-byte aligned
		avail = 0x200 // 2-byte aligned
		used  = 0x300 // 4-byte aligned
	)
	le := binary.LittleEndian
	// Descriptor 2: addr 0x4000, len 0x10, flags NEXT, next 3.
	le.PutUint64(ram[desc+2*16+0:], 0x4000)
	le.PutUint32(ram[desc+2*16+8:], 0x10)
	le.PutUint16(ram[desc+2*16+12:], 1)
	le.PutUint16(ram[desc+2*16+14:], 3)
	// Descriptor 3: addr 0x5000, len 0x20, flags WRITE.
	le.PutUint64(ram[desc+3*16+0:], 0x5000)
	le.PutUint32(ram[desc+3*16+8:], 0x20)
	le.PutUint16(ram[desc+3*16+12:], 2)
	// Avail: flags 0, idx 1, ring[0] = 2.
	le.PutUint16(ram[avail+2:], 1)
	le.PutUint16(ram[avail+4:], 2)

	q, _ := virtio.NewQueue(size)
	q.SetDescTable(desc)
	q.SetAvailRing(avail)
	q.SetUsedRing(used)
	q.SetFeatures(virtqtest.FeatureEventIdx)
	q.SetReady(true)
	if err := q.Validate(mem); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	c, err := q.Pop(mem)
	if err != nil || c == nil {
		t.Fatalf("Pop = %v, %v", c, err)
	}
	if c.Head != 2 || len(c.Readable) != 1 || len(c.Writable) != 1 ||
		c.Readable[0] != (virtio.Buffer{Addr: 0x4000, Len: 0x10}) || c.Writable[0] != (virtio.Buffer{Addr: 0x5000, Len: 0x20}) {
		t.Fatalf("chain = %+v", c)
	}
	if err := q.AddUsed(mem, 2, 0x18); err != nil {
		t.Fatal(err)
	}
	// Used: idx at +2, ring[0] = {id 2, len 0x18} at +4.
	if got := le.Uint16(ram[used+2:]); got != 1 {
		t.Errorf("used idx = %d, want 1", got)
	}
	if id, n := le.Uint32(ram[used+4:]), le.Uint32(ram[used+8:]); id != 2 || n != 0x18 {
		t.Errorf("used ring[0] = {%d, %#x}, want {2, 0x18}", id, n)
	}
	// avail_event sits after the used ring entries: used + 4 + 8*size.
	if more, err := q.EnableNotification(mem); err != nil || more {
		t.Fatalf("EnableNotification = %v, %v", more, err)
	}
	if got := le.Uint16(ram[used+4+8*size:]); got != 1 {
		t.Errorf("avail_event = %d, want 1", got)
	}
	// used_event sits after the available ring entries: avail + 4 + 2*size.
	// With used_event 0 and the used index moving 1 -> 2, the driver
	// wants an interrupt only once the index passes 0 (already done at 1).
	q.NeedsNotification(mem) // establishes the old index (1)
	le.PutUint16(ram[avail+4+2*size:], 0)
	le.PutUint16(ram[desc+2*16+12:], 0) // single descriptor chain now
	le.PutUint16(ram[avail+6:], 2)
	le.PutUint16(ram[avail+2:], 2)
	c, err = q.Pop(mem)
	if err != nil || c == nil {
		t.Fatalf("second Pop = %v, %v", c, err)
	}
	q.AddUsed(mem, c.Head, 0)
	if notify, _ := q.NeedsNotification(mem); notify {
		t.Errorf("NeedsNotification with used_event 0 and used idx 1->2 = true, want false")
	}
}
