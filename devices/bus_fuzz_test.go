package devices_test

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/ternvm/tern/devices"
)

// probe checks that every access it gets fits inside its own window.
type probe struct {
	t    *testing.T
	id   int
	size uint64
	hits int
}

func (p *probe) check(offset uint64, n int) {
	p.hits++
	if n == 0 || offset >= p.size || uint64(n) > p.size-offset {
		p.t.Fatalf("device %d of size %#x got an access of %d bytes at offset %#x", p.id, p.size, n, offset)
	}
}

func (p *probe) Read(offset uint64, data []byte)  { p.check(offset, len(data)) }
func (p *probe) Write(offset uint64, data []byte) { p.check(offset, len(data)) }

type modelRange struct {
	base, last uint64
	dev        *probe
}

// FuzzBus registers ranges and dispatches accesses from arbitrary input,
// checking both against a linear-scan model. Each operation takes five
// bytes: a kind/flags byte, a 16-bit address, and two argument bytes.
// Flag bit 1 moves the address to the top of the 64-bit space so overflow
// edges get exercised.
func FuzzBus(f *testing.F) {
	f.Fuzz(func(t *testing.T, ops []byte) {
		b := devices.NewBus("fuzz")
		var model []modelRange
		for i := 0; i+4 < len(ops); i += 5 {
			kind := ops[i]
			addr := uint64(binary.LittleEndian.Uint16(ops[i+1:]))
			if kind&2 != 0 {
				addr = math.MaxUint64 - addr
			}
			a1, a2 := ops[i+3], ops[i+4]
			if kind&1 == 0 {
				size := uint64(a1) | uint64(a2&0x0f)<<8
				dev := &probe{t: t, id: len(model), size: size}
				err := b.Register(addr, size, dev)
				want := size != 0 && size-1 <= math.MaxUint64-addr
				if want {
					last := addr + size - 1
					for _, r := range model {
						if addr <= r.last && r.base <= last {
							want = false
						}
					}
				}
				if (err == nil) != want {
					t.Fatalf("Register(%#x, %#x) = %v, model says ok=%v", addr, size, err, want)
				}
				if err == nil {
					model = append(model, modelRange{addr, addr + size - 1, dev})
				}
				continue
			}
			n := int(a1 % 9)
			var owner *probe
			if n > 0 && uint64(n-1) <= math.MaxUint64-addr {
				for _, r := range model {
					if r.base <= addr && addr+uint64(n-1) <= r.last {
						owner = r.dev
					}
				}
			}
			before := 0
			if owner != nil {
				before = owner.hits
			}
			buf := make([]byte, n)
			var ok bool
			if a2&1 == 0 {
				ok = b.Read(addr, buf)
			} else {
				ok = b.Write(addr, buf)
			}
			if ok != (owner != nil) {
				t.Fatalf("access of %d bytes at %#x dispatched=%v, model owner %v", n, addr, ok, owner != nil)
			}
			if owner != nil && owner.hits != before+1 {
				t.Fatalf("access at %#x went to the wrong device", addr)
			}
		}
	})
}
