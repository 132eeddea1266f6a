package boot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Protocol says how the boot vCPU enters the kernel.
type Protocol int

const (
	// ProtocolLinux64 is the 64-bit boot protocol: long mode with identity
	// page tables, RSI pointing at the zero page.
	ProtocolLinux64 Protocol = iota
	// ProtocolPVH is the Xen PVH entry: 32-bit flat protected mode, paging
	// off, EBX pointing at struct hvm_start_info.
	ProtocolPVH
)

func (p Protocol) String() string {
	switch p {
	case ProtocolLinux64:
		return "linux64"
	case ProtocolPVH:
		return "pvh"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

// Kernel formats.
const (
	FormatELF     = "elf"
	FormatBzImage = "bzImage"
)

// DefaultInitrdAddrMax is the initrd ceiling for kernels whose image does
// not state one (ELF vmlinux): the value boot.rst gives for old protocols.
const DefaultInitrdAddrMax = 0x37ffffff

// elfCommandLineSize is COMMAND_LINE_SIZE on x86: a vmlinux has no header
// that advertises its limit, and it truncates anything longer.
const elfCommandLineSize = 2048

// Kernel describes a kernel loaded into guest memory.
type Kernel struct {
	Format   string   // FormatELF or FormatBzImage
	Protocol Protocol // how to enter it
	Entry    uint64   // guest physical entry point for Protocol
	// PVHEntry is the XEN_ELFNOTE_PHYS32_ENTRY address of an ELF kernel,
	// 0 when it has none (always 0 for bzImage).
	PVHEntry uint64
	// Setup is the parsed setup header of a bzImage (nil for ELF); it is
	// copied into the zero page.
	Setup *SetupHeader
	// End is the first guest physical address above everything the kernel
	// needs: its segments including bss for ELF; for bzImage the larger of
	// the loaded image and the decompression buffer (init_size bytes at
	// the runtime start address boot.rst defines).
	End uint64
	// InitrdAddrMax is the highest address the initrd may end at
	// (inclusive, as the header's initrd_addr_max).
	InitrdAddrMax uint64
}

// CmdlineMax is the largest command line this kernel accepts, in bytes
// including the terminating NUL, bounded by the CmdlineMaxSize area.
func (k *Kernel) CmdlineMax() int {
	limit := uint64(elfCommandLineSize)
	if k.Setup != nil {
		limit = uint64(k.Setup.CmdlineSize) + 1
	}
	return int(min(limit, CmdlineMaxSize))
}

// ErrUnknownFormat is returned by LoadKernel for an image that is neither an
// ELF file nor a bzImage.
var ErrUnknownFormat = errors.New("kernel image is neither an ELF vmlinux nor a bzImage")

// probeSize is how much of the image format detection and the bzImage
// header parser look at: the boot sector plus the longest setup header.
const probeSize = 0x400

// LoadKernel detects the image's format (ELF magic, or a bzImage's
// 0xAA55 boot flag at 0x1fe and "HdrS" at 0x202), validates it, and copies
// it into mem. memEnd is the end of low RAM (min(memory size,
// MMIOHoleStart)); an image that does not fit below it is an error. With
// preferPVH, an ELF kernel carrying a PVH note is entered through it;
// otherwise (and for bzImage, which has no PVH entry) the 64-bit entry is
// used.
func LoadKernel(mem GuestMemory, image io.ReaderAt, imageSize int64, memEnd uint64, preferPVH bool) (*Kernel, error) {
	format, probe, err := detectFormat(image, imageSize)
	if err != nil {
		return nil, err
	}
	if format == FormatELF {
		return loadELF(mem, image, imageSize, memEnd, preferPVH)
	}
	return loadBzImage(mem, image, imageSize, probe, memEnd)
}

// DetectFormat tells FormatELF from FormatBzImage by the image's magic
// numbers alone, so a wrong file can be refused before anything is set up.
func DetectFormat(image io.ReaderAt, imageSize int64) (string, error) {
	format, _, err := detectFormat(image, imageSize)
	return format, err
}

func detectFormat(image io.ReaderAt, imageSize int64) (string, []byte, error) {
	if imageSize <= 0 {
		return "", nil, fmt.Errorf("kernel image is empty (size %d)", imageSize)
	}
	probe := make([]byte, min(imageSize, probeSize))
	if err := readFull(image, probe, 0); err != nil {
		return "", nil, fmt.Errorf("read kernel image header: %w", err)
	}
	switch {
	case bytes.HasPrefix(probe, []byte("\x7fELF")):
		return FormatELF, probe, nil
	case isBzImage(probe):
		return FormatBzImage, probe, nil
	}
	return "", nil, ErrUnknownFormat
}

func isBzImage(probe []byte) bool {
	return len(probe) >= headerOffset+4 &&
		probe[bootFlagOffset] == 0x55 && probe[bootFlagOffset+1] == 0xaa &&
		string(probe[headerOffset:headerOffset+4]) == "HdrS"
}
