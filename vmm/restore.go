package vmm

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/boot/cputemplate"
	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/migrate/snapshot"
	"github.com/ternvm/tern/mmds"
	"github.com/ternvm/tern/vmm/memory"
)

// RestoreOptions say where a snapshot is and which host resources it may
// use. The snapshot's file is no authority over the host: every disk
// image, TAP, bridge and vsock socket it names must appear in DiskPaths,
// TAPs, Bridges or VsockSocket (mapped to itself to confirm it, or to a
// replacement), unless TrustSnapshotPaths is set; otherwise Restore fails
// with an *UnconfirmedError before it opens anything.
type RestoreOptions struct {
	// Dir holds SnapshotStateFile and SnapshotMemoryFile.
	Dir string
	// DiskPaths maps a disk image path recorded in the snapshot to the
	// image to use (itself, or the same disk copied or moved).
	DiskPaths map[string]string
	// DiskFiles maps a disk image path recorded in the snapshot to an
	// image the caller opened, used as block.Config.File (the caller
	// keeps ownership); it confirms that disk. A disk is mapped by
	// DiskPaths or DiskFiles, not both.
	DiskFiles map[string]*os.File
	// TAPs maps a TAP name recorded in the snapshot to the one to use.
	TAPs map[string]string
	// TAPFiles maps a TAP name recorded in the snapshot to a TAP the
	// caller attached, used as virtio/net.Config.TAPFile (the caller
	// keeps ownership, and plugs it into any bridge: the snapshot's
	// bridge for that network is not used); it confirms that TAP.
	TAPFiles map[string]*os.File
	// Bridges maps a bridge recorded in the snapshot (that a TAP joins)
	// to the one to use.
	Bridges map[string]string
	// VsockSocket is the vsock device's Unix socket path: the snapshot's
	// own to confirm it, or another.
	VsockSocket string
	// TrustSnapshotPaths uses every host resource the snapshot names
	// that the fields above do not map, as the snapshot names it: for a
	// snapshot the caller wrote itself or trusts as such.
	TrustSnapshotPaths bool
	// TrackDirtyPages turns dirty page tracking on even if the snapshot's
	// VM did not have it, so the restored VM can take diff snapshots
	// (relative to this snapshot).
	TrackDirtyPages bool

	Console      io.Writer
	ConsoleInput io.Reader
	KVMPath      string
	HostCacheDir string // as Config.HostCacheDir
	Logger       logrus.FieldLogger
	OnEvent      func(Event) // as Config.OnEvent
	// Started is when the restore was asked for; restore latency is
	// measured from it. Zero means when Restore ran.
	Started   time.Time
	BeforeRun func() error // as Config.BeforeRun
	// MMDSStore is the document a snapshot's metadata service serves once
	// restored (snapshots keep the service's configuration, not its
	// document); nil means an empty store.
	MMDSStore *mmds.Store
}

// restoredState is what the vCPUs of a restored VM start from.
type restoredState struct {
	vcpus     []vcpuState
	advanceNS int64     // host time since the snapshot, added to the guest's TSC
	called    time.Time // when Restore was called
}

// loadedSnapshot is a snapshot read and checked, before anything is built.
type loadedSnapshot struct {
	cfg     snapshotConfig
	vm      vmState
	vcpus   []vcpuState
	devices map[string]deviceState
	memory  snapshot.MemoryInfo
	memPath string
}

// ErrBadSnapshot is wrapped by errors about a snapshot's content.
var ErrBadSnapshot = errors.New("unusable snapshot")

// readSnapshot reads and checks everything in dir that can be checked
// without KVM. Nothing is created or changed.
func readSnapshot(dir string) (*loadedSnapshot, error) {
	sections, err := snapshot.ReadStateFile(filepath.Join(dir, SnapshotStateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no snapshot in %s: %w", dir, err)
	}
	if err != nil {
		return nil, err
	}
	ls, err := parseState(sections, dir)
	if err != nil {
		return nil, err
	}
	ls.memPath = filepath.Join(dir, SnapshotMemoryFile)
	// format may wrap causes with %w, so that snapshot's sentinels
	// (ErrChecksum, ErrTruncated, ...) reach Restore's caller.
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: "+format, append([]any{ErrBadSnapshot, dir}, a...)...)
	}
	st, _ := snapshot.NewState(sections) // parseState checked them
	if err := st.GetJSONWithin("memory", &ls.memory, memoryLimits(ls.cfg.MemoryBytes)); err != nil {
		return nil, bad("%w", err)
	}
	if err := ls.memory.Validate(); err != nil {
		return nil, bad("memory: %w", err)
	}
	if ls.memory.Kind != "full" {
		return nil, bad("this is a %s snapshot: merge it onto its full snapshot first (tern snapshot merge)", ls.memory.Kind)
	}
	if ls.memory.TotalBytes() != ls.cfg.MemoryBytes {
		return nil, bad("memory section describes %d bytes, the configuration %d", ls.memory.TotalBytes(), ls.cfg.MemoryBytes)
	}
	if err := checkLayout(ls.memory.Regions, ls.cfg.MemoryBytes); err != nil {
		return nil, bad("%w", err)
	}
	if err := snapshot.CheckMemoryFile(ls.memPath, ls.memory); err != nil {
		return nil, bad("%w", err)
	}
	return ls, nil
}

// checkLayout requires RAM regions to be those of a guest of size bytes.
func checkLayout(regions []snapshot.MemoryRegion, size uint64) error {
	want := memory.Layout(size)
	if len(want) != len(regions) {
		return fmt.Errorf("memory has %d regions, a guest of this size has %d", len(regions), len(want))
	}
	for i, r := range regions {
		if r.GPA != want[i][0] || r.Size != want[i][1] {
			return fmt.Errorf("memory region %d is [%#x,+%#x), expected [%#x,+%#x)", i, r.GPA, r.Size, want[i][0], want[i][1])
		}
	}
	return nil
}

// parseState decodes and checks a VM's state sections (from a state file
// or a migration stream; where names them in messages): the configuration
// within the limits tern run applies, the VM-wide state, one vCPU section
// per vCPU and the devices.
func parseState(sections []snapshot.Section, where string) (*loadedSnapshot, error) {
	st, err := snapshot.NewState(sections)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	ls := &loadedSnapshot{devices: map[string]deviceState{}}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: "+format, append([]any{ErrBadSnapshot, where}, a...)...)
	}
	// Every section is held to what tern writes before it is decoded,
	// and the sections are counted against the configuration before
	// any of them is, so that decoding costs what a real VM's state
	// costs, not what the file's author chose.
	if err := st.GetJSONWithin("config", &ls.cfg, configLimits); err != nil {
		return nil, bad("%w", err)
	}
	if err := checkConfigLimits(ls.cfg); err != nil {
		return nil, bad("%w", err)
	}
	vcpus, devices := st.Names("vcpu/"), st.Names("device/")
	if len(vcpus) != ls.cfg.CPUs {
		return nil, bad("%d vCPU sections for %d vCPUs", len(vcpus), ls.cfg.CPUs)
	}
	if len(devices) != ls.cfg.virtioDevices() {
		return nil, bad("%d device sections, the configuration makes %d virtio devices", len(devices), ls.cfg.virtioDevices())
	}
	if err := st.GetJSONWithin("vm", &ls.vm, vmLimits); err != nil {
		return nil, bad("%w", err)
	}
	for i := range ls.cfg.CPUs {
		var vs vcpuState
		if err := st.GetJSONWithin(fmt.Sprintf("vcpu/%d", i), &vs, vcpuLimits); err != nil {
			return nil, bad("%w", err)
		}
		if vs.ID != i {
			return nil, bad("section vcpu/%d holds vCPU %d", i, vs.ID)
		}
		ls.vcpus = append(ls.vcpus, vs)
	}
	for _, name := range devices {
		var ds deviceState
		if err := st.GetJSONWithin(name, &ds, deviceLimits); err != nil {
			return nil, bad("%w", err)
		}
		if "device/"+ds.Name != name {
			return nil, bad("section %s holds device %q", name, ds.Name)
		}
		ls.devices[ds.Name] = ds
	}
	return ls, nil
}

// checkConfigLimits applies tern run's limits to a configuration that
// came from a file or a stream: vCPUs, virtio devices no more than the
// interrupt lines for them, and guest RAM no smaller than tern allows,
// whole pages, and no larger than this host's RAM.
func checkConfigLimits(c snapshotConfig) error {
	if c.CPUs < 1 || c.CPUs > boot.MaxVCPUs {
		return fmt.Errorf("%d vCPUs (tern supports 1 to %d)", c.CPUs, boot.MaxVCPUs)
	}
	if err := checkDeviceCount(c); err != nil {
		return err
	}
	if c.MemoryBytes < minGuestMemory || c.MemoryBytes%memory.PageSize != 0 {
		return fmt.Errorf("guest memory of %d bytes (at least %d MiB, in whole pages)", c.MemoryBytes, minGuestMemory>>20)
	}
	return checkHostMemory(c.MemoryBytes)
}

// config rebuilds the VM's Config with the host overrides applied. Every
// host resource the saved configuration names must be mapped by opts or
// covered by opts.TrustSnapshotPaths: the configuration came from a file
// or a peer (from names it in errors), and nothing in it may open a host
// resource the caller did not name.
func (ls *loadedSnapshot) config(opts RestoreOptions, from string) (Config, error) {
	c := ls.cfg
	cfg := Config{
		CPUs: c.CPUs, MemoryBytes: c.MemoryBytes, Cmdline: c.Cmdline, KernelPath: c.KernelPath,
		RNG: c.RNG, RNGRateLimit: c.RNGRateLimit, Balloon: c.Balloon,
		Console: opts.Console, ConsoleInput: opts.ConsoleInput, KVMPath: opts.KVMPath, HostCacheDir: opts.HostCacheDir,
		Logger: opts.Logger, OnEvent: opts.OnEvent, Started: opts.Started, BeforeRun: opts.BeforeRun,
	}
	var err error
	if cfg.CPUTemplate, err = c.CPUTemplate.template(); err != nil {
		return cfg, err
	}
	var unconfirmed []HostResource
	confirm := func(o overrideSet, r HostResource) string {
		if !o.has(r.Name) && !opts.TrustSnapshotPaths {
			unconfirmed = append(unconfirmed, r)
		}
		return o.apply(r.Name)
	}
	disks := overrides(opts.DiskPaths)
	diskFiles := fileOverrides(maps.Clone(opts.DiskFiles))
	for _, d := range c.Disks {
		if f, ok := diskFiles.take(d.Path); ok {
			if disks.has(d.Path) {
				return cfg, fmt.Errorf("%w: disk %s is mapped both to a path and to a file", ErrInvalidConfig, d.Path)
			}
			d.File = f
			cfg.Disks = append(cfg.Disks, d)
			continue
		}
		d.Path = confirm(disks, HostResource{Kind: ResourceDisk, Name: d.Path, ReadOnly: d.ReadOnly})
		cfg.Disks = append(cfg.Disks, d)
	}
	if old, ok := disks.unused(); ok {
		return cfg, fmt.Errorf("%w: disk override %s: the snapshot has no disk with that path (it has %s)", ErrInvalidConfig, old, diskPaths(c.Disks))
	}
	if old, ok := diskFiles.unused(); ok {
		return cfg, fmt.Errorf("%w: disk file for %s: the snapshot has no disk with that path (it has %s)", ErrInvalidConfig, old, diskPaths(c.Disks))
	}
	taps, bridges := overrides(opts.TAPs), overrides(opts.Bridges)
	tapFiles := fileOverrides(maps.Clone(opts.TAPFiles))
	for _, n := range c.Nets {
		if f, ok := tapFiles.take(n.TAP); ok {
			if taps.has(n.TAP) {
				return cfg, fmt.Errorf("%w: TAP %s is mapped both to a name and to a file", ErrInvalidConfig, n.TAP)
			}
			// The caller attached it and plugs it in: the name comes
			// from the file, the saved bridge is not tern's to join.
			n.TAPFile, n.TAP, n.Bridge = f, "", ""
			cfg.Nets = append(cfg.Nets, n)
			continue
		}
		n.TAP = confirm(taps, HostResource{Kind: ResourceTAP, Name: n.TAP})
		if n.Bridge != "" {
			n.Bridge = confirm(bridges, HostResource{Kind: ResourceBridge, Name: n.Bridge})
		}
		cfg.Nets = append(cfg.Nets, n)
	}
	if old, ok := tapFiles.unused(); ok {
		return cfg, fmt.Errorf("%w: TAP file for %s: the snapshot has no network on that TAP", ErrInvalidConfig, old)
	}
	if old, ok := taps.unused(); ok {
		return cfg, fmt.Errorf("%w: TAP override %s: the snapshot has no network on that TAP", ErrInvalidConfig, old)
	}
	if old, ok := bridges.unused(); ok {
		return cfg, fmt.Errorf("%w: bridge override %s: the snapshot has no network joining that bridge", ErrInvalidConfig, old)
	}
	if c.Vsock != nil {
		vs := *c.Vsock
		if opts.VsockSocket != "" {
			vs.SocketPath = opts.VsockSocket
		} else if !opts.TrustSnapshotPaths {
			unconfirmed = append(unconfirmed, HostResource{Kind: ResourceVsockSocket, Name: vs.SocketPath})
		}
		cfg.Vsock = &vs
	} else if opts.VsockSocket != "" {
		return cfg, fmt.Errorf("%w: vsock socket override: the snapshot has no vsock device", ErrInvalidConfig)
	}
	cfg.MMDS = restoredMMDS(c.MMDS, c.Nets, cfg.Nets, opts.MMDSStore)
	// Checked before validateDevices, which stats the disk images: a
	// restore the caller has not agreed to touches nothing it names.
	if len(unconfirmed) > 0 {
		return cfg, &UnconfirmedError{From: from, Resources: unconfirmed}
	}
	cfg = cfg.withDefaults()
	if err := cfg.validateDevices(); err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return cfg, nil
}

// overrideSet is a map of host resource names (old to new) that notes
// which were used, so one naming nothing in the snapshot is an error.
type overrideSet struct {
	to   map[string]string
	used map[string]bool
}

func overrides(m map[string]string) overrideSet {
	return overrideSet{to: m, used: map[string]bool{}}
}

// has reports whether name is mapped (to itself or another).
func (o overrideSet) has(name string) bool {
	_, ok := o.to[name]
	return ok
}

// apply returns name's replacement, or name.
func (o overrideSet) apply(name string) string {
	if n, ok := o.to[name]; ok {
		o.used[name] = true
		return n
	}
	return name
}

// fileOverrides is a map of host resource names to files the caller
// opened, noting which were used.
type fileOverrides map[string]*os.File

func (o fileOverrides) take(name string) (*os.File, bool) {
	f, ok := o[name]
	if ok {
		delete(o, name)
	}
	return f, ok
}

func (o fileOverrides) unused() (string, bool) {
	for _, name := range slices.Sorted(maps.Keys(o)) {
		return name, true
	}
	return "", false
}

// unused returns an override apply never used, the first in sorted order.
func (o overrideSet) unused() (string, bool) {
	for _, old := range slices.Sorted(maps.Keys(o.to)) {
		if !o.used[old] {
			return old, true
		}
	}
	return "", false
}

func diskPaths(ds []DiskConfig) string {
	var ps []string
	for _, d := range ds {
		ps = append(ps, d.Path)
	}
	if len(ps) == 0 {
		return "no disks"
	}
	return strings.Join(ps, ", ")
}

// SnapshotResources lists the host resources (disk images, TAPs, bridges,
// the vsock socket) the snapshot in dir names, opening none of them: what
// a Restore must have confirmed or replaced.
func SnapshotResources(dir string) ([]HostResource, error) {
	ls, err := readSnapshot(dir)
	if err != nil {
		return nil, err
	}
	// A restore that trusts nothing reports them all, before it would
	// touch any.
	_, err = ls.config(RestoreOptions{}, "snapshot "+dir)
	var ue *UnconfirmedError
	if errors.As(err, &ue) {
		return ue.Resources, nil
	}
	return nil, err
}

// Restore rebuilds a VM from the snapshot in opts.Dir. Guest memory is
// mapped from the snapshot's memory file (privately: pages load when the
// guest first touches them, and the file never changes). Everything that
// can be checked (the files, the host overrides, this host's CPU and KVM
// against the snapshot's) is checked before any vCPU exists. Run resumes
// the guest where it stopped.
func Restore(opts RestoreOptions) (_ *VM, err error) {
	called := time.Now()
	if opts.Started.IsZero() {
		opts.Started = called
	}
	// Where restore latency goes, for the log.
	var phases []string
	mark := func(name string) {
		phases = append(phases, name+"="+time.Since(called).Round(time.Microsecond).String())
	}
	ls, err := readSnapshot(opts.Dir)
	if err != nil {
		return nil, err
	}
	cfg, err := ls.config(opts, "snapshot "+opts.Dir)
	if err != nil {
		return nil, err
	}
	v := newVM(cfg)
	defer func() {
		if err != nil {
			v.Close()
		}
	}()
	mark("read")
	cpuid, err := v.openHost(false)
	if err != nil {
		return nil, err
	}
	if err := v.createVM(); err != nil {
		cpuid() // its ioctl must end before the KVM fd closes
		return nil, err
	}
	if v.cpuid, err = cpuid(); err != nil {
		return nil, err
	}
	if err := checkTemplateHost(cfg.CPUTemplate, v.sys, v.cpuid); err != nil {
		return nil, fmt.Errorf("cannot restore on this host: %w", err)
	}
	if err := checkGuestCPUs(v.cpuid, ls.cfg.HostCPUID, cfg.CPUTemplate, ls.vcpus); err != nil {
		return nil, fmt.Errorf("cannot restore on this host: %w", err)
	}
	mark("vm")
	if v.mem, err = memory.FromFile(ls.memPath, cfg.MemoryBytes); err != nil {
		return nil, err
	}
	v.dirtyLog = ls.cfg.TrackDirtyPages || opts.TrackDirtyPages
	if err := v.registerMemory(); err != nil {
		return nil, err
	}
	mark("memory")
	if err := v.createIRQChips(); err != nil {
		return nil, err
	}
	mark("irqchip")
	if err := v.loadState(ls, called); err != nil {
		return nil, err
	}
	mark("devices")
	// The vCPUs are created only now, after the interrupt controllers,
	// clocks and devices have their saved state, in the order a restore
	// always had; their threads create them and take their state while
	// the caller goes on to Start.
	v.spawnVCPUs()
	v.configureVCPUs()
	v.log.WithFields(logrus.Fields{"dir": opts.Dir, "saved-ago": time.Duration(v.restored.advanceNS).Round(time.Millisecond).String()}).
		WithField("done-at", strings.Join(phases, ",")).Info("snapshot loaded")
	return v, nil
}

// loadState builds the devices of a VM whose KVM VM and memory exist and
// gives them, the interrupt controllers and the clocks the saved state;
// the vCPUs take theirs when they are created.
func (v *VM) loadState(ls *loadedSnapshot, called time.Time) error {
	var err error
	if v.plat, err = newPlatform(v); err != nil {
		return err
	}
	if err := v.restoreVMState(ls.vm); err != nil {
		return err
	}
	if err := v.plat.restoreDevices(ls.devices); err != nil {
		return err
	}
	advance := time.Now().UnixNano() - ls.vm.SavedAt
	v.restored = &restoredState{vcpus: ls.vcpus, advanceNS: max(advance, 0), called: called}
	return nil
}

// restoreVMState loads the interrupt controllers, the PIT, kvmclock and the
// legacy devices. kvmclock moves on by the time since the snapshot, so the
// guest's wall clock is right when it resumes.
func (v *VM) restoreVMState(st vmState) error {
	for _, saved := range []irqChipState{st.PICMaster, st.PICSlave, st.IOAPIC} {
		c, err := saved.kvm()
		if err != nil {
			return err
		}
		if err := v.vm.SetIRQChip(c); err != nil {
			return fmt.Errorf("restore interrupt controller %d: %w", c.ChipID, err)
		}
	}
	if err := v.vm.SetPIT2(st.PIT); err != nil {
		return fmt.Errorf("restore PIT: %w", err)
	}
	clock := kvm.ClockData{Clock: st.Clock.Clock}
	if d := time.Now().UnixNano() - st.SavedAt; d > 0 {
		clock.Clock += uint64(d)
	}
	if err := v.vm.SetClock(clock); err != nil {
		return fmt.Errorf("restore kvmclock: %w", err)
	}
	if err := v.plat.serial.SetState(st.Serial); err != nil {
		return fmt.Errorf("restore serial port: %w", err)
	}
	if err := v.plat.rtc.SetState(st.RTC); err != nil {
		return fmt.Errorf("restore RTC: %w", err)
	}
	if st.I8042 != nil {
		if err := v.plat.i8042.SetState(*st.I8042); err != nil {
			return fmt.Errorf("%w: restore i8042: %w", ErrBadSnapshot, err)
		}
	}
	return nil
}

// restoreDevices gives each virtio device its saved state. The devices were
// created from the same configuration in the same order, so each must sit
// at the address and interrupt line it had.
func (p *platform) restoreDevices(saved map[string]deviceState) error {
	if len(saved) != len(p.virtio) {
		return fmt.Errorf("%w: the snapshot has %d virtio devices, its configuration makes %d", ErrBadSnapshot, len(saved), len(p.virtio))
	}
	for _, s := range p.virtio {
		ds, ok := saved[s.name]
		if !ok {
			return fmt.Errorf("%w: no saved state for device %s", ErrBadSnapshot, s.name)
		}
		if ds.Addr != s.addr || ds.GSI != s.gsi {
			return fmt.Errorf("%w: device %s was at %#x IRQ %d, is now at %#x IRQ %d", ErrBadSnapshot, s.name, ds.Addr, ds.GSI, s.addr, s.gsi)
		}
		if err := setDeviceState(s.transport.Device(), ds.Device); err != nil {
			return fmt.Errorf("restore device %s: %w", s.name, err)
		}
		if err := s.transport.Restore(ds.Transport); err != nil {
			return fmt.Errorf("restore device %s: %w", s.name, err)
		}
		s.transport.Kick()
	}
	return nil
}

// cpuidFeatureWords are the CPUID outputs that hold feature flags a guest
// may have started using; each bit the guest saw must exist here.
var cpuidFeatureWords = []struct {
	function, index uint32
	reg             string
	dynamic         uint32 // bits KVM or tern set whatever the host has
}{
	{1, 0, "ecx", 1<<27 | 1<<31 | 1<<24}, // OSXSAVE mirrors CR4; hypervisor and TSC deadline are tern's
	{1, 0, "edx", 1 << 28},               // HTT: tern's topology for several vCPUs
	{7, 0, "ebx", 0},
	{7, 0, "ecx", 1 << 4}, // OSPKE mirrors CR4
	{7, 0, "edx", 0},
	{0xd, 1, "eax", 0},
	{0x80000001, 0, "ecx", 1 << 1}, // CmpLegacy: tern's topology
	{0x80000001, 0, "edx", 0},
}

// checkGuestCPUs checks every vCPU's CPUID with checkCPUID.
func checkGuestCPUs(dst, src []kvm.CPUIDEntry2, t *cputemplate.Template, vcpus []vcpuState) error {
	for _, vs := range vcpus {
		if err := checkCPUID(dst, src, t, vs.CPUID); err != nil {
			return fmt.Errorf("vCPU %d: %w", vs.ID, err)
		}
	}
	return nil
}

// checkCPUID reports what the snapshot's guest CPU needs that this host's
// KVM does not offer: a different vendor, or feature flags it lacks. It
// compares like with like: what KVM supported where the snapshot was taken
// (src) against what it supports here (dst). Of the guest's own CPUID
// (what its vCPU reported, which some backends fill with host bits KVM
// never lists as supported) only the bits src supported count, since those
// are the ones tern gave the guest.
//
// With a CPU template t, both hosts are compared as the template shows
// them: a feature the template hides is not needed here, one it shows
// whatever the host has is not missing here. That is what lets a
// templated guest move to a host of another model.
func checkCPUID(dst, src []kvm.CPUIDEntry2, t *cputemplate.Template, guest []kvm.CPUIDEntry2) error {
	if len(guest) == 0 {
		return fmt.Errorf("%w: the vCPU's CPUID is missing, so its CPU cannot be checked against this host", ErrBadSnapshot)
	}
	if len(src) == 0 {
		return fmt.Errorf("%w: the snapshot does not record the CPU features of the host it was taken on", ErrBadSnapshot)
	}
	if t != nil {
		var err error
		if src, err = templatedCPUID(t, src); err != nil {
			return fmt.Errorf("%w: the source host: %w", ErrBadSnapshot, err)
		}
		if dst, err = templatedCPUID(t, dst); err != nil {
			return err
		}
	}
	find := func(es []kvm.CPUIDEntry2, fn, idx uint32) (kvm.CPUIDEntry2, bool) {
		for _, e := range es {
			if e.Function == fn && (e.Index == idx || e.Flags&kvm.CPUIDFlagSignificantIndex == 0) {
				return e, true
			}
		}
		return kvm.CPUIDEntry2{}, false
	}
	reg := func(e kvm.CPUIDEntry2, r string) uint32 {
		switch r {
		case "eax":
			return e.EAX
		case "ebx":
			return e.EBX
		case "ecx":
			return e.ECX
		}
		return e.EDX
	}
	d0, ok1 := find(dst, 0, 0)
	s0, ok2 := find(src, 0, 0)
	if ok1 && ok2 && (d0.EBX != s0.EBX || d0.ECX != s0.ECX || d0.EDX != s0.EDX) {
		return fmt.Errorf("CPU vendor differs: snapshot %q, this host %q", vendor(s0), vendor(d0))
	}
	var missing []string
	for _, w := range cpuidFeatureWords {
		g, ok := find(guest, w.function, w.index)
		if !ok {
			continue
		}
		s, _ := find(src, w.function, w.index)
		d, _ := find(dst, w.function, w.index)
		if lack := reg(g, w.reg) & reg(s, w.reg) &^ reg(d, w.reg) &^ w.dynamic; lack != 0 {
			missing = append(missing, fmt.Sprintf("leaf %#x.%d %s bits %s", w.function, w.index, strings.ToUpper(w.reg), bitList(lack)))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("this host's CPU (as KVM offers it) lacks features the snapshot's guest uses: %s", strings.Join(missing, "; "))
	}
	return nil
}

func vendor(e kvm.CPUIDEntry2) string {
	b := make([]byte, 0, 12)
	for _, r := range []uint32{e.EBX, e.EDX, e.ECX} {
		b = append(b, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
	}
	return string(b)
}

func bitList(x uint32) string {
	var bits []string
	for b := range 32 {
		if x&(1<<b) != 0 {
			bits = append(bits, fmt.Sprint(b))
		}
	}
	return strings.Join(bits, ",")
}
