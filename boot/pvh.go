package boot

import (
	"encoding/binary"
	"fmt"
)

// struct hvm_start_info and friends (include/xen/interface/hvm/start_info.h).
const (
	PVHStartMagic   = 0x336ec578 // XEN_HVM_START_MAGIC_VALUE
	pvhStartVersion = 1          // the version with memmap_paddr/memmap_entries
	pvhStartInfoLen = 56
	// PVHModlistAddr holds the one hvm_modlist_entry describing the initrd:
	// in the gap between the 56-byte start info and the memory map.
	PVHModlistAddr  = PVHStartInfo + 0x40
	pvhModEntrySize = 32
	pvhMemmapEntLen = 24
	// MaxPVHMemmap is how many memory map entries this loader passes,
	// matching the zero page's limit (they fit below ZeroPageAddr).
	MaxPVHMemmap = 128

	siMagic         = 0
	siVersion       = 4
	siFlags         = 8
	siNrModules     = 12
	siModlistPaddr  = 16
	siCmdlinePaddr  = 24
	siRsdpPaddr     = 32
	siMemmapPaddr   = 40
	siMemmapEntries = 48
)

// WritePVHStartInfo builds struct hvm_start_info at PVHStartInfo, the
// initrd's module entry at PVHModlistAddr and the memory map at
// PVHMemmapAddr, and returns the start info's address (for EBX). The
// command line must already be at CmdlineAddr (WriteCmdline).
func WritePVHStartInfo(mem GuestMemory, p BootParams) (uint64, error) {
	if len(p.E820) > MaxPVHMemmap {
		return 0, fmt.Errorf("memory map has %d entries, the PVH start info area holds %d", len(p.E820), MaxPVHMemmap)
	}
	le := binary.LittleEndian
	// One buffer from the start info to the end of the memory map, so the
	// gaps are zeroed too.
	area := make([]byte, PVHMemmapAddr-PVHStartInfo+len(p.E820)*pvhMemmapEntLen)
	si := area[:pvhStartInfoLen]
	le.PutUint32(si[siMagic:], PVHStartMagic)
	le.PutUint32(si[siVersion:], pvhStartVersion)
	le.PutUint32(si[siFlags:], 0)
	le.PutUint64(si[siCmdlinePaddr:], CmdlineAddr)
	le.PutUint64(si[siRsdpPaddr:], p.RSDPAddr)
	if p.InitrdSize > 0 {
		le.PutUint32(si[siNrModules:], 1)
		le.PutUint64(si[siModlistPaddr:], PVHModlistAddr)
		mod := area[PVHModlistAddr-PVHStartInfo:][:pvhModEntrySize]
		le.PutUint64(mod[0:], p.InitrdAddr)
		le.PutUint64(mod[8:], p.InitrdSize)
		// cmdline_paddr and reserved stay 0: the module has no command line.
	}
	if len(p.E820) > 0 {
		le.PutUint64(si[siMemmapPaddr:], PVHMemmapAddr)
		le.PutUint32(si[siMemmapEntries:], uint32(len(p.E820)))
		for i, e := range p.E820 {
			b := area[PVHMemmapAddr-PVHStartInfo+i*pvhMemmapEntLen:]
			le.PutUint64(b[0:], e.Addr)
			le.PutUint64(b[8:], e.Size)
			le.PutUint32(b[16:], e.Type)
		}
	}
	if err := writeGuest(mem, PVHStartInfo, area); err != nil {
		return 0, fmt.Errorf("write PVH start info: %w", err)
	}
	return PVHStartInfo, nil
}
