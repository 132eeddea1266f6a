package vmm

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// throttlePeriod is the time slice of auto-converge: every period each
// vCPU is interrupted and sleeps for the throttle's share of it.
const throttlePeriod = 10 * time.Millisecond

// throttle slows a guest that dirties memory faster than a migration can
// copy it (auto-converge).
type throttle struct {
	mu      sync.Mutex
	percent atomic.Int32
	stop    chan struct{} // ends the ticker; nil while off
}

// setThrottle makes the vCPUs sleep percent (0 to 99) of their time; 0
// lets them run free.
func (v *VM) setThrottle(percent int) {
	percent = min(max(percent, 0), 99)
	t := &v.throttle
	t.mu.Lock()
	defer t.mu.Unlock()
	t.percent.Store(int32(percent))
	switch {
	case percent > 0 && t.stop == nil:
		t.stop = make(chan struct{})
		go v.throttleTicker(t.stop)
	case percent == 0 && t.stop != nil:
		close(t.stop)
		t.stop = nil
	}
}

// throttleTicker interrupts every vCPU once a period, so that each takes
// its sleep in throttled.
func (v *VM) throttleTicker(stop <-chan struct{}) {
	tk := time.NewTicker(throttlePeriod)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-v.stopped:
			return
		case <-tk.C:
		}
		v.vcpuMu.Lock()
		cs := v.vcpus
		v.vcpuMu.Unlock()
		for _, c := range cs {
			c.interrupt()
		}
	}
}

// interrupt signals the vCPU's thread without setting immediate_exit: a
// vCPU in the guest leaves KVM_RUN, one busy in the monitor misses this
// period, which only makes the throttle a little gentler.
func (c *vcpu) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tid != 0 {
		_ = unix.Tgkill(unix.Getpid(), c.tid, kickSignal)
	}
}

// throttled sleeps the vCPU's share of a period while a throttle is set,
// in short steps so that a pause or stop is not held up by it.
func (c *vcpu) throttled() {
	v := c.vm
	pct := v.throttle.percent.Load()
	if pct <= 0 {
		return
	}
	end := time.Now().Add(throttlePeriod * time.Duration(pct) / time.Duration(100-pct))
	for {
		left := time.Until(end)
		if left <= 0 || v.pausing.Load() {
			return
		}
		select {
		case <-v.stopped:
			return
		case <-time.After(min(left, 2*time.Millisecond)):
		}
	}
}
