package fcapi

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/boot/cputemplate"
	"github.com/ternvm/tern/internal/safefile"
	"github.com/ternvm/tern/mmds"
	"github.com/ternvm/tern/virtio/balloon"
	"github.com/ternvm/tern/virtio/block"
	virtionet "github.com/ternvm/tern/virtio/net"
	"github.com/ternvm/tern/virtio/ratelimit"
	"github.com/ternvm/tern/virtio/vsock"
	"github.com/ternvm/tern/vmm"
)

// DefaultBootArgs is Firecracker's kernel command line when PUT
// /boot-source gives none, less i8042.nopnp: on tern's hardware-reduced
// ACPI platform the keyboard's interrupt is found only through the ACPI
// device that option ignores, and SendCtrlAltDel needs it.
const DefaultBootArgs = "reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd"

// Firecracker's machine defaults and limits.
const (
	defaultVCPUs  = 1
	defaultMemMiB = 128
	maxVCPUs      = 32
)

// machine is the machine configuration.
type machine struct {
	vcpus     int
	memMiB    uint64
	dirty     bool
	hugePages string // "None" or "2M"
	// template is the CPU template: a static one from cpu_template or a
	// custom one from PUT /cpu-config, whichever came last (as in
	// Firecracker); nil for none.
	template *cputemplate.Template
}

func (m machine) view() MachineConfig {
	name := "None"
	if m.template != nil && m.template.Name != "" {
		name = m.template.Name
	}
	f := false
	return MachineConfig{VCPUCount: &m.vcpus, MemSizeMiB: &m.memMiB, SMT: &f, TrackDirtyPages: &m.dirty, HugePages: &m.hugePages, CPUTemplate: &name}
}

// staticTemplate reads machine-config's cpu_template.
func staticTemplate(name string) (*cputemplate.Template, error) {
	if name == "T2CL" {
		return nil, notImplemented("the T2CL CPU template (tern has T2, T2S, C3 and T2A)")
	}
	t, err := cputemplate.Static(name)
	if err != nil {
		return nil, faultf("cpu_template: %v", err)
	}
	return t, nil
}

// putCPUConfig is PUT /cpu-config: a custom CPU template, which replaces
// any template set before (a static one included).
func (s *Server) putCPUConfig(body []byte) error {
	if s.vm != nil {
		return errPreBootOnly
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return faultf("the request needs a JSON body")
	}
	t, err := cputemplate.ParseCustom(body)
	if err != nil {
		return faultf("%v", err)
	}
	s.cfg.machine.template = t
	s.cfg.bootSpecific = true
	return nil
}

// drive is one configured drive.
type drive struct {
	req Drive // as PUT, defaults filled in
	rl  *ratelimit.Config
}

// netIface is one configured network interface.
type netIface struct {
	req    NetworkInterface
	mac    net.HardwareAddr
	rx, tx *ratelimit.Config
}

// preboot is the configuration gathered before InstanceStart.
type preboot struct {
	machine machine
	// bootSpecific: something that a snapshot load would conflict with
	// was configured (Firecracker refuses the load then).
	bootSpecific bool
	boot         *BootSource
	drives       []*drive
	nets         []*netIface
	vsock        *Vsock
	entropy      *Entropy
	entropyRL    *ratelimit.Config
	balloon      *Balloon
	mmds         *MMDSConfig
	serial       *Serial
	serialFile   *os.File
	logger       *Logger
	metrics      *Metrics
}

func newPreboot() preboot {
	return preboot{machine: machine{vcpus: defaultVCPUs, memMiB: defaultMemMiB, hugePages: "None"}}
}

func (p *preboot) close() {
	if p.serialFile != nil {
		p.serialFile.Close()
		p.serialFile = nil
	}
}

func (s *Server) putMachine(body []byte, patch bool) error {
	var req MachineConfig
	if err := decode(body, &req); err != nil {
		return err
	}
	if s.vm != nil {
		return errPreBootOnly
	}
	m := s.cfg.machine
	if !patch {
		if req.VCPUCount == nil || req.MemSizeMiB == nil {
			return faultf("machine-config needs vcpu_count and mem_size_mib")
		}
		m = newPreboot().machine
	} else if req == (MachineConfig{}) {
		return faultf("empty PATCH of machine-config: give at least one field")
	}
	if req.VCPUCount != nil {
		m.vcpus = *req.VCPUCount
	}
	if req.MemSizeMiB != nil {
		m.memMiB = *req.MemSizeMiB
	}
	if req.TrackDirtyPages != nil {
		m.dirty = *req.TrackDirtyPages
	}
	if req.HugePages != nil {
		m.hugePages = *req.HugePages
	}
	if m.vcpus < 1 || m.vcpus > min(maxVCPUs, boot.MaxVCPUs) {
		return faultf("vcpu_count %d: it must be 1 to %d", m.vcpus, min(maxVCPUs, boot.MaxVCPUs))
	}
	if m.memMiB == 0 || m.memMiB > 1<<30 {
		return faultf("mem_size_mib %d: it must be positive (and sane)", m.memMiB)
	}
	if req.SMT != nil && *req.SMT {
		return faultf("smt: tern does not expose SMT (hyperthread siblings) to a guest; leave it false")
	}
	switch m.hugePages {
	case "None":
	case "2M":
		if m.memMiB%2 != 0 {
			return faultf("mem_size_mib %d: with 2M huge pages it must be a multiple of 2", m.memMiB)
		}
	case "Transparent":
		return faultf("huge_pages \"Transparent\": tern does not implement transparent huge pages; use \"None\" or \"2M\"")
	default:
		return faultf("huge_pages %q: want \"None\" or \"2M\"", m.hugePages)
	}
	// Without cpu_template, PUT and PATCH keep the template set before
	// (Firecracker's rule), a custom one included.
	m.template = s.cfg.machine.template
	if req.CPUTemplate != nil {
		t, err := staticTemplate(*req.CPUTemplate)
		if err != nil {
			return err
		}
		m.template = t
	}
	s.cfg.machine = m
	s.cfg.bootSpecific = true
	return nil
}

func (s *Server) putBootSource(body []byte) error {
	var req BootSource
	if err := decode(body, &req); err != nil {
		return err
	}
	if s.vm != nil {
		return errPreBootOnly
	}
	if err := fileExists("kernel_image_path", req.KernelImagePath); err != nil {
		return err
	}
	if req.InitrdPath != "" {
		if err := fileExists("initrd_path", req.InitrdPath); err != nil {
			return err
		}
	}
	if len(req.BootArgs)+1 > boot.CmdlineMaxSize {
		return faultf("boot_args is %d bytes; at most %d fit", len(req.BootArgs), boot.CmdlineMaxSize-1)
	}
	s.cfg.boot = &req
	s.cfg.bootSpecific = true
	return nil
}

func (s *Server) putDrive(id string, body []byte) error {
	var req Drive
	if err := decode(body, &req); err != nil {
		return err
	}
	if err := matchID("drive_id", req.DriveID, id); err != nil {
		return err
	}
	if s.vm != nil {
		return errPreBootOnly
	}
	if err := checkID("drive_id", id); err != nil {
		return err
	}
	if req.IsRootDevice == nil {
		return faultf("drive %s: is_root_device is required", id)
	}
	if req.Socket != nil {
		return notImplemented("vhost-user block devices (socket)")
	}
	if req.PartUUID != nil && *req.PartUUID != "" {
		return notImplemented("root by partition UUID (partuuid)")
	}
	if req.PathOnHost == nil {
		return faultf("drive %s: path_on_host is required", id)
	}
	if err := fileExists("drive "+id+": path_on_host", *req.PathOnHost); err != nil {
		return err
	}
	f := false
	if req.IsReadOnly == nil {
		req.IsReadOnly = &f
	}
	if req.CacheType == nil {
		ct := "Unsafe"
		req.CacheType = &ct
	}
	if *req.CacheType != "Unsafe" && *req.CacheType != "Writeback" {
		return faultf("drive %s: cache_type %q: want \"Unsafe\" or \"Writeback\"", id, *req.CacheType)
	}
	if req.IOEngine == nil {
		e := "Sync"
		req.IOEngine = &e
	}
	if *req.IOEngine != "Sync" && *req.IOEngine != "Async" {
		return faultf("drive %s: io_engine %q: want \"Sync\" or \"Async\"", id, *req.IOEngine)
	}
	rl, err := rateLimit("rate_limiter", req.RateLimiter)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(s.cfg.drives, func(d *drive) bool { return *d.req.DriveID == id })
	if *req.IsRootDevice {
		for j, d := range s.cfg.drives {
			if j != i && *d.req.IsRootDevice {
				return faultf("drive %s: drive %s is already the root device; only one can be", id, *d.req.DriveID)
			}
		}
	}
	for j, d := range s.cfg.drives {
		if j != i && *d.req.PathOnHost == *req.PathOnHost {
			return faultf("drive %s: %s is already drive %s", id, *req.PathOnHost, *d.req.DriveID)
		}
	}
	d := &drive{req: req, rl: rl}
	if i >= 0 {
		s.cfg.drives[i] = d
	} else {
		s.cfg.drives = append(s.cfg.drives, d)
	}
	s.cfg.bootSpecific = true
	return nil
}

func (s *Server) patchDrive(id string, body []byte) error {
	var req Drive
	if err := decode(body, &req); err != nil {
		return err
	}
	if err := matchID("drive_id", req.DriveID, id); err != nil {
		return err
	}
	if s.vm == nil {
		return errPostBootOnly
	}
	if req.IsRootDevice != nil || req.IsReadOnly != nil || req.PartUUID != nil || req.CacheType != nil || req.IOEngine != nil || req.Socket != nil {
		return faultf("drive %s: a PATCH may change only path_on_host and rate_limiter", id)
	}
	rl, err := rateLimit("rate_limiter", req.RateLimiter)
	if err != nil {
		return err
	}
	name := s.driveName(id)
	if req.PathOnHost != nil {
		if err := s.vm.UpdateDrive(name, *req.PathOnHost); err != nil {
			return faultf("drive %s: %v", id, err)
		}
	}
	if rl != nil {
		if err := s.vm.SetDriveRateLimit(name, *rl); err != nil {
			return faultf("drive %s: %v", id, err)
		}
	}
	return nil
}

// driveName is the name vmm knows drive id by: diskN when this server
// configured it; else the id itself, which vmm matches against the
// disk's serial (a restored VM's drives carry their ids there).
func (s *Server) driveName(id string) string {
	if n, ok := s.driveIDs[id]; ok {
		return n
	}
	return id
}

func (s *Server) putNet(id string, body []byte) error {
	var req NetworkInterface
	if err := decode(body, &req); err != nil {
		return err
	}
	if err := matchID("iface_id", req.IfaceID, id); err != nil {
		return err
	}
	if s.vm != nil {
		return errPreBootOnly
	}
	if err := checkID("iface_id", id); err != nil {
		return err
	}
	if req.HostDevName == nil || *req.HostDevName == "" {
		return faultf("network interface %s: host_dev_name is required", id)
	}
	if req.MTU != nil {
		return notImplemented("a guest MTU (mtu)")
	}
	n := &netIface{req: req}
	if req.GuestMAC != nil {
		mac, err := net.ParseMAC(*req.GuestMAC)
		if err != nil || len(mac) != 6 {
			return faultf("network interface %s: guest_mac %q is not a MAC address", id, *req.GuestMAC)
		}
		n.mac = mac
	}
	var err error
	if n.rx, err = rateLimit("rx_rate_limiter", req.RxRateLimiter); err != nil {
		return err
	}
	if n.tx, err = rateLimit("tx_rate_limiter", req.TxRateLimiter); err != nil {
		return err
	}
	if err := (virtionet.Config{TAP: *req.HostDevName, MAC: n.mac}).Validate(); err != nil {
		return faultf("network interface %s: %v", id, err)
	}
	i := slices.IndexFunc(s.cfg.nets, func(o *netIface) bool { return *o.req.IfaceID == id })
	for j, o := range s.cfg.nets {
		if j == i {
			continue
		}
		if *o.req.HostDevName == *req.HostDevName {
			return faultf("network interface %s: host_dev_name %s is already interface %s's", id, *req.HostDevName, *o.req.IfaceID)
		}
		if n.mac != nil && o.mac != nil && n.mac.String() == o.mac.String() {
			return faultf("network interface %s: guest_mac %s is already interface %s's", id, n.mac, *o.req.IfaceID)
		}
	}
	if i >= 0 {
		s.cfg.nets[i] = n
	} else {
		s.cfg.nets = append(s.cfg.nets, n)
	}
	s.cfg.bootSpecific = true
	return nil
}

func (s *Server) patchNet(id string, body []byte) error {
	var req NetworkInterface
	if err := decode(body, &req); err != nil {
		return err
	}
	if err := matchID("iface_id", req.IfaceID, id); err != nil {
		return err
	}
	if s.vm == nil {
		return errPostBootOnly
	}
	if req.HostDevName != nil || req.GuestMAC != nil || req.MTU != nil {
		return faultf("network interface %s: a PATCH may change only rx_rate_limiter and tx_rate_limiter", id)
	}
	rx, err := rateLimit("rx_rate_limiter", req.RxRateLimiter)
	if err != nil {
		return err
	}
	tx, err := rateLimit("tx_rate_limiter", req.TxRateLimiter)
	if err != nil {
		return err
	}
	var rxc, txc ratelimit.Config
	if rx != nil {
		rxc = *rx
	}
	if tx != nil {
		txc = *tx
	}
	name := id
	if n, ok := s.netIDs[id]; ok {
		name = n
	}
	if err := s.vm.SetNetRateLimits(name, rxc, txc); err != nil {
		return faultf("network interface %s: %v", id, err)
	}
	return nil
}

func (s *Server) putVsock(body []byte) error {
	var req Vsock
	if err := decode(body, &req); err != nil {
		return err
	}
	if s.vm != nil {
		return errPreBootOnly
	}
	if req.GuestCID == nil || req.UDSPath == "" {
		return faultf("vsock needs guest_cid and uds_path")
	}
	if err := (vsock.Config{GuestCID: *req.GuestCID, SocketPath: req.UDSPath}).Validate(); err != nil {
		return faultf("vsock: %v", err)
	}
	s.cfg.vsock = &req
	s.cfg.bootSpecific = true
	return nil
}

func (s *Server) putEntropy(body []byte) error {
	var req Entropy
	if err := decode(body, &req); err != nil {
		return err
	}
	if s.vm != nil {
		return errPreBootOnly
	}
	rl, err := rateLimit("rate_limiter", req.RateLimiter)
	if err != nil {
		return err
	}
	s.cfg.entropy, s.cfg.entropyRL = &req, rl
	s.cfg.bootSpecific = true
	return nil
}

func (s *Server) putSerial(body []byte) error {
	var req Serial
	if err := decode(body, &req); err != nil {
		return err
	}
	if s.vm != nil {
		return errPreBootOnly
	}
	if req.RateLimiter != nil {
		return notImplemented("a serial output rate limiter (rate_limiter)")
	}
	var f *os.File
	if req.SerialOutPath != nil {
		var err error
		if *req.SerialOutPath == "" {
			return faultf("serial_out_path: no path given")
		}
		// The console is buffered in vmm (a stalled reader costs output,
		// never the vCPU), so the file can be an ordinary blocking one.
		if f, err = safefile.OpenOutput(*req.SerialOutPath, true); err != nil {
			return faultf("serial_out_path: %v", err)
		}
	}
	s.cfg.close()
	s.cfg.serial, s.cfg.serialFile = &req, f
	return nil
}

func (s *Server) putBalloon(body []byte) error {
	var req Balloon
	if err := decode(body, &req); err != nil {
		return err
	}
	if s.vm != nil {
		return errPreBootOnly
	}
	if req.AmountMiB == nil || req.DeflateOnOOM == nil {
		return faultf("balloon needs amount_mib and deflate_on_oom")
	}
	if req.FreePageHinting != nil && *req.FreePageHinting {
		return notImplemented("balloon free page hinting (free_page_hinting)")
	}
	if req.FreePageReporting != nil && *req.FreePageReporting {
		return notImplemented("balloon free page reporting (free_page_reporting)")
	}
	if req.StatsPollingIntervalS == nil {
		z := uint32(0)
		req.StatsPollingIntervalS = &z
	}
	s.cfg.balloon = &req
	s.cfg.bootSpecific = true
	return nil
}

func (s *Server) patchBalloon(body []byte) error {
	var req BalloonUpdate
	if err := decode(body, &req); err != nil {
		return err
	}
	if req.AmountMiB == nil {
		return faultf("the body must be {\"amount_mib\": N}")
	}
	if s.vm == nil {
		if s.cfg.balloon == nil {
			return faultf("no balloon device is configured")
		}
		b := *s.cfg.balloon
		b.AmountMiB = req.AmountMiB
		s.cfg.balloon = &b
		return nil
	}
	if err := s.vm.SetBalloonTarget(*req.AmountMiB); err != nil {
		return faultf("%v", err)
	}
	return nil
}

func (s *Server) getBalloon() (any, error) {
	if s.vm == nil || s.unstarted {
		if s.cfg.balloon == nil {
			return nil, faultf("no balloon device is configured")
		}
		return s.cfg.balloon, nil
	}
	info, err := s.vm.BalloonInfo()
	if err != nil {
		return nil, faultf("%v", err)
	}
	b := Balloon{AmountMiB: &info.TargetMiB, DeflateOnOOM: &info.DeflateOnOOM}
	if s.cfg.balloon != nil {
		b.StatsPollingIntervalS = s.cfg.balloon.StatsPollingIntervalS
	}
	return b, nil
}

func (s *Server) patchBalloonStats(body []byte) error {
	var req BalloonStatsUpdate
	if err := decode(body, &req); err != nil {
		return err
	}
	if req.StatsPollingIntervalS == nil {
		return faultf("the body must be {\"stats_polling_interval_s\": N}")
	}
	if s.cfg.balloon == nil {
		return faultf("no balloon device is configured")
	}
	if s.vm == nil {
		b := *s.cfg.balloon
		b.StatsPollingIntervalS = req.StatsPollingIntervalS
		s.cfg.balloon = &b
		return nil
	}
	was := *s.cfg.balloon.StatsPollingIntervalS
	if (was == 0) != (*req.StatsPollingIntervalS == 0) {
		return faultf("balloon statistics cannot be turned on or off after boot")
	}
	if was != *req.StatsPollingIntervalS {
		return faultf("tern cannot change the statistics interval of a running balloon (it is %d s)", was)
	}
	return nil
}

// balloonStatNames maps tern's statistics (Linux's names) to Firecracker's
// fields.
var balloonStatNames = map[string]string{
	"swap-in": "swap_in", "swap-out": "swap_out", "major-faults": "major_faults", "minor-faults": "minor_faults",
	"free-memory": "free_memory", "total-memory": "total_memory", "available-memory": "available_memory",
	"disk-caches": "disk_caches", "hugetlb-allocations": "hugetlb_allocations", "hugetlb-failures": "hugetlb_failures",
	"oom-kills": "oom_kill", "alloc-stalls": "alloc_stall", "async-scans": "async_scan", "direct-scans": "direct_scan",
	"async-reclaims": "async_reclaim", "direct-reclaims": "direct_reclaim",
}

func (s *Server) getBalloonStats() (any, error) {
	if s.cfg.balloon == nil && s.vm == nil {
		return nil, faultf("no balloon device is configured")
	}
	if s.cfg.balloon != nil && *s.cfg.balloon.StatsPollingIntervalS == 0 {
		return nil, faultf("balloon statistics are not enabled (stats_polling_interval_s was 0 at boot)")
	}
	if s.vm == nil {
		return nil, errPostBootOnly
	}
	info, err := s.vm.BalloonInfo()
	if err != nil {
		return nil, faultf("%v", err)
	}
	stats, err := s.vm.BalloonStats()
	if err != nil {
		return nil, faultf("%v", err)
	}
	out := map[string]uint64{
		"target_mib": uint64(info.TargetMiB), "actual_mib": uint64(info.ActualMiB),
		"target_pages": uint64(info.TargetMiB) * 256, "actual_pages": uint64(info.ActualMiB) * 256,
	}
	for k, v := range stats {
		if n, ok := balloonStatNames[k]; ok {
			out[n] = v
		}
	}
	return out, nil
}

// vmConfig turns the pre-boot configuration into vmm's, and the names
// vmm will know each drive and interface by.
func (s *Server) vmConfig() (_ vmm.Config, _ map[string]string, _ map[string]string, err error) {
	c := s.cfg
	if c.boot == nil {
		return vmm.Config{}, nil, nil, faultf("cannot start the microVM: no boot source (PUT /boot-source first)")
	}
	cfg := vmm.Config{
		KernelPath: c.boot.KernelImagePath, InitrdPath: c.boot.InitrdPath, Cmdline: c.boot.BootArgs,
		CPUs: c.machine.vcpus, MemoryBytes: c.machine.memMiB << 20, HugePages: c.machine.hugePages == "2M",
		// Firecracker enters a kernel through its PVH note when it has one.
		PreferPVH:       true,
		TrackDirtyPages: c.machine.dirty,
		CPUTemplate:     c.machine.template,
		Console:         s.opts.Console, ConsoleInput: s.opts.ConsoleInput,
		KVMPath: s.opts.KVMPath, HostCacheDir: s.opts.HostCacheDir, Logger: s.opts.Logger, Started: s.opts.Started,
		BeforeRun: s.opts.BeforeRun,
	}
	if cfg.Cmdline == "" {
		cfg.Cmdline = DefaultBootArgs
	}
	if c.serialFile != nil {
		cfg.Console = c.serialFile
	}
	driveIDs, netIDs := map[string]string{}, map[string]string{}
	// vmm puts the root disk first and names disks diskN in that order.
	ordered := slices.Clone(c.drives)
	slices.SortStableFunc(ordered, func(a, b *drive) int {
		switch {
		case *a.req.IsRootDevice == *b.req.IsRootDevice:
			return 0
		case *a.req.IsRootDevice:
			return -1
		}
		return 1
	})
	for i, d := range ordered {
		id := *d.req.DriveID
		dc := vmm.DiskConfig{Config: block.Config{Path: *d.req.PathOnHost, ReadOnly: *d.req.IsReadOnly, RateLimit: d.rl}, Root: *d.req.IsRootDevice}
		// The drive id as the disk's serial, where it fits, lets a
		// restored VM's drives be found by their ids.
		if len(id) <= block.IDLen {
			dc.ID = id
		}
		cfg.Disks = append(cfg.Disks, dc)
		driveIDs[id] = fmt.Sprintf("disk%d", i)
	}
	for _, n := range c.nets {
		cfg.Nets = append(cfg.Nets, virtionet.Config{ID: *n.req.IfaceID, TAP: *n.req.HostDevName, MAC: n.mac, RxRateLimit: n.rx, TxRateLimit: n.tx})
		netIDs[*n.req.IfaceID] = *n.req.HostDevName
	}
	if c.vsock != nil {
		cfg.Vsock = &vsock.Config{GuestCID: *c.vsock.GuestCID, SocketPath: c.vsock.UDSPath}
	}
	if c.mmds != nil {
		if cfg.MMDS, err = s.mmdsService(*c.mmds); err != nil {
			return cfg, nil, nil, err
		}
	}
	if c.entropy != nil {
		cfg.RNG, cfg.RNGRateLimit = true, c.entropyRL
	}
	if b := c.balloon; b != nil {
		cfg.Balloon = &balloon.Config{TargetMiB: *b.AmountMiB, DeflateOnOOM: *b.DeflateOnOOM, StatsPollInterval: time.Duration(*b.StatsPollingIntervalS) * time.Second}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, nil, nil, faultf("cannot start the microVM: %v", err)
	}
	return cfg, driveIDs, netIDs, nil
}

// fullConfig is GET /vm/config: the configuration as given, defaults
// filled in.
func (s *Server) fullConfig() FullConfig {
	c := s.cfg
	if s.vm != nil {
		// A loaded snapshot brings its own template.
		c.machine.template = s.vm.CPUTemplate()
	}
	m := c.machine.view()
	out := FullConfig{
		Drives: []Drive{}, NetworkInterfaces: []NetworkInterface{},
		BootSource: c.boot, MachineConfig: &m, Balloon: c.balloon, Vsock: c.vsock, Entropy: c.entropy,
		MMDSConfig: c.mmds, Logger: c.logger, Metrics: c.metrics, Serial: c.serial,
	}
	if t := c.machine.template; t != nil && t.Name == "" {
		// Marshalling a parsed template cannot fail.
		out.CPUConfig, _ = t.MarshalCustom()
	}
	for _, d := range c.drives {
		out.Drives = append(out.Drives, d.req)
	}
	for _, n := range c.nets {
		out.NetworkInterfaces = append(out.NetworkInterfaces, n.req)
	}
	if s.vm != nil && !s.unstarted && c.balloon != nil {
		if info, err := s.vm.BalloonInfo(); err == nil {
			b := *c.balloon
			b.AmountMiB = &info.TargetMiB
			out.Balloon = &b
		}
	}
	return out
}

// mmdsService is the metadata service PUT /mmds/config asked for, serving
// the document /mmds holds, for vmm to put in front of the interfaces.
func (s *Server) mmdsService(mc MMDSConfig) (*vmm.MMDS, error) {
	if s.opts.MMDS == nil {
		return nil, faultf("cannot start the microVM: MMDS is configured but this server has no MMDS store")
	}
	cfg := mmds.Config{Interfaces: append([]string(nil), mc.NetworkInterfaces...), IMDSCompat: mc.IMDSCompat}
	switch mc.Version {
	case "", "V1":
		cfg.Version = 1
	case "V2":
		cfg.Version = 2
	default:
		return nil, faultf("mmds config: version %q: want V1 or V2", mc.Version)
	}
	if mc.IPv4Address != "" {
		a, err := netip.ParseAddr(mc.IPv4Address)
		if err != nil || !a.Is4() {
			return nil, faultf("mmds config: ipv4_address %q is not an IPv4 address", mc.IPv4Address)
		}
		cfg.IPv4 = a
	}
	return &vmm.MMDS{Config: cfg, Store: s.opts.MMDS}, nil
}
