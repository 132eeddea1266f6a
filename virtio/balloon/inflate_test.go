package balloon

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

func TestInflateReleasesCoalescedRanges(t *testing.T) {
	r := newRig(t, Config{})
	// The chain must still be with the device while its pages are
	// released: record the used index at each release.
	var usedAtRelease []uint16
	r.dev.release = func(gpa, length uint64) error {
		// This runs on the worker, which may read the ring itself.
		usedAtRelease = append(usedAtRelease, r.drivers[QueueInflate].UsedIdx())
		return r.rec.release(gpa, length)
	}
	r.activate()
	// 1 MiB of RAM holds PFNs 0 to 0xff. 0x100 and 0xffffffff are not RAM.
	r.post(QueueInflate, pfnArray(0x20, 0x21, 0x22, 0x40, 0x23, 0x100, 0xffffffff, 0x41, 0x50))
	r.waitUsed(QueueInflate, 1)

	want := [][2]uint64{
		{0x20 * specPageSize, 4 * specPageSize},
		{0x40 * specPageSize, 2 * specPageSize},
		{0x50 * specPageSize, 1 * specPageSize},
	}
	if got := r.rec.calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("release calls %#x, want %#x", got, want)
	}
	for i, u := range usedAtRelease {
		if u != 0 {
			t.Errorf("release %d ran after the chain was returned (used index %d)", i, u)
		}
	}
	c := r.dev.Counters()
	if c.InflatedPages != 7 || c.SkippedPFNs != 2 {
		t.Errorf("counters %+v, want 7 inflated and 2 skipped", c)
	}
	if id, n := r.usedElem(0, 0); id != 0 || n != 0 {
		t.Errorf("used element (%d, %d), want head 0 with 0 bytes written", id, n)
	}
	eventually(t, func() bool { return r.irq.count(specIntUsedBuffer) == 1 }, "a used buffer interrupt")
}

// twoPieces is guest RAM in two adjacent pieces that Slice will not span,
// as RAM on both sides of a memory slot boundary.
type twoPieces struct{ lo, hi *virtqtest.Memory }

func (m twoPieces) pick(gpa uint64) *virtqtest.Memory {
	if gpa >= m.hi.Base {
		return m.hi
	}
	return m.lo
}
func (m twoPieces) Slice(gpa, n uint64) ([]byte, error) { return m.pick(gpa).Slice(gpa, n) }
func (m twoPieces) ReadAt(p []byte, off int64) (int, error) {
	return m.pick(uint64(off)).ReadAt(p, off)
}
func (m twoPieces) WriteAt(p []byte, off int64) (int, error) {
	return m.pick(uint64(off)).WriteAt(p, off)
}

func TestInflateNeverCoalescesAcrossRAMPieces(t *testing.T) {
	lo := virtqtest.NewMemory(0, testRAMSize)
	hi := virtqtest.NewMemory(testRAMSize, 64<<10)
	r := newRigMem(t, Config{}, lo, twoPieces{lo, hi})
	r.activate()
	// 0xff is the last page of the low piece, 0x100 and 0x101 the first
	// of the high one: consecutive, but two ranges.
	r.post(QueueInflate, pfnArray(0x101, 0xff, 0x100))
	r.waitUsed(QueueInflate, 1)
	want := [][2]uint64{{0xff000, 0x1000}, {0x100000, 0x2000}}
	if got := r.rec.calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("release calls %#x, want %#x", got, want)
	}
}

func TestInflateBoundPerChain(t *testing.T) {
	r := newRig(t, Config{})
	r.activate()
	// 4096 PFNs are acted on; the 10 after them are skipped.
	pfns := make([]uint32, 4096+10)
	for i := range pfns {
		if i < 4096 {
			pfns[i] = 7
		} else {
			pfns[i] = 8
		}
	}
	r.post(QueueInflate, pfnArray(pfns...))
	r.waitUsed(QueueInflate, 1)
	want := [][2]uint64{{7 * specPageSize, specPageSize}}
	if got := r.rec.calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("release calls %#x, want %#x", got, want)
	}
	if c := r.dev.Counters(); c.InflatedPages != 1 || c.SkippedPFNs != 10 {
		t.Errorf("counters %+v, want 1 inflated and 10 skipped", c)
	}
}

func TestInflateOnlyOutsideRAMReleasesNothing(t *testing.T) {
	r := newRig(t, Config{})
	r.activate()
	// Trailing 2 bytes do not make a PFN and are ignored.
	r.post(QueueInflate, append(pfnArray(0x100, 0x12345), 0x01, 0x00))
	r.waitUsed(QueueInflate, 1)
	if got := r.rec.calls(); len(got) != 0 {
		t.Errorf("release called with %#x for PFNs outside RAM", got)
	}
	if c := r.dev.Counters(); c.SkippedPFNs != 2 || c.InflatedPages != 0 {
		t.Errorf("counters %+v, want 2 skipped", c)
	}
}

func TestInflateReleaseFailureIsCounted(t *testing.T) {
	r := newRig(t, Config{})
	boom := errors.New("boom")
	r.rec.err = boom
	r.activate()
	r.post(QueueInflate, pfnArray(1, 2, 9))
	r.waitUsed(QueueInflate, 1)
	c := r.dev.Counters()
	if c.ReleaseFailures != 2 || c.InflatedPages != 0 {
		t.Errorf("counters %+v, want 2 failed ranges and nothing inflated", c)
	}
	if err := r.dev.LastReleaseError(); !errors.Is(err, boom) {
		t.Errorf("LastReleaseError = %v, want it to wrap %v", err, boom)
	}
}

func TestDeflateBookkeeping(t *testing.T) {
	r := newRig(t, Config{})
	r.activate()
	r.post(QueueInflate, pfnArray(1, 2, 3, 4))
	r.waitUsed(QueueInflate, 1)
	r.post(QueueDeflate, pfnArray(1, 2, 3, 0x100))
	r.waitUsed(QueueDeflate, 1)
	if got := r.rec.calls(); len(got) != 1 {
		t.Errorf("release calls %#x, want only the inflate's one", got)
	}
	c := r.dev.Counters()
	if c.InflatedPages != 4 || c.DeflatedPages != 3 || c.SkippedPFNs != 1 {
		t.Errorf("counters %+v, want 4 inflated, 3 deflated, 1 skipped", c)
	}
	if id, n := r.usedElem(QueueDeflate, 0); id != 0 || n != 0 {
		t.Errorf("deflate used element (%d, %d), want (0, 0)", id, n)
	}
}

func TestManyChainsInOneNotification(t *testing.T) {
	r := newRig(t, Config{})
	// Posted before activation: the notifications are dropped, and the
	// device must find the chains when it starts.
	for i := range 3 * testQueueSize / 2 {
		if i == testQueueSize {
			r.activate()
			r.waitUsed(QueueInflate, testQueueSize)
		}
		r.post(QueueInflate, pfnArray(uint32(i)))
	}
	r.waitUsed(QueueInflate, 3*testQueueSize/2)
	if c := r.dev.Counters(); c.InflatedPages != 3*testQueueSize/2 {
		t.Errorf("%d pages inflated, want %d", c.InflatedPages, 3*testQueueSize/2)
	}
}

func TestMalformedChainAsksForReset(t *testing.T) {
	r := newRig(t, Config{})
	r.activate()
	// A head index past the descriptor table.
	r.withRAM(func() { r.drivers[QueueInflate].Publish(testQueueSize + 3) })
	r.dev.QueueNotify(QueueInflate)
	eventually(t, func() bool { return len(r.irq.resetErrors()) == 1 }, "NeedsReset")
	if err := r.irq.resetErrors()[0]; !errors.Is(err, virtio.ErrBadChain) {
		t.Errorf("NeedsReset(%v), want an ErrBadChain", err)
	}
	// The queue is no longer served; the other still is.
	r.post(QueueInflate, pfnArray(1))
	r.post(QueueDeflate, pfnArray(1))
	r.waitUsed(QueueDeflate, 1)
	if r.usedIdx(QueueInflate) != 0 {
		t.Error("inflate queue served after NeedsReset")
	}
}

func TestResetStopsAndResumes(t *testing.T) {
	r := newRig(t, Config{TargetMiB: 4})
	r.activate()
	r.dev.WriteConfig(specOffActual, []byte{10, 0, 0, 0})
	r.reset()
	if r.dev.Actual() != 0 {
		t.Errorf("Actual = %d after reset, want 0", r.dev.Actual())
	}
	if r.dev.Target() != 1024 {
		t.Errorf("Target = %d after reset, want 1024 (4 MiB)", r.dev.Target())
	}
	r.post(QueueInflate, pfnArray(1))
	time.Sleep(20 * time.Millisecond)
	if r.usedIdx(QueueInflate) != 0 {
		t.Fatal("device used a buffer after Reset")
	}
	if err := r.dev.SetTarget(8); err != nil {
		t.Fatal(err)
	}
	if n := r.irq.count(specIntConfigChange); n != 0 {
		t.Errorf("config change signalled after Reset")
	}
	// Activated again, it takes up the pending chain.
	r.activate()
	r.waitUsed(QueueInflate, 1)
}

func ExampleReleaseWithMadvise() {
	// The VMM's *memory.Memory provides Slice.
	mem := virtqtest.NewMemory(0, 1<<20)
	dev, err := New(Config{TargetMiB: 0, DeflateOnOOM: true}, ReleaseWithMadvise(mem))
	fmt.Println(dev.DeviceID(), err)
	// Output: 5 <nil>
}
