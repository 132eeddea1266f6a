package vmm

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"time"

	"github.com/ternvm/tern/devices"
	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/migrate/snapshot"
	"github.com/ternvm/tern/mmds"
	"github.com/ternvm/tern/virtio/balloon"
	"github.com/ternvm/tern/virtio/mmio"
	virtionet "github.com/ternvm/tern/virtio/net"
	"github.com/ternvm/tern/virtio/ratelimit"
	"github.com/ternvm/tern/virtio/vsock"
)

// Files of a snapshot directory.
const (
	SnapshotStateFile  = "vmstate"
	SnapshotMemoryFile = "memory"
)

// snapshotConfig is what rebuilding the VM needs (section "config").
type snapshotConfig struct {
	CPUs            int
	MemoryBytes     uint64
	Cmdline         string // as the guest booted with it, for the record
	KernelPath      string // for the record: a restore loads no kernel
	RNG             bool
	RNGRateLimit    *ratelimit.Config `json:",omitempty"`
	Disks           []DiskConfig
	Nets            []virtionet.Config
	Vsock           *vsock.Config
	Balloon         *balloon.Config
	TrackDirtyPages bool
	// HostCPUID is what KVM supported where the snapshot was taken; the
	// vCPUs' own CPUID is in their sections.
	HostCPUID []kvm.CPUIDEntry2
	// CPUTemplate is the template the vCPUs' CPUID and MSRs were made
	// with: a restore or migration keeps it, and checks the host
	// against the templated CPUID rather than the source host's whole.
	CPUTemplate *cpuTemplateRecord `json:",omitempty"`
	// MMDS is the metadata service's configuration; its document is not
	// saved (as in Firecracker): a restore serves the store it is given.
	MMDS *mmds.Config `json:",omitempty"`
}

// vmState is the VM-wide state (section "vm").
type vmState struct {
	// SavedAt is the host's wall clock (Unix ns) when the clock below
	// was read; a restore moves the guest's clocks on by the time since.
	SavedAt   int64
	Clock     kvm.ClockData
	PICMaster irqChipState
	PICSlave  irqChipState
	IOAPIC    irqChipState
	PIT       kvm.PITState2
	Serial    devices.SerialState
	RTC       devices.RTCState
	// I8042 is absent in snapshots from before the keyboard had state;
	// those restore the controller as it starts.
	I8042 *devices.I8042State `json:",omitempty"`
}

// irqChipState is struct kvm_irqchip with its state union as bytes.
type irqChipState struct {
	ChipID uint32
	Chip   []byte
}

func irqChipStateOf(c kvm.IRQChip) irqChipState {
	return irqChipState{ChipID: c.ChipID, Chip: append([]byte(nil), c.Chip[:]...)}
}

func (s irqChipState) kvm() (kvm.IRQChip, error) {
	c := kvm.IRQChip{ChipID: s.ChipID}
	if len(s.Chip) != len(c.Chip) {
		return c, fmt.Errorf("%w: interrupt controller %d: %d bytes saved, its state is %d", ErrBadSnapshot, s.ChipID, len(s.Chip), len(c.Chip))
	}
	copy(c.Chip[:], s.Chip)
	return c, nil
}

// deviceState is one virtio device (section "device/NAME").
type deviceState struct {
	Name      string
	Addr      uint64
	GSI       uint32
	Transport mmio.State
	Device    json.RawMessage // the device type's own State
}

// SnapshotOptions say what Snapshot writes.
type SnapshotOptions struct {
	// Dir receives SnapshotStateFile and SnapshotMemoryFile; it is
	// created if missing.
	Dir string
	// Diff writes only the pages changed since this VM's previous
	// snapshot (or since it was restored); the VM must track dirty pages.
	Diff bool
}

// SnapshotResult describes what Snapshot wrote.
type SnapshotResult struct {
	Dir         string
	Kind        string // "full" or "diff"
	StateBytes  int64
	Memory      snapshot.MemoryStats
	Took        time.Duration
	MemoryTook  time.Duration
	VCPUsTook   time.Duration
	MemoryPath  string
	StatePath   string
	MemoryBytes uint64
	// StreamBytes is the whole stream SnapshotTo wrote (0 for Snapshot).
	StreamBytes uint64
}

// ErrNoDirtyTracking is returned for a diff snapshot of a VM that does not
// track dirty pages.
var ErrNoDirtyTracking = errors.New("diff snapshots need dirty page tracking (start the VM with it)")

// Snapshot writes the paused VM's whole state to opts.Dir: the memory file
// first, then the state file, which is renamed into place last, so a
// directory with a state file holds a complete snapshot. The VM stays
// paused.
func (v *VM) Snapshot(opts SnapshotOptions) (SnapshotResult, error) {
	v.lifeMu.Lock()
	defer v.lifeMu.Unlock()
	start := time.Now()
	res := SnapshotResult{Dir: opts.Dir, Kind: "full"}
	if opts.Diff {
		res.Kind = "diff"
	}
	if !v.life.running {
		return res, ErrNotRunning
	}
	if v.life.migrating {
		return res, ErrMigrating
	}
	if !v.life.paused {
		return res, ErrNotPaused
	}
	if opts.Dir == "" {
		return res, fmt.Errorf("snapshot: no directory given")
	}
	if opts.Diff && !v.dirtyLog {
		return res, ErrNoDirtyTracking
	}
	res.StatePath = filepath.Join(opts.Dir, SnapshotStateFile)
	res.MemoryPath = filepath.Join(opts.Dir, SnapshotMemoryFile)
	if v.mem.BackedBy(res.MemoryPath) {
		return res, fmt.Errorf("snapshot: %s is the file this VM's memory is mapped from; write the snapshot elsewhere", res.MemoryPath)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return res, fmt.Errorf("snapshot: %w", err)
	}

	vcpuStart := time.Now()
	st, err := v.captureState()
	if err != nil {
		return res, err
	}
	res.VCPUsTook = time.Since(vcpuStart)

	memStart := time.Now()
	info, err := v.writeMemory(res.MemoryPath, opts.Diff)
	if err != nil {
		return res, err
	}
	res.MemoryTook = time.Since(memStart)
	res.Memory = info.Stats
	res.MemoryBytes = info.TotalBytes()
	if err := st.PutJSON("memory", info); err != nil {
		return res, err
	}
	if err := snapshot.WriteStateFile(res.StatePath, st.Sections()); err != nil {
		return res, err
	}
	if fi, err := os.Stat(res.StatePath); err == nil {
		res.StateBytes = fi.Size()
	}
	res.Took = time.Since(start)
	v.log.WithFields(map[string]any{
		"dir": opts.Dir, "kind": res.Kind, "took": res.Took.String(), "memory-took": res.MemoryTook.String(),
		"stored-bytes": res.Memory.StoredBytes, "total-bytes": res.MemoryBytes,
	}).Info("snapshot written")
	return res, nil
}

// captureState gathers the paused VM's state but memory as snapshot
// sections: the configuration, the VM-wide state (clocks last), every vCPU
// (on its own thread) and every virtio device. A snapshot adds the memory
// section; a migration sends the sections as they are.
func (v *VM) captureState() (*snapshot.State, error) {
	st, _ := snapshot.NewState(nil)
	cfg := v.snapshotConfig()
	if err := st.PutJSON("config", cfg); err != nil {
		return nil, err
	}
	vms, err := v.saveVMState()
	if err != nil {
		return nil, err
	}
	msrs, err := v.sys.MSRIndexList()
	if err != nil {
		return nil, fmt.Errorf("snapshot: MSR index list: %w", err)
	}
	v.vcpuMu.Lock()
	cs := v.vcpus
	v.vcpuMu.Unlock()
	for _, c := range cs {
		var vs vcpuState
		err := c.onThread(func(c *vcpu) error {
			var err error
			vs, err = c.saveState(msrs)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		if err := st.PutJSON(fmt.Sprintf("vcpu/%d", c.id), vs); err != nil {
			return nil, err
		}
	}
	// The clock last, closest to the moment the guest stopped counting.
	if vms.Clock, err = v.vm.GetClock(); err != nil {
		return nil, fmt.Errorf("snapshot: get kvmclock: %w", err)
	}
	vms.SavedAt = time.Now().UnixNano()
	if err := st.PutJSON("vm", vms); err != nil {
		return nil, err
	}
	for _, s := range v.plat.virtio {
		ds, err := s.save()
		if err != nil {
			return nil, fmt.Errorf("snapshot: device %s: %w", s.name, err)
		}
		if err := st.PutJSON("device/"+s.name, ds); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (v *VM) snapshotConfig() snapshotConfig {
	// The rate limits are saved as they are now, changes through the
	// API included.
	c := v.plat.liveLimits(v.cfg)
	return snapshotConfig{
		CPUs: c.CPUs, MemoryBytes: c.MemoryBytes, Cmdline: c.Cmdline, KernelPath: c.KernelPath,
		RNG: c.RNG, RNGRateLimit: c.RNGRateLimit, Disks: c.Disks, Nets: c.Nets, Vsock: c.Vsock, Balloon: c.Balloon,
		TrackDirtyPages: v.dirtyLog, HostCPUID: v.cpuid, CPUTemplate: recordTemplate(v.cfg.CPUTemplate),
		MMDS: mmdsRecord(v.cfg.MMDS),
	}
}

func (v *VM) saveVMState() (vmState, error) {
	var st vmState
	var err error
	for _, c := range []struct {
		id   uint32
		name string
		dst  *irqChipState
	}{{kvm.IRQChipPICMaster, "PIC master", &st.PICMaster}, {kvm.IRQChipPICSlave, "PIC slave", &st.PICSlave}, {kvm.IRQChipIOAPIC, "IOAPIC", &st.IOAPIC}} {
		chip, err := v.vm.GetIRQChip(c.id)
		if err != nil {
			return st, fmt.Errorf("snapshot: %s: %w", c.name, err)
		}
		*c.dst = irqChipStateOf(chip)
	}
	if st.PIT, err = v.vm.GetPIT2(); err != nil {
		return st, fmt.Errorf("snapshot: PIT: %w", err)
	}
	st.Serial = v.plat.serial.State()
	st.RTC = v.plat.rtc.State()
	kbd := v.plat.i8042.State()
	st.I8042 = &kbd
	return st, nil
}

// writeMemory writes guest RAM to path: every non-zero page, or for a diff
// the pages dirtied since the previous snapshot. Either way the dirty
// record starts afresh, so the next diff is relative to this snapshot.
func (v *VM) writeMemory(path string, diff bool) (snapshot.MemoryInfo, error) {
	info := snapshot.MemoryInfo{Kind: "full", PageSize: snapshot.PageSize}
	var regions [][]byte
	for _, r := range v.mem.Regions() {
		info.Regions = append(info.Regions, snapshot.MemoryRegion{GPA: r.GPA, Size: r.Size})
		regions = append(regions, r.Bytes())
	}
	var dirty snapshot.Bitmap
	if v.dirtyLog {
		var err error
		if dirty, err = v.takeDirty(); err != nil {
			return info, err
		}
	}
	// A fresh file renamed into place: nothing planted in the directory
	// (a link to another file, a FIFO) is opened or written through.
	pending, err := createSnapshotFile(path)
	if err != nil {
		return info, fmt.Errorf("snapshot: memory file: %w", err)
	}
	defer pending.Abort()
	f := pending.File()
	if diff {
		info.Kind = "diff"
		info.Dirty = dirty
		info.Stats, err = snapshot.WriteMemoryDiff(f, regions, dirty)
	} else {
		// Pages the guest never touched need not even be read.
		var populated []uint64
		if populated, err = v.mem.Populated(); err != nil {
			return info, fmt.Errorf("snapshot: %w", err)
		}
		info.Stats, err = snapshot.WriteMemorySparse(f, regions, snapshot.Bitmap(populated))
	}
	if err != nil {
		return info, fmt.Errorf("snapshot: write memory file %s: %w", path, err)
	}
	if err := pending.Commit(); err != nil {
		return info, fmt.Errorf("snapshot: memory file %s: %w", path, err)
	}
	return info, nil
}

// takeDirty collects and clears the pages written since the last call:
// KVM's dirty log (the guest's writes) and the pages tern's devices were
// handed (their writes, which KVM does not see).
func (v *VM) takeDirty() (snapshot.Bitmap, error) {
	total := v.mem.Size()
	out := snapshot.NewBitmap(total)
	if host := v.mem.TakeHostDirty(); host != nil {
		copy(out, host)
	}
	if v.pendingDirty != nil {
		// Pages a failed migration took from the log: still changed
		// since the previous snapshot.
		_ = out.Or(v.pendingDirty)
		v.pendingDirty = nil
	}
	for i, r := range v.mem.Regions() {
		words := make([]uint64, kvm.DirtyBitmapWords(r.Size))
		if err := v.vm.GetDirtyLog(uint32(i), words); err != nil {
			return nil, fmt.Errorf("snapshot: dirty log of RAM at %#x: %w", r.GPA, err)
		}
		for w, word := range words {
			for word != 0 {
				b := uint64(bits.TrailingZeros64(word))
				word &^= 1 << b
				out.Set(r.FirstPage + uint64(w)*64 + b)
			}
		}
	}
	return out, nil
}

// save captures the device and its transport; the VM is paused.
func (s *virtioSlot) save() (deviceState, error) {
	ds := deviceState{Name: s.name, Addr: s.addr, GSI: s.gsi, Transport: s.transport.State()}
	dev, err := deviceStateOf(s.transport.Device())
	if err != nil {
		return ds, err
	}
	raw, err := json.Marshal(dev)
	if err != nil {
		return ds, err
	}
	ds.Device = raw
	return ds, nil
}
