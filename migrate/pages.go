package migrate

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/ternvm/tern/migrate/snapshot"
)

const pageSize = snapshot.PageSize

// layout numbers pages over the RAM regions in order, as snapshot.Bitmap.
type layout struct {
	regions [][]byte
	first   []uint64 // page number of each region's first page
	pages   uint64   // total
}

func newLayout(regions [][]byte) (layout, error) {
	l := layout{regions: regions, first: make([]uint64, len(regions))}
	for i, r := range regions {
		if len(r) == 0 || len(r)%pageSize != 0 {
			return layout{}, fmt.Errorf("RAM region %d is %d bytes, not a positive whole number of %d-byte pages", i, len(r), pageSize)
		}
		l.first[i] = l.pages
		l.pages += uint64(len(r)) / pageSize
	}
	return l, nil
}

// region returns the index of the region holding page p (p < l.pages).
func (l layout) region(p uint64) int {
	return sort.Search(len(l.first), func(i int) bool { return l.first[i] > p }) - 1
}

func (l layout) regionEnd(i int) uint64 {
	return l.first[i] + uint64(len(l.regions[i]))/pageSize
}

// page returns page p's bytes in region i.
func (l layout) span(i int, p, n uint64) []byte {
	off := (p - l.first[i]) * pageSize
	return l.regions[i][off : off+n*pageSize : off+n*pageSize]
}

// pageBatch builds one pages message.
type pageBatch struct {
	table     []byte   // the payload's header and run entries
	data      [][]byte // the non-zero runs' bytes, in order
	runs      int
	dataBytes int
	dataPages uint64
	zeroPages uint64
}

func (b *pageBatch) reset() {
	b.table = append(b.table[:0], make([]byte, pagesHeaderSize)...)
	clear(b.data)
	b.data = b.data[:0]
	b.runs, b.dataBytes, b.dataPages, b.zeroPages = 0, 0, 0, 0
}

func (b *pageBatch) add(first, n uint64, zero bool, data []byte) {
	var flags uint32
	if zero {
		flags = runZero
		b.zeroPages += n
	} else {
		b.dataPages += n
		b.dataBytes += len(data)
		// Adjacent data that is contiguous in memory goes out as one
		// slice: fewer iovecs for the same bytes.
		if k := len(b.data) - 1; k >= 0 && contiguous(b.data[k], data) {
			b.data[k] = b.data[k][:len(b.data[k])+len(data)]
		} else {
			b.data = append(b.data, data)
		}
	}
	b.table = binary.LittleEndian.AppendUint64(b.table, first)
	b.table = binary.LittleEndian.AppendUint32(b.table, uint32(n))
	b.table = binary.LittleEndian.AppendUint32(b.table, flags)
	b.runs++
}

// contiguous reports whether b starts where a ends in the same array.
func contiguous(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && cap(a) >= len(a)+len(b) && &a[:len(a)+1][len(a)] == &b[0]
}

// parts finishes the table and returns the payload.
func (b *pageBatch) parts() [][]byte {
	binary.LittleEndian.PutUint32(b.table[0:], uint32(b.runs))
	binary.LittleEndian.PutUint32(b.table[4:], 0)
	return append([][]byte{b.table}, b.data...)
}

// run is a checked run table entry.
type run struct {
	first, n uint64
	zero     bool
	region   int
}

// parseRuns checks a pages message's run table against the guest layout
// and the payload's length: every run inside one region, known flags,
// and the data the runs declare exactly filling the rest of the payload.
func parseRuns(l layout, h header, count uint32, table []byte, runs []run) ([]run, error) {
	runs = runs[:0]
	var data uint64
	for i := uint32(0); i < count; i++ {
		e := table[i*runEntrySize:]
		r := run{first: binary.LittleEndian.Uint64(e), n: uint64(binary.LittleEndian.Uint32(e[8:]))}
		flags := binary.LittleEndian.Uint32(e[12:])
		if flags&^runZero != 0 {
			return nil, protoErr("%s: run %d has unknown flags %#x", h.label(), i, flags)
		}
		r.zero = flags&runZero != 0
		if r.n == 0 {
			return nil, protoErr("%s: run %d is empty", h.label(), i)
		}
		if r.first >= l.pages || r.n > l.pages-r.first {
			return nil, protoErr("%s: run %d (pages %d+%d) goes past the guest's %d pages", h.label(), i, r.first, r.n, l.pages)
		}
		r.region = l.region(r.first)
		if r.first+r.n > l.regionEnd(r.region) {
			return nil, protoErr("%s: run %d (pages %d+%d) crosses the end of RAM region %d at page %d", h.label(), i, r.first, r.n, r.region, l.regionEnd(r.region))
		}
		if !r.zero {
			data += r.n * pageSize
			if data > maxPagesData {
				return nil, protoErr("%s: runs declare more than %d bytes of data", h.label(), maxPagesData)
			}
		}
		runs = append(runs, r)
	}
	if want := uint64(pagesHeaderSize) + uint64(count)*runEntrySize + data; want != uint64(h.length) {
		return nil, protoErr("%s: %d runs with %d bytes of data make %d bytes, the header says %d", h.label(), count, data, want, h.length)
	}
	return runs, nil
}
