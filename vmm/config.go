// Package vmm is the one place that wires a microVM together: guest memory,
// the KVM VM and its vCPU threads, the boot path and the devices, and the
// lifecycle (build, run, stop) that both the CLI and the Go library use.
package vmm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/boot/cputemplate"
	"github.com/ternvm/tern/internal/safefile"
	"github.com/ternvm/tern/virtio/balloon"
	"github.com/ternvm/tern/virtio/block"
	virtionet "github.com/ternvm/tern/virtio/net"
	"github.com/ternvm/tern/virtio/ratelimit"
	"github.com/ternvm/tern/virtio/vsock"
	"github.com/ternvm/tern/vmm/memory"
)

// DefaultCmdline is used when the user gives none: a serial console, reboot
// through the keyboard controller, no PCI probing (tern has no PCI bus), and
// i8042 probing cut short (no mouse, and a keyboard that only sends
// Ctrl+Alt+Del and takes no commands). Unlike Firecracker's it leaves out
// i8042.nopnp: on tern's hardware-reduced ACPI platform ISA IRQ 1 is not
// Linux's IRQ 1, and only the DSDT's PNP0303 device tells the i8042 driver
// which interrupt its keyboard has (without it, Ctrl+Alt+Del is not heard).
const DefaultCmdline = "console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd"

// Defaults for an unset Config field.
const (
	DefaultCPUs     = 1
	DefaultMemory   = 256 << 20
	DefaultKVMPath  = "/dev/kvm"
	minGuestMemory  = 16 << 20
	maxLowGuestSize = boot.MMIOHoleStart
)

// Config describes one microVM.
type Config struct {
	KernelPath string
	InitrdPath string // optional
	// Cmdline is the kernel command line; empty means DefaultCmdline.
	Cmdline string
	CPUs    int
	// MemoryBytes is the guest RAM size; a multiple of 4 KiB (2 MiB with
	// HugePages).
	MemoryBytes uint64
	HugePages   bool
	// PreferPVH enters an ELF kernel with a PVH note through that note
	// rather than its 64-bit entry point. It has no effect on a bzImage.
	PreferPVH bool

	// CPUTemplate, if set, pins the CPUID and MSRs the vCPUs show (see
	// package cputemplate), so the guest can later be restored or
	// migrated onto a host of another CPU model. A static template for
	// another vendor's CPUs than this host's is refused by New.
	CPUTemplate *cputemplate.Template

	// TrackDirtyPages has KVM log the pages the guest writes, so that
	// Snapshot can write diff snapshots. It costs some speed.
	TrackDirtyPages bool

	// RNG adds a virtio entropy device fed from the host's getrandom.
	RNG bool
	// RNGRateLimit, if set, limits the entropy device's random bytes
	// (Bandwidth) and requests (Ops); it needs RNG.
	RNGRateLimit *ratelimit.Config
	// Disks are virtio-blk devices, in order (the guest sees vda, vdb...).
	Disks []DiskConfig
	// Nets are virtio-net devices on TAP interfaces.
	Nets []virtionet.Config
	// Vsock, if set, adds a virtio-vsock device bridged to Unix sockets.
	Vsock *vsock.Config
	// Balloon, if set, adds a virtio-balloon device starting at its
	// target; VM.SetBalloonTarget changes the target later.
	Balloon *balloon.Config
	// MMDS, if set, answers the guest at its address (169.254.169.254
	// by default) on the Nets its Interfaces name (by ID, TAP name or
	// netN), inside tern: those frames never reach the TAP.
	MMDS *MMDS

	// Console receives the guest's serial output; nil discards it.
	Console io.Writer
	// ConsoleInput, if set, is fed to the guest's serial port.
	ConsoleInput io.Reader

	// KVMPath is the KVM device; empty means DefaultKVMPath.
	KVMPath string
	// HostCacheDir is a directory where tern keeps what it learns of the
	// host between runs: KVM's supported CPUID, which takes about 0.5 ms
	// to ask where the CPUID instruction traps to a hypervisor (see
	// internal/cpuidcache for when a kept answer no longer holds). Empty:
	// nothing is kept. It must belong to this process's user and be
	// writable by no one else, or it is not used; a missing one is made
	// (mode 0700) if its parent exists.
	HostCacheDir string
	// Logger receives the monitor's own log; nil means a logger that
	// discards.
	Logger logrus.FieldLogger
	// OnEvent, if set, hears of the VM's lifecycle events (see Event), in
	// order, on a goroutine of its own: it may block or call the VM's
	// methods without stalling the guest. A slow OnEvent delays only
	// later events; past a bound they are dropped (and logged), except
	// the final EventStopped.
	OnEvent func(Event)
	// Started is when the monitor process started; boot-time and
	// first-KVM_RUN figures are measured from it. Zero means when New ran.
	Started time.Time
	// BeforeRun, if set, is called during Start once the vCPUs are
	// created and configured, just before the guest runs its first
	// instruction: from there on the process only runs the VM, so this
	// is where it confines itself (tern installs its seccomp filter
	// here). It runs on the boot vCPU's thread, which goes on into the
	// guest without waiting for Start's caller. An error fails Start; no
	// guest code has run.
	BeforeRun func() error
}

// DiskConfig is one virtio-blk disk.
type DiskConfig struct {
	block.Config
	// Root makes this disk the guest's root filesystem: it is put first
	// (so the guest names it vda) and root=/dev/vda is added to the
	// command line, with ro for a read-only disk.
	Root bool
}

// withDefaults fills unset fields. Disks is copied: UpdateDrive changes a
// disk's path in the VM's own configuration, not in the caller's.
func (c Config) withDefaults() Config {
	c.Disks = slices.Clone(c.Disks)
	if c.Cmdline == "" {
		c.Cmdline = DefaultCmdline
	}
	if c.CPUs == 0 {
		c.CPUs = DefaultCPUs
	}
	if c.MemoryBytes == 0 {
		c.MemoryBytes = DefaultMemory
	}
	if c.KVMPath == "" {
		c.KVMPath = DefaultKVMPath
	}
	if c.Console == nil {
		c.Console = io.Discard
	}
	if c.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		c.Logger = l
	}
	if c.Started.IsZero() {
		c.Started = time.Now()
	}
	// A disk or TAP passed as a file is named after it where the caller
	// gave no name, in copies: the caller's slices stay as they were.
	c.Disks = slices.Clone(c.Disks)
	for i, d := range c.Disks {
		if d.File != nil && d.Path == "" {
			c.Disks[i].Path = d.File.Name()
		}
	}
	c.Nets = slices.Clone(c.Nets)
	return c
}

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("invalid configuration")

// Validate checks what can be checked without touching KVM: sizes, counts
// and that the files exist and are readable.
func (c Config) Validate() error {
	c = c.withDefaults()
	// format may wrap causes with %w: a caller's errors.Is must reach
	// fs.ErrNotExist for a missing file, or boot's format errors.
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...)
	}
	if c.KernelPath == "" {
		return bad("no kernel given")
	}
	if err := readable(c.KernelPath); err != nil {
		return bad("kernel: %w", err)
	}
	if err := probeKernel(c.KernelPath); err != nil {
		return bad("kernel %s: %w", c.KernelPath, err)
	}
	if c.InitrdPath != "" {
		if err := readable(c.InitrdPath); err != nil {
			return bad("initrd: %w", err)
		}
	}
	if c.CPUs < 1 || c.CPUs > boot.MaxVCPUs {
		return bad("%d vCPUs requested; tern supports 1 to %d", c.CPUs, boot.MaxVCPUs)
	}
	align := uint64(memory.PageSize)
	if c.HugePages {
		align = 2 << 20
	}
	if c.MemoryBytes < minGuestMemory {
		return bad("guest memory of %d bytes is below the minimum of %d MiB", c.MemoryBytes, minGuestMemory>>20)
	}
	if c.MemoryBytes%align != 0 {
		return bad("guest memory of %d bytes is not a multiple of %d bytes", c.MemoryBytes, align)
	}
	if err := c.validateDevices(); err != nil {
		return bad("%w", err)
	}
	if len(c.Cmdline)+1 > boot.CmdlineMaxSize {
		return bad("kernel command line is %d bytes; at most %d fit", len(c.Cmdline), boot.CmdlineMaxSize-1)
	}
	return nil
}

// readable checks that path is a regular file this process can open.
func readable(path string) error {
	f, _, err := openRegular(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// probeKernel checks that the file looks like a kernel tern can load, so
// that a wrong file is reported before KVM is touched.
func probeKernel(path string) error {
	f, size, err := openRegular(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = boot.DetectFormat(f, size)
	return err
}

// openRegular opens path for reading if it is a regular file. The type
// is checked on the open descriptor and the open cannot block, so a FIFO
// in place of a kernel or initrd is reported rather than waited on.
func openRegular(path string) (*os.File, int64, error) {
	f, st, err := safefile.OpenRegular(path)
	if err != nil {
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// validateDevices checks the device configuration before anything is
// created: files exist, names and addresses are well formed, nothing is
// given twice.
func (c Config) validateDevices() error {
	ids := map[string]int{}
	paths := map[string]int{}
	roots := 0
	for i, d := range c.Disks {
		if err := d.Config.Validate(); err != nil {
			return fmt.Errorf("disk %d: %w", i, err)
		}
		var st os.FileInfo
		var err error
		if d.File != nil {
			st, err = d.File.Stat()
		} else {
			st, err = os.Stat(d.Path)
		}
		if err != nil {
			return fmt.Errorf("disk %d: %w", i, err)
		}
		if !st.Mode().IsRegular() && st.Mode()&os.ModeDevice == 0 {
			return fmt.Errorf("disk %d: %s is neither a regular file nor a block device", i, d.Path)
		}
		if d.ID != "" {
			if j, dup := ids[d.ID]; dup {
				return fmt.Errorf("disk %d: id %q is already used by disk %d", i, d.ID, j)
			}
			ids[d.ID] = i
		}
		if j, dup := paths[d.Path]; dup {
			return fmt.Errorf("disk %d: %s is already disk %d", i, d.Path, j)
		}
		paths[d.Path] = i
		if d.Root {
			roots++
		}
	}
	if roots > 1 {
		return fmt.Errorf("%d disks are marked root; at most one can be", roots)
	}
	taps, netIDs := map[string]int{}, map[string]int{}
	tapFiles := map[*os.File]int{}
	for i, n := range c.Nets {
		if err := n.Validate(); err != nil {
			return fmt.Errorf("net %d: %w", i, err)
		}
		if n.ID != "" {
			if j, dup := netIDs[n.ID]; dup {
				return fmt.Errorf("net %d: id %q is already used by net %d", i, n.ID, j)
			}
			netIDs[n.ID] = i
		}
		if n.TAPFile != nil {
			if j, dup := tapFiles[n.TAPFile]; dup {
				return fmt.Errorf("net %d: TAP file %s is already used by net %d", i, n.TAPFile.Name(), j)
			}
			tapFiles[n.TAPFile] = i
			if n.TAP == "" {
				continue // named by the file, once attached
			}
		}
		if j, dup := taps[n.TAP]; dup {
			return fmt.Errorf("net %d: TAP %s is already used by net %d", i, n.TAP, j)
		}
		taps[n.TAP] = i
	}
	if c.RNGRateLimit != nil {
		if !c.RNG {
			return errors.New("an entropy device rate limit without an entropy device")
		}
		if err := c.RNGRateLimit.Validate(); err != nil {
			return fmt.Errorf("rng: %w", err)
		}
	}
	if c.Vsock != nil {
		if err := c.Vsock.Validate(); err != nil {
			return err
		}
	}
	if c.Balloon != nil && uint64(c.Balloon.TargetMiB)<<20 > c.MemoryBytes {
		return fmt.Errorf("balloon target of %d MiB is more than the guest's %d MiB", c.Balloon.TargetMiB, c.MemoryBytes>>20)
	}
	return c.validateMMDS()
}
