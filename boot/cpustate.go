package boot

import (
	"encoding/binary"
	"fmt"
)

// Segment is a segment register as the VMM hands it to KVM (the fields of
// struct kvm_segment). Limit is the byte limit, already scaled by G.
type Segment struct {
	Base                                 uint64
	Limit                                uint32
	Selector                             uint16
	Type, Present, DPL, DB, S, L, G, AVL uint8
}

// DescriptorTable is a GDTR/IDTR value.
type DescriptorTable struct {
	Base  uint64
	Limit uint16
}

// CPUState is the register state the boot vCPU starts with.
type CPUState struct {
	RIP, RSP, RBP, RSI, RBX, RFLAGS uint64
	CR0, CR3, CR4, EFER             uint64
	CS, DS, ES, FS, GS, SS, TR, LDT Segment
	GDT, IDT                        DescriptorTable
}

// Control register and EFER bits.
const (
	CR0PE   = 1 << 0
	CR0ET   = 1 << 4
	CR0NE   = 1 << 5
	CR0PG   = 1 << 31
	CR4PAE  = 1 << 5
	EFERLME = 1 << 8
	EFERLMA = 1 << 10

	// rflagsReserved is bit 1 of RFLAGS, which always reads as 1.
	rflagsReserved = 1 << 1
)

// The boot GDT at GDTAddr. Its selectors follow the kernel's own early GDT
// (arch/x86/boot/compressed/head_64.S) and boot.rst's __BOOT_CS = 0x10 /
// __BOOT_DS = 0x18: 0x08 is a flat 32-bit code segment (the PVH entry's
// CS), 0x10 the 64-bit code segment, 0x18 flat read/write data. The table
// has four entries because IDTAddr follows 32 bytes later; there is no TSS
// descriptor (see bootTR).
const (
	SelectorCode32 = 0x08
	SelectorCode64 = 0x10
	SelectorData   = 0x18
	gdtEntries     = 4

	// Descriptor values: base 0, limit 0xfffff in 4 KiB pages, present,
	// DPL 0, code/data, with the accessed bit already set (VMX requires it
	// of the loaded segments, and the descriptor matches what is loaded).
	gdtCode32 = 0x00cf9b000000ffff // type 0xb execute/read, D=1, G=1
	gdtCode64 = 0x00af9b000000ffff // type 0xb execute/read, L=1, D=0, G=1
	gdtData   = 0x00cf93000000ffff // type 0x3 read/write, B=1, G=1

	// idtLimit describes a single zeroed 8-byte slot: any exception before
	// the kernel loads its own IDT shuts the vCPU down, which is visible.
	idtLimit = 7
)

// Identity page tables: one PML4 page, one PDPT page and pdPages PD pages
// at PDAddr, PDAddr+0x1000, ... each mapping 1 GiB with 2 MiB pages. The
// four PD pages occupy 0xb000-0xefff, which layout.go leaves free.
const (
	pdPages = 4
	// IdentityMapSize is how much of guest physical memory the boot page
	// tables map 1:1.
	IdentityMapSize = pdPages << 30
	// PageTablesEnd is the first byte above the boot page tables.
	PageTablesEnd = PDAddr + pdPages*pageSize

	ptePresent  = 1 << 0
	pteWritable = 1 << 1
	ptePageSize = 1 << 7 // 2 MiB page in a PD entry
)

// segmentFromDescriptor expands a GDT descriptor into the loaded segment
// state, as the CPU would on a selector load.
func segmentFromDescriptor(sel uint16, d uint64) Segment {
	limit := uint32(d&0xffff | (d>>48&0xf)<<16)
	g := uint8(d >> 55 & 1)
	if g == 1 {
		limit = limit<<12 | 0xfff
	}
	return Segment{
		Base:     d>>16&0xffffff | (d>>56&0xff)<<24,
		Limit:    limit,
		Selector: sel,
		Type:     uint8(d >> 40 & 0xf),
		S:        uint8(d >> 44 & 1),
		DPL:      uint8(d >> 45 & 3),
		Present:  uint8(d >> 47 & 1),
		AVL:      uint8(d >> 52 & 1),
		L:        uint8(d >> 53 & 1),
		DB:       uint8(d >> 54 & 1),
		G:        g,
	}
}

// bootTR is the task register: a busy TSS (type 11, which VMX requires in
// both 32-bit and long mode) with base 0 and limit 0x67, as the PVH ABI
// specifies. Nothing loads it from the GDT before the kernel runs its own
// LTR, so the selector stays the null one, as at CPU reset.
var bootTR = Segment{Limit: 0x67, Type: 11, Present: 1}

// bootLDT is the LDTR state at CPU reset: no LDT in use.
var bootLDT = Segment{Limit: 0xffff, Type: 2, Present: 1}

// writeGDT writes the boot GDT and a zeroed IDT slot.
func writeGDT(mem GuestMemory) error {
	b := make([]byte, gdtEntries*8)
	binary.LittleEndian.PutUint64(b[SelectorCode32:], gdtCode32)
	binary.LittleEndian.PutUint64(b[SelectorCode64:], gdtCode64)
	binary.LittleEndian.PutUint64(b[SelectorData:], gdtData)
	if err := writeGuest(mem, GDTAddr, b); err != nil {
		return fmt.Errorf("write GDT: %w", err)
	}
	if err := writeGuest(mem, IDTAddr, make([]byte, idtLimit+1)); err != nil {
		return fmt.Errorf("write IDT: %w", err)
	}
	return nil
}

// writePageTables writes 1:1 page tables for the first IdentityMapSize
// bytes using 2 MiB pages.
func writePageTables(mem GuestMemory) error {
	le := binary.LittleEndian
	pml4 := make([]byte, pageSize)
	le.PutUint64(pml4, PDPTAddr|ptePresent|pteWritable)
	pdpt := make([]byte, pageSize)
	for i := range pdPages {
		le.PutUint64(pdpt[i*8:], uint64(PDAddr+i*pageSize)|ptePresent|pteWritable)
	}
	pd := make([]byte, pdPages*pageSize)
	for i := range pdPages * 512 {
		le.PutUint64(pd[i*8:], uint64(i)<<21|ptePresent|pteWritable|ptePageSize)
	}
	for _, t := range []struct {
		addr uint64
		b    []byte
	}{{PML4Addr, pml4}, {PDPTAddr, pdpt}, {PDAddr, pd}} {
		if err := writeGuest(mem, t.addr, t.b); err != nil {
			return fmt.Errorf("write page tables: %w", err)
		}
	}
	return nil
}

func bootTables() (gdt, idt DescriptorTable) {
	return DescriptorTable{Base: GDTAddr, Limit: gdtEntries*8 - 1},
		DescriptorTable{Base: IDTAddr, Limit: idtLimit}
}

// SetupLongMode writes the boot GDT, a zero IDT and identity page tables
// for the first 4 GiB, and returns the state the 64-bit boot protocol
// asks for: long mode with paging, CS = __BOOT_CS (0x10), the data
// segments = __BOOT_DS (0x18), interrupts off, RSI = the zero page.
func SetupLongMode(mem GuestMemory, entry uint64) (CPUState, error) {
	if entry >= IdentityMapSize {
		return CPUState{}, fmt.Errorf("64-bit entry %#x is outside the %#x bytes the boot page tables map", entry, uint64(IdentityMapSize))
	}
	if err := writeGDT(mem); err != nil {
		return CPUState{}, err
	}
	if err := writePageTables(mem); err != nil {
		return CPUState{}, err
	}
	gdt, idt := bootTables()
	data := segmentFromDescriptor(SelectorData, gdtData)
	return CPUState{
		RIP:    entry,
		RSP:    BootStackAddr,
		RBP:    BootStackAddr,
		RSI:    ZeroPageAddr,
		RFLAGS: rflagsReserved,
		CR0:    CR0PE | CR0ET | CR0NE | CR0PG,
		CR3:    PML4Addr,
		CR4:    CR4PAE,
		EFER:   EFERLME | EFERLMA,
		CS:     segmentFromDescriptor(SelectorCode64, gdtCode64),
		DS:     data, ES: data, FS: data, GS: data, SS: data,
		TR:  bootTR,
		LDT: bootLDT,
		GDT: gdt,
		IDT: idt,
	}, nil
}

// SetupPVH writes the boot GDT and a zero IDT and returns the state the
// PVH ABI asks for: 32-bit flat protected mode with paging off (CR0 = PE,
// CR4 = 0, EFER = 0), CS = the 32-bit code segment 0x08, DS/ES/FS/GS/SS =
// flat data 0x18, TR a 32-bit busy TSS with base 0 and limit 0x67,
// interrupts off, EBX = the hvm_start_info address. The kernel sets up its
// own stack, so RSP is left 0.
func SetupPVH(mem GuestMemory, entry, startInfo uint64) (CPUState, error) {
	if entry >= 1<<32 || startInfo >= 1<<32 {
		return CPUState{}, fmt.Errorf("PVH entry %#x and start info %#x must be below 4 GiB", entry, startInfo)
	}
	if err := writeGDT(mem); err != nil {
		return CPUState{}, err
	}
	gdt, idt := bootTables()
	data := segmentFromDescriptor(SelectorData, gdtData)
	return CPUState{
		RIP:    entry,
		RBX:    startInfo,
		RFLAGS: rflagsReserved,
		CR0:    CR0PE,
		CS:     segmentFromDescriptor(SelectorCode32, gdtCode32),
		DS:     data, ES: data, FS: data, GS: data, SS: data,
		TR:  bootTR,
		LDT: bootLDT,
		GDT: gdt,
		IDT: idt,
	}, nil
}
