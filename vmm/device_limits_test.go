package vmm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternvm/tern/migrate/snapshot"
	"github.com/ternvm/tern/mmds"
	"github.com/ternvm/tern/virtio/block"
	virtionet "github.com/ternvm/tern/virtio/net"
	"github.com/ternvm/tern/virtio/ratelimit"
	"github.com/ternvm/tern/virtio/rng"
)

func bucket(size uint64, refill time.Duration) *ratelimit.Bucket {
	return &ratelimit.Bucket{Size: size, RefillTime: refill}
}

// TestSnapshotCarriesRateLimits: limits in the configuration are saved,
// read back, and given to the restored VM's configuration, from which
// its devices are built.
func TestSnapshotCarriesRateLimits(t *testing.T) {
	disk := &ratelimit.Config{Bandwidth: bucket(10<<20, time.Second), Ops: &ratelimit.Bucket{Size: 100, OneTimeBurst: 50, RefillTime: 100 * time.Millisecond}}
	entropy := &ratelimit.Config{Bandwidth: bucket(1<<20, time.Second)}
	dir, _ := writeSnapshot(t, func(c *snapshotConfig, _ *snapshot.MemoryInfo, _ *[]vcpuState) {
		c.Disks[0].RateLimit = disk
		c.RNG, c.RNGRateLimit = true, entropy
	})
	ls, err := readSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ls.config(RestoreOptions{TrustSnapshotPaths: true}, dir)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Disks[0].RateLimit
	if got == nil || *got.Bandwidth != *disk.Bandwidth || *got.Ops != *disk.Ops {
		t.Errorf("restored disk limits %+v, want %+v", got, disk)
	}
	if cfg.RNGRateLimit == nil || *cfg.RNGRateLimit.Bandwidth != *entropy.Bandwidth || cfg.RNGRateLimit.Ops != nil {
		t.Errorf("restored entropy limits %+v, want %+v", cfg.RNGRateLimit, entropy)
	}
}

// TestSnapshotRefusesBadRateLimits: a state file's limits are checked
// like the command line's.
func TestSnapshotRefusesBadRateLimits(t *testing.T) {
	dir, _ := writeSnapshot(t, func(c *snapshotConfig, _ *snapshot.MemoryInfo, _ *[]vcpuState) {
		c.Disks[0].RateLimit = &ratelimit.Config{Bandwidth: bucket(ratelimit.MaxTokens+1, time.Second)}
	})
	ls, err := readSnapshot(dir)
	if err == nil {
		_, err = ls.config(RestoreOptions{TrustSnapshotPaths: true}, dir)
	}
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "rate limiter: bandwidth: ") {
		t.Errorf("an oversized bucket in a snapshot: %v, want ErrInvalidConfig naming the rate limiter", err)
	}
}

// TestRateLimitsChangeAndAreSaved changes limits as the API does and
// checks what a snapshot would save.
func TestRateLimitsChangeAndAreSaved(t *testing.T) {
	dir := t.TempDir()
	var disks []DiskConfig
	for _, name := range []string{"a.img", "root.img"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		disks = append(disks, DiskConfig{Config: block.Config{Path: p}})
	}
	disks[0].ID = "data"
	disks[0].RateLimit = &ratelimit.Config{Ops: bucket(10, time.Second)}
	disks[1].Root = true
	v := &VM{cfg: Config{Disks: disks, RNG: true}, plat: &platform{}}
	p := v.plat
	for i, k := range diskOrder(disks) {
		dev, err := block.New(disks[k].Config)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dev.Close() })
		p.limits.disks = append(p.limits.disks, limitedDisk{name: []string{"disk0", "disk1"}[i], index: k, dev: dev})
	}
	p.limits.rng = rng.New()

	// disk0 is the root disk, the second in Config.Disks.
	if err := v.SetDriveRateLimit("disk0", ratelimit.Config{Bandwidth: bucket(1<<20, time.Second)}); err != nil {
		t.Fatal(err)
	}
	// By serial; the ops bucket is removed, a bandwidth one added.
	if err := v.SetDriveRateLimit("data", ratelimit.Config{Ops: &ratelimit.Bucket{}, Bandwidth: bucket(2<<20, time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := v.SetRNGRateLimit(ratelimit.Config{Ops: bucket(5, time.Second)}); err != nil {
		t.Fatal(err)
	}
	saved := v.snapshotConfig()
	if l := saved.Disks[1].RateLimit; l == nil || l.Bandwidth.Size != 1<<20 || l.Ops != nil {
		t.Errorf("root disk saved with %+v", l)
	}
	if l := saved.Disks[0].RateLimit; l == nil || l.Bandwidth.Size != 2<<20 || l.Ops != nil {
		t.Errorf("data disk saved with %+v", l)
	}
	if l := saved.RNGRateLimit; l == nil || l.Ops.Size != 5 || l.Bandwidth != nil {
		t.Errorf("entropy device saved with %+v", l)
	}
	if v.cfg.Disks[0].RateLimit.Bandwidth != nil {
		t.Error("saving changed the VM's own configuration")
	}

	for _, err := range []error{
		v.SetDriveRateLimit("disk2", ratelimit.Config{}),
		v.SetDriveRateLimit("", ratelimit.Config{}),
		v.SetNetRateLimits("tap0", ratelimit.Config{}, ratelimit.Config{}),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("a device the VM lacks: %v, want ErrNotFound", err)
		}
	}
	if err := v.SetDriveRateLimit("disk0", ratelimit.Config{Ops: bucket(ratelimit.MaxTokens+1, 1)}); !errors.Is(err, ratelimit.ErrBadConfig) {
		t.Errorf("an oversized bucket: %v", err)
	}
}

// TestSnapshotCarriesMMDSConfig: the metadata service's configuration is
// saved and given back to the restored VM, serving the store the caller
// passes; an interface named by a TAP the restore replaced is named by its
// position instead. A bad saved configuration is refused like a bad
// command line.
func TestSnapshotCarriesMMDSConfig(t *testing.T) {
	dir, _ := writeSnapshot(t, func(c *snapshotConfig, _ *snapshot.MemoryInfo, _ *[]vcpuState) {
		c.Nets = []virtionet.Config{{TAP: "tap-old", ID: "eth0"}, {TAP: "tap-two"}}
		c.MMDS = &mmds.Config{Version: 2, Interfaces: []string{"eth0", "tap-two"}, IMDSCompat: true}
	})
	ls, err := readSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	store := mmds.NewStore(0)
	cfg, err := ls.config(RestoreOptions{TrustSnapshotPaths: true, TAPs: map[string]string{"tap-two": "tap9"}, MMDSStore: store}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MMDS == nil || cfg.MMDS.Version != 2 || !cfg.MMDS.IMDSCompat || cfg.MMDS.Store != store {
		t.Fatalf("restored MMDS %+v, want version 2, IMDS format, the given store", cfg.MMDS)
	}
	if got := strings.Join(cfg.MMDS.Interfaces, ","); got != "eth0,net1" {
		t.Errorf("restored MMDS interfaces %q, want eth0,net1 (tap-two became tap9)", got)
	}

	dir, _ = writeSnapshot(t, func(c *snapshotConfig, _ *snapshot.MemoryInfo, _ *[]vcpuState) {
		c.Nets = []virtionet.Config{{TAP: "tap-old"}}
		c.MMDS = &mmds.Config{Version: 3, Interfaces: []string{"tap-old"}}
	})
	if ls, err = readSnapshot(dir); err == nil {
		_, err = ls.config(RestoreOptions{TrustSnapshotPaths: true}, dir)
	}
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("a saved MMDS version 3: %v, want ErrInvalidConfig", err)
	}
}
