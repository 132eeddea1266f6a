package balloon

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ternvm/tern/virtio/internal/virtqtest"
	"golang.org/x/sys/unix"
)

// anonRAM is guest RAM at base backed by a private anonymous mapping, as
// the VMM backs it.
type anonRAM struct {
	base uint64
	b    []byte
}

func newAnonRAM(t *testing.T, base uint64, pages int) *anonRAM {
	t.Helper()
	// An inaccessible page on either side keeps the kernel from merging
	// the mapping with its neighbours, so smaps shows it alone.
	all, err := unix.Mmap(-1, 0, (pages+2)*specPageSize, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	t.Cleanup(func() { unix.Munmap(all) })
	b := all[specPageSize : (pages+1)*specPageSize : (pages+1)*specPageSize]
	if err := unix.Mprotect(b, unix.PROT_READ|unix.PROT_WRITE); err != nil {
		t.Fatalf("mprotect: %v", err)
	}
	return &anonRAM{base: base, b: b}
}

func (m *anonRAM) Slice(gpa, n uint64) ([]byte, error) {
	size := uint64(len(m.b))
	if gpa < m.base || gpa-m.base > size || n > size-(gpa-m.base) {
		return nil, fmt.Errorf("[%#x, +%#x) is outside RAM", gpa, n)
	}
	off := gpa - m.base
	return m.b[off : off+n : off+n], nil
}

func (m *anonRAM) ReadAt(p []byte, off int64) (int, error) {
	b, err := m.Slice(uint64(off), uint64(len(p)))
	if err != nil {
		return 0, err
	}
	return copy(p, b), nil
}

func (m *anonRAM) WriteAt(p []byte, off int64) (int, error) {
	b, err := m.Slice(uint64(off), uint64(len(p)))
	if err != nil {
		return 0, err
	}
	return copy(b, p), nil
}

// rssKiB reads the resident size of the mapping that starts at b's first
// byte from /proc/self/smaps.
func rssKiB(t *testing.T, b []byte) int {
	t.Helper()
	start := strconv.FormatUint(uint64(reflect.ValueOf(b).Pointer()), 16)
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	found := false
	for sc.Scan() {
		line := sc.Text()
		if !found {
			lo, _, ok := strings.Cut(strings.Fields(line)[0], "-")
			found = ok && strings.TrimLeft(lo, "0") == start
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("smaps Rss line %q: %v", line, err)
			}
			return kb
		}
	}
	t.Fatalf("mapping at %s not found in /proc/self/smaps", start)
	return 0
}

func TestReleaseWithMadviseDropsPages(t *testing.T) {
	const base = 0x100000
	ram := newAnonRAM(t, base, 64)
	for i := range ram.b {
		ram.b[i] = 0xaa
	}
	before := rssKiB(t, ram.b)
	if before < 64*4 {
		t.Fatalf("RSS %d KiB after touching 64 pages", before)
	}

	release := ReleaseWithMadvise(ram)
	// Pages 8 to 23 of the mapping.
	if err := release(base+8*specPageSize, 16*specPageSize); err != nil {
		t.Fatalf("release: %v", err)
	}
	after := rssKiB(t, ram.b)
	t.Logf("RSS %d KiB -> %d KiB", before, after)
	if after > before-16*4 {
		t.Errorf("RSS went from %d KiB to %d KiB, want a drop of at least 64 KiB", before, after)
	}
	for page := range 64 {
		want := byte(0xaa)
		if page >= 8 && page < 24 {
			want = 0
		}
		p := ram.b[page*specPageSize : (page+1)*specPageSize]
		if !bytes.Equal(p, bytes.Repeat([]byte{want}, specPageSize)) {
			t.Errorf("page %d does not read back as all %#x", page, want)
		}
	}
}

func TestReleaseWithMadviseRejectsBadRanges(t *testing.T) {
	const base = 0x100000
	ram := newAnonRAM(t, base, 4)
	release := ReleaseWithMadvise(ram)
	bad := []struct {
		name        string
		gpa, length uint64
	}{
		{"below RAM", 0, specPageSize},
		{"past the end", base + 3*specPageSize, 2 * specPageSize},
		{"far outside", 1 << 50, specPageSize},
		{"wrapping", ^uint64(0) - specPageSize + 1, 2 * specPageSize},
		{"unaligned address", base + 1, specPageSize},
		{"unaligned length", base, 100},
	}
	for _, c := range bad {
		if err := release(c.gpa, c.length); err == nil {
			t.Errorf("%s: release(%#x, %#x) succeeded", c.name, c.gpa, c.length)
		}
	}
	if err := release(base, 0); err != nil {
		t.Errorf("empty release: %v", err)
	}
}

// lowAndAnon is fake RAM below 1 MiB for the rings and an anonymous
// mapping above it for the pages the guest gives up.
type lowAndAnon struct {
	lo *virtqtest.Memory
	hi *anonRAM
}

func (m lowAndAnon) Slice(gpa, n uint64) ([]byte, error) {
	if gpa >= m.hi.base {
		return m.hi.Slice(gpa, n)
	}
	return m.lo.Slice(gpa, n)
}
func (m lowAndAnon) ReadAt(p []byte, off int64) (int, error) {
	if uint64(off) >= m.hi.base {
		return m.hi.ReadAt(p, off)
	}
	return m.lo.ReadAt(p, off)
}
func (m lowAndAnon) WriteAt(p []byte, off int64) (int, error) {
	if uint64(off) >= m.hi.base {
		return m.hi.WriteAt(p, off)
	}
	return m.lo.WriteAt(p, off)
}

func TestInflateWithMadviseZeroesGuestPages(t *testing.T) {
	lo := virtqtest.NewMemory(0, testRAMSize)
	hi := newAnonRAM(t, testRAMSize, 16)
	mem := lowAndAnon{lo, hi}
	r := newRigMem(t, Config{}, lo, mem)
	r.dev.release = ReleaseWithMadvise(mem)
	for i := range hi.b {
		hi.b[i] = 0x5a
	}
	r.activate()
	// PFNs 0x100 to 0x10f are the mapping's 16 pages; give up 0x102 to
	// 0x104 and 0x10f.
	r.post(QueueInflate, pfnArray(0x10f, 0x103, 0x102, 0x104))
	r.waitUsed(QueueInflate, 1)
	for page := range 16 {
		want := byte(0x5a)
		if (page >= 2 && page <= 4) || page == 15 {
			want = 0
		}
		p := hi.b[page*specPageSize : (page+1)*specPageSize]
		if !bytes.Equal(p, bytes.Repeat([]byte{want}, specPageSize)) {
			t.Errorf("page %#x does not read back as all %#x", 0x100+page, want)
		}
	}
	if c := r.dev.Counters(); c.InflatedPages != 4 || c.ReleaseFailures != 0 {
		t.Errorf("counters %+v, want 4 inflated and no failures", c)
	}
}
