package balloon

import (
	"encoding/binary"
	"fmt"
)

// Statistics tags (virtio 1.2 section 5.5.6.3; tags from 10 on are Linux
// extensions in include/uapi/linux/virtio_balloon.h). Amounts of memory
// are in bytes.
const (
	StatSwapIn         = 0  // VIRTIO_BALLOON_S_SWAP_IN: memory swapped in
	StatSwapOut        = 1  // VIRTIO_BALLOON_S_SWAP_OUT: memory swapped out
	StatMajorFaults    = 2  // VIRTIO_BALLOON_S_MAJFLT
	StatMinorFaults    = 3  // VIRTIO_BALLOON_S_MINFLT
	StatFreeMemory     = 4  // VIRTIO_BALLOON_S_MEMFREE
	StatTotalMemory    = 5  // VIRTIO_BALLOON_S_MEMTOT
	StatAvailable      = 6  // VIRTIO_BALLOON_S_AVAIL
	StatDiskCaches     = 7  // VIRTIO_BALLOON_S_CACHES
	StatHugetlbAllocs  = 8  // VIRTIO_BALLOON_S_HTLB_PGALLOC
	StatHugetlbFails   = 9  // VIRTIO_BALLOON_S_HTLB_PGFAIL
	StatOOMKills       = 10 // VIRTIO_BALLOON_S_OOM_KILL
	StatAllocStalls    = 11 // VIRTIO_BALLOON_S_ALLOC_STALL
	StatAsyncScans     = 12 // VIRTIO_BALLOON_S_ASYNC_SCAN
	StatDirectScans    = 13 // VIRTIO_BALLOON_S_DIRECT_SCAN
	StatAsyncReclaims  = 14 // VIRTIO_BALLOON_S_ASYNC_RECLAIM
	StatDirectReclaims = 15 // VIRTIO_BALLOON_S_DIRECT_RECLAIM
	numStatTags        = 16
)

// statNames are the names Stats reports, those of Linux's
// VIRTIO_BALLOON_S_NAMES.
var statNames = [numStatTags]string{
	StatSwapIn:         "swap-in",
	StatSwapOut:        "swap-out",
	StatMajorFaults:    "major-faults",
	StatMinorFaults:    "minor-faults",
	StatFreeMemory:     "free-memory",
	StatTotalMemory:    "total-memory",
	StatAvailable:      "available-memory",
	StatDiskCaches:     "disk-caches",
	StatHugetlbAllocs:  "hugetlb-allocations",
	StatHugetlbFails:   "hugetlb-failures",
	StatOOMKills:       "oom-kills",
	StatAllocStalls:    "alloc-stalls",
	StatAsyncScans:     "async-scans",
	StatDirectScans:    "direct-scans",
	StatAsyncReclaims:  "async-reclaims",
	StatDirectReclaims: "direct-reclaims",
}

// StatName is the name Stats uses for tag, and false for a tag this device
// does not know.
func StatName(tag uint16) (string, bool) {
	if tag >= numStatTags {
		return "", false
	}
	return statNames[tag], true
}

// statEntrySize is the size of struct virtio_balloon_stat: le16 tag, le64
// val, packed.
const statEntrySize = 10

// MaxStatsEntries bounds how much of a statistics buffer the device reads;
// Linux sends 16 entries at most. Entries past it are ignored.
const MaxStatsEntries = 64

// statValues is one statistics update: the value of each known tag the
// driver reported.
type statValues struct {
	val     [numStatTags]uint64
	present uint32 // bit t set when tag t was reported
}

// parseStats decodes the entries of a statistics buffer. Entries with
// unknown tags are ignored, as are trailing bytes that do not make a whole
// entry and entries past MaxStatsEntries; a tag reported twice keeps its
// last value.
func parseStats(buf []byte) statValues {
	var s statValues
	n := min(len(buf)/statEntrySize, MaxStatsEntries)
	for i := range n {
		e := buf[i*statEntrySize : (i+1)*statEntrySize]
		tag := binary.LittleEndian.Uint16(e[0:2])
		if tag >= numStatTags {
			continue
		}
		s.val[tag] = binary.LittleEndian.Uint64(e[2:10])
		s.present |= 1 << tag
	}
	return s
}

// byName returns the reported values keyed by StatName.
func (s *statValues) byName() map[string]uint64 {
	m := make(map[string]uint64, numStatTags)
	for t := range numStatTags {
		if s.present&(1<<t) != 0 {
			m[statNames[t]] = s.val[t]
		}
	}
	return m
}

// byTag returns the reported values keyed by tag, the form State keeps.
func (s *statValues) byTag() map[uint16]uint64 {
	m := make(map[uint16]uint64, numStatTags)
	for t := range numStatTags {
		if s.present&(1<<t) != 0 {
			m[uint16(t)] = s.val[t]
		}
	}
	return m
}

// statsFromTags is byTag's inverse; it rejects unknown tags.
func statsFromTags(m map[uint16]uint64) (statValues, error) {
	var s statValues
	for tag, v := range m {
		if tag >= numStatTags {
			return statValues{}, fmt.Errorf("unknown statistics tag %d", tag)
		}
		s.val[tag] = v
		s.present |= 1 << tag
	}
	return s, nil
}
