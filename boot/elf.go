package boot

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

const (
	// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY: the physical
	// address of the 32-bit PVH entry point.
	xenElfnotePhys32Entry = 18
	// kernelVirtualBase is where x86-64 kernel text addresses start
	// (__START_KERNEL_map); an entry at or above it is virtual.
	kernelVirtualBase = 0xffffffff80000000
	// maxNoteSegment bounds how much of a PT_NOTE segment is read.
	maxNoteSegment = 1 << 20
)

// elfSegment is a PT_LOAD segment after validation.
type elfSegment struct {
	vaddr, paddr, off, filesz, memsz uint64
}

// loadELF loads a 64-bit x86-64 ET_EXEC image at its physical addresses.
func loadELF(mem GuestMemory, image io.ReaderAt, imageSize int64, memEnd uint64, preferPVH bool) (*Kernel, error) {
	f, err := elf.NewFile(io.NewSectionReader(image, 0, imageSize))
	if err != nil {
		return nil, fmt.Errorf("parse ELF kernel: %w", err)
	}
	if f.Class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("ELF kernel is %v, want ELFCLASS64", f.Class)
	}
	if f.Data != elf.ELFDATA2LSB {
		return nil, fmt.Errorf("ELF kernel is %v, want little endian", f.Data)
	}
	if f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("ELF kernel machine is %v, want EM_X86_64", f.Machine)
	}
	if f.Type != elf.ET_EXEC {
		return nil, fmt.Errorf("ELF kernel type is %v, want ET_EXEC", f.Type)
	}

	var segs []elfSegment
	var end uint64
	var pvhEntry uint64
	for i, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			s, err := checkSegment(i, p, imageSize, memEnd)
			if err != nil {
				return nil, err
			}
			if s.memsz == 0 {
				continue
			}
			segs = append(segs, s)
			end = max(end, s.paddr+s.memsz)
		case elf.PT_NOTE:
			addr, err := findPVHNote(i, p, image, imageSize)
			if err != nil {
				return nil, err
			}
			if addr != 0 {
				pvhEntry = addr
			}
		}
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("ELF kernel has no loadable segment")
	}

	entry, err := physicalEntry(f.Entry, segs)
	if err != nil {
		return nil, err
	}
	k := &Kernel{
		Format:        FormatELF,
		Protocol:      ProtocolLinux64,
		Entry:         entry,
		End:           end,
		InitrdAddrMax: DefaultInitrdAddrMax,
	}
	if pvhEntry != 0 {
		if !insideSegment(pvhEntry, segs) || pvhEntry >= 1<<32 {
			return nil, fmt.Errorf("ELF kernel PVH entry %#x is not in a loaded segment below 4 GiB", pvhEntry)
		}
		k.PVHEntry = pvhEntry
		if preferPVH {
			k.Protocol = ProtocolPVH
			k.Entry = pvhEntry
		}
	}

	for _, s := range segs {
		if err := copyToGuest(mem, s.paddr, image, int64(s.off), int64(s.filesz)); err != nil {
			return nil, fmt.Errorf("load ELF segment at %#x: %w", s.paddr, err)
		}
		if err := zeroGuest(mem, s.paddr+s.filesz, s.memsz-s.filesz); err != nil {
			return nil, fmt.Errorf("clear ELF segment bss at %#x: %w", s.paddr+s.filesz, err)
		}
	}
	return k, nil
}

// checkSegment validates one PT_LOAD program header against the file and
// the RAM the kernel may occupy: [HighMemStart, memEnd).
func checkSegment(i int, p *elf.Prog, imageSize int64, memEnd uint64) (elfSegment, error) {
	s := elfSegment{vaddr: p.Vaddr, paddr: p.Paddr, off: p.Off, filesz: p.Filesz, memsz: p.Memsz}
	if s.filesz > s.memsz {
		return s, fmt.Errorf("ELF segment %d: file size %#x exceeds memory size %#x", i, s.filesz, s.memsz)
	}
	if s.off > uint64(imageSize) || s.filesz > uint64(imageSize)-s.off {
		return s, fmt.Errorf("ELF segment %d: file bytes [%#x, +%#x) run past the %d-byte image (truncated?)", i, s.off, s.filesz, imageSize)
	}
	if s.paddr+s.memsz < s.paddr {
		return s, fmt.Errorf("ELF segment %d: address %#x + size %#x overflows", i, s.paddr, s.memsz)
	}
	if s.memsz == 0 {
		return s, nil
	}
	if s.paddr < HighMemStart {
		return s, fmt.Errorf("ELF segment %d at %#x is below %#x, in the boot area", i, s.paddr, HighMemStart)
	}
	if s.paddr+s.memsz > memEnd {
		return s, fmt.Errorf("ELF segment %d [%#x, %#x) does not fit in RAM ending at %#x", i, s.paddr, s.paddr+s.memsz, memEnd)
	}
	return s, nil
}

// physicalEntry turns e_entry into a guest physical address. A vmlinux
// links its entry at a physical address already; a virtual one is
// translated through the segment that contains it.
func physicalEntry(entry uint64, segs []elfSegment) (uint64, error) {
	if entry < kernelVirtualBase {
		if !insideSegment(entry, segs) {
			return 0, fmt.Errorf("ELF entry %#x is not in a loaded segment", entry)
		}
		return entry, nil
	}
	for _, s := range segs {
		if entry >= s.vaddr && entry-s.vaddr < s.memsz {
			return s.paddr + (entry - s.vaddr), nil
		}
	}
	return 0, fmt.Errorf("ELF entry %#x (virtual) is not in any loaded segment", entry)
}

func insideSegment(addr uint64, segs []elfSegment) bool {
	for _, s := range segs {
		if addr >= s.paddr && addr-s.paddr < s.memsz {
			return true
		}
	}
	return false
}

// findPVHNote scans one PT_NOTE segment for the Xen PHYS32_ENTRY note and
// returns its address, or 0 if the segment has none.
func findPVHNote(i int, p *elf.Prog, image io.ReaderAt, imageSize int64) (uint64, error) {
	if p.Off > uint64(imageSize) || p.Filesz > uint64(imageSize)-p.Off {
		return 0, fmt.Errorf("ELF note segment %d: [%#x, +%#x) runs past the %d-byte image (truncated?)", i, p.Off, p.Filesz, imageSize)
	}
	if p.Filesz > maxNoteSegment {
		return 0, fmt.Errorf("ELF note segment %d is %d bytes, more than the %d this loader reads", i, p.Filesz, maxNoteSegment)
	}
	buf := make([]byte, p.Filesz)
	if err := readFull(image, buf, int64(p.Off)); err != nil {
		return 0, fmt.Errorf("read ELF note segment %d: %w", i, err)
	}
	// Linux emits its notes 4-byte aligned; honour 8 where the segment
	// says so.
	align := uint64(4)
	if p.Align == 8 {
		align = 8
	}
	for b := buf; len(b) > 0; {
		if len(b) < 12 {
			return 0, fmt.Errorf("ELF note segment %d: %d trailing bytes, too few for a note header", i, len(b))
		}
		namesz := uint64(binary.LittleEndian.Uint32(b[0:]))
		descsz := uint64(binary.LittleEndian.Uint32(b[4:]))
		typ := binary.LittleEndian.Uint32(b[8:])
		nameEnd, _ := alignUp(12+namesz, align)
		descEnd, _ := alignUp(nameEnd+descsz, align)
		if nameEnd+descsz > uint64(len(b)) {
			return 0, fmt.Errorf("ELF note segment %d: note (name %d, desc %d bytes) runs past the segment", i, namesz, descsz)
		}
		name := b[12 : 12+namesz]
		desc := b[nameEnd : nameEnd+descsz]
		if typ == xenElfnotePhys32Entry && strings.TrimRight(string(name), "\x00") == "Xen" {
			switch descsz {
			case 4:
				return uint64(binary.LittleEndian.Uint32(desc)), nil
			case 8:
				return binary.LittleEndian.Uint64(desc), nil
			}
			return 0, fmt.Errorf("ELF PVH note has a %d-byte address, want 4 or 8", descsz)
		}
		if descEnd >= uint64(len(b)) {
			break
		}
		b = b[descEnd:]
	}
	return 0, nil
}
