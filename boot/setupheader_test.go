package boot

import (
	"bytes"
	"strings"
	"testing"
)

// Setup header offsets from Documentation/arch/x86/boot.rst ("THE REAL-MODE
// KERNEL HEADER") and struct setup_header in bootparam.h.
const (
	offSetupSects        = 0x1f1
	offRootFlags         = 0x1f2
	offSyssize           = 0x1f4
	offRAMSize           = 0x1f8
	offVidMode           = 0x1fa
	offRootDev           = 0x1fc
	offBootFlag          = 0x1fe
	offJump              = 0x200
	offHeader            = 0x202
	offVersion           = 0x206
	offRealmodeSwtch     = 0x208
	offStartSysSeg       = 0x20c
	offKernelVersion     = 0x20e
	offTypeOfLoader      = 0x210
	offLoadflags         = 0x211
	offSetupMoveSize     = 0x212
	offCode32Start       = 0x214
	offRamdiskImage      = 0x218
	offRamdiskSize       = 0x21c
	offBootsectKludge    = 0x220
	offHeapEndPtr        = 0x224
	offExtLoaderVer      = 0x226
	offExtLoaderType     = 0x227
	offCmdLinePtr        = 0x228
	offInitrdAddrMax     = 0x22c
	offKernelAlignment   = 0x230
	offRelocatable       = 0x234
	offMinAlignment      = 0x235
	offXloadflags        = 0x236
	offCmdlineSize       = 0x238
	offHardwareSubarch   = 0x23c
	offHardwareSubarchDt = 0x240
	offPayloadOffset     = 0x248
	offPayloadLength     = 0x24c
	offSetupData         = 0x250
	offPrefAddress       = 0x258
	offInitSize          = 0x260
	offHandoverOffset    = 0x264
	offKernelInfoOffset  = 0x268
	setupHeaderEnd       = 0x26c // 0x268 + 4
)

// headerWithDistinctFields fills every setup header field with a different
// value at its spec offset.
func headerWithDistinctFields() []byte {
	b := make([]byte, 0x400)
	b[offSetupSects] = 0x27
	put16(b, offRootFlags, 0x0102)
	put32(b, offSyssize, 0x000d8220)
	put16(b, offRAMSize, 0x0304)
	put16(b, offVidMode, 0xfffd)
	put16(b, offRootDev, 0x0506)
	put16(b, offBootFlag, 0xaa55)
	b[offJump], b[offJump+1] = 0xeb, setupHeaderEnd-0x202
	copy(b[offHeader:], "HdrS")
	put16(b, offVersion, 0x020f)
	put32(b, offRealmodeSwtch, 0x0708090a)
	put16(b, offStartSysSeg, 0x1000)
	put16(b, offKernelVersion, 0x3ae0)
	b[offTypeOfLoader] = 0x0b
	b[offLoadflags] = 0x01
	put16(b, offSetupMoveSize, 0x8000)
	put32(b, offCode32Start, 0x00100000)
	put32(b, offRamdiskImage, 0x11121314)
	put32(b, offRamdiskSize, 0x15161718)
	put32(b, offBootsectKludge, 0x191a1b1c)
	put16(b, offHeapEndPtr, 0x1d1e)
	b[offExtLoaderVer] = 0x1f
	b[offExtLoaderType] = 0x20
	put32(b, offCmdLinePtr, 0x21222324)
	put32(b, offInitrdAddrMax, 0x7fffffff)
	put32(b, offKernelAlignment, 0x00200000)
	b[offRelocatable] = 1
	b[offMinAlignment] = 21
	put16(b, offXloadflags, 0x007f)
	put32(b, offCmdlineSize, 0x7ff)
	put32(b, offHardwareSubarch, 0x25262728)
	put64(b, offHardwareSubarchDt, 0x292a2b2c2d2e2f30)
	put32(b, offPayloadOffset, 0x2cc)
	put32(b, offPayloadLength, 0xd696cc)
	put64(b, offSetupData, 0x3132333435363738)
	put64(b, offPrefAddress, 0x1000000)
	put32(b, offInitSize, 0x3378000)
	put32(b, offHandoverOffset, 0xd72f10)
	put32(b, offKernelInfoOffset, 0xd7f91c)
	// Bytes after the header belong to setup code.
	b[setupHeaderEnd] = 0xcc
	return b
}

func TestParseSetupHeaderReadsEveryFieldAtItsOffset(t *testing.T) {
	h, err := ParseSetupHeader(headerWithDistinctFields())
	if err != nil {
		t.Fatal(err)
	}
	want := SetupHeader{
		SetupSects: 0x27, RootFlags: 0x0102, Syssize: 0xd8220, RAMSize: 0x0304,
		VidMode: 0xfffd, RootDev: 0x0506, BootFlag: 0xaa55, Jump: 0x6aeb,
		Header: 0x53726448, Version: 0x020f, RealmodeSwtch: 0x0708090a,
		StartSysSeg: 0x1000, KernelVersion: 0x3ae0, TypeOfLoader: 0x0b,
		Loadflags: 0x01, SetupMoveSize: 0x8000, Code32Start: 0x100000,
		RamdiskImage: 0x11121314, RamdiskSize: 0x15161718, BootsectKludge: 0x191a1b1c,
		HeapEndPtr: 0x1d1e, ExtLoaderVer: 0x1f, ExtLoaderType: 0x20,
		CmdLinePtr: 0x21222324, InitrdAddrMax: 0x7fffffff, KernelAlignment: 0x200000,
		RelocatableKernel: 1, MinAlignment: 21, Xloadflags: 0x7f, CmdlineSize: 0x7ff,
		HardwareSubarch: 0x25262728, HardwareSubarchData: 0x292a2b2c2d2e2f30,
		PayloadOffset: 0x2cc, PayloadLength: 0xd696cc, SetupData: 0x3132333435363738,
		PrefAddress: 0x1000000, InitSize: 0x3378000, HandoverOffset: 0xd72f10,
		KernelInfoOffset: 0xd7f91c,
	}
	if *h != want {
		t.Errorf("parsed header\n got %+v\nwant %+v", *h, want)
	}
}

func TestSetupHeaderMarshalReproducesTheFileBytes(t *testing.T) {
	img := headerWithDistinctFields()
	h, err := ParseSetupHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	got := h.Marshal()
	if len(got) != setupHeaderEnd-offSetupSects {
		t.Fatalf("Marshal returned %d bytes, want %d (0x1f1..0x26c)", len(got), setupHeaderEnd-offSetupSects)
	}
	if !bytes.Equal(got, img[offSetupSects:setupHeaderEnd]) {
		t.Errorf("Marshal\n got % x\nwant % x", got, img[offSetupSects:setupHeaderEnd])
	}
}

func TestParseSetupHeaderStopsAtTheJumpEnd(t *testing.T) {
	img := headerWithDistinctFields()
	// A protocol 2.09 header ends after setup_data, at 0x258; whatever
	// follows is setup code, not pref_address or init_size.
	img[offJump+1] = 0x258 - 0x202
	h, err := ParseSetupHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	if h.PrefAddress != 0 || h.InitSize != 0 || h.HandoverOffset != 0 || h.KernelInfoOffset != 0 {
		t.Errorf("fields past the header end were read: pref_address %#x init_size %#x handover %#x kernel_info %#x",
			h.PrefAddress, h.InitSize, h.HandoverOffset, h.KernelInfoOffset)
	}
	if h.SetupData != 0x3132333435363738 {
		t.Errorf("setup_data (inside the header) = %#x", h.SetupData)
	}
}

func TestParseSetupHeaderRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		patch func([]byte) []byte
		want  string
	}{
		{"bad boot flag", func(b []byte) []byte { put16(b, offBootFlag, 0x55aa); return b }, "boot_flag"},
		{"bad header magic", func(b []byte) []byte { copy(b[offHeader:], "HdrZ"); return b }, "HdrS"},
		{"too short", func(b []byte) []byte { return b[:0x200] }, "too short"},
		{"header past buffer", func(b []byte) []byte { return b[:0x240] }, "past"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSetupHeader(tc.patch(headerWithDistinctFields()))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
