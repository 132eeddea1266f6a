package memory

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// Bits of a /proc/PID/pagemap entry (Documentation/admin-guide/mm/pagemap.rst).
const (
	pagemapPresent = 1 << 63
	pagemapSwapped = 1 << 62
)

// Populated marks the pages that may hold data, one bit per page over all
// regions in order (the layout of Memory.TakeHostDirty and of snapshot
// bitmaps). Every other page was never written: it reads as zeros and
// need not be copied. Anonymous RAM asks the kernel's page tables, which
// know each page that exists (in RAM or in swap) without touching the
// rest; RAM mapped from a file may hold data anywhere, so all its pages
// are marked.
func (m *Memory) Populated() ([]uint64, error) {
	pages := m.size / PageSize
	out := make([]uint64, (pages+63)/64)
	if m.file != nil {
		for p := uint64(0); p < pages; p++ {
			out[p/64] |= 1 << (p % 64)
		}
		return out, nil
	}
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return nil, fmt.Errorf("which guest pages exist: %w", err)
	}
	defer f.Close()
	const chunk = 64 << 10 // entries per read: 512 KiB
	buf := make([]byte, chunk*8)
	for _, r := range m.regions {
		n := r.Size / PageSize
		base := int64(r.HostAddr()/PageSize) * 8
		for done := uint64(0); done < n; {
			k := min(n-done, chunk)
			b := buf[:k*8]
			if _, err := f.ReadAt(b, base+int64(done*8)); err != nil && err != io.EOF {
				return nil, fmt.Errorf("which guest pages exist: read pagemap: %w", err)
			}
			for i := uint64(0); i < k; i++ {
				if binary.LittleEndian.Uint64(b[i*8:])&(pagemapPresent|pagemapSwapped) != 0 {
					p := r.FirstPage + done + i
					out[p/64] |= 1 << (p % 64)
				}
			}
			done += k
		}
	}
	return out, nil
}
