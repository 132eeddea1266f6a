package boot

import "testing"

// struct hvm_start_info offsets (xen/interface/hvm/start_info.h).
const (
	hsiMagic         = 0
	hsiVersion       = 4
	hsiFlags         = 8
	hsiNrModules     = 12
	hsiModlistPaddr  = 16
	hsiCmdlinePaddr  = 24
	hsiRsdpPaddr     = 32
	hsiMemmapPaddr   = 40
	hsiMemmapEntries = 48
	hsiReserved      = 52
)

func TestWritePVHStartInfo(t *testing.T) {
	mem := newFakeMem(64 << 20)
	mem.fill = 0xaa
	p := BootParams{Cmdline: "console=ttyS0", InitrdAddr: 0x3ffe000, InitrdSize: 0x1234, E820: E820Map(5 << 30), RSDPAddr: 0xe0000}
	addr, err := WritePVHStartInfo(mem, p)
	if err != nil {
		t.Fatal(err)
	}
	if addr != 0x6000 {
		t.Fatalf("start info at %#x, want 0x6000", addr)
	}
	if v := mem.u32(t, addr+hsiMagic); v != 0x336ec578 {
		t.Errorf("magic %#x", v)
	}
	if v := mem.u32(t, addr+hsiVersion); v != 1 {
		t.Errorf("version %d, want 1", v)
	}
	if v := mem.u32(t, addr+hsiFlags); v != 0 {
		t.Errorf("flags %#x", v)
	}
	if v := mem.u32(t, addr+hsiNrModules); v != 1 {
		t.Errorf("nr_modules %d, want 1", v)
	}
	if v := mem.u64(t, addr+hsiCmdlinePaddr); v != 0x20000 {
		t.Errorf("cmdline_paddr %#x", v)
	}
	if v := mem.u64(t, addr+hsiRsdpPaddr); v != 0xe0000 {
		t.Errorf("rsdp_paddr %#x", v)
	}
	if v := mem.u64(t, addr+hsiMemmapPaddr); v != 0x6100 {
		t.Errorf("memmap_paddr %#x, want 0x6100", v)
	}
	if v := mem.u32(t, addr+hsiMemmapEntries); v != 3 {
		t.Errorf("memmap_entries %d", v)
	}
	if v := mem.u32(t, addr+hsiReserved); v != 0 {
		t.Errorf("reserved %#x", v)
	}
	mod := mem.u64(t, addr+hsiModlistPaddr)
	if mod < 0x6000+56 || mod+32 > 0x6100 {
		t.Fatalf("modlist_paddr %#x is not between the start info and the memory map", mod)
	}
	// struct hvm_modlist_entry: paddr, size, cmdline_paddr, reserved.
	if a, s, c, r := mem.u64(t, mod), mem.u64(t, mod+8), mem.u64(t, mod+16), mem.u64(t, mod+24); a != 0x3ffe000 || s != 0x1234 || c != 0 || r != 0 {
		t.Errorf("module entry {%#x %#x %#x %#x}, want {0x3ffe000 0x1234 0 0}", a, s, c, r)
	}
	// struct hvm_memmap_table_entry: addr, size, type, reserved; 24 bytes.
	want := []struct {
		addr, size uint64
		typ        uint32
	}{{0, 0x9fc00, 1}, {0x100000, 0xbff00000, 1}, {0x100000000, 0x80000000, 1}}
	for i, w := range want {
		e := uint64(0x6100 + i*24)
		if a, s, ty, r := mem.u64(t, e), mem.u64(t, e+8), mem.u32(t, e+16), mem.u32(t, e+20); a != w.addr || s != w.size || ty != w.typ || r != 0 {
			t.Errorf("memmap[%d] = {%#x %#x %d %d}, want {%#x %#x %d 0}", i, a, s, ty, r, w.addr, w.size, w.typ)
		}
	}
}

func TestWritePVHStartInfoWithoutInitrd(t *testing.T) {
	mem := newFakeMem(64 << 20)
	mem.fill = 0xaa
	addr, err := WritePVHStartInfo(mem, BootParams{E820: E820Map(128 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	if n, l := mem.u32(t, addr+hsiNrModules), mem.u64(t, addr+hsiModlistPaddr); n != 0 || l != 0 {
		t.Errorf("nr_modules %d modlist_paddr %#x, want 0 0", n, l)
	}
	if v := mem.u64(t, addr+hsiRsdpPaddr); v != 0 {
		t.Errorf("rsdp_paddr %#x, want 0 (no ACPI)", v)
	}
}

func TestWritePVHStartInfoRejectsTooManyEntries(t *testing.T) {
	if _, err := WritePVHStartInfo(newFakeMem(64<<20), BootParams{E820: make([]E820Entry, 129)}); err == nil {
		t.Error("129 memory map entries accepted")
	}
}
