package virtio_test

import (
	"errors"
	"testing"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
	"github.com/ternvm/tern/vmm/memory"
)

// The VMM hands its guest RAM straight to devices.
var _ virtio.Memory = (*memory.Memory)(nil)

// TestPopOnGuestRAM runs a request through a queue laid out in the VMM's
// real guest memory (an anonymous mapping), not the test double.
func TestPopOnGuestRAM(t *testing.T) {
	mem, err := memory.New(1<<20, memory.Options{})
	if err != nil {
		t.Fatalf("memory.New: %v", err)
	}
	defer mem.Close()
	// The driver harness writes through Slice, which both memories share,
	// so reuse it by copying its bytes into place afterwards.
	fake := virtqtest.NewMemory(0, 1<<20)
	drv := virtqtest.Layout(fake, 16, 0x1000)
	drv.Publish(drv.Chain(0,
		virtqtest.Seg{Addr: 0x8000, Len: 4},
		virtqtest.Seg{Addr: 0x9000, Len: 8, Write: true}))
	copy(fake.Bytes()[0x8000:], "ping")
	if _, err := mem.WriteAt(fake.Bytes(), 0); err != nil {
		t.Fatal(err)
	}

	q := readyQueue(t, 16, drv, 0)
	c, err := q.Pop(mem)
	if err != nil || c == nil {
		t.Fatalf("Pop = %v, %v; want a chain", c, err)
	}
	got, err := c.ReadAll(mem, 64)
	if err != nil || string(got) != "ping" {
		t.Fatalf("ReadAll = %q, %v; want \"ping\"", got, err)
	}
	if _, err := c.WriteAt(mem, []byte("pong"), 0); err != nil {
		t.Fatal(err)
	}
	if err := q.AddUsed(mem, c.Head, 4); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	mem.ReadAt(b, 0x9000)
	if string(b) != "pong" {
		t.Errorf("writable buffer holds %q, want \"pong\"", b)
	}
	idx := make([]byte, 2)
	mem.ReadAt(idx, int64(drv.Used+2))
	if idx[0] != 1 || idx[1] != 0 {
		t.Errorf("used idx bytes = %v, want [1 0]", idx)
	}
}

// TestLengthOverflow: the readable or the writable buffers of one chain may
// not add up to more than 2^32-1 bytes, the largest used length. It needs
// buffers of gigabytes, so it uses a sparse mapping of real guest RAM.
func TestLengthOverflow(t *testing.T) {
	mem, err := memory.New(12<<30, memory.Options{})
	if err != nil {
		t.Skipf("cannot map 12 GiB of guest RAM here: %v", err)
	}
	defer mem.Close()
	fake := virtqtest.NewMemory(0, 0x4000)
	drv := virtqtest.Layout(fake, 8, 0x1000)
	q := readyQueue(t, 8, drv, 0)
	// RAM above 4 GiB runs from 0x1_0000_0000 to 0x3_4000_0000.
	try := func(second uint32, write bool) (*virtio.Chain, error) {
		drv.Chain(0,
			seg{Addr: 0x1_0000_0000, Len: 0xffff_fff0, Write: write},
			seg{Addr: 0x2_0000_0000, Len: second, Write: write})
		drv.Publish(0)
		mem.WriteAt(fake.Bytes(), 0)
		return q.Pop(mem)
	}
	for _, write := range []bool{false, true} {
		if c, err := try(0x10, write); c != nil || !errors.Is(err, virtio.ErrBadChain) {
			t.Errorf("write=%v: Pop of a chain of 2^32 bytes = %+v, %v; want ErrBadChain", write, c, err)
		}
		c, err := try(0xf, write)
		if err != nil || c.ReadableLen()+c.WritableLen() != 0xffffffff {
			t.Errorf("write=%v: Pop of a chain of 2^32-1 bytes = %+v, %v", write, c, err)
		}
	}
}
