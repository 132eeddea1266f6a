package vmm

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/migrate/snapshot"
	"github.com/ternvm/tern/mmds"
	"github.com/ternvm/tern/virtio/block"
	"github.com/ternvm/tern/vmm/memory"
)

// ErrNoMigration is returned when asking about or cancelling a migration
// that never started.
var ErrNoMigration = fmt.Errorf("no migration of this VM has been started: %w", ErrNotFound)

// ErrNotFound is wrapped by the errors for a device or a migration the VM
// does not have (ErrNoBalloon, ErrNoDevice, ErrNoMigration), so that a
// layer above (the HTTP API answers 404) tells them from bad requests with
// one errors.Is.
var ErrNotFound = errors.New("not found")

// migrationConfig is the handshake's description of the VM: what the
// destination checks before any page is copied.
type migrationConfig struct {
	Config snapshotConfig
	// CPUIDs is each vCPU's CPUID as the guest sees it.
	CPUIDs [][]kvm.CPUIDEntry2
	// TSCKHz is the rate of the guest's TSC (0: unknown).
	TSCKHz uint32 `json:",omitempty"`
}

// migrations is the VM's outgoing migration, for status and cancel.
type migrations struct {
	mu      sync.Mutex
	started bool
	active  bool
	status  migrate.Status
	cancel  context.CancelFunc
}

// Migrate moves the running guest over conn to a tern receiving it (see
// Receive), and returns once the destination runs it: the guest here is
// then stopped (Wait returns StopMigrated). If the migration fails before
// the source commits, the guest runs on here as it was. If the connection
// dies after the commit, the error wraps migrate.ErrOutcomeUnknown and the
// guest stays paused here: it may be running at the destination, and only
// an operator who can ask there should resume it. Pause, Resume and
// Snapshot are refused while a migration is under way.
func (v *VM) Migrate(ctx context.Context, conn io.ReadWriter, opts migrate.SendOptions) (migrate.Status, error) {
	src, err := v.beginMigration()
	if err != nil {
		return migrate.Status{Phase: migrate.PhaseFailed, Error: err.Error()}, err
	}
	return v.runMigration(ctx, conn, src, opts)
}

// beginMigration marks the VM as migrating, so that nothing else pauses,
// resumes or snapshots it, and makes its status "setup".
func (v *VM) beginMigration() (*migrationSource, error) {
	v.lifeMu.Lock()
	defer v.lifeMu.Unlock()
	switch {
	case !v.life.running:
		return nil, ErrNotRunning
	case v.life.migrating:
		return nil, ErrMigrating
	}
	v.life.migrating = true
	v.migratingNow.Store(true)
	v.mig.mu.Lock()
	v.mig.started, v.mig.active, v.mig.cancel = true, true, func() {}
	v.mig.status = migrate.Status{Phase: migrate.PhaseSetup, TotalBytes: v.mem.Size()}
	v.mig.mu.Unlock()
	return &migrationSource{v: v, wasPaused: v.life.paused}, nil
}

// runMigration runs a migration beginMigration started, and ends it.
func (v *VM) runMigration(ctx context.Context, conn io.ReadWriter, src *migrationSource, opts migrate.SendOptions) (migrate.Status, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v.mig.mu.Lock()
	v.mig.cancel = cancel
	v.mig.mu.Unlock()

	user := opts.Progress
	lastRound := -1
	opts.Progress = func(s migrate.Status) {
		v.mig.mu.Lock()
		v.mig.status = s
		v.mig.mu.Unlock()
		if s.Round != lastRound || s.Phase != migrate.PhasePreCopy {
			lastRound = s.Round
			v.log.WithFields(logrus.Fields{
				"phase": s.Phase, "round": s.Round, "sent-bytes": s.BytesTransferred, "remaining-bytes": s.RemainingBytes,
				"bandwidth": s.Bandwidth, "dirty-rate": s.DirtyRate, "throttle": s.ThrottlePercent,
				"expected-downtime-ms": fmt.Sprintf("%.2f", s.ExpectedDowntimeMS),
			}).Info("migration progress")
		}
		if user != nil {
			user(s)
		}
	}
	src.withDisks = opts.WithDisks
	st, err := migrate.Send(ctx, conn, src, opts)
	v.endMigration(st, err)
	return st, err
}

// endMigration records how the migration ended and, when the guest now
// runs at the destination, stops it here.
func (v *VM) endMigration(st migrate.Status, err error) {
	v.mig.mu.Lock()
	v.mig.status, v.mig.active, v.mig.cancel = st, false, nil
	v.mig.mu.Unlock()
	v.lifeMu.Lock()
	v.life.migrating = false
	v.migratingNow.Store(false)
	v.lifeMu.Unlock()
	fields := logrus.Fields{"total-ms": fmt.Sprintf("%.1f", st.TotalTimeMS), "downtime-ms": fmt.Sprintf("%.2f", st.DowntimeMS), "sent-bytes": st.BytesTransferred, "rounds": st.Round}
	switch {
	case err == nil:
		v.log.WithFields(fields).Info("guest migrated: the destination runs it; stopping here")
		v.requestStop(StopMigrated, nil)
	case errors.Is(err, migrate.ErrOutcomeUnknown):
		v.log.WithFields(fields).WithError(err).Error("migration outcome unknown: the guest stays paused here; check the destination before resuming it")
	default:
		v.log.WithFields(fields).WithError(err).Warn("migration failed; the guest runs on here")
	}
}

// MigrationStatus reports the outgoing migration under way or the last
// one to end.
func (v *VM) MigrationStatus() (migrate.Status, error) {
	v.mig.mu.Lock()
	defer v.mig.mu.Unlock()
	if !v.mig.started {
		return migrate.Status{}, ErrNoMigration
	}
	return v.mig.status, nil
}

// CancelMigration cancels the migration under way; the guest runs on here.
func (v *VM) CancelMigration() error {
	v.mig.mu.Lock()
	defer v.mig.mu.Unlock()
	if !v.mig.active {
		return fmt.Errorf("cancel: %w", errNoActiveMigration)
	}
	v.mig.cancel()
	return nil
}

var errNoActiveMigration = errors.New("no migration is under way")

// migrationSource is the running VM as migrate.Send drives it.
type migrationSource struct {
	v         *VM
	wasPaused bool // the user had paused the guest: it stays paused after a failure
	// enabled: dirty logging was turned on for the migration (the VM
	// did not track dirty pages itself).
	enabled bool
	// taken, for a VM that tracks dirty pages for diff snapshots, is
	// what the migration took from its log, given back on failure.
	taken snapshot.Bitmap
	// withDisks: the disks are streamed (migrate.SendOptions.WithDisks),
	// so the destination has its own copies and this side keeps its
	// images locked; disks are the devices streamed.
	withDisks bool
	disks     []*block.Device
}

func (s *migrationSource) Hello() (migrate.Hello, error) {
	v := s.v
	mc := migrationConfig{Config: v.snapshotConfig()}
	v.vcpuMu.Lock()
	for _, c := range v.vcpus {
		mc.CPUIDs = append(mc.CPUIDs, c.cpuid)
	}
	if len(v.vcpus) > 0 {
		mc.TSCKHz = v.vcpus[0].tscKHz
	}
	v.vcpuMu.Unlock()
	raw, err := json.Marshal(mc)
	if err != nil {
		return migrate.Hello{}, err
	}
	h := migrate.Hello{Config: raw}
	for _, r := range v.mem.Regions() {
		h.Regions = append(h.Regions, snapshot.MemoryRegion{GPA: r.GPA, Size: r.Size})
	}
	return h, nil
}

func (s *migrationSource) Regions() [][]byte {
	var out [][]byte
	for _, r := range s.v.mem.Regions() {
		out = append(out, r.Bytes())
	}
	return out
}

func (s *migrationSource) StartDirtyLog() (snapshot.Bitmap, error) {
	v := s.v
	if v.dirtyLog {
		// The log so far belongs to the next diff snapshot: keep it.
		old, err := v.takeDirty()
		if err != nil {
			return nil, err
		}
		s.taken = old
	} else {
		if err := v.setDirtyLog(true); err != nil {
			return nil, err
		}
		s.enabled = true
	}
	// After the log is on: a page written from here on is in the log,
	// one written before exists in the page tables.
	words, err := v.mem.Populated()
	if err != nil {
		s.StopDirtyLog()
		return nil, err
	}
	return snapshot.Bitmap(words), nil
}

func (s *migrationSource) TakeDirty() (snapshot.Bitmap, error) {
	b, err := s.v.takeDirty()
	if err == nil && s.taken != nil {
		_ = s.taken.Or(b)
	}
	return b, err
}

func (s *migrationSource) StopDirtyLog() error {
	v := s.v
	if s.enabled {
		s.enabled = false
		return v.setDirtyLog(false)
	}
	if s.taken != nil {
		if v.pendingDirty == nil {
			v.pendingDirty = s.taken
		} else {
			_ = v.pendingDirty.Or(s.taken)
		}
		s.taken = nil
	}
	return nil
}

func (s *migrationSource) Throttle(percent int) { s.v.setThrottle(percent) }

func (s *migrationSource) Pause() error {
	s.v.lifeMu.Lock()
	defer s.v.lifeMu.Unlock()
	return s.v.pauseLocked()
}

func (s *migrationSource) Resume() error {
	v := s.v
	v.lifeMu.Lock()
	defer v.lifeMu.Unlock()
	if err := v.retakeDisks(relockPatience); err != nil {
		return err
	}
	if s.wasPaused || !v.life.running || !v.life.paused {
		return nil
	}
	v.resumeLocked()
	v.log.Info("VM resumed")
	return nil
}

func (s *migrationSource) State() ([]snapshot.Section, error) {
	v := s.v
	v.lifeMu.Lock()
	defer v.lifeMu.Unlock()
	if !v.life.paused {
		return nil, ErrNotPaused
	}
	t0 := time.Now()
	st, err := v.captureState()
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	// Streamed disks stay locked here: the destination has copies of
	// its own, and a guest resumed here after a failure keeps its disks.
	if !s.withDisks {
		if err := v.handOverDisks(); err != nil {
			return nil, err
		}
	}
	v.log.WithFields(logrus.Fields{"capture": t1.Sub(t0).String(), "disks": time.Since(t1).String()}).Debug("migration: state captured")
	return st.Sections(), nil
}

// setDirtyLog turns KVM's dirty page log (and the record of pages tern's
// devices write) on or off for every RAM slot of a running VM.
func (v *VM) setDirtyLog(on bool) error {
	v.dirtyLog = on
	if err := v.registerMemory(); err != nil {
		return fmt.Errorf("dirty page log: %w", err)
	}
	if !on {
		v.mem.TrackHostAccess(false)
	}
	return nil
}

// ReceiveOptions say what of this host an incoming guest uses: as
// RestoreOptions, without a directory. The source is a peer, not the
// caller: each disk image, TAP, bridge and vsock socket its configuration
// names must be mapped here (to itself to confirm it) unless
// TrustSourcePaths is set, or the migration is refused before anything
// is opened.
type ReceiveOptions struct {
	DiskPaths   map[string]string
	DiskFiles   map[string]*os.File // as RestoreOptions.DiskFiles
	TAPs        map[string]string
	TAPFiles    map[string]*os.File // as RestoreOptions.TAPFiles
	Bridges     map[string]string
	VsockSocket string
	// TrustSourcePaths uses every host resource the source names that
	// the fields above do not map, as the source names it.
	TrustSourcePaths bool
	TrackDirtyPages  bool

	Console      io.Writer
	ConsoleInput io.Reader
	KVMPath      string
	HostCacheDir string // as Config.HostCacheDir
	Logger       logrus.FieldLogger
	OnEvent      func(Event) // as Config.OnEvent
	Started      time.Time
	BeforeRun    func() error // as Config.BeforeRun
	MMDSStore    *mmds.Store  // as RestoreOptions.MMDSStore
}

// Receive takes one incoming migration from conn and returns the VM once
// it runs the guest (call Wait for its end). On any error nothing ran
// here and nothing is left behind.
func Receive(ctx context.Context, conn io.ReadWriter, opts ReceiveOptions) (*VM, error) {
	d := &migrationDest{opts: opts}
	res, err := migrate.Receive(ctx, conn, d)
	if err != nil {
		if d.v != nil {
			d.v.Close()
		}
		d.discardDisks() // after Close: the VM may have opened them
		return nil, err
	}
	if !res.Started || d.v == nil {
		return nil, errors.New("incoming migration ended without starting the guest")
	}
	if res.ConfirmErr != nil {
		d.v.log.WithError(res.ConfirmErr).Warn("the guest runs here, but the source could not be told so: it keeps its copy paused")
	}
	d.v.log.WithField("took", time.Since(d.began).String()).Info("incoming migration complete: the guest runs here")
	return d.v, nil
}

// migrationDest builds the VM an incoming migration moves here.
type migrationDest struct {
	opts  ReceiveOptions
	from  string // what names the host resources, for errors; "" is "the incoming VM"
	v     *VM
	mc    migrationConfig
	began time.Time
	// copies are the local files of streamed disks, in the hello's order.
	copies []*diskCopy
}

func (d *migrationDest) Prepare(h migrate.Hello) ([][]byte, error) {
	d.began = time.Now()
	if err := snapshot.DecodeJSON(h.Config, &d.mc, helloLimits); err != nil {
		return nil, fmt.Errorf("%w: the VM's description: %w", ErrBadSnapshot, err)
	}
	c := d.mc.Config
	if err := checkConfigLimits(c); err != nil {
		return nil, err
	}
	if len(d.mc.CPUIDs) != c.CPUs {
		return nil, fmt.Errorf("%w: %d vCPU CPUID lists for %d vCPUs", ErrBadSnapshot, len(d.mc.CPUIDs), c.CPUs)
	}
	if err := checkLayout(h.Regions, c.MemoryBytes); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	if err := checkStreamedDisks(h.Disks, c.Disks); err != nil {
		return nil, err
	}
	o := d.opts
	ls := &loadedSnapshot{cfg: c}
	cfg, err := ls.config(RestoreOptions{
		DiskPaths: o.DiskPaths, DiskFiles: o.DiskFiles, TAPs: o.TAPs, TAPFiles: o.TAPFiles, Bridges: o.Bridges, VsockSocket: o.VsockSocket,
		TrustSnapshotPaths: o.TrustSourcePaths,
		Console:            o.Console, ConsoleInput: o.ConsoleInput, KVMPath: o.KVMPath, HostCacheDir: o.HostCacheDir, Logger: o.Logger, OnEvent: o.OnEvent, Started: o.Started,
		BeforeRun: o.BeforeRun, MMDSStore: o.MMDSStore,
	}, cmp.Or(d.from, "the incoming VM"))
	if err != nil {
		return nil, err
	}
	v := newVM(cfg)
	d.v = v
	if v.sys, err = openKVM(cfg.KVMPath); err != nil {
		return nil, err
	}
	if v.cpuid, err = v.hostCPUID(v.sys); err != nil {
		return nil, err
	}
	if err := checkTemplateHost(cfg.CPUTemplate, v.sys, v.cpuid); err != nil {
		return nil, fmt.Errorf("this host cannot run the guest: %w", err)
	}
	for i, id := range d.mc.CPUIDs {
		if err := checkCPUID(v.cpuid, c.HostCPUID, cfg.CPUTemplate, id); err != nil {
			return nil, fmt.Errorf("this host cannot run the guest: vCPU %d: %w", i, err)
		}
	}
	if err := v.createVM(); err != nil {
		return nil, err
	}
	if err := v.checkTSCRate(d.mc.TSCKHz); err != nil {
		return nil, err
	}
	if v.mem, err = memory.New(cfg.MemoryBytes, memory.Options{}); err != nil {
		return nil, err
	}
	v.dirtyLog = c.TrackDirtyPages || o.TrackDirtyPages
	if err := v.registerMemory(); err != nil {
		return nil, err
	}
	// After the memory, as in New (see createIRQChips).
	if err := v.createIRQChips(); err != nil {
		return nil, err
	}
	v.log.WithFields(logrus.Fields{"cpus": c.CPUs, "memory-bytes": c.MemoryBytes}).Info("incoming migration accepted")
	var out [][]byte
	for _, r := range v.mem.Regions() {
		out = append(out, r.Bytes())
	}
	return out, nil
}

func (d *migrationDest) Load(sections []snapshot.Section) error {
	v := d.v
	t0 := time.Now()
	ls, err := parseState(sections, "migration stream")
	if err != nil {
		return err
	}
	if ls.cfg.CPUs != d.mc.Config.CPUs || ls.cfg.MemoryBytes != d.mc.Config.MemoryBytes {
		return fmt.Errorf("%w: the final state describes %d vCPUs and %d bytes, the handshake %d and %d",
			ErrBadSnapshot, ls.cfg.CPUs, ls.cfg.MemoryBytes, d.mc.Config.CPUs, d.mc.Config.MemoryBytes)
	}
	if err := checkGuestCPUs(v.cpuid, d.mc.Config.HostCPUID, v.cfg.CPUTemplate, ls.vcpus); err != nil {
		return fmt.Errorf("this host cannot run the guest: %w", err)
	}
	t1 := time.Now()
	if err := v.loadState(ls, time.Now()); err != nil {
		return err
	}
	t2 := time.Now()
	// Everything that can fail does so here, before the source commits.
	if err := v.createVCPUs(); err != nil {
		return err
	}
	v.log.WithFields(logrus.Fields{"parse": t1.Sub(t0).String(), "devices": t2.Sub(t1).String(), "vcpus": time.Since(t2).String()}).Debug("migration: state loaded")
	return nil
}

func (d *migrationDest) Start() error {
	if err := d.v.Start(); err != nil {
		return err
	}
	go d.v.plat.announce(d.v.plat.netDevices())
	return nil
}
