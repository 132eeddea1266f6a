package boot

import (
	"encoding/binary"
	"fmt"
)

// Offsets into struct boot_params (arch/x86/include/uapi/asm/bootparam.h).
const (
	ZeroPageSize       = 0x1000
	bpAcpiRsdpAddr     = 0x070
	bpExtRamdiskImage  = 0x0c0
	bpExtRamdiskSize   = 0x0c4
	bpExtCmdLinePtr    = 0x0c8
	bpE820Entries      = 0x1e8
	bpE820Table        = 0x2d0
	e820EntrySize      = 20 // struct boot_e820_entry, packed
	MaxZeroPageE820    = 128
	elfKernelAlignment = 0x1000000
	bzImageHeapEndPtr  = 0xfe00
)

// BootParams is what the zero page and the PVH start info tell the kernel
// beyond its own header.
type BootParams struct {
	Cmdline    string // as written by WriteCmdline at CmdlineAddr
	InitrdAddr uint64 // 0 / 0 for no initrd
	InitrdSize uint64
	E820       []E820Entry
	RSDPAddr   uint64 // 0 if there are no ACPI tables
}

// WriteZeroPage builds struct boot_params at ZeroPageAddr for the 64-bit
// entry. For a bzImage it starts from the image's own setup header (the
// decompressor reads kernel_alignment and init_size from here); for an ELF
// vmlinux, from a minimal header naming a 16 MiB kernel_alignment. The
// command line must already be at CmdlineAddr (WriteCmdline).
//
// heap_end_ptr and CAN_USE_HEAP are set for bzImage as boot.rst asks of any
// loader, for a heap ending at the top of a 64 KiB setup segment; they are
// inert here because the real-mode setup code never runs.
func WriteZeroPage(mem GuestMemory, k *Kernel, p BootParams) error {
	if k == nil {
		return fmt.Errorf("write zero page: no kernel")
	}
	if len(p.E820) > MaxZeroPageE820 {
		return fmt.Errorf("e820 map has %d entries, the zero page holds %d", len(p.E820), MaxZeroPageE820)
	}
	var h SetupHeader
	switch k.Format {
	case FormatBzImage:
		if k.Setup == nil {
			return fmt.Errorf("write zero page: bzImage kernel without a setup header")
		}
		h = *k.Setup
		h.Loadflags |= LoadedHigh | CanUseHeap
		h.HeapEndPtr = bzImageHeapEndPtr
	case FormatELF:
		h = SetupHeader{
			BootFlag:        BootFlagMagic,
			Header:          HeaderMagic,
			KernelAlignment: elfKernelAlignment,
			Loadflags:       LoadedHigh,
			CmdlineSize:     uint32(len(p.Cmdline)),
		}
	default:
		return fmt.Errorf("write zero page: unknown kernel format %q", k.Format)
	}
	h.TypeOfLoader = TypeOfLoaderUndefined
	h.CmdLinePtr = uint32(CmdlineAddr)
	h.RamdiskImage = uint32(p.InitrdAddr)
	h.RamdiskSize = uint32(p.InitrdSize)

	zp := make([]byte, ZeroPageSize)
	copy(zp[SetupHeaderOffset:], h.Marshal())
	le := binary.LittleEndian
	le.PutUint64(zp[bpAcpiRsdpAddr:], p.RSDPAddr)
	le.PutUint32(zp[bpExtRamdiskImage:], uint32(p.InitrdAddr>>32))
	le.PutUint32(zp[bpExtRamdiskSize:], uint32(p.InitrdSize>>32))
	le.PutUint32(zp[bpExtCmdLinePtr:], uint32(uint64(CmdlineAddr)>>32))
	zp[bpE820Entries] = uint8(len(p.E820))
	for i, e := range p.E820 {
		b := zp[bpE820Table+i*e820EntrySize:]
		le.PutUint64(b[0:], e.Addr)
		le.PutUint64(b[8:], e.Size)
		le.PutUint32(b[16:], e.Type)
	}
	if err := writeGuest(mem, ZeroPageAddr, zp); err != nil {
		return fmt.Errorf("write zero page: %w", err)
	}
	return nil
}
