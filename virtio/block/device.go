package block

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/ratelimit"
)

// Device is a virtio block device over one image. It implements
// virtio.Device.
type Device struct {
	// imgMu guards the image: cfg.Path, capacity, config and disk,
	// which SwapImage replaces. Requests and the other users of the
	// image hold it shared while they use it, so the swap waits for them
	// and none of them meets a closed file.
	imgMu    sync.RWMutex
	cfg      Config
	capacity uint64 // in sectors
	config   [configSize]byte
	disk     *disk
	log      writeLog
	// limiter exists even without limits, so that they can be set at
	// run time; without any it costs one uncontended lock per request.
	limiter *ratelimit.Limiter
	// counters are read by the metrics while the worker serves.
	counters counters

	mu     sync.Mutex
	w      *worker // nil while inactive
	closed bool
	// configChanged: SwapImage changed the configuration while the
	// device was inactive (a paused VM stops its devices); the next
	// activation tells the driver.
	configChanged bool
}

var _ virtio.Device = (*Device)(nil)

// ErrClosed is returned by Activate after Close.
var ErrClosed = errors.New("virtio-blk device closed")

// New opens the image cfg names (or adopts cfg.File) and locks it (see Lock): shared if
// read-only, exclusive otherwise; an image another VM has locked fails
// with a *LockedError wrapping ErrLocked. Its size must be a whole number
// of 512-byte sectors.
func New(cfg Config) (*Device, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Path == "" {
		cfg.Path = cfg.File.Name()
	}
	f, capacity, err := openImage(cfg)
	if err != nil {
		return nil, err
	}
	if err := lockImage(f, cfg.Path, cfg.ReadOnly); err != nil {
		f.Close()
		return nil, err
	}
	return &Device{
		cfg:      cfg,
		capacity: capacity,
		config:   configSpace(capacity, cfg.ReadOnly),
		disk:     &disk{f: f},
		limiter:  ratelimit.New(limits(cfg.RateLimit)),
	}, nil
}

func limits(c *ratelimit.Config) ratelimit.Config {
	if c == nil {
		return ratelimit.Config{}
	}
	return *c
}

// RateLimiter is the disk's rate limiter, for changing its limits while
// the device runs.
func (d *Device) RateLimiter() *ratelimit.Limiter { return d.limiter }

// Capacity is the disk's size in 512-byte sectors.
func (d *Device) Capacity() uint64 {
	d.imgMu.RLock()
	defer d.imgMu.RUnlock()
	return d.capacity
}

// Close stops the device if it is active and closes the image. The device
// cannot be activated again.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	w := d.w
	d.w = nil
	d.mu.Unlock()
	if w != nil {
		w.stopAndWait()
	}
	d.imgMu.Lock()
	defer d.imgMu.Unlock()
	if err := d.disk.f.Close(); err != nil {
		return fmt.Errorf("close disk image %q: %w", d.cfg.Path, err)
	}
	return nil
}

// DeviceID is virtio.DeviceIDBlock.
func (d *Device) DeviceID() uint32 { return virtio.DeviceIDBlock }

// Features are SEG_MAX, BLK_SIZE and FLUSH, with RO for a read-only disk
// and DISCARD and WRITE_ZEROES for a writable one.
func (d *Device) Features() uint64 { return features(d.cfg.ReadOnly) }

// QueueMaxSizes is one request queue of QueueSize entries.
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{QueueSize} }

// Activate starts the worker that serves the request queue.
func (d *Device) Activate(mem virtio.Memory, queues []*virtio.Queue, irq virtio.Interrupt, acked uint64) error {
	if len(queues) != 1 {
		return fmt.Errorf("virtio-blk: activated with %d queues, want 1", len(queues))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return ErrClosed
	case d.w != nil:
		return fmt.Errorf("virtio-blk: activated while already active")
	}
	if !queues[0].Ready() {
		// Nothing to serve until a reset brings the driver back.
		return nil
	}
	d.w = startWorker(d, mem, queues[0], irq, acked)
	if d.configChanged {
		d.configChanged = false
		// A lost edge leaves the old size in the driver's view until
		// it next reads the configuration; nothing here can resend it.
		_ = irq.Signal(virtio.InterruptConfigChange)
	}
	return nil
}

// QueueNotify wakes the worker; it never blocks.
func (d *Device) QueueNotify(index int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w != nil && index == 0 {
		d.w.kick()
	}
}

// Reset stops the worker and waits for it: when Reset returns, no request
// is in progress and the device may be activated again.
func (d *Device) Reset() {
	d.mu.Lock()
	w := d.w
	d.w = nil
	d.mu.Unlock()
	if w != nil {
		w.stopAndWait()
	}
}
