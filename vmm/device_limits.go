package vmm

import (
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/ternvm/tern/virtio/block"
	virtionet "github.com/ternvm/tern/virtio/net"
	"github.com/ternvm/tern/virtio/ratelimit"
	"github.com/ternvm/tern/virtio/rng"
)

// rateLimited holds the devices whose rate limits the API may change,
// in the order the guest sees them.
type rateLimited struct {
	disks []limitedDisk
	nets  []limitedNet
	rng   *rng.Device // nil without one
}

// limitedDisk is a disk device with its name (diskN, as the guest orders
// them) and its index in Config.Disks.
type limitedDisk struct {
	name  string
	index int
	dev   *block.Device
}

type limitedNet struct {
	name  string
	index int
	dev   *virtionet.Device
}

// liveLimits returns cfg with each device's rate limits as they are now,
// so that a snapshot or a migration carries the limits set through the
// API, and the restored devices are built with them.
func (p *platform) liveLimits(cfg Config) Config {
	if p == nil {
		return cfg
	}
	cfg.Disks = append([]DiskConfig(nil), cfg.Disks...)
	for _, d := range p.limits.disks {
		cfg.Disks[d.index].RateLimit = current(d.dev.RateLimiter())
	}
	cfg.Nets = append([]virtionet.Config(nil), cfg.Nets...)
	for _, n := range p.limits.nets {
		rx, tx := n.dev.RateLimiters()
		cfg.Nets[n.index].RxRateLimit, cfg.Nets[n.index].TxRateLimit = current(rx), current(tx)
	}
	if p.limits.rng != nil {
		cfg.RNGRateLimit = current(p.limits.rng.RateLimiter())
	}
	return cfg
}

// current is l's configuration, nil when it limits nothing (as an
// unlimited device is configured).
func current(l *ratelimit.Limiter) *ratelimit.Config {
	c := l.Config()
	if !c.Enabled() {
		return nil
	}
	return &c
}

// ErrNoDevice is wrapped by the rate-limit requests for a device the VM
// does not have.
var ErrNoDevice = fmt.Errorf("no such device: %w", ErrNotFound)

// SetDriveRateLimit changes a disk's rate limits while the VM runs. id
// is the disk's serial (id= of --disk) or its name, diskN, counting in
// the order the guest sees the disks (disk0 is vda). In rl a nil bucket
// is left as it is, and one with a zero size or refill time is removed.
func (v *VM) SetDriveRateLimit(id string, rl ratelimit.Config) error {
	if err := rl.Validate(); err != nil {
		return fmt.Errorf("drive %q: %w", id, err)
	}
	if v.plat != nil {
		for _, d := range v.plat.limits.disks {
			if d.name == id || (v.cfg.Disks[d.index].ID != "" && v.cfg.Disks[d.index].ID == id) {
				return d.dev.RateLimiter().Update(rl)
			}
		}
	}
	return fmt.Errorf("drive %q: %w", id, ErrNoDevice)
}

// SetNetRateLimits changes a network interface's receive and transmit
// limits while the VM runs, as SetDriveRateLimit does. id is the net's
// ID (virtionet.Config.ID), its TAP's name or netN, counting in the order
// of Config.Nets.
func (v *VM) SetNetRateLimits(id string, rx, tx ratelimit.Config) error {
	if err := rx.Validate(); err != nil {
		return fmt.Errorf("network interface %q: receive: %w", id, err)
	}
	if err := tx.Validate(); err != nil {
		return fmt.Errorf("network interface %q: transmit: %w", id, err)
	}
	if v.plat != nil {
		for _, n := range v.plat.limits.nets {
			if n.name == id || v.cfg.Nets[n.index].TAP == id || (v.cfg.Nets[n.index].ID != "" && v.cfg.Nets[n.index].ID == id) {
				rxl, txl := n.dev.RateLimiters()
				if err := rxl.Update(rx); err != nil {
					return err
				}
				return txl.Update(tx)
			}
		}
	}
	return fmt.Errorf("network interface %q: %w", id, ErrNoDevice)
}

// SetRNGRateLimit changes the entropy device's limits while the VM runs.
func (v *VM) SetRNGRateLimit(rl ratelimit.Config) error {
	if err := rl.Validate(); err != nil {
		return fmt.Errorf("entropy device: %w", err)
	}
	if v.plat == nil || v.plat.limits.rng == nil {
		return fmt.Errorf("entropy device: %w", ErrNoDevice)
	}
	return v.plat.limits.rng.RateLimiter().Update(rl)
}

// UpdateDrive swaps the backing file of a running guest's disk, as
// Firecracker's PATCH /drives/{id} with a path_on_host does: id is the
// disk's serial (block.Config.ID) or its name diskN, as for
// SetDriveRateLimit. The file is checked, opened and locked as at start,
// in the disk's mode; the guest sees the new capacity through a
// configuration change interrupt. Snapshots and migrations taken later
// record the new path. It is refused while a migration runs.
func (v *VM) UpdateDrive(id, path string) error {
	v.lifeMu.Lock()
	defer v.lifeMu.Unlock()
	if v.life.migrating {
		return fmt.Errorf("drive %q: %w", id, ErrMigrating)
	}
	if v.plat != nil {
		for _, d := range v.plat.limits.disks {
			if d.name != id && (v.cfg.Disks[d.index].ID == "" || v.cfg.Disks[d.index].ID != id) {
				continue
			}
			if err := d.dev.SwapImage(path); err != nil {
				return fmt.Errorf("drive %q: %w", id, err)
			}
			v.cfg.Disks[d.index].Path = path
			v.log.WithFields(logrus.Fields{"drive": id, "path": path, "sectors": d.dev.Capacity()}).Info("drive backing file updated")
			return nil
		}
	}
	return fmt.Errorf("drive %q: %w", id, ErrNoDevice)
}
