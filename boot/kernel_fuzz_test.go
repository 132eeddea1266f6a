package boot

import (
	"bytes"
	"fmt"
	"testing"
)

// boundedMem is guest RAM that keeps no bytes: it refuses accesses past
// size and remembers the highest byte written, so that a fuzzed loader
// can be held to the memory it was given without copying megabytes.
type boundedMem struct {
	size      uint64
	lowest    uint64
	highest   uint64 // one past the highest byte written
	wrote     bool
	badAccess error
}

func (m *boundedMem) access(n int, off int64) error {
	if off < 0 || uint64(off) > m.size || uint64(n) > m.size-uint64(off) {
		err := fmt.Errorf("access [%#x, +%#x) outside RAM of %#x", off, n, m.size)
		m.badAccess = err
		return err
	}
	return nil
}

func (m *boundedMem) ReadAt(b []byte, off int64) (int, error) {
	if err := m.access(len(b), off); err != nil {
		return 0, err
	}
	clear(b)
	return len(b), nil
}

func (m *boundedMem) WriteAt(b []byte, off int64) (int, error) {
	if err := m.access(len(b), off); err != nil {
		return 0, err
	}
	if len(b) > 0 {
		if !m.wrote || uint64(off) < m.lowest {
			m.lowest = uint64(off)
		}
		m.highest = max(m.highest, uint64(off)+uint64(len(b)))
		m.wrote = true
	}
	return len(b), nil
}

// FuzzLoadKernel loads arbitrary images into 20 MiB of RAM: the loaders
// must refuse what does not fit, never touch memory past memEnd, and
// describe what they loaded truthfully.
func FuzzLoadKernel(f *testing.F) {
	const memEnd = 20 << 20
	// Small images, so that most mutations land in headers.
	small := func(pvh []byte) elfOpts {
		o := vmlinuxLike(pvh)
		for i := range 2 {
			o.segs[i].filesz, o.segs[i].data = 0x40, o.segs[i].data[:0x40]
		}
		return o
	}
	f.Add(buildELF(small(le32(0x1000010))), true)
	f.Add(buildELF(small(nil)), false)
	f.Add(buildELF(small([]byte{1, 2})), true)
	big := small(nil)
	big.segs[1].memsz = 1 << 40
	f.Add(buildELF(big), false)
	bz := defaultBzOpts()
	bz.kernelSize = 0x40
	f.Add(buildBzImage(bz), false)
	old := bz
	old.version, old.setupSects, old.initSize = 0x0204, 0, 0x2000000
	f.Add(buildBzImage(old), false)
	f.Add([]byte("\x7fELF"), false)
	f.Add(make([]byte, 0x400), false)
	f.Fuzz(func(t *testing.T, image []byte, preferPVH bool) {
		if len(image) > 1<<20 {
			return
		}
		// A little RAM past memEnd, so a write there is seen rather than
		// refused by the memory itself.
		mem := &boundedMem{size: memEnd + 1<<20}
		format, derr := DetectFormat(bytes.NewReader(image), int64(len(image)))
		k, err := LoadKernel(mem, bytes.NewReader(image), int64(len(image)), memEnd, preferPVH)
		if mem.badAccess != nil {
			t.Fatalf("loader accessed memory outside RAM: %v", mem.badAccess)
		}
		if mem.highest > memEnd {
			t.Fatalf("loader wrote up to %#x, past memEnd %#x", mem.highest, uint64(memEnd))
		}
		if err != nil {
			return
		}
		if derr != nil || format != k.Format {
			t.Fatalf("loaded a %s kernel that DetectFormat calls %q, %v", k.Format, format, derr)
		}
		if k.End > memEnd || (mem.wrote && mem.highest > k.End) {
			t.Fatalf("kernel End %#x; written up to %#x; memEnd %#x", k.End, mem.highest, uint64(memEnd))
		}
		if k.Entry >= memEnd {
			t.Fatalf("entry %#x outside low RAM", k.Entry)
		}
		switch {
		case k.Protocol == ProtocolPVH && (k.Format != FormatELF || k.PVHEntry == 0 || k.Entry != k.PVHEntry || !preferPVH):
			t.Fatalf("PVH entry for %+v (preferPVH %v)", k, preferPVH)
		case k.Format == FormatBzImage && (k.Setup == nil || k.PVHEntry != 0):
			t.Fatalf("bzImage without a setup header or with a PVH entry: %+v", k)
		case k.Format == FormatELF && k.Setup != nil:
			t.Fatalf("ELF kernel with a setup header: %+v", k)
		}
		if n := k.CmdlineMax(); n <= 0 || n > CmdlineMaxSize {
			t.Fatalf("command line limit %d", n)
		}
	})
}
