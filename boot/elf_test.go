package boot

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// ELF64 layout from the System V gABI: 64-byte file header, 56-byte
// program headers.
const (
	elfHdrSize  = 64
	elfPhdrSize = 56
	ptLoad      = 1
	ptNote      = 4
)

type testSeg struct {
	typ                         uint32
	vaddr, paddr, filesz, memsz uint64
	align                       uint64
	data                        []byte // file contents; len must be filesz unless off is set
	off                         uint64 // 0: placed after the previous data
}

type elfOpts struct {
	class   byte   // 2 = ELFCLASS64
	data    byte   // 1 = little endian
	typ     uint16 // 2 = ET_EXEC
	machine uint16 // 62 = EM_X86_64
	entry   uint64
	segs    []testSeg
}

func buildELF(o elfOpts) []byte {
	var bo binary.ByteOrder = binary.LittleEndian
	if o.data == 2 {
		bo = binary.BigEndian
	}
	phoff := uint64(elfHdrSize)
	dataOff := phoff + uint64(len(o.segs))*elfPhdrSize
	var body []byte
	ph := make([]byte, 0, len(o.segs)*elfPhdrSize)
	for _, s := range o.segs {
		off := s.off
		if off == 0 {
			off = dataOff + uint64(len(body))
			body = append(body, s.data...)
		}
		p := make([]byte, elfPhdrSize)
		bo.PutUint32(p[0:], s.typ)
		bo.PutUint32(p[4:], 5) // R+X
		bo.PutUint64(p[8:], off)
		bo.PutUint64(p[16:], s.vaddr)
		bo.PutUint64(p[24:], s.paddr)
		bo.PutUint64(p[32:], s.filesz)
		bo.PutUint64(p[40:], s.memsz)
		bo.PutUint64(p[48:], s.align)
		ph = append(ph, p...)
	}
	h := make([]byte, elfHdrSize)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = o.class, o.data, 1
	bo.PutUint16(h[16:], o.typ)
	bo.PutUint16(h[18:], o.machine)
	bo.PutUint32(h[20:], 1)
	bo.PutUint64(h[24:], o.entry)
	bo.PutUint64(h[32:], phoff)
	bo.PutUint16(h[52:], elfHdrSize)
	bo.PutUint16(h[54:], elfPhdrSize)
	bo.PutUint16(h[56:], uint16(len(o.segs)))
	bo.PutUint16(h[58:], 64)
	return append(append(h, ph...), body...)
}

// note encodes one ELF note with 4-byte padding.
func note(name string, typ uint32, desc []byte) []byte {
	pad := func(b []byte) []byte { return append(b, make([]byte, (4-len(b)%4)%4)...) }
	b := make([]byte, 12)
	binary.LittleEndian.PutUint32(b[0:], uint32(len(name)+1))
	binary.LittleEndian.PutUint32(b[4:], uint32(len(desc)))
	binary.LittleEndian.PutUint32(b[8:], typ)
	b = append(b, pad(append([]byte(name), 0))...)
	return append(b, pad(desc)...)
}

func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// vmlinuxLike mimics the Debian vmlinux layout: text at 16 MiB linked at
// 0xffffffff81000000, a data segment with bss, and a note segment whose
// Xen notes include XEN_ELFNOTE_PHYS32_ENTRY (18) among others.
func vmlinuxLike(pvhDesc []byte) elfOpts {
	var notes []byte
	notes = append(notes, note("Xen", 6, []byte("linux\x00"))...)
	notes = append(notes, note("GNU", 3, make([]byte, 20))...)
	notes = append(notes, note("Xen", 1, le64(0xffffffff81001000))...)
	if pvhDesc != nil {
		notes = append(notes, note("Xen", 18, pvhDesc)...)
	}
	return elfOpts{
		class: 2, data: 1, typ: 2, machine: 62, entry: 0x1000000,
		segs: []testSeg{
			{typ: ptLoad, vaddr: 0xffffffff81000000, paddr: 0x1000000, filesz: 0x2000, memsz: 0x2000, align: 0x200000, data: pattern(0x2000, 1)},
			{typ: ptLoad, vaddr: 0xffffffff81200000, paddr: 0x1200000, filesz: 0x1800, memsz: 0x5000, align: 0x200000, data: pattern(0x1800, 2)},
			{typ: ptNote, vaddr: 0xffffffff81001f00, paddr: 0x1001f00, filesz: uint64(len(notes)), memsz: uint64(len(notes)), align: 4, data: notes},
		},
	}
}

func TestLoadELFSegmentsAndBSS(t *testing.T) {
	img := buildELF(vmlinuxLike(le64(0x1000850)))
	mem := newFakeMem(64 << 20)
	mem.fill = 0xee // so a missing bss clear shows
	k, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)), mem.size, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := mem.bytes(t, 0x1000000, 0x2000); !bytes.Equal(got, pattern(0x2000, 1)) {
		t.Error("text segment not at its p_paddr 0x1000000")
	}
	if got := mem.bytes(t, 0x1200000, 0x1800); !bytes.Equal(got, pattern(0x1800, 2)) {
		t.Error("data segment not at its p_paddr 0x1200000")
	}
	if got := mem.bytes(t, 0x1201800, 0x3800); !bytes.Equal(got, make([]byte, 0x3800)) {
		t.Error("bss [0x1201800, 0x1205000) not zeroed")
	}
	if mem.u8(t, 0x1205000) != 0xee {
		t.Error("memory past p_memsz was written")
	}
	if k.Format != "elf" || k.Protocol != ProtocolLinux64 || k.Entry != 0x1000000 {
		t.Errorf("format %q protocol %v entry %#x, want elf linux64 0x1000000", k.Format, k.Protocol, k.Entry)
	}
	if k.End != 0x1205000 {
		t.Errorf("End %#x, want 0x1205000 (data p_paddr + p_memsz)", k.End)
	}
	if k.PVHEntry != 0x1000850 {
		t.Errorf("PVHEntry %#x, want 0x1000850 from the note", k.PVHEntry)
	}
	if k.InitrdAddrMax != 0x37ffffff || k.Setup != nil {
		t.Errorf("InitrdAddrMax %#x Setup %v, want 0x37ffffff and nil", k.InitrdAddrMax, k.Setup)
	}
	if k.CmdlineMax() != 2048 {
		t.Errorf("CmdlineMax %d, want x86 COMMAND_LINE_SIZE 2048", k.CmdlineMax())
	}
}

func TestLoadELFPreferPVH(t *testing.T) {
	for _, tc := range []struct {
		name      string
		desc      []byte
		preferPVH bool
		protocol  Protocol
		entry     uint64
	}{
		{"8-byte note, PVH preferred", le64(0x1000850), true, ProtocolPVH, 0x1000850},
		{"4-byte note, PVH preferred", le32(0x1000860), true, ProtocolPVH, 0x1000860},
		{"note, 64-bit preferred", le64(0x1000850), false, ProtocolLinux64, 0x1000000},
		{"no note, PVH preferred", nil, true, ProtocolLinux64, 0x1000000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := buildELF(vmlinuxLike(tc.desc))
			k, err := LoadKernel(newFakeMem(64<<20), bytes.NewReader(img), int64(len(img)), 64<<20, tc.preferPVH)
			if err != nil {
				t.Fatal(err)
			}
			if k.Protocol != tc.protocol || k.Entry != tc.entry {
				t.Errorf("protocol %v entry %#x, want %v %#x", k.Protocol, k.Entry, tc.protocol, tc.entry)
			}
		})
	}
}

func TestLoadELFVirtualEntryIsTranslated(t *testing.T) {
	o := vmlinuxLike(nil)
	o.entry = 0xffffffff81000040
	img := buildELF(o)
	k, err := LoadKernel(newFakeMem(64<<20), bytes.NewReader(img), int64(len(img)), 64<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	if k.Entry != 0x1000040 {
		t.Errorf("entry %#x, want 0x1000040", k.Entry)
	}
}

func TestLoadELFRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		patch  func(*elfOpts)
		cut    int
		memEnd uint64
		want   string
	}{
		{name: "big endian", patch: func(o *elfOpts) { o.data = 2 }, want: "want little endian"},
		{name: "ET_DYN", patch: func(o *elfOpts) { o.typ = 3 }, want: "ET_EXEC"},
		{name: "i386 machine", patch: func(o *elfOpts) { o.machine = 3 }, want: "EM_X86_64"},
		{name: "segment in boot area", patch: func(o *elfOpts) { o.segs[0].paddr = 0x9000 }, want: "below 0x100000"},
		{name: "segment outside RAM", patch: func(o *elfOpts) { o.segs[1].paddr = 0x3fff000 }, want: "does not fit in RAM"},
		{name: "filesz > memsz", patch: func(o *elfOpts) { o.segs[1].memsz = 0x1000 }, want: "exceeds memory size"},
		{name: "address overflow", patch: func(o *elfOpts) { o.segs[1].paddr = 0xfffffffffffff000 }, want: "overflows"},
		{name: "segment past end of file", patch: func(o *elfOpts) { o.segs[1].off = 1 << 30 }, want: "truncated"},
		{name: "truncated file", patch: func(o *elfOpts) {}, cut: 0x1000, want: "truncated"},
		{name: "entry outside segments", patch: func(o *elfOpts) { o.entry = 0x3000000 }, want: "entry"},
		{name: "PVH entry outside segments", patch: func(o *elfOpts) {
			o.segs[2].data = note("Xen", 18, le64(0x3000000))
			o.segs[2].filesz, o.segs[2].memsz = uint64(len(o.segs[2].data)), uint64(len(o.segs[2].data))
		}, want: "PVH entry"},
		{name: "no loadable segment", patch: func(o *elfOpts) { o.segs = o.segs[2:] }, want: "no loadable segment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := vmlinuxLike(le64(0x1000850))
			tc.patch(&o)
			img := buildELF(o)
			img = img[:len(img)-tc.cut]
			memEnd := tc.memEnd
			if memEnd == 0 {
				memEnd = 64 << 20
			}
			k, err := LoadKernel(newFakeMem(64<<20), bytes.NewReader(img), int64(len(img)), memEnd, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got kernel %+v, error %v; want an error containing %q", k, err, tc.want)
			}
		})
	}
}

func TestLoadELFRejects32Bit(t *testing.T) {
	// An ELF32 i386 executable: 52-byte header, one 32-byte PT_LOAD at
	// 1 MiB (System V gABI, Elf32_Ehdr / Elf32_Phdr).
	b := make([]byte, 52+32+16)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 1, 1, 1
	binary.LittleEndian.PutUint16(b[16:], 2)        // ET_EXEC
	binary.LittleEndian.PutUint16(b[18:], 3)        // EM_386
	binary.LittleEndian.PutUint32(b[20:], 1)        // EV_CURRENT
	binary.LittleEndian.PutUint32(b[24:], 0x100000) // e_entry
	binary.LittleEndian.PutUint32(b[28:], 52)       // e_phoff
	binary.LittleEndian.PutUint16(b[40:], 52)       // e_ehsize
	binary.LittleEndian.PutUint16(b[42:], 32)       // e_phentsize
	binary.LittleEndian.PutUint16(b[44:], 1)        // e_phnum
	binary.LittleEndian.PutUint32(b[52:], ptLoad)   // p_type
	binary.LittleEndian.PutUint32(b[56:], 84)       // p_offset
	binary.LittleEndian.PutUint32(b[60:], 0x100000) // p_vaddr
	binary.LittleEndian.PutUint32(b[64:], 0x100000) // p_paddr
	binary.LittleEndian.PutUint32(b[68:], 16)       // p_filesz
	binary.LittleEndian.PutUint32(b[72:], 16)       // p_memsz
	_, err := LoadKernel(newFakeMem(64<<20), bytes.NewReader(b), int64(len(b)), 64<<20, false)
	if err == nil || !strings.Contains(err.Error(), "ELFCLASS32, want ELFCLASS64") {
		t.Errorf("error %v, want a 32-bit rejection", err)
	}
}

// TestRealVmlinux loads an ELF vmlinux named by TERN_TEST_VMLINUX (for
// example one extracted from the Debian bzImage with extract-vmlinux).
func TestRealVmlinux(t *testing.T) {
	path := os.Getenv("TERN_TEST_VMLINUX")
	if path == "" {
		t.Skip("optional real-kernel test: set TERN_TEST_VMLINUX to an x86-64 vmlinux")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	mem := newFakeMem(256 << 20)
	k, err := LoadKernel(mem, f, st.Size(), mem.size, true)
	if err != nil {
		t.Fatal(err)
	}
	if k.Protocol != ProtocolPVH || k.PVHEntry == 0 || k.Entry != k.PVHEntry {
		t.Errorf("kernel %+v: want a PVH entry from XEN_ELFNOTE_PHYS32_ENTRY", k)
	}
	t.Logf("PVH entry %#x, End %#x", k.PVHEntry, k.End)
}
