package vmm

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotRunning is returned by lifecycle requests to a VM whose vCPUs are
// not running (not started yet, or stopped).
var ErrNotRunning = errors.New("the VM is not running")

// pauseTimeout bounds how long Pause waits for the vCPUs to stop.
const pauseTimeout = 10 * time.Second

// ErrNotPaused is returned by requests that need a paused VM.
var ErrNotPaused = errors.New("the VM is not paused (pause it first)")

// ErrMigrating is returned by requests that would change a VM a migration
// is moving (it pauses and resumes the guest itself).
var ErrMigrating = errors.New("a migration of this VM is under way")

// pauseState is the part of the VM that Pause and Resume change; guarded
// by VM.lifeMu, except resume and parked, which vCPU threads read under
// VM.parkMu.
type pauseState struct {
	running   bool          // Run started the vCPUs and they have not stopped
	paused    bool          // every vCPU is parked and the devices are still
	migrating bool          // a migration drives pause and resume
	resume    chan struct{} // closed by Resume; parked vCPUs wait on it
	parked    chan int      // each vCPU reports here once parked
}

// Pause stops the guest: every vCPU leaves KVM_RUN (completing the
// instruction it was in) and parks on its own thread, and the virtio
// devices stop their workers with their queues where they are. Nothing the
// guest started is lost: a request a device took from a queue is
// completed before its worker stops. Pausing a paused VM does nothing.
func (v *VM) Pause() error {
	v.lifeMu.Lock()
	defer v.lifeMu.Unlock()
	if v.life.migrating {
		return ErrMigrating
	}
	return v.pauseLocked()
}

func (v *VM) pauseLocked() error {
	if !v.life.running {
		return ErrNotRunning
	}
	if v.life.paused {
		return nil
	}
	start := time.Now()
	v.vcpuMu.Lock()
	cs := v.vcpus
	v.vcpuMu.Unlock()
	resume, parked := make(chan struct{}), make(chan int, len(cs))
	v.parkMu.Lock()
	v.life.resume, v.life.parked = resume, parked
	v.parkMu.Unlock()
	v.pausing.Store(true)
	for _, c := range cs {
		c.kick()
	}
	// A vCPU leaves KVM_RUN within microseconds of its kick; one that
	// does not answer in seconds is stuck outside it (its thread ended,
	// or a device access it is in never returns).
	deadline := time.NewTimer(pauseTimeout)
	defer deadline.Stop()
	for n := range cs {
		select {
		case <-parked:
		case <-v.stopped:
			v.pausing.Store(false)
			close(resume)
			return fmt.Errorf("pause: %w", ErrNotRunning)
		case <-deadline.C:
			v.pausing.Store(false)
			close(resume) // the parked ones run on
			return fmt.Errorf("pause: only %d of %d vCPUs stopped within %v", n, len(cs), pauseTimeout)
		}
	}
	v.plat.pauseDevices()
	v.life.paused = true
	v.setState(StatePaused)
	v.emit(Event{Kind: EventPaused})
	v.log.WithField("took", time.Since(start).String()).Info("VM paused")
	return nil
}

// Resume lets a paused guest run on. Resuming a running VM does nothing.
func (v *VM) Resume() error {
	v.lifeMu.Lock()
	defer v.lifeMu.Unlock()
	if v.life.migrating {
		return ErrMigrating
	}
	if !v.life.running {
		return ErrNotRunning
	}
	if !v.life.paused {
		return nil
	}
	// After a migration whose outcome is unknown the disks may be in
	// the destination's hands, and with them the guest.
	if err := v.retakeDisks(0); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	v.resumeLocked()
	v.log.Info("VM resumed")
	return nil
}

func (v *VM) resumeLocked() {
	v.plat.resumeDevices()
	v.pausing.Store(false)
	v.life.paused = false
	close(v.life.resume)
	v.setState(StateRunning)
	v.emit(Event{Kind: EventResumed})
}

// Paused reports whether the VM is paused.
func (v *VM) Paused() bool {
	v.lifeMu.Lock()
	defer v.lifeMu.Unlock()
	return v.life.paused
}

// park holds the vCPU thread while the VM is paused, running the requests
// other goroutines send it (vCPU ioctls belong to this thread). It returns
// when the VM resumes or stops.
func (c *vcpu) park() {
	v := c.vm
	// Not lifeMu: Pause holds it while it waits for this thread.
	v.parkMu.Lock()
	resume, parked := v.life.resume, v.life.parked
	v.parkMu.Unlock()
	parked <- c.id
	for {
		select {
		case req := <-c.requests:
			req.done <- req.fn(c)
		case <-resume:
			_ = c.kvm.KVMClockCtrl() // as after a restore: the pause is not a lockup
			c.kvm.SetImmediateExit(false)
			// A Pause that came right after this Resume may have
			// set immediate_exit before the line above cleared it;
			// its signal found this thread outside KVM_RUN.
			if v.pausing.Load() {
				c.kvm.SetImmediateExit(true)
			}
			return
		case <-v.stopped:
			return
		}
	}
}

// vcpuRequest is work for a vCPU's own thread.
type vcpuRequest struct {
	fn   func(*vcpu) error
	done chan error
}

// onThread runs fn on the parked vCPU's thread and returns its error.
func (c *vcpu) onThread(fn func(*vcpu) error) error {
	req := vcpuRequest{fn: fn, done: make(chan error, 1)}
	select {
	case c.requests <- req:
	case <-c.vm.stopped:
		return fmt.Errorf("vCPU %d: %w", c.id, ErrNotRunning)
	}
	select {
	case err := <-req.done:
		return err
	case <-c.vm.stopped:
		return fmt.Errorf("vCPU %d: %w", c.id, ErrNotRunning)
	}
}

// pauseDevices stops the virtio devices' workers, keeping their state.
func (p *platform) pauseDevices() {
	for _, s := range p.virtio {
		s.transport.Pause()
	}
}

func (p *platform) resumeDevices() {
	for _, s := range p.virtio {
		s.transport.Resume()
	}
}
