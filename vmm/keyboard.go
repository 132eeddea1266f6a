package vmm

import "fmt"

// SendCtrlAltDel presses Ctrl+Alt+Del on the guest's keyboard, as
// Firecracker's action of that name does: the i8042 queues the scan codes
// and raises IRQ 1, and the guest's own handler decides what follows (Linux
// reboots at once, or signals init with SIGINT once init has asked for
// that, as most inits do). A paused guest finds the keys when it resumes.
// It fails with ErrNotRunning before Start and after the guest stopped.
func (v *VM) SendCtrlAltDel() error {
	switch v.State() {
	case StateCreated, StateStopped:
		return fmt.Errorf("send Ctrl+Alt+Del: %w", ErrNotRunning)
	}
	if err := v.plat.i8042.SendCtrlAltDel(); err != nil {
		return fmt.Errorf("send Ctrl+Alt+Del: %w", err)
	}
	v.log.Info("sent Ctrl+Alt+Del to the guest")
	return nil
}
