package boot

import (
	"encoding/binary"
	"fmt"
)

// Offsets and magic values of the x86 boot protocol
// (Documentation/arch/x86/boot.rst, arch/x86/include/uapi/asm/bootparam.h).
const (
	// SetupHeaderOffset is where struct setup_header starts, both in a
	// bzImage file and in struct boot_params.
	SetupHeaderOffset = 0x1f1
	// SetupHeaderSize is sizeof(struct setup_header) up to and including
	// kernel_info_offset (protocol 2.15).
	SetupHeaderSize = 0x7b

	BootFlagMagic  = 0xaa55     // boot_flag at 0x1fe
	HeaderMagic    = 0x53726448 // "HdrS" at 0x202, little endian
	bootFlagOffset = 0x1fe
	jumpOffset     = 0x200
	headerOffset   = 0x202

	// loadflags bits.
	LoadedHigh = 1 << 0
	KASLRFlag  = 1 << 1
	QuietFlag  = 1 << 5
	CanUseHeap = 1 << 7

	// xloadflags bits.
	XLFKernel64           = 1 << 0
	XLFCanBeLoadedAbove4G = 1 << 1

	// TypeOfLoaderUndefined is the type_of_loader value for a boot loader
	// with no assigned ID.
	TypeOfLoaderUndefined = 0xff
)

// SetupHeader mirrors struct setup_header field by field. Its encoding
// (Marshal, ParseSetupHeader) is packed little endian, exactly as the header
// sits at offset 0x1f1 of a bzImage and of the zero page.
type SetupHeader struct {
	SetupSects          uint8  // 0x1f1
	RootFlags           uint16 // 0x1f2
	Syssize             uint32 // 0x1f4
	RAMSize             uint16 // 0x1f8
	VidMode             uint16 // 0x1fa
	RootDev             uint16 // 0x1fc
	BootFlag            uint16 // 0x1fe
	Jump                uint16 // 0x200
	Header              uint32 // 0x202
	Version             uint16 // 0x206
	RealmodeSwtch       uint32 // 0x208
	StartSysSeg         uint16 // 0x20c
	KernelVersion       uint16 // 0x20e
	TypeOfLoader        uint8  // 0x210
	Loadflags           uint8  // 0x211
	SetupMoveSize       uint16 // 0x212
	Code32Start         uint32 // 0x214
	RamdiskImage        uint32 // 0x218
	RamdiskSize         uint32 // 0x21c
	BootsectKludge      uint32 // 0x220
	HeapEndPtr          uint16 // 0x224
	ExtLoaderVer        uint8  // 0x226
	ExtLoaderType       uint8  // 0x227
	CmdLinePtr          uint32 // 0x228
	InitrdAddrMax       uint32 // 0x22c
	KernelAlignment     uint32 // 0x230
	RelocatableKernel   uint8  // 0x234
	MinAlignment        uint8  // 0x235
	Xloadflags          uint16 // 0x236
	CmdlineSize         uint32 // 0x238
	HardwareSubarch     uint32 // 0x23c
	HardwareSubarchData uint64 // 0x240
	PayloadOffset       uint32 // 0x248
	PayloadLength       uint32 // 0x24c
	SetupData           uint64 // 0x250
	PrefAddress         uint64 // 0x258
	InitSize            uint32 // 0x260
	HandoverOffset      uint32 // 0x264
	KernelInfoOffset    uint32 // 0x268
}

// Marshal encodes the header as the SetupHeaderSize bytes that belong at
// offset 0x1f1 of the zero page.
func (h *SetupHeader) Marshal() []byte {
	b, err := binary.Append(make([]byte, 0, SetupHeaderSize), binary.LittleEndian, h)
	if err != nil || len(b) != SetupHeaderSize {
		// Only reachable if the struct above stops being fixed-size.
		panic(fmt.Sprintf("boot: SetupHeader encodes to %d bytes: %v", len(b), err))
	}
	return b
}

// ParseSetupHeader decodes the setup header from the start of a bzImage
// (image holds the file from offset 0, at least through the header). It
// checks boot_flag and the "HdrS" magic. Per the boot protocol the header
// ends at 0x202 + the byte at 0x201 (the jump offset); bytes past that end
// belong to setup code rather than the header, so the fields they would
// fill are left zero.
func ParseSetupHeader(image []byte) (*SetupHeader, error) {
	if len(image) < headerOffset+4 {
		return nil, fmt.Errorf("bzImage is %d bytes, too short for a setup header", len(image))
	}
	if f := binary.LittleEndian.Uint16(image[bootFlagOffset:]); f != BootFlagMagic {
		return nil, fmt.Errorf("bzImage boot_flag is %#x, want %#x", f, BootFlagMagic)
	}
	if m := binary.LittleEndian.Uint32(image[headerOffset:]); m != HeaderMagic {
		return nil, fmt.Errorf("bzImage header magic is %#x, want %#x (\"HdrS\")", m, HeaderMagic)
	}
	end := jumpOffset + 2 + int(image[jumpOffset+1])
	if end > len(image) {
		return nil, fmt.Errorf("bzImage setup header ends at %#x, past the %d bytes read", end, len(image))
	}
	raw := make([]byte, SetupHeaderSize)
	copy(raw, image[SetupHeaderOffset:min(end, SetupHeaderOffset+SetupHeaderSize)])
	var h SetupHeader
	if _, err := binary.Decode(raw, binary.LittleEndian, &h); err != nil {
		return nil, fmt.Errorf("decode setup header: %w", err)
	}
	return &h, nil
}

// protocolString formats a boot protocol version as boot.rst writes it.
func protocolString(v uint16) string { return fmt.Sprintf("%d.%02d", v>>8, v&0xff) }
