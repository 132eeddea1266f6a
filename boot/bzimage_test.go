package boot

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

type bzOpts struct {
	setupSects  uint8
	version     uint16
	loadflags   uint8
	relocatable uint8
	xloadflags  uint16
	kernelAlign uint32
	prefAddress uint64
	initSize    uint32
	kernelSize  int
	syssize     uint32 // 0: derived from kernelSize
}

func defaultBzOpts() bzOpts {
	return bzOpts{
		setupSects: 3, version: 0x020f, loadflags: 0x01, relocatable: 1, xloadflags: 0x1,
		kernelAlign: 0x200000, prefAddress: 0x1000000, initSize: 0x400000, kernelSize: 0x3000,
	}
}

// buildBzImage lays out a bzImage: boot sector with the setup header, the
// rest of the setup sectors, then the protected-mode kernel.
func buildBzImage(o bzOpts) []byte {
	sects := int(o.setupSects)
	if sects == 0 {
		sects = 4
	}
	kernelOff := (sects + 1) * 512
	b := make([]byte, kernelOff+o.kernelSize)
	b[offSetupSects] = o.setupSects
	syssize := o.syssize
	if syssize == 0 {
		syssize = uint32((o.kernelSize + 15) / 16)
	}
	put32(b, offSyssize, syssize)
	put16(b, offBootFlag, 0xaa55)
	b[offJump], b[offJump+1] = 0xeb, setupHeaderEnd-0x202
	copy(b[offHeader:], "HdrS")
	put16(b, offVersion, o.version)
	b[offLoadflags] = o.loadflags
	put32(b, offCode32Start, 0x100000)
	put32(b, offInitrdAddrMax, 0x7fffffff)
	put32(b, offKernelAlignment, o.kernelAlign)
	b[offRelocatable] = o.relocatable
	put16(b, offXloadflags, o.xloadflags)
	put32(b, offCmdlineSize, 0x7ff)
	put64(b, offPrefAddress, o.prefAddress)
	put32(b, offInitSize, o.initSize)
	copy(b[kernelOff:], pattern(o.kernelSize, 0x5a))
	return b
}

func TestLoadBzImagePlacesTheProtectedModeKernelAt1MiB(t *testing.T) {
	o := defaultBzOpts()
	img := buildBzImage(o)
	mem := newFakeMem(64 << 20)
	k, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)), mem.size, false)
	if err != nil {
		t.Fatal(err)
	}
	// (setup_sects + 1) * 512 = 4 * 512.
	if got := mem.bytes(t, 0x100000, o.kernelSize); !bytes.Equal(got, img[4*512:]) {
		t.Error("guest memory at 0x100000 does not hold the file from offset 0x800")
	}
	if k.Format != "bzImage" || k.Protocol != ProtocolLinux64 {
		t.Errorf("format %q protocol %v, want bzImage linux64", k.Format, k.Protocol)
	}
	if k.Entry != 0x100200 {
		t.Errorf("entry %#x, want 0x100200 (64-bit entry = load address + 0x200)", k.Entry)
	}
	// Runtime start = align_up(max(0x100000, pref_address 0x1000000),
	// 0x200000) = 0x1000000, plus init_size 0x400000.
	if k.End != 0x1400000 {
		t.Errorf("End %#x, want 0x1400000", k.End)
	}
	if k.InitrdAddrMax != 0x7fffffff {
		t.Errorf("InitrdAddrMax %#x, want 0x7fffffff", k.InitrdAddrMax)
	}
	if k.Setup == nil || k.Setup.InitSize != 0x400000 || k.Setup.Version != 0x020f {
		t.Errorf("Setup %+v does not carry the header", k.Setup)
	}
	if k.CmdlineMax() != 0x800 {
		t.Errorf("CmdlineMax %d, want cmdline_size 0x7ff + NUL", k.CmdlineMax())
	}
}

func TestLoadBzImageSetupSectsZeroMeansFour(t *testing.T) {
	o := defaultBzOpts()
	o.setupSects = 0
	img := buildBzImage(o)
	mem := newFakeMem(64 << 20)
	if _, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)), mem.size, false); err != nil {
		t.Fatal(err)
	}
	// Kernel at (4 + 1) * 512 = 0xa00 in the file.
	if got := mem.bytes(t, 0x100000, 64); !bytes.Equal(got, img[0xa00:0xa40]) {
		t.Error("setup_sects 0 was not treated as 4")
	}
}

func TestLoadBzImageEndCoversALargeImage(t *testing.T) {
	o := defaultBzOpts()
	o.prefAddress = 0x100000
	o.kernelAlign = 0x1000
	o.initSize = 0x1000
	o.kernelSize = 0x5000
	img := buildBzImage(o)
	mem := newFakeMem(64 << 20)
	k, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)), mem.size, false)
	if err != nil {
		t.Fatal(err)
	}
	// Runtime start is the load address 0x100000 itself; init_size 0x1000
	// is smaller than the 0x5000-byte image, so the image bounds End.
	if k.End != 0x105000 {
		t.Errorf("End %#x, want 0x105000", k.End)
	}
}

func TestLoadBzImageRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		patch  func(*bzOpts)
		cut    int    // bytes to drop from the end of the file
		memEnd uint64 // 0: 64 MiB
		want   string
	}{
		{name: "old protocol", patch: func(o *bzOpts) { o.version = 0x0206 }, want: "bzImage protocol 2.06 is older than 2.12"},
		{name: "no XLF_KERNEL_64", patch: func(o *bzOpts) { o.xloadflags = 0x2 }, want: "XLF_KERNEL_64"},
		{name: "not relocatable", patch: func(o *bzOpts) { o.relocatable = 0 }, want: "not relocatable"},
		{name: "not LOADED_HIGH", patch: func(o *bzOpts) { o.loadflags = 0 }, want: "LOADED_HIGH"},
		{name: "bad alignment", patch: func(o *bzOpts) { o.kernelAlign = 0x300000 }, want: "kernel_alignment"},
		{name: "init_size beyond RAM", patch: func(o *bzOpts) {}, memEnd: 0x13fffff, want: "RAM ends at 0x13fffff"},
		{name: "image beyond RAM", patch: func(o *bzOpts) { o.kernelSize = 0x10000 }, memEnd: 0x108000, want: "RAM ends at 0x108000"},
		{name: "syssize past end", patch: func(o *bzOpts) {}, cut: 0x100, want: "truncated"},
		{name: "no protected-mode kernel", patch: func(o *bzOpts) {}, cut: 0x3000, want: "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultBzOpts()
			tc.patch(&o)
			img := buildBzImage(o)
			img = img[:len(img)-tc.cut]
			memEnd := tc.memEnd
			if memEnd == 0 {
				memEnd = 64 << 20
			}
			_, err := LoadKernel(newFakeMem(64<<20), bytes.NewReader(img), int64(len(img)), memEnd, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadKernelUnknownFormat(t *testing.T) {
	for name, img := range map[string][]byte{
		"zeros":              make([]byte, 0x1000),
		"boot flag, no HdrS": func() []byte { b := make([]byte, 0x1000); put16(b, offBootFlag, 0xaa55); return b }(),
		"HdrS, no boot flag": func() []byte { b := make([]byte, 0x1000); copy(b[offHeader:], "HdrS"); return b }(),
		"tiny":               []byte("MZ"),
	} {
		_, err := LoadKernel(newFakeMem(64<<20), bytes.NewReader(img), int64(len(img)), 64<<20, false)
		if !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("%s: error %v, want ErrUnknownFormat", name, err)
		}
	}
}

func TestLoadKernelShortReader(t *testing.T) {
	img := buildBzImage(defaultBzOpts())
	// The size claims the whole file, the reader has only part of it.
	r := shortReader{b: img, n: len(img) - 0x800}
	_, err := LoadKernel(newFakeMem(64<<20), r, int64(len(img)), 64<<20, false)
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("error %v, want a truncated read", err)
	}
}

const debianBzImage = "/tmp/k/x/boot/vmlinuz-6.1.0-56-cloud-amd64"

func TestRealDebianBzImageHeader(t *testing.T) {
	img, err := os.ReadFile(debianBzImage)
	if err != nil {
		t.Skipf("optional real-kernel test: %s not readable (%v)", debianBzImage, err)
	}
	h, err := ParseSetupHeader(img[:0x400])
	if err != nil {
		t.Fatal(err)
	}
	if h.Version < 0x020c {
		t.Errorf("protocol %#x, want >= 2.12", h.Version)
	}
	if h.RelocatableKernel == 0 {
		t.Error("relocatable_kernel is 0")
	}
	if h.Xloadflags&0x1 == 0 {
		t.Error("XLF_KERNEL_64 is clear")
	}
	if h.Loadflags&0x1 == 0 {
		t.Error("LOADED_HIGH is clear")
	}
	mem := newFakeMem(256 << 20)
	k, err := LoadKernel(mem, bytes.NewReader(img), int64(len(img)), mem.size, true)
	if err != nil {
		t.Fatal(err)
	}
	if k.Entry != 0x100200 || k.Protocol != ProtocolLinux64 {
		t.Errorf("entry %#x protocol %v", k.Entry, k.Protocol)
	}
	kernelOff := (int(h.SetupSects) + 1) * 512
	if got := mem.bytes(t, 0x100000, 4096); !bytes.Equal(got, img[kernelOff:kernelOff+4096]) {
		t.Error("protected-mode kernel not at 0x100000")
	}
	if want := uint64(0x1000000) + uint64(h.InitSize); h.PrefAddress == 0x1000000 && k.End != want {
		t.Errorf("End %#x, want pref_address + init_size = %#x", k.End, want)
	}
}
