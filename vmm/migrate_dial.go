package vmm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/migrate/transport"
)

// dialTimeout bounds connecting to the destination (the TLS handshake
// included).
const dialTimeout = 30 * time.Second

// MigrationTarget says where StartMigration sends the guest, and how.
type MigrationTarget struct {
	To       string // tcp:HOST:PORT or unix:PATH
	Send     migrate.SendOptions
	TLS      transport.TLSFiles
	Insecure bool // plain TCP without TLS
}

// StartMigration connects to the destination req names and migrates the
// guest there in the background; MigrationStatus follows it. A bad
// request, or a destination that cannot be reached or whose certificate
// does not verify, is an error here and the guest runs on untouched. To
// migrate over a connection the caller made, use Migrate.
func (v *VM) StartMigration(req MigrationTarget) error {
	opts := req.Send
	if opts.Downtime < 0 || opts.Timeout < 0 {
		return fmt.Errorf("%w: the downtime and timeout cannot be negative", ErrInvalidConfig)
	}
	addr, err := transport.ParseAddr(req.To)
	if err != nil {
		return err
	}
	topts := transport.Options{TLS: req.TLS, Insecure: req.Insecure}
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
