package vmm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/boot/acpi"
	"github.com/ternvm/tern/boot/mptable"
	"github.com/ternvm/tern/internal/cpuidcache"
	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/migrate/snapshot"
	"github.com/ternvm/tern/virtio/block"
	"github.com/ternvm/tern/vmm/memory"
)

// requiredCaps are the KVM capabilities tern cannot run without.
var requiredCaps = []kvm.Cap{
	kvm.CapIRQChip, kvm.CapUserMemory, kvm.CapSetTSSAddr, kvm.CapExtCPUID,
	kvm.CapPIT2, kvm.CapIRQFD, kvm.CapIOEventFD, kvm.CapImmediateExit,
	kvm.CapMPState, kvm.CapVCPUEvents, kvm.CapDebugRegs, kvm.CapAdjustClock,
}

// StopReason says why a VM stopped running.
type StopReason int

const (
	StopPoweroff    StopReason = iota + 1 // the guest powered off
	StopReset                             // the guest asked for a reset (reboot)
	StopTripleFault                       // a vCPU shut down (triple fault), which resets a PC
	StopRequested                         // the host asked (context cancelled, Stop)
	StopMigrated                          // the guest runs on another host now
	// StopShutdownTimeout: Shutdown asked the guest to shut down, it
	// did not within the deadline, and the host stopped it.
	StopShutdownTimeout
)

func (r StopReason) String() string {
	switch r {
	case StopPoweroff:
		return "guest powered off"
	case StopReset:
		return "guest requested reset"
	case StopTripleFault:
		return "guest triple-faulted"
	case StopRequested:
		return "stop requested by the host"
	case StopMigrated:
		return "guest migrated to another host"
	case StopShutdownTimeout:
		return "guest did not shut down in time; stopped by the host"
	}
	return fmt.Sprintf("StopReason(%d)", int(r))
}

// VM is a built microVM. New builds it; Run runs it until it stops; Close
// releases what it holds.
type VM struct {
	cfg    Config
	log    logrus.FieldLogger
	sys    *kvm.System
	vm     *kvm.VM
	mem    *memory.Memory
	kernel *boot.Kernel
	boot   boot.CPUState
	cpuid  []kvm.CPUIDEntry2 // what KVM supports on this host
	// guestCPUIDs waits for cpuid with the CPU template applied, what a
	// booting vCPU's CPUID is shaped from (nil in a restored or incoming
	// VM, whose vCPUs keep their saved CPUID).
	guestCPUIDs func() ([]kvm.CPUIDEntry2, error)
	mmap        int

	plat *platform

	stopOnce   sync.Once
	stopReason StopReason
	stopErr    error
	stopped    chan struct{}

	vcpuMu sync.Mutex // guards vcpus and the channels below, set by spawnVCPUs
	vcpus  []*vcpu
	// configure lets spawned vCPUs configure themselves (true) or end
	// (false), and ready brings their answers; each is nil once used.
	// released is set once the threads were given their order.
	configure chan bool
	ready     chan error
	released  bool
	started   bool // Start ran (guarded by lifeMu)

	lifeMu  sync.Mutex // serialises Pause, Resume and Snapshot; guards life
	life    pauseState
	parkMu  sync.Mutex  // guards life.resume and life.parked for the vCPUs
	pausing atomic.Bool // vCPUs park at their next interrupted exit

	restored *restoredState // set by Restore: what the vCPUs start from
	dirtyLog bool           // memory slots log dirty pages (diff snapshots)
	// pendingDirty holds pages a failed migration took from the dirty
	// log of a VM that tracks them for diff snapshots.
	pendingDirty snapshot.Bitmap

	// handedOver are the disks a migration unlocked for its destination
	// (guarded by lifeMu); the guest runs here only once they are
	// locked again.
	handedOver []*block.Device

	throttle throttle   // auto-converge: vCPUs sleep part of their time
	mig      migrations // the outgoing migration, if any

	lifecycle // State and the events
}

// New builds a VM from cfg: it opens KVM, maps guest memory, loads the
// kernel, initrd and boot tables, and creates the devices. No guest code
// runs until Run.
func New(cfg Config) (_ *VM, err error) {
	began := time.Now()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	v := newVM(cfg)
	var cpuid func() ([]kvm.CPUIDEntry2, error)
	defer func() {
		if err != nil {
			if cpuid != nil {
				cpuid() // its ioctl must end before the KVM fd closes
			}
			v.Close()
		}
	}()
	// Where start-up time goes, for the debug log.
	steps := newStepTimer(began)
	steps.mark("validate")
	if err := checkHostMemory(cfg.MemoryBytes); err != nil {
		return nil, err
	}
	if cpuid, err = v.openHost(true); err != nil {
		return nil, err
	}
	steps.mark("open-kvm")
	v.guestCPUIDs = sync.OnceValues(func() ([]kvm.CPUIDEntry2, error) {
		host, err := cpuid()
		if err != nil {
			return nil, err
		}
		if err := checkTemplateHost(cfg.CPUTemplate, v.sys, host); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		guest, err := templatedCPUID(cfg.CPUTemplate, host)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		return guest, nil
	})
	if err := v.createVM(); err != nil {
		return nil, err
	}
	steps.mark("create-vm")
	v.dirtyLog = cfg.TrackDirtyPages
	prepared := v.mem != nil // PrepareHostFor made the RAM and the irqchip
	if !prepared {
		if v.mem, err = memory.New(cfg.MemoryBytes, memory.Options{HugePages: cfg.HugePages}); err != nil {
			return nil, err
		}
		if err := v.registerMemory(); err != nil {
			return nil, err
		}
	}
	steps.mark("memory")
	if !prepared {
		if err := v.createIRQChip(); err != nil {
			return nil, err
		}
	}
	// The vCPUs' threads create them while this one creates the PIT and
	// builds the rest: a vCPU needs the interrupt controllers, not the
	// PIT, which only the guest's first instruction does. Creating the
	// PIT starts a kernel thread (about 0.13 ms here), as long as it takes
	// a new vCPU thread to start.
	v.spawnVCPUs()
	if err := v.createPIT(); err != nil {
		return nil, err
	}
	steps.mark("irqchip")
	// Devices come first: the ACPI tables loadGuest writes describe them.
	if v.plat, err = newPlatform(v); err != nil {
		return nil, err
	}
	steps.mark("devices")
	if err := v.loadGuest(); err != nil {
		return nil, err
	}
	steps.mark("load-guest")
	if _, err := v.guestCPUIDs(); err != nil {
		return nil, err
	}
	v.cpuid, _ = cpuid()
	steps.mark("cpuid-wait")
	// The boot state is final: the vCPUs take it while the caller goes
	// on to Start.
	v.configureVCPUs()
	v.log.WithFields(logrus.Fields{"since_start": v.since().String(), "steps": steps.String()}).Debug("VM built")
	return v, nil
}

// supportedCPUIDAsync asks for sys's supported CPUID (hostCPUID) on
// another goroutine; the function returned waits for the answer. Its
// caller must call it (on every path, errors included) before closing sys.
func (v *VM) supportedCPUIDAsync(sys *kvm.System) func() ([]kvm.CPUIDEntry2, error) {
	type answer struct {
		ids []kvm.CPUIDEntry2
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		ids, err := v.hostCPUID(sys)
		ch <- answer{ids, err}
	}()
	return sync.OnceValues(func() ([]kvm.CPUIDEntry2, error) {
		a := <-ch
		return a.ids, a.err
	})
}

// hostCPUID is KVM_GET_SUPPORTED_CPUID of sys, read from the host cache
// where it holds the answer (Config.HostCacheDir).
func (v *VM) hostCPUID(sys *kvm.System) ([]kvm.CPUIDEntry2, error) {
	a, err := cpuidcache.Supported(sys, v.cfg.HostCacheDir)
	if err != nil {
		return nil, fmt.Errorf("get supported CPUID: %w", err)
	}
	log := v.log.WithField("dir", v.cfg.HostCacheDir)
	switch {
	case a.CacheErr == nil:
		log.WithField("from", a.Source.String()).Debug("supported CPUID")
	case errors.Is(a.CacheErr, cpuidcache.ErrUnsafe):
		log.WithError(a.CacheErr).Warn("host cache not used: KVM's supported CPUID asked instead")
	default:
		log.WithError(a.CacheErr).Debug("host cache not used: KVM's supported CPUID asked instead")
	}
	return a.IDs, nil
}

// stepTimer notes how long each step of a sequence took.
type stepTimer struct {
	last  time.Time
	steps []string
}

func newStepTimer(start time.Time) *stepTimer { return &stepTimer{last: start} }

func (s *stepTimer) mark(name string) { s.last = s.markAt(name, time.Now()) }

// markAt notes a step that ended at t and returns t.
func (s *stepTimer) markAt(name string, t time.Time) time.Time {
	s.steps = append(s.steps, name+"="+t.Sub(s.last).Round(time.Microsecond).String())
	return t
}

func (s *stepTimer) String() string { return strings.Join(s.steps, ",") }

// createVM makes the KVM VM with what every VM has: the TSS and identity
// map pages. The in-kernel interrupt controllers and PIT come later, from
// createIRQChips, once the guest RAM is registered.
func (v *VM) createVM() error {
	if v.vm == nil {
		var err error
		if v.vm, v.mmap, err = createKVMVM(v.sys); err != nil {
			return err
		}
	}
	if n, err := v.sys.CheckExtension(kvm.CapMaxVCPUs); err == nil && n > 0 && v.cfg.CPUs > n {
		return fmt.Errorf("%w: %d vCPUs requested, this host's KVM allows %d", ErrInvalidConfig, v.cfg.CPUs, n)
	}
	return nil
}

// createIRQChips makes the in-kernel interrupt controllers and PIT. It
// comes after registerMemory, on purpose: on the development machines'
// KVM a first memory slot registered after KVM_CREATE_IRQCHIP waits 4-12
// ms (asleep, for a grace period the irqchip's set-up started), while
// registered before it takes about 0.1 ms, and the irqchip and PIT cost
// no more after it (measured with a 128 MiB slot). KVM allows either
// order; only vCPUs must come after the irqchip.
func (v *VM) createIRQChips() error {
	if err := v.createIRQChip(); err != nil {
		return err
	}
	return v.createPIT()
}

// createIRQChip makes the in-kernel PIC, IOAPIC and LAPICs, which vCPUs
// must be created after.
func (v *VM) createIRQChip() error { return createIRQChip(v.vm) }

func createIRQChip(vm *kvm.VM) error {
	if err := vm.CreateIRQChip(); err != nil {
		return fmt.Errorf("create in-kernel irqchip: %w", err)
	}
	return nil
}

// createPIT makes the in-kernel PIT, which must exist before the guest's
// first instruction.
func (v *VM) createPIT() error {
	if err := v.vm.CreatePIT2(kvm.PITSpeakerDummy); err != nil {
		return fmt.Errorf("create in-kernel PIT: %w", err)
	}
	return nil
}

// registerMemory gives KVM the guest RAM, logging dirty pages when the VM
// tracks them for diff snapshots (and then also the pages tern's devices
// touch, which KVM does not see).
func (v *VM) registerMemory() error { return registerRAM(v.vm, v.mem, v.dirtyLog) }

func registerRAM(vm *kvm.VM, mem *memory.Memory, dirtyLog bool) error {
	var flags uint32
	if dirtyLog {
		flags = kvm.MemLogDirtyPages
		mem.TrackHostAccess(true)
	}
	for i, r := range mem.Regions() {
		err := vm.SetUserMemoryRegion(kvm.UserspaceMemoryRegion{
			Slot: uint32(i), Flags: flags, GuestPhysAddr: r.GPA, MemorySize: r.Size, UserspaceAddr: r.HostAddr(),
		})
		if err != nil {
			return fmt.Errorf("register guest RAM at %#x with KVM: %w", r.GPA, err)
		}
	}
	return nil
}

func openKVM(path string) (*kvm.System, error) {
	sys, err := kvm.Open(path)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("%s does not exist: this host offers no KVM (is the kvm module loaded? `tern check` tells more): %w", path, err)
		case errors.Is(err, os.ErrPermission):
			return nil, fmt.Errorf("no permission to open %s (add the user to the kvm group or run as root): %w", path, err)
		}
		return nil, err
	}
	if v, err := sys.APIVersion(); err != nil {
		sys.Close()
		return nil, fmt.Errorf("KVM API version: %w", err)
	} else if v != 12 {
		sys.Close()
		return nil, fmt.Errorf("KVM API version is %d; tern needs 12", v)
	}
	if err := sys.RequireCaps(requiredCaps...); err != nil {
		sys.Close()
		return nil, err
	}
	return sys, nil
}

// loadGuest writes the kernel, initrd, command line and boot tables into
// guest memory and computes the boot vCPU's entry state.
func (v *VM) loadGuest() error {
	kf, err := os.Open(v.cfg.KernelPath)
	if err != nil {
		return fmt.Errorf("open kernel: %w", err)
	}
	defer kf.Close()
	st, err := kf.Stat()
	if err != nil {
		return fmt.Errorf("stat kernel: %w", err)
	}
	lowEnd := v.mem.LowEnd()
	k, err := boot.LoadKernel(v.mem, kf, st.Size(), lowEnd, v.cfg.PreferPVH)
	if err != nil {
		return fmt.Errorf("load kernel %s: %w", v.cfg.KernelPath, err)
	}
	v.kernel = k
	if extra := rootCmdline(v.cfg.Disks); extra != "" {
		v.cfg.Cmdline += " " + extra
	}
	if devs := v.plat.acpiVirtioDevices(); len(devs) > 0 && acpiDisabled(v.cfg.Cmdline) {
		v.cfg.Cmdline += " " + virtioCmdline(devs)
	}
	params := boot.BootParams{Cmdline: v.cfg.Cmdline, E820: boot.E820Map(v.cfg.MemoryBytes), RSDPAddr: boot.ACPITablesAddr}
	if v.cfg.InitrdPath != "" {
		f, err := os.Open(v.cfg.InitrdPath)
		if err != nil {
			return fmt.Errorf("open initrd: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("stat initrd: %w", err)
		}
		addr, err := boot.LoadInitrd(v.mem, f, st.Size(), k, lowEnd)
		if err != nil {
			return fmt.Errorf("load initrd %s: %w", v.cfg.InitrdPath, err)
		}
		params.InitrdAddr, params.InitrdSize = addr, uint64(st.Size())
	}
	if err := boot.WriteCmdline(v.mem, v.cfg.Cmdline, boot.CmdlineMaxSize); err != nil {
		return err
	}
	mp, err := mptable.Build(v.cfg.CPUs, boot.MPTableAddr)
	if err != nil {
		return fmt.Errorf("build MP table: %w", err)
	}
	if _, err := v.mem.WriteAt(mp, boot.MPTableAddr); err != nil {
		return fmt.Errorf("write MP table: %w", err)
	}
	tables, err := acpi.Build(acpi.Config{CPUs: v.cfg.CPUs, WithSerial: true, WithRTC: true, WithI8042: true, VirtioDevices: v.plat.acpiVirtioDevices()}, boot.ACPITablesAddr)
	if err != nil {
		return fmt.Errorf("build ACPI tables: %w", err)
	}
	if _, err := v.mem.WriteAt(tables, boot.ACPITablesAddr); err != nil {
		return fmt.Errorf("write ACPI tables: %w", err)
	}
	if err := boot.WriteResetVector(v.mem); err != nil {
		return err
	}
	switch k.Protocol {
	case boot.ProtocolPVH:
		info, err := boot.WritePVHStartInfo(v.mem, params)
		if err != nil {
			return fmt.Errorf("write PVH start info: %w", err)
		}
		v.boot, err = boot.SetupPVH(v.mem, k.Entry, info)
		if err != nil {
			return fmt.Errorf("set up PVH entry: %w", err)
		}
	default:
		if err := boot.WriteZeroPage(v.mem, k, params); err != nil {
			return fmt.Errorf("write zero page: %w", err)
		}
		v.boot, err = boot.SetupLongMode(v.mem, k.Entry)
		if err != nil {
			return fmt.Errorf("set up long mode: %w", err)
		}
	}
	v.log.WithFields(logrus.Fields{"format": k.Format, "entry": fmt.Sprintf("%#x", k.Entry), "protocol": k.Protocol.String()}).Info("kernel loaded")
	return nil
}

// Run starts the guest (unless Start already did) and blocks until it
// stops: see Start and Wait.
func (v *VM) Run(ctx context.Context) (StopReason, error) {
	if err := v.Start(); err != nil {
		return 0, err
	}
	return v.Wait(ctx)
}

// Start creates the vCPUs (unless a migration already did), lets them run
// and starts the devices; it returns once the guest runs. Starting a VM a
// second time does nothing.
func (v *VM) Start() error {
	v.lifeMu.Lock()
	defer v.lifeMu.Unlock()
	if v.started {
		return nil
	}
	l := &launch{steps: newStepTimer(time.Now()), done: make(chan launched, 1)}
	l.ready, l.n = v.takeVCPUResults()
	if !v.releaseVCPUs(vcpuOrder{run: true, launch: l}) {
		return fmt.Errorf("%w: it was closed before it started", ErrNotRunning)
	}
	r := <-l.done
	if r.err != nil {
		v.requestStop(0, r.err)
		v.joinVCPUs()
		return r.err
	}
	v.logFirstRun(r.at, l.steps)
	v.plat.start()
	v.started = true
	v.life.running = true
	return nil
}

// Wait blocks until the started guest stops (poweroff, reset, triple
// fault, migrated away), ctx is cancelled, or a vCPU fails. A
// guest-initiated stop returns its reason and a nil error.
func (v *VM) Wait(ctx context.Context) (StopReason, error) {
	select {
	case <-ctx.Done():
		v.requestStop(StopRequested, nil)
	case <-v.stopped:
	}
	v.joinVCPUs()
	if v.plat.console != nil {
		v.plat.console.Flush(consoleFlushTimeout)
	}
	v.lifeMu.Lock()
	v.life.running = false
	v.lifeMu.Unlock()
	return v.stopReason, v.stopErr
}

// Stop asks a running VM to stop; Run returns StopRequested.
func (v *VM) Stop() { v.requestStop(StopRequested, nil) }

// requestStop records the first reason to stop and kicks every vCPU out of
// the guest. Later calls are ignored.
func (v *VM) requestStop(reason StopReason, err error) {
	v.stopOnce.Do(func() {
		v.stopReason, v.stopErr = reason, err
		close(v.stopped)
		// A VM that never ran (closed unstarted, a failed Start or
		// incoming migration) has nothing to report.
		if State(v.state.Load()) != StateCreated {
			v.emit(Event{Kind: EventStopped, Reason: reason, Err: err})
		}
		v.vcpuMu.Lock()
		cs := v.vcpus
		v.vcpuMu.Unlock()
		for _, c := range cs {
			c.kick()
		}
	})
}

// Close releases guest memory, devices and KVM handles.
func (v *VM) Close() error {
	// vCPU threads must be gone before their VM is: a stop ends running
	// ones, and vCPUs that were created but never let run (a failed
	// incoming migration) are told to end.
	v.requestStop(StopRequested, nil)
	v.releaseVCPUs(vcpuOrder{})
	v.joinVCPUs()
	v.events.close()
	var errs []error
	if v.plat != nil {
		errs = append(errs, v.plat.close())
	}
	if v.vm != nil {
		errs = append(errs, v.vm.Close())
	}
	if v.mem != nil {
		errs = append(errs, v.mem.Close())
	}
	if v.sys != nil {
		errs = append(errs, v.sys.Close())
	}
	return errors.Join(errs...)
}

func (v *VM) since() time.Duration { return time.Since(v.cfg.Started) }

// RequiredCaps lists the KVM capabilities New insists on.
func RequiredCaps() []kvm.Cap { return append([]kvm.Cap(nil), requiredCaps...) }
