// Package rng is the virtio entropy device (virtio 1.2 section 5.4): one
// request queue whose writable buffers the device fills with random bytes
// from the host kernel (getrandom(2)).
package rng

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ternvm/tern/virtio"
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
// that delivers the queue notification.
type Device struct {
	mu     sync.Mutex
	active bool
	mem    virtio.Memory
	queue  *virtio.Queue
	irq    virtio.Interrupt
	// fill writes random bytes into p; getrandom by default.
	fill func(p []byte) error
}

// New returns an inactive entropy device.
func New() *Device { return &Device{fill: getrandom} }

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

// Reset stops the device.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
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
		if notify, nerr := d.queue.NeedsNotification(d.mem); nerr != nil {
			err = errors.Join(err, nerr)
		} else if notify {
			err = errors.Join(err, d.irq.Signal(virtio.InterruptUsedBuffer))
		}
	}
	if err != nil {
		d.active = false
		d.irq.NeedsReset(fmt.Errorf("entropy device: %w", err))
	}
}

// serve completes available requests until the ring is empty, reporting
// whether it used any buffer.
func (d *Device) serve() (used bool, err error) {
	q, mem := d.queue, d.mem
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
			n, err := d.fillChain(c)
			if err != nil {
				return used, err
			}
			if err := q.AddUsed(mem, c.Head, n); err != nil {
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
