package balloon

import (
	"fmt"

	"github.com/ternvm/tern/virtio"
)

// activation is what exists between Activate and Reset: the interrupt and
// the channels that drive and stop the worker.
type activation struct {
	irq   virtio.Interrupt
	kicks []chan struct{} // one per queue, buffered: a pending kick is enough
	stop  chan struct{}
	done  chan struct{} // closed when the worker has returned
}

// Activate starts the worker that serves the queues. Buffers the driver
// made available before DRIVER_OK (Linux posts its first statistics
// buffer during probe) are processed at once.
func (d *Device) Activate(mem virtio.Memory, queues []*virtio.Queue, irq virtio.Interrupt, acked uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active != nil {
		return fmt.Errorf("activate: %w", ErrActive)
	}
	want := 2
	if d.statsEvery > 0 {
		want = 3
	}
	if len(queues) != want {
		return fmt.Errorf("virtio-balloon: activate with %d queues, want %d", len(queues), want)
	}
	for i, q := range queues {
		if q == nil {
			return fmt.Errorf("virtio-balloon: activate with queue %d missing", i)
		}
	}
	w := d.newWorkerLocked(mem, queues, irq, acked)
	a := &activation{
		irq:  irq,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range queues {
		kick := make(chan struct{}, 1)
		kick <- struct{}{}
		a.kicks = append(a.kicks, kick)
	}
	d.active = a
	go w.run(a.kicks, a.stop, a.done)
	return nil
}

// QueueNotify hands the queue to the worker; it never blocks.
func (d *Device) QueueNotify(index int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active == nil || index < 0 || index >= len(d.active.kicks) {
		return
	}
	select {
	case d.active.kicks[index] <- struct{}{}:
	default: // a kick is already pending; the worker will see this buffer too
	}
}

// Reset stops the worker and waits for it. The target, the last
// statistics and the counters survive; actual returns to zero, since a
// reset driver starts with an empty balloon, and a held statistics buffer
// is forgotten with the queue it came from.
func (d *Device) Reset() {
	if !d.stopWorker() {
		return
	}
	d.mu.Lock()
	d.actual = 0
	d.statsHeld = false
	d.statsHead = 0
	d.mu.Unlock()
}

// stopWorker ends the active worker and waits for it; it reports whether
// there was one.
func (d *Device) stopWorker() bool {
	d.mu.Lock()
	a := d.active
	if a == nil {
		d.mu.Unlock()
		return false
	}
	// From here on QueueNotify and SetTarget see an inactive device.
	d.active = nil
	close(a.stop)
	d.mu.Unlock()
	// The worker takes d.mu to record its work, so wait without it.
	<-a.done
	return true
}

// newWorkerLocked builds the worker for an activation with the queues the
// driver negotiated. d.mu is held.
func (d *Device) newWorkerLocked(mem virtio.Memory, queues []*virtio.Queue, irq virtio.Interrupt, acked uint64) *worker {
	w := &worker{
		d:        d,
		mem:      mem,
		irq:      irq,
		interval: d.statsEvery,
		idleHook: d.idleHook,
		pfns:     make([]uint32, 0, MaxPFNsPerChain),
		raw:      make([]byte, MaxPFNsPerChain*pfnSize),
	}
	w.queues[QueueInflate] = queues[QueueInflate]
	w.queues[QueueDeflate] = queues[QueueDeflate]
	if len(queues) > QueueStats && acked&FeatureStatsVQ != 0 {
		w.queues[QueueStats] = queues[QueueStats]
	}
	if w.queues[QueueStats] == nil {
		// A buffer held by a snapshot of a driver that has now not
		// negotiated statistics cannot be returned anywhere.
		d.statsHeld = false
	}
	w.statsHeld, w.statsHead = d.statsHeld, d.statsHead
	return w
}

// Suspend stops the worker like Reset but keeps what the driver still
// counts on when it is only paused: the inflated page count and a held
// statistics buffer, which the next activation returns when it is due.
func (d *Device) Suspend() { d.stopWorker() }
