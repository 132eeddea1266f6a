// Command gofloor is the least a Go program does to boot the hello tiny
// guest on KVM and print its console: open /dev/kvm, create a VM, map and
// register its RAM, create one vCPU in flat 32-bit protected mode at the
// guest's PVH entry, and run it, copying what the guest writes to COM1 to
// stdout, until the guest powers off (or halts). No interrupt controller,
// no CPUID, no devices, no seccomp, no logging.
//
// startbench starts it beside tern and QEMU: it is the floor under any Go
// monitor's start-up on the machine at that moment (the Go runtime's own
// start, the kernel's work for a VM and its RAM), so tern's figure can be
// read against it when the machine's own speed moves.
//
//	gofloor GUEST.elf MEMORY-MIB
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/ternvm/tern/kvm"
)

// The ports the hello guest writes (test/tinyguest/guests/tiny.inc).
const (
	portCOM1     = 0x3f8
	portACPISlp  = 0x600 // its power-off
	pvhNoteType  = 18    // XEN_ELFNOTE_PHYS32_ENTRY
	elfLoad      = 1     // PT_LOAD
	elfNote      = 4     // PT_NOTE
	selectorCode = 0x08
	selectorData = 0x18
)

func main() {
	if err := run(os.Args, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gofloor:", err)
		os.Exit(1)
	}
}

// run boots the guest args name and copies its console to out.
func run(args []string, out io.Writer) error {
	if len(args) != 3 {
		return errors.New("usage: gofloor GUEST.elf MEMORY-MIB")
	}
	mib, err := strconv.ParseUint(args[2], 10, 32)
	if err != nil || mib == 0 {
		return fmt.Errorf("memory %q: not a positive number of MiB", args[2])
	}
	image, err := os.ReadFile(args[1])
	if err != nil {
		return err
	}
	sys, err := kvm.Open("/dev/kvm")
	if err != nil {
		return err
	}
	defer sys.Close()
	vm, err := sys.CreateVM()
	if err != nil {
		return fmt.Errorf("create VM: %w", err)
	}
	defer vm.Close()
	mem, err := unix.Mmap(-1, 0, int(mib<<20), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return fmt.Errorf("map guest RAM: %w", err)
	}
	defer unix.Munmap(mem)
	if err := vm.SetUserMemoryRegion(kvm.RegionForMapping(0, 0, 0, mem)); err != nil {
		return fmt.Errorf("register guest RAM: %w", err)
	}
	entry, err := load(image, mem)
	if err != nil {
		return fmt.Errorf("%s: %w", args[1], err)
	}
	mmapSize, err := sys.VCPUMmapSize()
	if err != nil {
		return err
	}
	vcpu, err := vm.CreateVCPU(0, mmapSize)
	if err != nil {
		return fmt.Errorf("create vCPU: %w", err)
	}
	defer vcpu.Close()
	sregs, err := vcpu.GetSregs()
	if err != nil {
		return err
	}
	flat := kvm.Segment{Limit: 0xffffffff, Present: 1, DB: 1, S: 1, G: 1}
	sregs.CS, sregs.CS.Selector, sregs.CS.Type = flat, selectorCode, 0xb
	data := flat
	data.Selector, data.Type = selectorData, 0x3
	sregs.DS, sregs.ES, sregs.FS, sregs.GS, sregs.SS = data, data, data, data, data
	sregs.CR0 = 1 // PE, paging off: the PVH entry's state
	if err := vcpu.SetSregs(sregs); err != nil {
		return err
	}
	if err := vcpu.SetRegs(kvm.Regs{RIP: entry, RFLAGS: kvm.RFLAGSReserved1}); err != nil {
		return err
	}
	for {
		exit, err := vcpu.Run()
		if err != nil {
			return err
		}
		switch e := exit.(type) {
		case kvm.ExitIO:
			switch {
			case e.In:
				clear(e.Data)
			case e.Port == portCOM1:
				if _, err := out.Write(e.Data); err != nil {
					return fmt.Errorf("console: %w", err)
				}
			case e.Port == portACPISlp:
				return nil
			}
		case kvm.ExitHLT:
			return nil
		default:
			return fmt.Errorf("unexpected exit %s", exit.Reason())
		}
	}
}

// load copies image's loadable segments (a little-endian ELF64, as the
// tiny guests are) into mem at their physical addresses and returns the
// 32-bit entry its PVH note names.
func load(image, mem []byte) (uint64, error) {
	le := binary.LittleEndian
	if len(image) < 64 || string(image[:4]) != "\x7fELF" || image[4] != 2 || image[5] != 1 {
		return 0, errors.New("not a little-endian ELF64 file")
	}
	phoff, phentsize, phnum := le.Uint64(image[0x20:]), uint64(le.Uint16(image[0x36:])), uint64(le.Uint16(image[0x38:]))
	if phentsize < 56 || phoff > uint64(len(image)) || phnum*phentsize > uint64(len(image))-phoff {
		return 0, errors.New("program headers outside the file")
	}
	var entry uint64
	for i := range phnum {
		ph := image[phoff+i*phentsize:]
		typ, off, paddr, filesz := le.Uint32(ph), le.Uint64(ph[8:]), le.Uint64(ph[24:]), le.Uint64(ph[32:])
		if off > uint64(len(image)) || filesz > uint64(len(image))-off {
			return 0, fmt.Errorf("segment %d outside the file", i)
		}
		seg := image[off : off+filesz]
		switch typ {
		case elfLoad:
			if paddr > uint64(len(mem)) || filesz > uint64(len(mem))-paddr {
				return 0, fmt.Errorf("segment %d at %#x does not fit in guest RAM", i, paddr)
			}
			copy(mem[paddr:], seg)
		case elfNote:
			if e, ok := pvhEntry(seg); ok {
				entry = e
			}
		}
	}
	if entry == 0 {
		return 0, errors.New("no PVH entry note")
	}
	return entry, nil
}

// pvhEntry finds the "Xen" note of type XEN_ELFNOTE_PHYS32_ENTRY in notes.
func pvhEntry(notes []byte) (uint64, bool) {
	le := binary.LittleEndian
	align := func(n uint64) uint64 { return (n + 3) &^ 3 }
	for len(notes) >= 12 {
		namesz, descsz, typ := uint64(le.Uint32(notes)), uint64(le.Uint32(notes[4:])), le.Uint32(notes[8:])
		descOff := 12 + align(namesz)
		next := descOff + align(descsz)
		if next > uint64(len(notes)) {
			return 0, false
		}
		if typ == pvhNoteType && namesz == 4 && string(notes[12:15]) == "Xen" && descsz >= 4 {
			return uint64(le.Uint32(notes[descOff:])), true
		}
		notes = notes[next:]
	}
	return 0, false
}
