package memory

import "sync/atomic"

// hostDirty records which pages the monitor itself handed out for access
// (devices writing buffers into guest RAM), which KVM's dirty log does not
// see. It over-counts, since a slice handed out for reading is marked too;
// a diff snapshot with a few extra pages is still correct.
type hostDirty struct {
	words []atomic.Uint64 // one bit per page over all regions, in order
}

// TrackHostAccess starts (or, with on false, stops) recording the pages
// handed out by Slice, ReadAt and WriteAt. Start it before the guest runs.
func (m *Memory) TrackHostAccess(on bool) {
	if !on {
		m.dirty.Store(nil)
		return
	}
	pages := m.size / PageSize
	m.dirty.Store(&hostDirty{words: make([]atomic.Uint64, (pages+63)/64)})
}

// TakeHostDirty returns the pages marked since the last call (one bit per
// page over all regions, in the order of Regions) and clears the record. It
// returns nil when tracking is off.
func (m *Memory) TakeHostDirty() []uint64 {
	d := m.dirty.Load()
	if d == nil {
		return nil
	}
	out := make([]uint64, len(d.words))
	for i := range d.words {
		out[i] = d.words[i].Swap(0)
	}
	return out
}

// markHost records [gpa, gpa+length) of region index ri as touched.
func (m *Memory) markHost(ri int, gpa, length uint64) {
	d := m.dirty.Load()
	if d == nil || length == 0 {
		return
	}
	r := &m.regions[ri]
	first := r.FirstPage + (gpa-r.GPA)/PageSize
	last := r.FirstPage + (gpa-r.GPA+length-1)/PageSize
	for p := first; p <= last; p++ {
		d.words[p/64].Or(1 << (p % 64))
	}
}
