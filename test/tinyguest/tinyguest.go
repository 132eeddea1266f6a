// Package tinyguest builds the project's small hand-written test guests:
// a few dozen instructions of 32-bit assembly each, kept as source in
// guests/ and assembled with GNU as and ld into an ELF that tern boots
// through its PVH entry (vmm.Config{PreferPVH: true}).
//
// They exist because the development machines' /dev/kvm (backed by
// kvm_pvm) cannot boot a stock Linux guest but runs ring-0 code like this
// in KVM's instruction emulator, at a few million instructions per second
// (the counter loop measured about 4 million). That is enough to
// exercise the monitor's own work (start-up, pause, snapshot, restore,
// dirty tracking, migration) in a plain go test.
//
// Each guest is a 64-bit ELF with one "Xen" note of type 18
// (XEN_ELFNOTE_PHYS32_ENTRY) pointing at its .code32 entry, loaded at
// LoadAddr. tern enters it in flat 32-bit protected mode without paging.
// Its output goes to COM1, one line per event; it signals boot by writing
// the boot-timer magic to port 0x440.
package tinyguest

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The guests' fixed guest-physical addresses. The builder passes them to
// the assembler, so these constants are the only place they are written.
const (
	// LoadAddr is where each guest's image (code, constants, a 1 KiB
	// stack) starts; it takes less than 8 KiB.
	LoadAddr = 0x100000
	// CounterAddr holds the counter guest's 32-bit counter.
	CounterAddr = 0x200000
	// PassAddr holds the dirty guest's 32-bit pass counter.
	PassAddr = 0x200004
	// lowestDirty is the lowest address the dirty guest may write: above
	// the image and the counters.
	lowestDirty = 0x400000
	// ramLimit is where tern's guest RAM below 4 GiB ends (the MMIO hole).
	ramLimit = 0xc0000000
)

// Defaults for zero option fields.
const (
	// DefaultTickEvery gives a tick about every 30 ms on the PVM-backed
	// /dev/kvm of the development machines (3 emulated instructions an
	// iteration); on hardware-backed KVM ticks come far faster.
	DefaultTickEvery = 40000
	// DefaultDirtyStart and DefaultDirtyMiB make the dirty guest write
	// 16 MiB at 16 MiB: 4096 pages, a pass every ~4 ms on the
	// development machines once the pages are backed (about a million
	// pages a second; first touches are slower). It needs 32 MiB of
	// guest RAM.
	DefaultDirtyStart = 16 << 20
	DefaultDirtyMiB   = 16
)

// Guest names: the source file guests/NAME.S and the ELF's base name.
const (
	Counter  = "counter"
	Dirty    = "dirty"
	Hello    = "hello"
	Halt     = "halt"
	CPUID    = "cpuid"
	Keyboard = "keyboard"
	DiskCap  = "diskcap"
	Triple   = "triple"
	Hostile  = "hostile"
)

// The lines the guests print on COM1, for tests that read the console.
const (
	CounterStartLine = "counter: start"
	DirtyStartLine   = "dirty: start"
	HelloLine        = "hello from tiny guest"
	HaltLine         = "halt: idle"
	TripleLine       = "triple: faulting"
	CPUIDStartLine   = "cpuid: start"
	KeyboardLine     = "keyboard: ready"
	KeyPrefix        = "key "  // then the byte read: 8 lower-case hex digits
	CapPrefix        = "cap "  // then the capacity in sectors: 8 lower-case hex digits
	TickPrefix       = "tick " // then the counter: 8 lower-case hex digits
	PassPrefix       = "pass " // then the pass count: 8 lower-case hex digits
	// CPUIDPrefix starts a line of the cpuid guest: then leaf, subleaf,
	// EAX, EBX, ECX and EDX, 8 lower-case hex digits each, spaced.
	CPUIDPrefix = "cpuid "
	// HostileStartLine and HostileDoneLine begin and end the hostile
	// guest's attack; FloodPrefix starts each of its flood lines, then
	// the round in 8 lower-case hex digits, the escape sequences and
	// FloodSuffix.
	HostileStartLine = "hostile: start"
	HostileDoneLine  = "hostile: done"
	FloodPrefix      = "hostile flood "
	FloodSuffix      = " end\r\n"
	// FloodTitle and FloodClipboard are what the flood's escape
	// sequences would make a terminal do: the window title it sets
	// (OSC 0 and OSC 2) and the base64 it writes to the clipboard (OSC 52).
	FloodTitle     = "hostile title"
	FloodClipboard = "aG9zdGlsZSBjbGlwYm9hcmQ="
)

//go:embed guests/*.S guests/tiny.inc guests/tiny.ld
var sources embed.FS

// CounterOptions parameterise the counter guest.
type CounterOptions struct {
	// TickEvery is how many increments of the counter come between two
	// tick lines; 0 means DefaultTickEvery.
	TickEvery uint32
}

// DirtyOptions parameterise the dirty guest. The VM's memory must cover
// [Start, Start+MiB<<20).
type DirtyOptions struct {
	// Start is the first byte written, 4 KiB aligned, at or above 4 MiB;
	// 0 means DefaultDirtyStart.
	Start uint64
	// MiB is the size of the range; 0 means DefaultDirtyMiB.
	MiB uint32
}

// HostileOptions parameterise the hostile guest.
type HostileOptions struct {
	// Rounds is how many rounds it attacks before it powers the VM off;
	// 0 means until it is stopped.
	Rounds uint32
}

// The hostile guest's share of each attack per round: on the development
// machines' PVM-backed /dev/kvm a round takes about 60 ms, so each kind of
// unhandled access comes far faster than tern logs them, and the whole
// port space is swept every 64 rounds.
const (
	hostilePortsPerRound = 1024
	hostilePagesPerRound = 256
	hostileBootWrites    = 64
)

// ErrNoBinutils is returned when GNU as or ld is not on PATH.
var ErrNoBinutils = errors.New("the tiny test guests are built with GNU as and ld: install binutils (apt-get install binutils)")

// BuildCounter builds the counter guest into dir and returns the ELF's
// path. It keeps a 32-bit counter at CounterAddr, adds one per loop
// iteration, and after every TickEvery iterations prints TickPrefix and
// the counter in hex; it prints CounterStartLine and writes the
// boot-timer magic once at start, and never halts.
func BuildCounter(dir string, opts CounterOptions) (string, error) {
	n := opts.TickEvery
	if n == 0 {
		n = DefaultTickEvery
	}
	return build(dir, Counter, fmt.Sprintf("counter-%d.elf", n), map[string]uint64{
		"COUNTER_ADDR": CounterAddr, "TICK_EVERY": uint64(n),
	})
}

// BuildDirty builds the dirty guest into dir and returns the ELF's path.
// Pass after pass it adds one to the count at PassAddr, stores the count
// into the first word of every 4 KiB page of the range, and prints
// PassPrefix and the count in hex; it prints DirtyStartLine and writes
// the boot-timer magic once at start, and never halts.
func BuildDirty(dir string, opts DirtyOptions) (string, error) {
	if opts.Start == 0 {
		opts.Start = DefaultDirtyStart
	}
	if opts.MiB == 0 {
		opts.MiB = DefaultDirtyMiB
	}
	end := opts.Start + uint64(opts.MiB)<<20
	switch {
	case opts.Start%4096 != 0:
		return "", fmt.Errorf("dirty guest: start %#x is not 4 KiB aligned", opts.Start)
	case opts.Start < lowestDirty:
		return "", fmt.Errorf("dirty guest: start %#x is below %#x, where the guest's own code and counters are", opts.Start, lowestDirty)
	case end > ramLimit:
		return "", fmt.Errorf("dirty guest: range [%#x, %#x) runs past %#x, where tern's low RAM ends", opts.Start, end, ramLimit)
	}
	return build(dir, Dirty, fmt.Sprintf("dirty-%#x-%dMiB.elf", opts.Start, opts.MiB), map[string]uint64{
		"PASS_ADDR": PassAddr, "DIRTY_START": opts.Start, "DIRTY_MIB": uint64(opts.MiB),
	})
}

// BuildHello builds the hello guest into dir and returns the ELF's path.
// It writes the boot-timer magic, prints HelloLine and powers the VM off
// through the ACPI sleep control register (S5), so Run returns
// vmm.StopPoweroff.
func BuildHello(dir string) (string, error) {
	return build(dir, Hello, "hello.elf", nil)
}

// BuildTriple builds the triple guest into dir and returns the ELF's path.
// It prints TripleLine, loads an empty IDT and executes UD2 at its global
// symbol "fault", so its vCPU shuts down with a triple fault.
func BuildTriple(dir string) (string, error) {
	return build(dir, Triple, "triple.elf", nil)
}

// BuildHalt builds the halt guest into dir and returns the ELF's path. It
// writes the boot-timer magic, prints HaltLine and halts with interrupts
// off: its vCPU sleeps in the host kernel, so the guest costs no CPU.
func BuildHalt(dir string) (string, error) {
	return build(dir, Halt, "halt.elf", nil)
}

// CPUIDLeaves are the leaves (and subleaves) the cpuid guest reports, in
// its order.
var CPUIDLeaves = [][2]uint32{{0, 0}, {1, 0}, {7, 0}, {0xd, 1}, {0x80000001, 0}, {0x80000008, 0}}

// BuildCPUID builds the cpuid guest into dir and returns the ELF's path.
// Round after round, roundDelay loop iterations apart, it executes CPUID
// for each of CPUIDLeaves and prints a CPUIDPrefix line with the result;
// it prints CPUIDStartLine and writes the boot-timer magic once at
// start. It never halts.
func BuildCPUID(dir string, roundDelay uint32) (string, error) {
	if roundDelay == 0 {
		roundDelay = DefaultTickEvery
	}
	return build(dir, CPUID, fmt.Sprintf("cpuid-%d.elf", roundDelay), map[string]uint64{"ROUND_DELAY": uint64(roundDelay)})
}

// BuildKeyboard builds the keyboard guest into dir and returns the ELF's
// path. It writes the boot-timer magic, prints KeyboardLine, then polls
// the i8042 (status port 0x64, data port 0x60) and prints KeyPrefix and
// each byte it reads in hex; after keys bytes it powers the VM off, so Run
// returns vmm.StopPoweroff.
func BuildKeyboard(dir string, keys int) (string, error) {
	if keys < 1 {
		return "", fmt.Errorf("keyboard guest: %d keys to read; want at least 1", keys)
	}
	return build(dir, Keyboard, fmt.Sprintf("keyboard-%d.elf", keys), map[string]uint64{"KEYS": uint64(keys)})
}

// BuildDiskCap builds the diskcap guest into dir and returns the ELF's
// path. capAddr is the guest-physical address of a virtio-blk device's
// capacity (its virtio-mmio window plus 0x100). The guest prints
// CapPrefix and the capacity's low 32 bits in hex, polls until they
// change, prints them again and powers the VM off.
func BuildDiskCap(dir string, capAddr uint32) (string, error) {
	return build(dir, DiskCap, fmt.Sprintf("diskcap-%#x.elf", capAddr), map[string]uint64{"CAP_ADDR": uint64(capAddr)})
}

// BuildHostile builds the hostile guest into dir and returns the ELF's
// path. It prints HostileStartLine and writes the boot-timer magic, then
// attacks its monitor round after round: it writes and reads a word in a
// share of the pages of the unbacked MMIO hole, then a share of the I/O
// port space (all but the ports that would reset or power off the VM, the
// in-kernel PIC, PIT and ELCR, and COM1), prints a flood line
// (FloodPrefix, the round in hex, terminal escape sequences setting
// FloodTitle and FloodClipboard among others, FloodSuffix), writes the
// boot-timer magic many times and prints TickPrefix and the round. After
// opts.Rounds rounds it prints HostileDoneLine and powers the VM off.
func BuildHostile(dir string, opts HostileOptions) (string, error) {
	return build(dir, Hostile, fmt.Sprintf("hostile-%d.elf", opts.Rounds), map[string]uint64{
		"ROUNDS": uint64(opts.Rounds), "PORTS_PER_ROUND": hostilePortsPerRound,
		"PAGES_PER_ROUND": hostilePagesPerRound, "BOOT_WRITES": hostileBootWrites,
	})
}

// build assembles guests/NAME.S with syms defined and links it at
// LoadAddr into dir/out. The sources are written to a scratch directory
// inside dir (as needs files to .include), removed afterwards.
func build(dir, name, out string, syms map[string]uint64) (string, error) {
	as, err := exec.LookPath("as")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoBinutils, err)
	}
	ld, err := exec.LookPath("ld")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoBinutils, err)
	}
	src, err := os.MkdirTemp(dir, "tinyguest-src-")
	if err != nil {
		return "", fmt.Errorf("build %s guest: %w", name, err)
	}
	defer os.RemoveAll(src)
	for _, f := range []string{name + ".S", "tiny.inc", "tiny.ld"} {
		b, err := sources.ReadFile("guests/" + f)
		if err != nil {
			return "", fmt.Errorf("build %s guest: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(src, f), b, 0o644); err != nil {
			return "", fmt.Errorf("build %s guest: %w", name, err)
		}
	}
	obj := filepath.Join(src, name+".o")
	asArgs := []string{"--64", "-I", src, "-o", obj}
	for _, k := range slices.Sorted(maps.Keys(syms)) {
		asArgs = append(asArgs, "--defsym", fmt.Sprintf("%s=%#x", k, syms[k]))
	}
	asArgs = append(asArgs, filepath.Join(src, name+".S"))
	if err := run(as, asArgs...); err != nil {
		return "", fmt.Errorf("build %s guest: %w", name, err)
	}
	elfPath := filepath.Join(dir, out)
	err = run(ld, "-m", "elf_x86_64", "-T", filepath.Join(src, "tiny.ld"),
		"--defsym", fmt.Sprintf("LOAD_ADDR=%#x", LoadAddr), "-z", "noexecstack",
		"-o", elfPath, obj)
	if err != nil {
		return "", fmt.Errorf("build %s guest: %w", name, err)
	}
	return elfPath, nil
}

// run runs a tool; its output, which on success is empty, becomes part of
// the error on failure (and warnings count as failure, so none creep in).
func run(tool string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.Command(tool, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil && out.Len() > 0 {
		err = errors.New("unexpected output")
	}
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", filepath.Base(tool), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// Ticks returns the counters of the counter guest's tick lines in console
// output, in order; an unfinished last line is left out, and so is
// anything that is not a tick line.
func Ticks(console string) []int64 {
	lines := strings.Split(console, "\n")
	var ts []int64
	for _, l := range lines[:len(lines)-1] {
		if h, ok := strings.CutPrefix(l, TickPrefix); ok && len(h) == 8 {
			if v, err := strconv.ParseUint(h, 16, 32); err == nil {
				ts = append(ts, int64(v))
			}
		}
	}
	return ts
}

// FirstTick and LastTick are the first and last of Ticks(console), or -1
// when there is none.
func FirstTick(console string) int64 {
	if ts := Ticks(console); len(ts) > 0 {
		return ts[0]
	}
	return -1
}

func LastTick(console string) int64 {
	if ts := Ticks(console); len(ts) > 0 {
		return ts[len(ts)-1]
	}
	return -1
}
