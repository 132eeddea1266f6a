package balloon

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// fuzzWorker returns a worker over r's queues that the fuzz targets drive
// on their own goroutine, one chain at a time.
func fuzzWorker(r *rig) *worker {
	r.dev.mu.Lock()
	defer r.dev.mu.Unlock()
	return r.dev.newWorkerLocked(r.mem, r.queues, r.irq, r.dev.featuresLocked())
}

// FuzzInflate posts an arbitrary buffer on the inflate queue, over RAM in
// two pieces (PFNs 0-0x3f and 0x40-0x4f), and checks what reaches the
// release function.
func FuzzInflate(f *testing.F) {
	f.Add(pfnArray(0x20, 0x21, 0x22, 0x40, 0x23, 0x100, 0xffffffff))
	f.Add(pfnArray(0x3f, 0x40, 0x41, 0x4f, 0x50))
	f.Add([]byte{1, 2, 3})
	f.Add(make([]byte, 4*4096+8))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 20<<10 {
			return
		}
		// 256 KiB: the rings, then the buffer from testDataBase.
		const loSize = 256 << 10
		lo := virtqtest.NewMemory(0, loSize)
		hi := virtqtest.NewMemory(loSize, 16*specPageSize)
		mem := twoPieces{lo, hi}
		r := newRigMem(t, Config{}, lo, mem)
		r.post(QueueInflate, data)
		w := fuzzWorker(r)
		w.drain(QueueInflate, nil, w.inflate)

		if r.drivers[QueueInflate].UsedIdx() != 1 {
			t.Fatalf("chain not returned")
		}
		// What the driver asked for: the first 4096 PFNs.
		asked := map[uint64]bool{}
		n := min(len(data)/4, 4096)
		for i := range n {
			asked[uint64(binary.LittleEndian.Uint32(data[4*i:]))] = true
		}
		inRAM := func(pfn uint64) bool { return pfn < 0x50 }
		released := map[uint64]bool{}
		var prevEnd uint64
		for i, c := range r.rec.calls() {
			gpa, length := c[0], c[1]
			if gpa%specPageSize != 0 || length == 0 || length%specPageSize != 0 {
				t.Fatalf("release(%#x, %#x) is not whole pages", gpa, length)
			}
			if _, err := mem.Slice(gpa, length); err != nil {
				t.Fatalf("release(%#x, %#x) is not RAM in one piece: %v", gpa, length, err)
			}
			if i > 0 && gpa < prevEnd {
				t.Fatalf("release(%#x, %#x) overlaps the previous range", gpa, length)
			}
			prevEnd = gpa + length
			for p := gpa / specPageSize; p < (gpa+length)/specPageSize; p++ {
				if !asked[p] {
					t.Fatalf("page %#x released but not in the buffer", p)
				}
				released[p] = true
			}
		}
		var outside uint64
		for p := range asked {
			if inRAM(p) && !released[p] {
				t.Fatalf("page %#x in RAM was asked for but not released", p)
			}
			if !inRAM(p) {
				outside++
			}
		}
		c := r.dev.Counters()
		if c.InflatedPages != uint64(len(released)) {
			t.Fatalf("InflatedPages %d, released %d", c.InflatedPages, len(released))
		}
		if want := outside + uint64(len(data)/4-n); c.SkippedPFNs != want {
			t.Fatalf("SkippedPFNs %d, want %d", c.SkippedPFNs, want)
		}
		if !lo.GuardsIntact() || !hi.GuardsIntact() {
			t.Fatal("write outside fake RAM")
		}
	})
}

// FuzzStats posts an arbitrary statistics buffer and checks Stats against
// a plain reading of the 10-byte entries.
func FuzzStats(f *testing.F) {
	f.Add(statEntries([2]uint64{specSwapIn, 1}, [2]uint64{specMemtot, 1 << 30}, [2]uint64{0x7fff, 3}))
	f.Add(statEntries([2]uint64{specHtlbPgfail, 9}, [2]uint64{specHtlbPgfail, 10}))
	f.Add([]byte{0, 0, 1})
	f.Add(make([]byte, 10*70))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 8<<10 {
			return
		}
		r := newRig(t, Config{StatsPollInterval: time.Hour})
		head := r.post(QueueStats, data)
		w := fuzzWorker(r)
		defer func() {
			if w.statsTimer != nil {
				w.statsTimer.Stop()
			}
		}()
		w.drain(QueueStats, nil, w.takeStats)

		want := map[string]uint64{}
		for i := 0; i+10 <= len(data) && i < 64*10; i += 10 {
			tag := binary.LittleEndian.Uint16(data[i:])
			if name, ok := StatName(tag); ok {
				want[name] = binary.LittleEndian.Uint64(data[i+2:])
			}
		}
		got := r.dev.Stats()
		if len(got) != len(want) {
			t.Fatalf("Stats = %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("Stats[%q] = %d, want %d", k, got[k], v)
			}
		}
		if st := r.dev.State(); !st.StatsBufferHeld || st.StatsBufferHead != head {
			t.Fatalf("buffer %d not held: %+v", head, st)
		}
		if r.drivers[QueueStats].UsedIdx() != 0 {
			t.Fatal("statistics buffer returned at once")
		}
		if len(r.irq.resetErrors()) != 0 {
			t.Fatalf("NeedsReset: %v", r.irq.resetErrors())
		}
	})
}
