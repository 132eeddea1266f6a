package balloon

import (
	"reflect"
	"testing"
	"time"

	"github.com/ternvm/tern/virtio"
)

// The tags of virtio 1.2 section 5.5.6.3.
const (
	specSwapIn      = 0
	specSwapOut     = 1
	specMajflt      = 2
	specMinflt      = 3
	specMemfree     = 4
	specMemtot      = 5
	specAvail       = 6
	specCaches      = 7
	specHtlbPgalloc = 8
	specHtlbPgfail  = 9
)

func TestStatsParsing(t *testing.T) {
	r := newRig(t, Config{StatsPollInterval: time.Hour})
	r.activate()
	buf := statEntries(
		[2]uint64{specSwapIn, 11},
		[2]uint64{specSwapOut, 22},
		[2]uint64{specMajflt, 33},
		[2]uint64{specMinflt, 44},
		[2]uint64{specMemfree, 512 << 20},
		[2]uint64{specMemtot, 1 << 30},
		[2]uint64{0x7fff, 99}, // unknown: ignored
		[2]uint64{specAvail, 700 << 20},
		[2]uint64{specCaches, 100 << 20},
		[2]uint64{specHtlbPgalloc, 5},
		[2]uint64{specHtlbPgfail, 6},
		[2]uint64{specSwapIn, 12}, // a repeated tag keeps its last value
	)
	buf = append(buf, 0x04, 0x00, 0xff) // a partial entry: ignored
	r.post(QueueStats, buf)
	eventually(t, func() bool { return r.dev.Counters().StatsUpdates == 1 }, "a statistics update")
	want := map[string]uint64{
		"swap-in":             12,
		"swap-out":            22,
		"major-faults":        33,
		"minor-faults":        44,
		"free-memory":         512 << 20,
		"total-memory":        1 << 30,
		"available-memory":    700 << 20,
		"disk-caches":         100 << 20,
		"hugetlb-allocations": 5,
		"hugetlb-failures":    6,
	}
	if got := r.dev.Stats(); !reflect.DeepEqual(got, want) {
		t.Errorf("Stats = %v, want %v", got, want)
	}
	// The buffer stays with the device until the next update is due.
	time.Sleep(10 * time.Millisecond)
	if r.usedIdx(QueueStats) != 0 {
		t.Error("statistics buffer returned before the interval passed")
	}
}

func TestStatsBufferReturnedAfterInterval(t *testing.T) {
	const interval = 50 * time.Millisecond
	r := newRig(t, Config{StatsPollInterval: interval})
	r.activate()
	r.post(QueueStats, statEntries([2]uint64{specMemfree, 1000}))
	start := time.Now()
	r.waitUsed(QueueStats, 1)
	if d := time.Since(start); d < interval {
		t.Errorf("buffer returned after %v, before the %v interval", d, interval)
	}
	if id, n := r.usedElem(QueueStats, 0); id != 0 || n != 0 {
		t.Errorf("used element (%d, %d), want head 0 with nothing written", id, n)
	}
	eventually(t, func() bool { return r.irq.count(specIntUsedBuffer) >= 1 }, "a used buffer interrupt")

	// The driver answers with fresh values; they replace the old ones.
	r.post(QueueStats, statEntries([2]uint64{specMemfree, 2000}, [2]uint64{specMemtot, 4000}))
	r.waitUsed(QueueStats, 2)
	if got := r.dev.Stats(); got["free-memory"] != 2000 || got["total-memory"] != 4000 {
		t.Errorf("Stats = %v after the second update", got)
	}
	if c := r.dev.Counters(); c.StatsUpdates != 2 {
		t.Errorf("%d statistics updates, want 2", c.StatsUpdates)
	}
}

func TestSecondStatsBufferReturnsTheFirst(t *testing.T) {
	r := newRig(t, Config{StatsPollInterval: time.Hour})
	r.activate()
	r.post(QueueStats, statEntries([2]uint64{specMemfree, 1}))
	eventually(t, func() bool { return r.dev.Counters().StatsUpdates == 1 }, "the first update")
	r.post(QueueStats, statEntries([2]uint64{specMemfree, 2}))
	r.waitUsed(QueueStats, 1)
	if id, _ := r.usedElem(QueueStats, 0); id != 0 {
		t.Errorf("returned head %d, want the first buffer's 0", id)
	}
	if st := r.dev.State(); !st.StatsBufferHeld || st.StatsBufferHead != 1 {
		t.Errorf("state holds buffer %t/%d, want the second buffer (head 1)", st.StatsBufferHeld, st.StatsBufferHead)
	}
	if got := r.dev.Stats()["free-memory"]; got != 2 {
		t.Errorf("free-memory = %d, want the newer 2", got)
	}
}

func TestStatsQueueIgnoredWhenNotNegotiated(t *testing.T) {
	r := newRig(t, Config{StatsPollInterval: time.Millisecond})
	r.activateWith(virtio.FeatureVersion1)
	r.post(QueueStats, statEntries([2]uint64{specMemfree, 1}))
	r.post(QueueInflate, pfnArray(1))
	r.waitUsed(QueueInflate, 1)
	time.Sleep(10 * time.Millisecond)
	if r.usedIdx(QueueStats) != 0 || r.dev.Counters().StatsUpdates != 0 {
		t.Error("statistics queue served though VIRTIO_BALLOON_F_STATS_VQ was not negotiated")
	}
}

func TestStatName(t *testing.T) {
	for tag, want := range map[uint16]string{
		specSwapIn: "swap-in", specMemtot: "total-memory", specHtlbPgfail: "hugetlb-failures",
	} {
		if got, ok := StatName(tag); !ok || got != want {
			t.Errorf("StatName(%d) = %q, %t; want %q", tag, got, ok, want)
		}
	}
	if _, ok := StatName(0x7fff); ok {
		t.Error("StatName knows tag 0x7fff")
	}
}
