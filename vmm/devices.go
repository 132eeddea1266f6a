package vmm

import (
	"fmt"
	"slices"

	"github.com/ternvm/tern/virtio/balloon"
	"github.com/ternvm/tern/virtio/block"
	virtionet "github.com/ternvm/tern/virtio/net"
	"github.com/ternvm/tern/virtio/ratelimit"
	"github.com/ternvm/tern/virtio/rng"
	"github.com/ternvm/tern/virtio/vsock"
)

// addConfiguredVirtio creates the virtio devices the Config asks for, in a
// fixed order (disks with the root disk first, nets, vsock, balloon, rng) so that a
// guest sees the same device at the same address every time it boots with
// the same configuration.
func (p *platform) addConfiguredVirtio() error {
	cfg := p.vm.cfg
	for i, k := range diskOrder(cfg.Disks) {
		d := cfg.Disks[k]
		dev, err := block.New(d.Config)
		if err != nil {
			return fmt.Errorf("disk %s: %w", d.Path, err)
		}
		name := fmt.Sprintf("disk%d", i)
		if err := p.addVirtio(name, dev, dev.Close); err != nil {
			dev.Close()
			return err
		}
		p.limits.disks = append(p.limits.disks, limitedDisk{name: name, index: k, dev: dev})
	}
	for i, n := range cfg.Nets {
		dev, err := virtionet.New(n)
		if err != nil {
			return fmt.Errorf("net %s: %w", n.TAP, err)
		}
		if n.TAPFile != nil {
			// The snapshot and the API name it by its interface.
			p.vm.cfg.Nets[i].TAP = dev.TAP()
		}
		name := fmt.Sprintf("net%d", i)
		stack, err := p.mmdsFor(i, n)
		if err != nil {
			dev.Close()
			return err
		}
		closer := dev.Close
		if stack != nil {
			dev.SetInterceptor(stack)
			closer = func() error { stack.Close(); return dev.Close() }
		}
		if err := p.addVirtio(name, dev, closer); err != nil {
			closer()
			return err
		}
		p.limits.nets = append(p.limits.nets, limitedNet{name: name, index: i, dev: dev})
	}
	if cfg.Vsock != nil {
		dev, err := vsock.New(*cfg.Vsock)
		if err != nil {
			return err
		}
		if err := p.addVirtio("vsock", dev, dev.Close); err != nil {
			dev.Close()
			return err
		}
	}
	if cfg.Balloon != nil {
		dev, err := balloon.New(*cfg.Balloon, balloon.ReleaseWithMadvise(p.vm.mem))
		if err != nil {
			return err
		}
		if err := p.addVirtio("balloon", dev, nil); err != nil {
			return err
		}
		p.balloon = dev
	}
	if cfg.RNG {
		var rl ratelimit.Config
		if cfg.RNGRateLimit != nil {
			rl = *cfg.RNGRateLimit
		}
		dev := rng.NewLimited(rl)
		if err := p.addVirtio("rng", dev, nil); err != nil {
			return err
		}
		p.limits.rng = dev
	}
	return nil
}

// orderedDisks puts the root disk first, keeping the others in order.
func orderedDisks(disks []DiskConfig) []DiskConfig {
	out := make([]DiskConfig, 0, len(disks))
	for _, k := range diskOrder(disks) {
		out = append(out, disks[k])
	}
	return out
}

// diskOrder is orderedDisks as indexes into disks.
func diskOrder(disks []DiskConfig) []int {
	out := make([]int, len(disks))
	for i := range out {
		out[i] = i
	}
	slices.SortStableFunc(out, func(a, b int) int {
		switch {
		case disks[a].Root && !disks[b].Root:
			return -1
		case disks[b].Root && !disks[a].Root:
			return 1
		}
		return 0
	})
	return out
}

// rootCmdline is what the command line needs for a root disk, if any.
func rootCmdline(disks []DiskConfig) string {
	for _, d := range disks {
		if d.Root {
			if d.ReadOnly {
				return "root=/dev/vda ro"
			}
			return "root=/dev/vda rw"
		}
	}
	return ""
}

// ErrNoBalloon is returned by balloon requests to a VM built without one.
var ErrNoBalloon = fmt.Errorf("this VM has no balloon device: %w", ErrNotFound)

// Balloon is the balloon device's state.
type Balloon struct {
	TargetMiB    uint32 // what the host asked for
	ActualMiB    uint32 // what the guest has inflated
	DeflateOnOOM bool
}

// SetBalloonTarget asks the guest to inflate or deflate its balloon to mib
// MiB; the guest's driver does so at its own pace.
func (v *VM) SetBalloonTarget(mib uint32) error {
	if v.plat == nil || v.plat.balloon == nil {
		return ErrNoBalloon
	}
	if uint64(mib)<<20 > v.cfg.MemoryBytes {
		return fmt.Errorf("balloon target of %d MiB is more than the guest's %d MiB", mib, v.cfg.MemoryBytes>>20)
	}
	return v.plat.balloon.SetTarget(mib)
}

// pagesPerMiB converts the balloon's 4 KiB page counts.
const pagesPerMiB = 256

// BalloonInfo reports the balloon's target and how far the guest got.
func (v *VM) BalloonInfo() (Balloon, error) {
	if v.plat == nil || v.plat.balloon == nil {
		return Balloon{}, ErrNoBalloon
	}
	b := v.plat.balloon
	return Balloon{TargetMiB: b.Target() / pagesPerMiB, ActualMiB: b.Actual() / pagesPerMiB, DeflateOnOOM: v.cfg.Balloon.DeflateOnOOM}, nil
}

// BalloonStats returns the guest's latest memory statistics (empty until
// the guest reports, or without a statistics interval).
func (v *VM) BalloonStats() (map[string]uint64, error) {
	if v.plat == nil || v.plat.balloon == nil {
		return nil, ErrNoBalloon
	}
	return v.plat.balloon.Stats(), nil
}
