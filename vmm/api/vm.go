package api

import (
	"fmt"
	"time"

	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/migrate/transport"
	"github.com/ternvm/tern/virtio/ratelimit"
	"github.com/ternvm/tern/vmm"
)

// ForVM is the Controller that drives v: it turns the API's wire types
// into vmm's and back. It lives here, not in vmm, because the HTTP layer
// depends on vmm and never the reverse.
func ForVM(v *vmm.VM) Controller { return vmController{v} }

type vmController struct{ v *vmm.VM }

func (c vmController) SetBalloonTarget(mib uint32) error { return c.v.SetBalloonTarget(mib) }

func (c vmController) BalloonInfo() (Balloon, error) {
	b, err := c.v.BalloonInfo()
	return Balloon{AmountMiB: b.TargetMiB, ActualMiB: b.ActualMiB, DeflateOnOOM: b.DeflateOnOOM}, err
}

func (c vmController) BalloonStats() (map[string]uint64, error) { return c.v.BalloonStats() }
func (c vmController) Pause() error                             { return c.v.Pause() }
func (c vmController) Resume() error                            { return c.v.Resume() }
func (c vmController) Paused() bool                             { return c.v.Paused() }
func (c vmController) SendCtrlAltDel() error                    { return c.v.SendCtrlAltDel() }

func (c vmController) CreateSnapshot(dir string, diff bool) (Snapshot, error) {
	res, err := c.v.Snapshot(vmm.SnapshotOptions{Dir: dir, Diff: diff})
	if err != nil {
		return Snapshot{}, err
	}
	kind := "Full"
	if diff {
		kind = "Diff"
	}
	return Snapshot{
		Dir: dir, Type: kind, StateBytes: res.StateBytes, MemoryBytes: res.MemoryBytes,
		MemoryStoredBytes: res.Memory.StoredBytes, TookMicros: res.Took.Microseconds(),
	}, nil
}

func (c vmController) StartMigration(req MigrationRequest) error {
	t, err := migrationTarget(req)
	if err != nil {
		return err
	}
	return c.v.StartMigration(t)
}

func (c vmController) MigrationStatus() (migrate.Status, error) { return c.v.MigrationStatus() }
func (c vmController) CancelMigration() error                   { return c.v.CancelMigration() }

func (c vmController) SetDriveRateLimit(id string, rl ratelimit.Config) error {
	return c.v.SetDriveRateLimit(id, rl)
}

func (c vmController) SetNetRateLimits(id string, rx, tx ratelimit.Config) error {
	return c.v.SetNetRateLimits(id, rx, tx)
}

func (c vmController) SetRNGRateLimit(rl ratelimit.Config) error { return c.v.SetRNGRateLimit(rl) }

// migrationTarget turns the body of PUT /migration/send into vmm's terms.
func migrationTarget(req MigrationRequest) (vmm.MigrationTarget, error) {
	t := vmm.MigrationTarget{
		To:       req.To,
		TLS:      transport.TLSFiles{CertFile: req.TLSCert, KeyFile: req.TLSKey, CAFile: req.TLSCA},
		Insecure: req.Insecure,
		Send:     migrate.SendOptions{WithDisks: req.WithDisks, Bandwidth: req.Bandwidth},
	}
	if req.DowntimeMS < 0 || req.TimeoutMS < 0 {
		return t, fmt.Errorf("%w: downtime_ms and timeout_ms cannot be negative", vmm.ErrInvalidConfig)
	}
	switch req.OnTimeout {
	case "", "cancel":
	case "force":
		t.Send.ForceOnTimeout = true
	default:
		return t, fmt.Errorf("%w: on_timeout %q: want \"cancel\" or \"force\"", vmm.ErrInvalidConfig, req.OnTimeout)
	}
	t.Send.Downtime = time.Duration(req.DowntimeMS * float64(time.Millisecond))
	t.Send.Timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	return t, nil
}
