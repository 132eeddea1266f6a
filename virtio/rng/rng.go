// Package rng is the virtio entropy device (virtio 1.2 section 5.4): one
// request queue whose writable buffers the device fills with random bytes
// from the host kernel (getrandom(2)).
package rng

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/ratelimit"
	"golang.org/x/sys/unix"
)

const (
	// QueueMaxSize is the largest request queue the device offers.
	QueueMaxSize = 256
	// MaxBytesPerRequest bounds the random bytes one chain gets, so one
	// request cannot make the host produce gigabytes; the used length
	// tells the driver how many it got.
	MaxBytesPerRequest = 64 << 10
	// maxRounds bounds how often one notification goes back to the ring
	// after finding more buffers. A driver that keeps refilling faster
	// than that stalls only its own entropy requests.
	maxRounds = 16
)

// Device is the entropy device. It processes requests on the goroutine
// that delivers the queue notification. A rate-limited request that must
// wait is kept aside and served later from a timer, so that no
// notification (nor the Resume that kicks the queues) is held up by it.
type Device struct {
	mu     sync.Mutex
	active bool
	mem    virtio.Memory
	queue  *virtio.Queue
	irq    virtio.Interrupt
	// fill writes random bytes into p; getrandom by default.
	fill func(p []byte) error

	// limiter is nil in tests that build a bare Device: no limit.
	limiter *ratelimit.Limiter
	// pending is a request taken from the ring that the limiter holds
	// back; waking, while set, ends the goroutine that will retry it.
	pending *virtio.Chain
	waking  chan struct{}
}

// New returns an inactive entropy device without a rate limit.
func New() *Device { return NewLimited(ratelimit.Config{}) }

// NewLimited returns an inactive entropy device whose random bytes
// (Bandwidth) and requests (Ops) are limited by rl, which must be valid.
func NewLimited(rl ratelimit.Config) *Device {
	return &Device{fill: getrandom, limiter: ratelimit.New(rl)}
}

// RateLimiter is the device's limiter, for changing its limits while the
// device runs.
func (d *Device) RateLimiter() *ratelimit.Limiter { return d.limiter }

func getrandom(p []byte) error {
	for len(p) > 0 {
		n, err := unix.Getrandom(p, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("getrandom: %w", err)
		}
		p = p[n:]
	}
	return nil
}

// DeviceID is virtio's entropy device type.
func (d *Device) DeviceID() uint32 { return virtio.DeviceIDRNG }

// Features: the entropy device defines none.
func (d *Device) Features() uint64 { return 0 }

// QueueMaxSizes: one request queue.
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{QueueMaxSize} }

// ReadConfig: the device has no configuration space; reads stay zero.
func (d *Device) ReadConfig(offset uint64, data []byte) {}

// WriteConfig: nothing to write.
func (d *Device) WriteConfig(offset uint64, data []byte) {}

// Activate starts serving the request queue, which the driver must have
// enabled.
func (d *Device) Activate(mem virtio.Memory, queues []*virtio.Queue, irq virtio.Interrupt, acked uint64) error {
	if len(queues) != 1 {
		return fmt.Errorf("entropy device: got %d queues, want 1", len(queues))
	}
	if !queues[0].Ready() {
		return fmt.Errorf("entropy device: the driver did not enable the request queue")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mem, d.queue, d.irq, d.active = mem, queues[0], irq, true
	return nil
}

// Reset stops the device. A request the rate limiter was holding is
// served now: it left the ring, and a pause, which resets this device
// with its queue kept, must not lose it.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.waking != nil {
		close(d.waking)
		d.waking = nil
	}
	if c := d.pending; c != nil && d.active {
		d.pending = nil
		err := d.complete(c)
		if err == nil {
			err = d.interrupt()
		}
		if err != nil {
			// The ring is broken; the reset under way is the remedy.
			d.irq.NeedsReset(fmt.Errorf("entropy device: %w", err))
		}
	}
	d.pending = nil
	d.mem, d.queue, d.irq, d.active = nil, nil, nil, false
}

// QueueNotify serves every request on the queue. A malformed ring makes
// the device stop and ask for a reset.
func (d *Device) QueueNotify(index int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.active || index != 0 {
		return
	}
	used, err := d.serve()
	if used {
		err = errors.Join(err, d.interrupt())
	}
	if err != nil {
		d.active = false
		d.irq.NeedsReset(fmt.Errorf("entropy device: %w", err))
	}
}

// interrupt signals used buffers if the driver wants to hear of them.
func (d *Device) interrupt() error {
	notify, err := d.queue.NeedsNotification(d.mem)
	if err != nil || !notify {
		return err
	}
	return d.irq.Signal(virtio.InterruptUsedBuffer)
}

// complete fills the request in c and returns it to the driver.
func (d *Device) complete(c *virtio.Chain) error {
	n, err := d.fillChain(c)
	if err != nil {
		return err
	}
	return d.queue.AddUsed(d.mem, c.Head, n)
}

// admit reports whether the limiter lets the request in c go now; if not
// it keeps c as pending and arranges to be notified when it may.
func (d *Device) admit(c *virtio.Chain) bool {
	cost := uint64(min(c.WritableLen(), MaxBytesPerRequest))
	changed := d.limiter.Changed()
	wait := d.limiter.Consume(cost, 1)
	if wait == 0 {
		return true
	}
	d.pending = c
	if d.waking == nil {
		d.waking = make(chan struct{})
		go d.wakeAfter(wait, changed, d.waking)
	}
	return false
}

// wakeAfter serves the queue again after wait, or at once when the limits
// change, unless stop (Reset) comes first.
func (d *Device) wakeAfter(wait time.Duration, changed <-chan struct{}, stop chan struct{}) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-stop:
		return
	case <-changed:
	case <-t.C:
	}
	d.mu.Lock()
	if d.waking != stop {
		d.mu.Unlock()
		return // a Reset came in between
	}
	d.waking = nil
	d.mu.Unlock()
	d.QueueNotify(0)
}

// serve completes available requests until the ring is empty or the rate
// limiter holds one back, reporting whether it used any buffer.
func (d *Device) serve() (used bool, err error) {
	q, mem := d.queue, d.mem
	if c := d.pending; c != nil {
		if !d.admit(c) {
			return false, nil
		}
		d.pending = nil
		if err := d.complete(c); err != nil {
			return false, err
		}
		used = true
	}
	for range maxRounds {
		if err := q.DisableNotification(mem); err != nil {
			return used, err
		}
		for {
			c, err := q.Pop(mem)
			if err != nil {
				return used, err
			}
			if c == nil {
				break
			}
			if !d.admit(c) {
				// Notifications stay off: the timer brings the
				// device back, and it finds the ring then.
				return used, nil
			}
			if err := d.complete(c); err != nil {
				return used, err
			}
			used = true
		}
		more, err := q.EnableNotification(mem)
		if err != nil || !more {
			return used, err
		}
	}
	return used, nil
}

// fillChain writes random bytes into the chain's writable buffers, at
// most MaxBytesPerRequest, directly in guest memory. Readable buffers
// carry nothing for this device and are ignored; a chain without writable
// buffers is completed with zero bytes.
func (d *Device) fillChain(c *virtio.Chain) (uint32, error) {
	var n uint32
	for _, b := range c.Writable {
		chunk := min(b.Len, MaxBytesPerRequest-n)
		if chunk == 0 {
			break
		}
		p, err := d.mem.Slice(b.Addr, uint64(chunk))
		if err != nil {
			return n, fmt.Errorf("request %d: %w", c.Head, err)
		}
		if err := d.fill(p); err != nil {
			return n, err
		}
		n += chunk
	}
	return n, nil
}

// State is the device's own snapshot state. The entropy device keeps none
// beyond its queue, which the transport saves; the type exists so every
// device is saved and restored the same way.
type State struct{}

// State returns the device's state.
func (d *Device) State() State { return State{} }

// SetState restores st; call it before the transport reactivates the
// device.
func (d *Device) SetState(st State) error { return nil }
