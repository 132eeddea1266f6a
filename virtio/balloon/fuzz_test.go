package balloon

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
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

// FuzzDeflate posts an arbitrary buffer on the deflate queue, over RAM
// in two pieces as FuzzInflate does. Deflating gives nothing back to the
// host: it only counts the pages in RAM and skips the rest.
func FuzzDeflate(f *testing.F) {
	f.Add(pfnArray(0x20, 0x21, 0x21, 0x40, 0x4f, 0x50, 0xffffffff))
	f.Add([]byte{1, 2, 3, 4, 5})
	f.Add(make([]byte, 4*4096+8))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 20<<10 {
			return
		}
		const loSize = 256 << 10
		lo := virtqtest.NewMemory(0, loSize)
		hi := virtqtest.NewMemory(loSize, 16*specPageSize)
		r := newRigMem(t, Config{}, lo, twoPieces{lo, hi})
		r.post(QueueDeflate, data)
		w := fuzzWorker(r)
		w.drain(QueueDeflate, nil, w.deflate)

		if r.drivers[QueueDeflate].UsedIdx() != 1 {
			t.Fatal("chain not returned")
		}
		if _, n := r.drivers[QueueDeflate].UsedElem(0); n != 0 {
			t.Fatalf("a driver-to-device chain reports %d bytes written", n)
		}
		var in, out uint64
		n := min(len(data)/4, 4096)
		for i := range n {
			if binary.LittleEndian.Uint32(data[4*i:]) < 0x50 {
				in++
			} else {
				out++
			}
		}
		c := r.dev.Counters()
		if c.DeflatedPages != in || c.SkippedPFNs != out+uint64(len(data)/4-n) || c.InflatedPages != 0 {
			t.Fatalf("counters %+v, want %d deflated and %d skipped", c, in, out+uint64(len(data)/4-n))
		}
		if calls := r.rec.calls(); len(calls) != 0 {
			t.Fatalf("deflating released %v to the host", calls)
		}
		if len(r.irq.resetErrors()) != 0 {
			t.Fatalf("NeedsReset: %v", r.irq.resetErrors())
		}
		if !lo.GuardsIntact() || !hi.GuardsIntact() {
			t.Fatal("write outside fake RAM")
		}
	})
}

// FuzzConfig reads and writes struct virtio_balloon_config with arbitrary
// offsets and sizes, 3 bytes an access (offset, size and write flag, a
// value byte), against a model: num_pages is the host's and never
// changes, actual takes exactly the bytes written over it, and reads
// past the end leave the caller's buffer alone.
func FuzzConfig(f *testing.F) {
	f.Add([]byte{4, 0x84, 7, 0, 0x04, 0, 6, 0x82, 1, 2, 0x88, 9})
	f.Add([]byte{0, 0x88, 0xff, 7, 0x84, 3, 8, 0x81, 1, 0xff, 0x88, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		d, err := New(Config{TargetMiB: 3}, func(uint64, uint64) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		var model [8]byte
		binary.LittleEndian.PutUint32(model[0:], 3*256)
		for ; len(ops) >= 3; ops = ops[3:] {
			off, size, write, v := uint64(ops[0]), int(ops[1]&15), ops[1]&0x80 != 0, ops[2]
			buf := make([]byte, size)
			for i := range buf {
				buf[i] = v + byte(i)
			}
			if write {
				d.WriteConfig(off, buf)
				for i := range buf {
					if at := off + uint64(i); at >= 4 && at < 8 {
						model[at] = buf[i]
					}
				}
				continue
			}
			d.ReadConfig(off, buf)
			for i := range buf {
				want := v + byte(i)
				if at := off + uint64(i); at < 8 {
					want = model[at]
				}
				if buf[i] != want {
					t.Fatalf("read %d bytes at %d: % x, model % x", size, off, buf, model)
				}
			}
		}
		if d.Target() != 3*256 || d.Actual() != binary.LittleEndian.Uint32(model[4:]) {
			t.Fatalf("target %d, actual %d; model % x", d.Target(), d.Actual(), model)
		}
	})
}

// FuzzStateJSON restores a balloon from arbitrary JSON, as a crafted
// snapshot holds it: a bad state is refused, an accepted one is what
// State reports and restores again.
func FuzzStateJSON(f *testing.F) {
	f.Add(false, []byte(`{"StatsPollInterval":5000000000,"NumPages":256,"Actual":12,"Stats":{"0":1,"4":2},"StatsBufferHeld":true,"StatsBufferHead":3}`))
	f.Add(true, []byte(`{"DeflateOnOOM":true,"Stats":{"999":1}}`))
	f.Add(false, []byte(`{"StatsPollInterval":-1}`))
	f.Add(false, []byte(`{"StatsBufferHeld":true,"StatsBufferHead":65535,"StatsPollInterval":1}`))
	f.Fuzz(func(t *testing.T, withStats bool, js []byte) {
		var st State
		if json.Unmarshal(js, &st) != nil {
			return
		}
		cfg := Config{DeflateOnOOM: st.DeflateOnOOM}
		if withStats {
			cfg.StatsPollInterval = time.Second
		}
		d, err := New(cfg, func(uint64, uint64) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if err := d.SetState(st); err != nil {
			return
		}
		got := d.State()
		if len(st.Stats) == 0 && len(got.Stats) == 0 {
			got.Stats = st.Stats // nil and empty are the same
		}
		if !reflect.DeepEqual(got, st) {
			t.Fatalf("restored %+v, State says %+v", st, got)
		}
		if err := d.SetState(d.State()); err != nil {
			t.Fatalf("refuses its own state: %v", err)
		}
	})
}
