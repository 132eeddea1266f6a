package boot

import "testing"

// descriptorBits splits a segment descriptor into its fields per the Intel
// SDM vol. 3A, 3.4.5 "Segment Descriptors".
type descriptorBits struct {
	base, limit                   uint64
	typ, s, dpl, p, avl, l, db, g uint64
}

func decodeDescriptor(d uint64) descriptorBits {
	return descriptorBits{
		limit: d&0xffff | (d>>48&0xf)<<16,
		base:  d>>16&0xffffff | (d>>56)<<24,
		typ:   d >> 40 & 0xf,
		s:     d >> 44 & 1,
		dpl:   d >> 45 & 3,
		p:     d >> 47 & 1,
		avl:   d >> 52 & 1,
		l:     d >> 53 & 1,
		db:    d >> 54 & 1,
		g:     d >> 55 & 1,
	}
}

func TestBootGDTDescriptors(t *testing.T) {
	mem := newFakeMem(1 << 20)
	mem.fill = 0xaa
	if _, err := SetupLongMode(mem, 0x100200); err != nil {
		t.Fatal(err)
	}
	if v := mem.u64(t, 0x500); v != 0 {
		t.Errorf("GDT[0] = %#x, want the null descriptor", v)
	}
	flat := descriptorBits{base: 0, limit: 0xfffff, s: 1, dpl: 0, p: 1, g: 1}
	code32 := flat
	code32.typ, code32.db = 0xb, 1 // execute/read, accessed; 32-bit
	code64 := flat
	code64.typ, code64.l = 0xb, 1 // execute/read, accessed; 64-bit, D must be 0
	data := flat
	data.typ, data.db = 0x3, 1 // read/write, accessed
	for _, tc := range []struct {
		sel  uint64
		want descriptorBits
	}{{0x08, code32}, {0x10, code64}, {0x18, data}} {
		if got := decodeDescriptor(mem.u64(t, 0x500+tc.sel)); got != tc.want {
			t.Errorf("GDT selector %#x: %+v, want %+v", tc.sel, got, tc.want)
		}
	}
	if v := mem.u64(t, 0x520); v != 0 {
		t.Errorf("IDT slot %#x, want zero", v)
	}
}

func TestLongModePageTables(t *testing.T) {
	mem := newFakeMem(1 << 20)
	mem.fill = 0xaa
	if _, err := SetupLongMode(mem, 0x100200); err != nil {
		t.Fatal(err)
	}
	// Present|RW = 0x3; a PD entry with PS (bit 7) maps a 2 MiB page.
	if v := mem.u64(t, 0x9000); v != 0xa003 {
		t.Errorf("PML4[0] = %#x, want 0xa003", v)
	}
	if v := mem.u64(t, 0x9008); v != 0 {
		t.Errorf("PML4[1] = %#x, want 0", v)
	}
	for i, want := range []uint64{0xb003, 0xc003, 0xd003, 0xe003, 0} {
		if v := mem.u64(t, 0xa000+uint64(i)*8); v != want {
			t.Errorf("PDPT[%d] = %#x, want %#x", i, v, want)
		}
	}
	for _, tc := range []struct{ addr, want uint64 }{
		{0xb000, 0x0000083},  // first 2 MiB
		{0xb008, 0x0200083},  // second 2 MiB
		{0xbff8, 0x3fe00083}, // last entry of the first GiB
		{0xc000, 0x40000083}, // 1 GiB
		{0xeff8, 0xffe00083}, // the last 2 MiB below 4 GiB
	} {
		if v := mem.u64(t, tc.addr); v != tc.want {
			t.Errorf("PD entry at %#x = %#x, want %#x", tc.addr, v, tc.want)
		}
	}
}

func TestSetupLongModeState(t *testing.T) {
	s, err := SetupLongMode(newFakeMem(1<<20), 0x100200)
	if err != nil {
		t.Fatal(err)
	}
	// CR0: PE bit 0, ET bit 4, NE bit 5, PG bit 31. CR4.PAE bit 5.
	// EFER: LME bit 8, LMA bit 10.
	if s.CR0 != 0x80000031 || s.CR4 != 0x20 || s.EFER != 0x500 || s.CR3 != 0x9000 {
		t.Errorf("CR0 %#x CR4 %#x EFER %#x CR3 %#x", s.CR0, s.CR4, s.EFER, s.CR3)
	}
	if s.RIP != 0x100200 || s.RSI != 0x7000 || s.RSP != 0x8ff0 || s.RBP != 0x8ff0 || s.RFLAGS != 2 {
		t.Errorf("RIP %#x RSI %#x RSP %#x RBP %#x RFLAGS %#x", s.RIP, s.RSI, s.RSP, s.RBP, s.RFLAGS)
	}
	wantCS := Segment{Base: 0, Limit: 0xffffffff, Selector: 0x10, Type: 0xb, Present: 1, S: 1, L: 1, DB: 0, G: 1}
	if s.CS != wantCS {
		t.Errorf("CS %+v, want %+v", s.CS, wantCS)
	}
	wantData := Segment{Base: 0, Limit: 0xffffffff, Selector: 0x18, Type: 0x3, Present: 1, S: 1, DB: 1, G: 1}
	for name, seg := range map[string]Segment{"DS": s.DS, "ES": s.ES, "FS": s.FS, "GS": s.GS, "SS": s.SS} {
		if seg != wantData {
			t.Errorf("%s %+v, want %+v", name, seg, wantData)
		}
	}
	if s.TR.Type != 11 || s.TR.S != 0 || s.TR.Present != 1 {
		t.Errorf("TR %+v, want a present busy TSS (type 11)", s.TR)
	}
	if s.GDT != (DescriptorTable{Base: 0x500, Limit: 31}) || s.IDT != (DescriptorTable{Base: 0x520, Limit: 7}) {
		t.Errorf("GDT %+v IDT %+v", s.GDT, s.IDT)
	}
}

func TestSetupPVHState(t *testing.T) {
	mem := newFakeMem(1 << 20)
	s, err := SetupPVH(mem, 0x1000850, 0x6000)
	if err != nil {
		t.Fatal(err)
	}
	if s.CR0 != 1 || s.CR4 != 0 || s.EFER != 0 || s.CR3 != 0 {
		t.Errorf("CR0 %#x CR4 %#x EFER %#x CR3 %#x, want PE only", s.CR0, s.CR4, s.EFER, s.CR3)
	}
	if s.RIP != 0x1000850 || s.RBX != 0x6000 || s.RFLAGS != 2 {
		t.Errorf("RIP %#x RBX %#x RFLAGS %#x", s.RIP, s.RBX, s.RFLAGS)
	}
	wantCS := Segment{Limit: 0xffffffff, Selector: 0x08, Type: 0xb, Present: 1, S: 1, DB: 1, G: 1}
	if s.CS != wantCS {
		t.Errorf("CS %+v, want %+v", s.CS, wantCS)
	}
	wantData := Segment{Limit: 0xffffffff, Selector: 0x18, Type: 0x3, Present: 1, S: 1, DB: 1, G: 1}
	for name, seg := range map[string]Segment{"DS": s.DS, "ES": s.ES, "SS": s.SS} {
		if seg != wantData {
			t.Errorf("%s %+v, want %+v", name, seg, wantData)
		}
	}
	// PVH ABI: TR is a 32-bit TSS (active) with base 0 and limit 0x67.
	if s.TR.Base != 0 || s.TR.Limit != 0x67 || s.TR.Type != 11 || s.TR.Present != 1 {
		t.Errorf("TR %+v", s.TR)
	}
	if decodeDescriptor(mem.u64(t, 0x508)).db != 1 {
		t.Error("GDT selector 0x08 is not a 32-bit code segment")
	}
}

func TestSetupRejects(t *testing.T) {
	if _, err := SetupLongMode(newFakeMem(1<<20), 0x1_0000_0000); err == nil {
		t.Error("a 64-bit entry outside the identity map was accepted")
	}
	if _, err := SetupPVH(newFakeMem(1<<20), 0x1_0000_0000, 0x6000); err == nil {
		t.Error("a PVH entry above 4 GiB was accepted")
	}
	if _, err := SetupLongMode(newFakeMem(0x400), 0x100200); err == nil {
		t.Error("writing the GDT outside RAM succeeded")
	}
}
