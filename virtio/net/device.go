package virtionet

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/ratelimit"
	"github.com/vishvananda/netlink"
)

// Queue indices and sizes (virtio 1.2 section 5.1.2: receiveq1 is queue 0,
// transmitq1 queue 1; without VIRTIO_NET_F_CTRL_VQ or MQ there are no others).
const (
	RxQueue      = 0
	TxQueue      = 1
	MaxQueueSize = 256
)

// Configuration space (virtio 1.2 section 5.1.4): u8 mac[6] at 0, le16
// status at 6. The fields after them exist only with features the device
// does not offer.
const (
	configMACOff    = 0
	configStatusOff = 6
	configLen       = 8
	statusLinkUp    = 1 // VIRTIO_NET_S_LINK_UP
)

// Device is a virtio-net device on a TAP interface. It implements
// virtio.Device.
type Device struct {
	id      string
	tapName string
	tap     *os.File
	created bool // tern created the TAP; it disappears when tap closes

	// kicks wake the workers; one pending kick is as good as many, so
	// QueueNotify never blocks.
	kicks [2]chan struct{}

	counters counters

	// rxLimit and txLimit exist even without limits, so that limits can
	// be set at run time; nil (in tests that build a bare Device)
	// limits nothing.
	rxLimit, txLimit *ratelimit.Limiter

	// intercept, if set, takes the guest's frames for a service inside
	// tern (MMDS) before they reach the TAP, and has frames for the
	// guest; set before the device is activated.
	intercept Interceptor

	mu     sync.Mutex // guards what follows
	mac    net.HardwareAddr
	acked  uint64
	active bool
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

var _ virtio.Device = (*Device)(nil)

// Validate checks the TAP name and the MAC without touching the host.
func (cfg Config) Validate() error {
	if err := validateID(cfg.ID); err != nil {
		return err
	}
	if cfg.TAPFile == nil || cfg.TAP != "" {
		if err := validateIfName(cfg.TAP); err != nil {
			return fmt.Errorf("TAP: %w", err)
		}
	}
	if cfg.MAC != nil {
		if err := validateMAC(cfg.MAC); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		name string
		c    *ratelimit.Config
	}{{"receive", cfg.RxRateLimit}, {"transmit", cfg.TxRateLimit}} {
		if l.c == nil {
			continue
		}
		if err := l.c.Validate(); err != nil {
			return fmt.Errorf("%s rate limiter: %w", l.name, err)
		}
	}
	return nil
}

// New attaches to (or creates) the TAP cfg names, puts it in cfg.Bridge
// when set, and brings it up. The caller needs CAP_NET_ADMIN. Close
// releases the TAP.
func New(cfg Config) (*Device, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mac := cfg.MAC
	if mac == nil {
		mac = randomMAC()
	}
	if cfg.TAPFile != nil {
		tap, name, err := adoptTAP(cfg)
		if err != nil {
			return nil, err
		}
		return newDevice(name, tap, false, mac, cfg), nil
	}
	var bridge netlink.Link
	if cfg.Bridge != "" {
		b, err := findBridge(cfg.Bridge)
		if err != nil {
			return nil, err
		}
		bridge = b
	}
	exists, err := lookupTAP(cfg.TAP)
	if err != nil {
		return nil, err
	}
	tap, err := openTAP(cfg.TAP, !exists)
	if err != nil {
		return nil, err
	}
	if err := plugTAP(cfg.TAP, bridge); err != nil {
		tap.Close()
		return nil, err
	}
	return newDevice(cfg.TAP, tap, !exists, mac, cfg), nil
}

func newDevice(name string, tap *os.File, created bool, mac net.HardwareAddr, cfg Config) *Device {
	d := &Device{
		id:      cfg.ID,
		tapName: name,
		tap:     tap,
		created: created,
		mac:     append(net.HardwareAddr(nil), mac...),
		rxLimit: ratelimit.New(limits(cfg.RxRateLimit)),
		txLimit: ratelimit.New(limits(cfg.TxRateLimit)),
	}
	for i := range d.kicks {
		d.kicks[i] = make(chan struct{}, 1)
	}
	return d
}

func limits(c *ratelimit.Config) ratelimit.Config {
	if c == nil {
		return ratelimit.Config{}
	}
	return *c
}

// RateLimiters are the receive and transmit limiters, for changing their
// limits while the device runs.
func (d *Device) RateLimiters() (rx, tx *ratelimit.Limiter) { return d.rxLimit, d.txLimit }

// TAP is the name of the host interface.
func (d *Device) TAP() string { return d.tapName }

// ID is the device's id (Config.ID).
func (d *Device) ID() string { return d.id }

// MAC is the guest's MAC address.
func (d *Device) MAC() net.HardwareAddr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append(net.HardwareAddr(nil), d.mac...)
}

// Counters returns the traffic counters.
func (d *Device) Counters() Counters { return d.counters.snapshot() }

// Close stops the device and releases the TAP; a TAP that New created is
// deleted by the kernel as the file closes. Close is idempotent.
func (d *Device) Close() error {
	d.Reset()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if err := d.tap.Close(); err != nil {
		return fmt.Errorf("close TAP %q: %w", d.tapName, err)
	}
	return nil
}

// DeviceID is virtio.DeviceIDNet.
func (d *Device) DeviceID() uint32 { return virtio.DeviceIDNet }

// Features are OfferedFeatures.
func (d *Device) Features() uint64 { return OfferedFeatures }

// QueueMaxSizes: one receive and one transmit queue.
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{MaxQueueSize, MaxQueueSize} }

// ReadConfig reads the MAC address and the link status, which is always
// up: the TAP's own carrier only says whether tern holds it open.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	var space [configLen]byte
	d.mu.Lock()
	copy(space[configMACOff:], d.mac)
	d.mu.Unlock()
	binary.LittleEndian.PutUint16(space[configStatusOff:], statusLinkUp)
	if offset < configLen {
		copy(data, space[offset:])
	}
}

// WriteConfig ignores writes: for a VERSION_1 driver every field is read
// only (the MAC is changed through the control queue, not offered).
func (d *Device) WriteConfig(offset uint64, data []byte) {}

// Activate tells the kernel which offloads the driver accepted and starts
// one worker per ready queue.
func (d *Device) Activate(mem virtio.Memory, queues []*virtio.Queue, irq virtio.Interrupt, acked uint64) error {
	if len(queues) != 2 {
		return fmt.Errorf("virtio-net: %d queues, want 2 (receive and transmit)", len(queues))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return ErrDeviceClosed
	case d.active:
		return fmt.Errorf("virtio-net: activated twice without a reset")
	}
	if err := setOffloads(d.tap, tapOffloads(acked)); err != nil {
		return fmt.Errorf("virtio-net on %q: %w", d.tapName, err)
	}
	d.acked = acked
	d.active = true
	stop := make(chan struct{})
	d.stop = stop
	if q := queues[TxQueue]; q.Ready() {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.txWorker(mem, q, irq, acked, stop)
		}()
	}
	if q := queues[RxQueue]; q.Ready() {
		ic := d.intercept
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.rxWorker(mem, q, irq, acked, ic, stop)
		}()
	}
	return nil
}

// QueueNotify wakes the queue's worker; it never blocks.
func (d *Device) QueueNotify(index int) {
	if index < 0 || index >= len(d.kicks) {
		return
	}
	select {
	case d.kicks[index] <- struct{}{}:
	default:
	}
}

// Reset stops the workers and waits for them. A receive worker parked in
// a TAP read is woken by an expired deadline; a frame it held for the
// driver is dropped with the driver's buffers.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.active {
		return
	}
	close(d.stop)
	past := time.Unix(1, 0)
	d.tap.SetReadDeadline(past)  // error only if closed, which it is not
	d.tap.SetWriteDeadline(past) // while active
	d.wg.Wait()
	d.tap.SetReadDeadline(time.Time{})
	d.tap.SetWriteDeadline(time.Time{})
	d.active = false
	d.stop = nil
	for _, k := range d.kicks {
		select {
		case <-k:
		default:
		}
	}
}
