package boot

import (
	"bytes"
	"testing"
)

// struct boot_params offsets (bootparam.h, Documentation/arch/x86/zero-page.rst).
const (
	zpAcpiRsdpAddr    = 0x070
	zpExtRamdiskImage = 0x0c0
	zpExtRamdiskSize  = 0x0c4
	zpExtCmdLinePtr   = 0x0c8
	zpE820Entries     = 0x1e8
	zpSentinel        = 0x1ef
	zpE820Table       = 0x2d0
)

func testBootParams() BootParams {
	return BootParams{
		Cmdline:    "console=ttyS0",
		InitrdAddr: 0x1_2345_6000, // above 4 GiB to exercise the ext_ fields
		InitrdSize: 0x1_0000_0200,
		E820:       E820Map(5 << 30),
		RSDPAddr:   0xe0000,
	}
}

func loadTestBzImage(t *testing.T, mem *fakeMem) *Kernel {
	t.Helper()
	img := buildBzImage(defaultBzOpts())
	k, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)), 64<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func checkCommonZeroPage(t *testing.T, mem *fakeMem) {
	t.Helper()
	zp := uint64(0x7000)
	if v := mem.u16(t, zp+offBootFlag); v != 0xaa55 {
		t.Errorf("boot_flag %#x", v)
	}
	if v := string(mem.bytes(t, zp+offHeader, 4)); v != "HdrS" {
		t.Errorf("header %q", v)
	}
	if v := mem.u8(t, zp+offTypeOfLoader); v != 0xff {
		t.Errorf("type_of_loader %#x, want 0xff", v)
	}
	if v := mem.u32(t, zp+offCmdLinePtr); v != 0x20000 {
		t.Errorf("cmd_line_ptr %#x, want 0x20000", v)
	}
	if v := mem.u32(t, zp+zpExtCmdLinePtr); v != 0 {
		t.Errorf("ext_cmd_line_ptr %#x, want 0", v)
	}
	if v := mem.u32(t, zp+offRamdiskImage); v != 0x23456000 {
		t.Errorf("ramdisk_image %#x, want low half 0x23456000", v)
	}
	if v := mem.u32(t, zp+zpExtRamdiskImage); v != 0x1 {
		t.Errorf("ext_ramdisk_image %#x, want high half 1", v)
	}
	if v := mem.u32(t, zp+offRamdiskSize); v != 0x200 {
		t.Errorf("ramdisk_size %#x, want low half 0x200", v)
	}
	if v := mem.u32(t, zp+zpExtRamdiskSize); v != 0x1 {
		t.Errorf("ext_ramdisk_size %#x, want high half 1", v)
	}
	if v := mem.u64(t, zp+zpAcpiRsdpAddr); v != 0xe0000 {
		t.Errorf("acpi_rsdp_addr %#x", v)
	}
	if v := mem.u8(t, zp+zpE820Entries); v != 3 {
		t.Errorf("e820_entries %d, want 3", v)
	}
	want := []struct {
		addr, size uint64
		typ        uint32
	}{{0, 0x9fc00, 1}, {0x100000, 0xbff00000, 1}, {0x100000000, 0x80000000, 1}}
	for i, w := range want {
		e := zp + zpE820Table + uint64(i)*20
		if a, s, ty := mem.u64(t, e), mem.u64(t, e+8), mem.u32(t, e+16); a != w.addr || s != w.size || ty != w.typ {
			t.Errorf("e820_table[%d] = {%#x %#x %d}, want {%#x %#x %d}", i, a, s, ty, w.addr, w.size, w.typ)
		}
	}
	if v := mem.u64(t, zp+zpE820Table+3*20); v != 0 {
		t.Errorf("e820_table[3] not zero")
	}
	if v := mem.u8(t, zp+zpSentinel); v != 0 {
		t.Errorf("sentinel %#x, want 0", v)
	}
}

func TestWriteZeroPageBzImage(t *testing.T) {
	mem := newFakeMem(64 << 20)
	mem.fill = 0xaa // the whole page must be rewritten
	k := loadTestBzImage(t, mem)
	if err := WriteZeroPage(mem, k, testBootParams()); err != nil {
		t.Fatal(err)
	}
	checkCommonZeroPage(t, mem)
	zp := uint64(0x7000)
	if v := mem.u8(t, zp+offLoadflags); v != 0x81 {
		t.Errorf("loadflags %#x, want LOADED_HIGH|CAN_USE_HEAP", v)
	}
	if v := mem.u16(t, zp+offHeapEndPtr); v != 0xfe00 {
		t.Errorf("heap_end_ptr %#x, want 0xfe00", v)
	}
	// Fields the decompressor reads must come from the image's header.
	if v := mem.u32(t, zp+offKernelAlignment); v != 0x200000 {
		t.Errorf("kernel_alignment %#x, want the header's 0x200000", v)
	}
	if v := mem.u32(t, zp+offInitSize); v != 0x400000 {
		t.Errorf("init_size %#x, want the header's 0x400000", v)
	}
	if v := mem.u16(t, zp+offVersion); v != 0x020f {
		t.Errorf("version %#x", v)
	}
	if v := mem.u32(t, zp+offCmdlineSize); v != 0x7ff {
		t.Errorf("cmdline_size %#x, want the header's 0x7ff", v)
	}
	if v := mem.u16(t, zp+offXloadflags); v != 0x1 {
		t.Errorf("xloadflags %#x", v)
	}
	if v := mem.u8(t, zp+0x1f0); v != 0 {
		t.Errorf("byte 0x1f0 (outside the header) = %#x, want 0", v)
	}
	if v := mem.u8(t, zp+setupHeaderEnd); v != 0 {
		t.Errorf("byte after the header = %#x, want 0", v)
	}
}

func TestWriteZeroPageELF(t *testing.T) {
	mem := newFakeMem(64 << 20)
	mem.fill = 0xaa
	k := &Kernel{Format: "elf", Protocol: ProtocolLinux64, Entry: 0x1000000, End: 0x3e00000, InitrdAddrMax: 0x37ffffff}
	if err := WriteZeroPage(mem, k, testBootParams()); err != nil {
		t.Fatal(err)
	}
	checkCommonZeroPage(t, mem)
	zp := uint64(0x7000)
	if v := mem.u32(t, zp+offKernelAlignment); v != 0x1000000 {
		t.Errorf("kernel_alignment %#x, want 0x1000000", v)
	}
	if v := mem.u8(t, zp+offLoadflags); v != 0x01 {
		t.Errorf("loadflags %#x, want LOADED_HIGH", v)
	}
	if v := mem.u32(t, zp+offCmdlineSize); v != uint32(len("console=ttyS0")) {
		t.Errorf("cmdline_size %d", v)
	}
}

func TestWriteZeroPageNoInitrd(t *testing.T) {
	mem := newFakeMem(64 << 20)
	mem.fill = 0xaa
	k := &Kernel{Format: "elf"}
	if err := WriteZeroPage(mem, k, BootParams{E820: E820Map(128 << 20)}); err != nil {
		t.Fatal(err)
	}
	for _, off := range []uint64{offRamdiskImage, offRamdiskSize, zpExtRamdiskImage, zpExtRamdiskSize, zpAcpiRsdpAddr} {
		if v := mem.u32(t, 0x7000+off); v != 0 {
			t.Errorf("field at %#x = %#x, want 0", off, v)
		}
	}
}

func TestWriteZeroPageRejects(t *testing.T) {
	mem := newFakeMem(64 << 20)
	if err := WriteZeroPage(mem, &Kernel{Format: "elf"}, BootParams{E820: make([]E820Entry, 129)}); err == nil {
		t.Error("129 e820 entries accepted (the zero page holds 128)")
	}
	if err := WriteZeroPage(mem, &Kernel{Format: "bzImage"}, BootParams{}); err == nil {
		t.Error("bzImage without a setup header accepted")
	}
	if err := WriteZeroPage(mem, nil, BootParams{}); err == nil {
		t.Error("nil kernel accepted")
	}
	if err := WriteZeroPage(newFakeMem(0x7800), &Kernel{Format: "elf"}, BootParams{}); err == nil {
		t.Error("a zero page outside RAM was reported written")
	}
}
