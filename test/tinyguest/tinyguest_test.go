package tinyguest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ternvm/tern/boot"
)

// xenPhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY, written out here rather than
// taken from boot, so the test checks the guests against the spec.
const xenPhys32Entry = 18

// note is one ELF note.
type note struct {
	name string
	typ  uint32
	desc []byte
}

// readNotes parses the notes of a PT_NOTE segment (4-byte aligned, as
// the guests' linker script lays them out).
func readNotes(t *testing.T, b []byte) []note {
	t.Helper()
	var ns []note
	align := func(n uint32) uint32 { return (n + 3) &^ 3 }
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("note segment: %d trailing bytes", len(b))
		}
		namesz, descsz, typ := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])
		descOff := 12 + align(namesz)
		end := descOff + align(descsz)
		if uint64(end) > uint64(len(b)) {
			t.Fatalf("note segment: note of %d+%d bytes runs past the segment", namesz, descsz)
		}
		ns = append(ns, note{strings.TrimRight(string(b[12:12+namesz]), "\x00"), typ, b[descOff : descOff+descsz]})
		b = b[end:]
	}
	return ns
}

// checkPVHELF checks what tern's PVH path needs of a guest: a 64-bit
// x86-64 executable with one Xen PHYS32_ENTRY note whose address is the
// ELF entry, inside a loaded segment at or above LoadAddr.
func checkPVHELF(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		t.Fatalf("%s is %v %v %v, want ELFCLASS64 EM_X86_64 ET_EXEC", path, f.Class, f.Machine, f.Type)
	}
	var entries []uint32
	loaded := false
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_NOTE:
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			for _, n := range readNotes(t, b) {
				if n.name == "Xen" && n.typ == xenPhys32Entry {
					if len(n.desc) != 4 {
						t.Fatalf("PVH note desc is %d bytes, want 4", len(n.desc))
					}
					entries = append(entries, binary.LittleEndian.Uint32(n.desc))
				}
			}
		case elf.PT_LOAD:
			if p.Paddr < LoadAddr {
				t.Errorf("segment at %#x, below LoadAddr %#x", p.Paddr, LoadAddr)
			}
			if f.Entry >= p.Paddr && f.Entry < p.Paddr+p.Filesz && p.Flags&elf.PF_X != 0 {
				loaded = true
			}
		}
	}
	if len(entries) != 1 {
		t.Fatalf("%d Xen PHYS32_ENTRY notes in PT_NOTE segments, want 1", len(entries))
	}
	if uint64(entries[0]) != f.Entry {
		t.Errorf("PVH note points at %#x, ELF entry is %#x", entries[0], f.Entry)
	}
	if !loaded {
		t.Errorf("entry %#x is not in an executable loaded segment", f.Entry)
	}
}

// ramImage is guest memory as a byte slice, for tern's own loader.
type ramImage []byte

func (m ramImage) ReadAt(p []byte, off int64) (int, error)  { return copy(p, m[off:]), nil }
func (m ramImage) WriteAt(p []byte, off int64) (int, error) { return copy(m[off:], p), nil }

func TestGuestsBuildAsPVHELFs(t *testing.T) {
	dir := t.TempDir()
	builds := map[string]func() (string, error){
		Counter: func() (string, error) { return BuildCounter(dir, CounterOptions{}) },
		Dirty:   func() (string, error) { return BuildDirty(dir, DirtyOptions{}) },
		Hello:   func() (string, error) { return BuildHello(dir) },
		Halt:    func() (string, error) { return BuildHalt(dir) },
		CPUID:   func() (string, error) { return BuildCPUID(dir, 0) },
		Triple:  func() (string, error) { return BuildTriple(dir) },
		Hostile: func() (string, error) { return BuildHostile(dir, HostileOptions{}) },
	}
	for name, build := range builds {
		t.Run(name, func(t *testing.T) {
			path, err := build()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(path, dir) || !strings.Contains(path, name) {
				t.Errorf("built %s, want a file named for %s in %s", path, name, dir)
			}
			checkPVHELF(t, path)

			// tern's loader must agree: it enters through the note.
			img, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			mem := make(ramImage, 16<<20)
			k, err := boot.LoadKernel(mem, bytes.NewReader(img), int64(len(img)), uint64(len(mem)), true)
			if err != nil {
				t.Fatalf("tern's loader refuses %s: %v", name, err)
			}
			if k.Protocol != boot.ProtocolPVH || k.Entry < LoadAddr || k.Entry >= LoadAddr+0x2000 {
				t.Errorf("loaded as %v entry %#x, want PVH entry just above %#x", k.Protocol, k.Entry, LoadAddr)
			}
		})
	}
	// Nothing but the ELFs is left behind.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".elf") {
			t.Errorf("left behind in the build directory: %s", e.Name())
		}
	}
}

func TestBuildsDifferByParameters(t *testing.T) {
	dir := t.TempDir()
	a, err := BuildCounter(dir, CounterOptions{TickEvery: 100})
	if err != nil {
		t.Fatal(err)
	}
	b, err := BuildCounter(dir, CounterOptions{TickEvery: 200})
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two tick intervals built to one path %s", a)
	}
	text := func(p string) []byte {
		f, err := elf.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		d, err := f.Section(".text").Data()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	ta, tb := text(a), text(b)
	if bytes.Equal(ta, tb) {
		t.Fatal("TickEvery does not reach the code")
	}
	// The counter's address is an operand of the code: the Go constant
	// and the guest cannot disagree.
	addr := binary.LittleEndian.AppendUint32(nil, CounterAddr)
	if !bytes.Contains(ta, addr) {
		t.Errorf("counter code does not mention CounterAddr %#x", CounterAddr)
	}
}

func TestDirtyRejectsBadRanges(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []DirtyOptions{
		{Start: 16<<20 + 1, MiB: 1}, // not page aligned
		{Start: LoadAddr, MiB: 1},   // over the guest's own image
		{Start: 0xbff00000, MiB: 2}, // into the MMIO hole
	} {
		if p, err := BuildDirty(dir, o); err == nil {
			t.Errorf("BuildDirty(%+v) = %s, want an error", o, p)
		}
	}
}

func TestMissingBinutilsIsNamed(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := BuildHello(t.TempDir())
	if !errors.Is(err, ErrNoBinutils) || !strings.Contains(err.Error(), "binutils") {
		t.Fatalf("without as and ld: %v, want ErrNoBinutils naming binutils", err)
	}
}

// Ticks reads only finished tick lines: the counter guest's start line and
// a line still being written are not ticks.
func TestTicksSkipsOtherAndUnfinishedLines(t *testing.T) {
	out := CounterStartLine + "\n" + TickPrefix + "0000009c\n" + TickPrefix + "00013880\n" + TickPrefix + "0001d4"
	got := Ticks(out)
	if len(got) != 2 || got[0] != 0x9c || got[1] != 0x13880 {
		t.Fatalf("Ticks(%q) = %v, want [0x9c 0x13880]", out, got)
	}
	if FirstTick(out) != 0x9c || LastTick(out) != 0x13880 {
		t.Errorf("FirstTick, LastTick = %#x, %#x", FirstTick(out), LastTick(out))
	}
	if LastTick(CounterStartLine+"\n") != -1 || FirstTick("") != -1 {
		t.Errorf("no tick: want -1")
	}
}
