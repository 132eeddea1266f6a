package vmm

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// State is where a VM is in its lifecycle.
type State int32

const (
	StateCreated   State = iota + 1 // built by New, Restore or Receive; not started
	StateRunning                    // Start let the vCPUs run
	StatePaused                     // Pause parked the vCPUs and stilled the devices
	StateMigrating                  // an outgoing migration is under way (it pauses the guest itself)
	StateStopped                    // the guest runs no more (see Wait for why), or Close ran
)

func (s State) String() string {
	switch s {
	case StateCreated:
		return "created"
	case StateRunning:
		return "running"
	case StatePaused:
		return "paused"
	case StateMigrating:
		return "migrating"
	case StateStopped:
		return "stopped"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// State reports the VM's state. It never waits: a Pause, Snapshot or
// migration in progress holds the lifecycle lock for long, and an
// orchestrator polling State must not hang behind it, so the state lives
// in atomics of its own.
func (v *VM) State() State {
	select {
	case <-v.stopped:
		return StateStopped
	default:
	}
	if v.migratingNow.Load() {
		return StateMigrating
	}
	return State(v.state.Load())
}

// setState records a transition (called under lifeMu by Start, Pause and
// Resume).
func (v *VM) setState(s State) { v.state.Store(int32(s)) }

// EventKind says what an Event reports.
type EventKind int

const (
	EventStarted          EventKind = iota + 1 // Start let the guest run
	EventBootDone                              // the guest wrote the boot-timer port (first time only); BootTime says when
	EventPaused                                // the guest is paused (by Pause, or by a migration's stop-and-copy)
	EventResumed                               // the guest runs again
	EventStopped                               // the guest runs no more; Reason and Err say why
	EventDeviceNeedsReset                      // a virtio device moved to DEVICE_NEEDS_RESET; Device and Err say which and why
)

func (k EventKind) String() string {
	switch k {
	case EventStarted:
		return "started"
	case EventBootDone:
		return "boot-done"
	case EventPaused:
		return "paused"
	case EventResumed:
		return "resumed"
	case EventStopped:
		return "stopped"
	case EventDeviceNeedsReset:
		return "device-needs-reset"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is something that happened to a VM, as Config.OnEvent hears it.
// The fields other than Kind and Time belong to particular kinds.
type Event struct {
	Kind EventKind
	Time time.Time
	// BootTime (EventBootDone) is the time from Config.Started to the
	// guest's signal.
	BootTime time.Duration
	// Reason (EventStopped) is what Wait returns.
	Reason StopReason
	// Device (EventDeviceNeedsReset) is the device's name in the log:
	// diskN, netN, rng, balloon, vsock.
	Device string
	// Err is, for EventStopped, the failure that stopped the VM (nil for
	// a guest's own poweroff or reset, or a Stop), and for
	// EventDeviceNeedsReset the device's cause (virtio.ErrBadChain, an
	// I/O error of the backing file, ...).
	Err error
}

func (e Event) String() string {
	switch e.Kind {
	case EventBootDone:
		return fmt.Sprintf("%v after %v", e.Kind, e.BootTime)
	case EventStopped:
		if e.Err != nil {
			return fmt.Sprintf("%v: %v: %v", e.Kind, e.Reason, e.Err)
		}
		return fmt.Sprintf("%v: %v", e.Kind, e.Reason)
	case EventDeviceNeedsReset:
		return fmt.Sprintf("%v: %s: %v", e.Kind, e.Device, e.Err)
	}
	return e.Kind.String()
}

// maxQueuedEvents bounds the events waiting for a slow OnEvent. A guest
// can make events (a driver that breaks its device, resets it and breaks
// it again), so the queue cannot be unbounded; past the bound events are
// dropped and logged, except EventStopped, which is always delivered.
const maxQueuedEvents = 256

// eventQueue delivers events to Config.OnEvent in order on a goroutine of
// its own. Events come from vCPU threads, device goroutines and the
// lifecycle calls, none of which may wait for the caller's callback: a
// callback that blocks, or that calls Pause or Stop, would otherwise
// stall the guest or deadlock. A nil queue (no OnEvent) drops everything.
type eventQueue struct {
	fn   func(Event)
	v    *VM
	wake chan struct{} // capacity 1: a push or close since the last look

	mu      sync.Mutex
	q       []Event
	closed  bool
	dropped int
}

func newEventQueue(v *VM, fn func(Event)) *eventQueue {
	if fn == nil {
		return nil
	}
	e := &eventQueue{fn: fn, v: v, wake: make(chan struct{}, 1)}
	go e.run()
	return e
}

func (e *eventQueue) push(ev Event) {
	if e == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	if len(e.q) >= maxQueuedEvents && ev.Kind != EventStopped {
		e.dropped++
		first := e.dropped == 1
		e.mu.Unlock()
		if first {
			e.v.log.WithField("event", ev.String()).Warn("OnEvent is not keeping up: dropping events")
		}
		return
	}
	e.q = append(e.q, ev)
	e.mu.Unlock()
	e.signal()
}

func (e *eventQueue) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *eventQueue) run() {
	for {
		e.mu.Lock()
		for len(e.q) == 0 {
			if e.closed {
				e.mu.Unlock()
				return
			}
			e.mu.Unlock()
			<-e.wake
			e.mu.Lock()
		}
		batch, dropped := e.q, e.dropped
		e.q, e.dropped = nil, 0
		e.mu.Unlock()
		if dropped > 0 {
			e.v.log.WithField("dropped", dropped).Warn("events dropped: OnEvent did not keep up")
		}
		for _, ev := range batch {
			e.fn(ev)
		}
	}
}

// close ends delivery once the events queued so far are delivered; it
// does not wait for that, so OnEvent may itself call Close.
func (e *eventQueue) close() {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.signal()
}

// emit queues ev for Config.OnEvent.
func (v *VM) emit(ev Event) { v.events.push(ev) }

// lifecycle is the part of VM that State and the events keep; embedded in
// VM.
type lifecycle struct {
	events       *eventQueue
	state        atomic.Int32 // a State: created, running or paused
	migratingNow atomic.Bool  // mirrors life.migrating for State
	bootSeen     atomic.Bool  // BootDone was sent
}

// newVM is the VM every constructor (New, Restore, Receive) starts from.
func newVM(cfg Config) *VM {
	v := &VM{cfg: cfg, log: cfg.Logger, stopped: make(chan struct{})}
	v.state.Store(int32(StateCreated))
	v.events = newEventQueue(v, cfg.OnEvent)
	return v
}
