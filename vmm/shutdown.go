package vmm

import (
	"context"
	"errors"
	"fmt"
)

// ErrShutdownTimeout is wrapped by Shutdown's error when the guest did
// not stop by itself before the deadline and Shutdown stopped it; Wait
// then returns StopShutdownTimeout.
var ErrShutdownTimeout = errors.New("the guest did not shut down before the deadline, so the host stopped it")

// Shutdown asks the guest to shut down and waits for it to stop until ctx
// is done; then it stops the guest itself. It presses Ctrl+Alt+Del (the
// i8042 raises IRQ 1 and the guest's own handler decides: Linux reboots
// or signals init, and a guest started with reboot=k powers off or resets,
// which ends the VM). A paused guest is resumed first, so that it can
// act. It returns nil once the guest stopped by itself (Wait says how),
// and an error wrapping ErrShutdownTimeout and ctx's cause when the
// deadline came first and the host stopped it (Wait then returns
// StopShutdownTimeout). Give ctx a deadline: without one Shutdown waits
// as long as the guest takes. Call Wait afterwards as always.
func (v *VM) Shutdown(ctx context.Context) error {
	if err := v.askShutdown(); err != nil {
		return err
	}
	select {
	case <-v.stopped:
		return nil
	case <-ctx.Done():
	}
	v.requestStop(StopShutdownTimeout, nil)
	// The guest may have stopped by itself just as the deadline came:
	// then requestStop changed nothing and that reason stands.
	if v.stopReason != StopShutdownTimeout {
		return nil
	}
	v.log.WithField("cause", context.Cause(ctx)).Warn("the guest did not shut down in time; stopped it")
	return fmt.Errorf("shutdown: %w (%w)", ErrShutdownTimeout, context.Cause(ctx))
}

// askShutdown resumes a paused guest and presses Ctrl+Alt+Del.
func (v *VM) askShutdown() error {
	v.lifeMu.Lock()
	switch {
	case v.life.migrating:
		v.lifeMu.Unlock()
		return fmt.Errorf("shutdown: %w", ErrMigrating)
	case !v.life.running:
		v.lifeMu.Unlock()
		return fmt.Errorf("shutdown: %w", ErrNotRunning)
	case v.life.paused:
		if err := v.retakeDisks(0); err != nil {
			v.lifeMu.Unlock()
			return fmt.Errorf("shutdown: resume the paused guest: %w", err)
		}
		v.resumeLocked()
		v.log.Info("VM resumed to shut down")
	}
	v.lifeMu.Unlock()
	if err := v.SendCtrlAltDel(); err != nil {
		select {
		case <-v.stopped:
			return nil // it stopped by itself meanwhile: nothing to ask
		default:
		}
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
