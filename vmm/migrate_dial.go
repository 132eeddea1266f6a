package vmm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/migrate/transport"
	"github.com/ternvm/tern/vmm/api"
)

// dialTimeout bounds connecting to the destination (the TLS handshake
// included).
const dialTimeout = 30 * time.Second

// StartMigration connects to the destination req names and migrates the
// guest there in the background; MigrationStatus follows it. A bad
// request, or a destination that cannot be reached or whose certificate
// does not verify, is an error here and the guest runs on untouched.
func (v *VM) StartMigration(req api.MigrationRequest) error {
	opts, err := sendOptions(req)
	if err != nil {
		return err
	}
	addr, err := transport.ParseAddr(req.To)
	if err != nil {
		return err
	}
	topts := transport.Options{TLS: transport.TLSFiles{CertFile: req.TLSCert, KeyFile: req.TLSKey, CAFile: req.TLSCA}, Insecure: req.Insecure}
	if err := topts.Validate(addr); err != nil {
		return err
	}
	src, err := v.beginMigration()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	v.mig.mu.Lock()
	v.mig.cancel = cancel // a cancel while dialling stops the dial
	v.mig.mu.Unlock()
	dctx, dcancel := context.WithTimeout(ctx, dialTimeout)
	conn, err := transport.Dial(dctx, addr, topts)
	dcancel()
	if err != nil {
		cancel()
		err = fmt.Errorf("migrate to %s: %w", req.To, err)
		phase := migrate.PhaseFailed
		if errors.Is(err, context.Canceled) {
			phase = migrate.PhaseCancelled
		}
		v.endMigration(migrate.Status{Phase: phase, TotalBytes: v.mem.Size(), Error: err.Error()}, err)
		return err
	}
	go func() {
		defer cancel()
		defer conn.Close()
		v.runMigration(ctx, conn, src, opts)
	}()
	return nil
}

// sendOptions turns an API request into migrate's options.
func sendOptions(req api.MigrationRequest) (migrate.SendOptions, error) {
	o := migrate.SendOptions{WithDisks: req.WithDisks}
	if req.DowntimeMS < 0 || req.TimeoutMS < 0 {
		return o, fmt.Errorf("%w: downtime_ms and timeout_ms cannot be negative", ErrInvalidConfig)
	}
	switch req.OnTimeout {
	case "", "cancel":
	case "force":
		o.ForceOnTimeout = true
	default:
		return o, fmt.Errorf("%w: on_timeout %q: want \"cancel\" or \"force\"", ErrInvalidConfig, req.OnTimeout)
	}
	o.Downtime = time.Duration(req.DowntimeMS * float64(time.Millisecond))
	o.Timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	o.Bandwidth = req.Bandwidth
	return o, nil
}
