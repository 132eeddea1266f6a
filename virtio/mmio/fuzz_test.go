package mmio_test

import (
	"encoding/binary"
	"testing"

	"github.com/ternvm/tern/virtio/internal/virtqtest"
	"github.com/ternvm/tern/virtio/mmio"
	"github.com/ternvm/tern/virtio/rng"
)

// FuzzMMIOTransport lets a guest make any sequence of register accesses
// to an entropy device whose guest RAM holds arbitrary bytes. Each
// operation takes 7 bytes: kind (read or write and width in the low bits,
// a snapshot/restore when the top bit is set), a 12-bit offset into the
// window and a 32-bit value. Nothing may panic or write outside RAM, the
// status and interrupt registers may only hold defined bits, a reset must
// take, and restoring a state just taken must succeed.
func FuzzMMIOTransport(f *testing.F) {
	f.Fuzz(func(t *testing.T, ram []byte, ops []byte) {
		if len(ram) > 1<<16 {
			ram = ram[:1<<16]
		}
		mem := virtqtest.NewMemory(0, 1<<16)
		copy(mem.Bytes(), ram)
		tr, err := mmio.New(rng.New(), mem, &countingTrigger{})
		if err != nil {
			t.Fatal(err)
		}
		g := guest{t: t, tr: tr}
		for i := 0; i+7 <= len(ops) && i < 7*512; i += 7 {
			kind := ops[i]
			off := uint64(binary.LittleEndian.Uint16(ops[i+1:]) & 0xfff)
			val := ops[i+3 : i+7]
			width := []int{1, 2, 4, 8}[kind&3]
			if off+uint64(width) > mmio.WindowSize {
				continue // the bus never sends an access past the window
			}
			switch {
			case kind&0x80 != 0:
				if err := tr.Restore(tr.State()); err != nil {
					t.Fatalf("Restore(State()) = %v", err)
				}
			case kind&4 != 0:
				buf := make([]byte, width)
				copy(buf, val)
				tr.Write(off, buf)
			default:
				tr.Read(off, make([]byte, width))
			}
			if s := g.read(regStatus); s&^0xcf != 0 {
				t.Fatalf("status %#x has undefined bits", s)
			}
			if s := g.read(regIntStatus); s&^3 != 0 {
				t.Fatalf("InterruptStatus %#x has undefined bits", s)
			}
		}
		g.write(regStatus, 0)
		if s := g.read(regStatus); s != 0 {
			t.Fatalf("status after reset = %#x", s)
		}
		if !mem.GuardsIntact() {
			t.Fatalf("bytes outside fake RAM were written")
		}
	})
}
