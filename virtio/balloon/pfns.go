package balloon

import (
	"encoding/binary"
	"slices"
)

// pageRange is a run of contiguous guest pages: [GPA, GPA+Length).
type pageRange struct {
	gpa, length uint64
}

// decodePFNs appends the little-endian u32 PFNs in buf to dst. Trailing
// bytes that do not make a whole PFN are ignored.
func decodePFNs(dst []uint32, buf []byte) []uint32 {
	for i := 0; i+pfnSize <= len(buf); i += pfnSize {
		dst = append(dst, binary.LittleEndian.Uint32(buf[i:]))
	}
	return dst
}

// coalesce sorts pfns in place, drops duplicates and PFNs whose page is not
// guest RAM, and merges the rest into runs of consecutive pages that each
// lie wholly inside one piece of RAM, so the release function gets one
// call per run and never a range it could not slice. inRAM reports whether
// [gpa, gpa+length) is guest RAM in one piece. It returns the runs and the
// number of PFNs dropped for lying outside RAM.
//
// Order does not matter to the balloon protocol: the device releases every
// page of a chain before it returns the chain to the driver.
func coalesce(pfns []uint32, inRAM func(gpa, length uint64) bool, runs []pageRange) ([]pageRange, uint64) {
	slices.Sort(pfns)
	pfns = slices.Compact(pfns)
	var skipped uint64
	for _, pfn := range pfns {
		gpa := uint64(pfn) << PFNShift
		if !inRAM(gpa, PageSize) {
			skipped++
			continue
		}
		if n := len(runs); n > 0 {
			last := &runs[n-1]
			if last.gpa+last.length == gpa && inRAM(last.gpa, last.length+PageSize) {
				last.length += PageSize
				continue
			}
		}
		runs = append(runs, pageRange{gpa: gpa, length: PageSize})
	}
	return runs, skipped
}
