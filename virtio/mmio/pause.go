package mmio

import "github.com/ternvm/tern/virtio"

// Suspender is a device that can stop touching guest memory without losing
// what the driver would keep across a pause; Reset may forget such state
// (a balloon's inflated page count, a held statistics buffer), since a
// driver that resets starts again from nothing.
type Suspender interface {
	Suspend()
}

// Pause stops the device's workers so that guest memory, the queues and
// the device state hold still, keeping every register and queue position.
// The VMM pauses the vCPUs first, so no driver request arrives meanwhile;
// a notification that does is seen by Resume.
func (t *Transport) Pause() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.active {
		return
	}
	if s, ok := t.dev.(Suspender); ok {
		s.Suspend()
	} else {
		t.dev.Reset()
	}
	t.active = false
	t.paused = true
	t.epoch.Add(1) // a worker that outlives the pause can no longer signal
}

// Resume restarts a device that Pause stopped, with the same queues and
// features, then calls Kick.
func (t *Transport) Resume() {
	t.mu.Lock()
	if !t.paused {
		t.mu.Unlock()
		return
	}
	t.paused = false
	t.activateLocked()
	active := t.active
	t.mu.Unlock()
	if active {
		t.Kick()
	}
}

// Kick makes a running device look at every queue and the driver look at
// every used ring: notifications that arrived while the device was paused
// were dropped, and a request completed as the device stopped may not have
// raised its interrupt. Both are harmless when there is nothing to do: a
// device finds no new buffers, a driver no new used entries.
func (t *Transport) Kick() {
	t.mu.Lock()
	active := t.active
	var ready []int
	for i, q := range t.queues {
		if q.Ready() {
			ready = append(ready, i)
		}
	}
	t.mu.Unlock()
	if !active {
		return
	}
	for _, i := range ready {
		t.dev.QueueNotify(i)
	}
	t.raise(virtio.InterruptUsedBuffer) // a lost edge: the next one carries the status
}

// Paused reports whether Pause stopped the device and Resume has not yet
// restarted it.
func (t *Transport) Paused() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.paused
}
