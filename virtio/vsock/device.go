package vsock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"sync"

	"github.com/ternvm/tern/virtio"
)

const (
	// QueueMaxSize is the largest size of each of the three queues.
	QueueMaxSize = 256
	// MinGuestCID is the lowest CID a guest may have: 0 to 2 are the
	// hypervisor, local and host addresses.
	MinGuestCID = 3
	// MaxSocketPath is the longest path that fits sun_path (108 bytes
	// with its terminating NUL). Guest-initiated connections add
	// "_<port>" to it, so shorter paths leave room for those.
	MaxSocketPath = 107
	// MaxConnections bounds the connections (and pending CONNECT
	// handshakes) the device keeps at once.
	MaxConnections = 1024
	// BufAlloc is the receive buffer the device advertises per
	// connection: what the guest may send before the device forwards it.
	BufAlloc = 256 << 10
	// MaxPayload is the largest payload of one packet in either
	// direction (VIRTIO_VSOCK_MAX_PKT_BUF_SIZE in Linux) and the most the
	// device reads from a host connection before the guest takes it.
	MaxPayload = 64 << 10
)

// Queue indices (virtio 1.2 5.10.2).
const (
	rxQueue    = 0
	txQueue    = 1
	eventQueue = 2
)

// ErrConfig reports an invalid Config or State.
var ErrConfig = errors.New("invalid vsock configuration")

// Config configures a vsock device.
type Config struct {
	// GuestCID is the guest's address, at least MinGuestCID.
	GuestCID uint64
	// SocketPath is where the device listens for host connections.
	SocketPath string
}

// Device is the virtio socket device. Create it with New and release its
// socket with Close.
type Device struct {
	// lifecycle serialises Activate, Reset, SetState and Close, which
	// start and stop sessions.
	lifecycle sync.Mutex

	mu  sync.Mutex // guards the fields below
	cid uint64
	// resetEvent says the guest must be told its connections are gone
	// (after a restore) on the next activation.
	resetEvent bool
	sess       *session
	closed     bool

	path string
	ln   *net.UnixListener
}

// New validates cfg and listens on cfg.SocketPath, replacing a stale
// socket file left there.
func New(cfg Config) (*Device, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := removeStaleSocket(cfg.SocketPath); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.SocketPath, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("vsock: listen on %s: %w", cfg.SocketPath, err)
	}
	return &Device{cid: cfg.GuestCID, path: cfg.SocketPath, ln: ln}, nil
}

// Validate checks the CID and the socket path's length without touching
// the file system.
func (cfg Config) Validate() error {
	if cfg.GuestCID < MinGuestCID {
		return fmt.Errorf("%w: guest CID %d is below %d", ErrConfig, cfg.GuestCID, MinGuestCID)
	}
	if cfg.GuestCID > 0xffffffff {
		// The specification reserves the upper 32 bits of guest_cid.
		return fmt.Errorf("%w: guest CID %#x does not fit 32 bits", ErrConfig, cfg.GuestCID)
	}
	if cfg.SocketPath == "" {
		return fmt.Errorf("%w: empty socket path", ErrConfig)
	}
	if len(cfg.SocketPath) > MaxSocketPath {
		return fmt.Errorf("%w: socket path of %d bytes is longer than %d", ErrConfig, len(cfg.SocketPath), MaxSocketPath)
	}
	return nil
}

// removeStaleSocket removes a socket file at path, refusing anything else.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vsock: socket path %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%w: %s exists and is not a socket (%v)", ErrConfig, path, fi.Mode().Type())
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("vsock: remove stale socket %s: %w", path, err)
	}
	return nil
}

// Close stops the device, closes every connection and the listener, and
// removes the socket file. The device cannot be activated afterwards.
func (d *Device) Close() error {
	d.lifecycle.Lock()
	defer d.lifecycle.Unlock()
	d.stopSession()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	// The listener would unlink the file itself; removing it again is
	// for the case where something replaced the unlink-on-close.
	err := d.ln.Close()
	if rerr := os.Remove(d.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("vsock: close %s: %w", d.path, err)
	}
	return nil
}

// SocketPath is where the device listens.
func (d *Device) SocketPath() string { return d.path }

// DeviceID is virtio's socket device type.
func (d *Device) DeviceID() uint32 { return virtio.DeviceIDVsock }

// Features: none beyond VERSION_1, which the transport adds; in
// particular not VIRTIO_VSOCK_F_SEQPACKET.
func (d *Device) Features() uint64 { return 0 }

// QueueMaxSizes: rx, tx and event queues.
func (d *Device) QueueMaxSizes() []uint16 {
	return []uint16{QueueMaxSize, QueueMaxSize, QueueMaxSize}
}

// ReadConfig reads struct virtio_vsock_config { le64 guest_cid; }.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	d.mu.Lock()
	var cfg [8]byte
	binary.LittleEndian.PutUint64(cfg[:], d.cid)
	d.mu.Unlock()
	if offset >= uint64(len(cfg)) {
		return
	}
	copy(data, cfg[offset:])
}

// WriteConfig: guest_cid is read-only.
func (d *Device) WriteConfig(offset uint64, data []byte) {}

// Activate starts the muxer on the queues; rx and tx must be enabled.
func (d *Device) Activate(mem virtio.Memory, queues []*virtio.Queue, irq virtio.Interrupt, acked uint64) error {
	if len(queues) != 3 {
		return fmt.Errorf("vsock: got %d queues, want 3", len(queues))
	}
	if slices.Contains(queues, nil) {
		return fmt.Errorf("vsock: missing queue")
	}
	if !queues[rxQueue].Ready() || !queues[txQueue].Ready() {
		return fmt.Errorf("vsock: the driver did not enable the rx and tx queues")
	}
	d.lifecycle.Lock()
	defer d.lifecycle.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("vsock: device on %s is closed", d.path)
	}
	if d.sess != nil {
		return fmt.Errorf("vsock: device on %s is already active", d.path)
	}
	d.sess = startSession(sessionConfig{
		cid: d.cid, path: d.path, ln: d.ln,
		mem: mem, rx: queues[rxQueue], tx: queues[txQueue], event: queues[eventQueue],
		irq: irq, resetEvent: d.resetEvent,
	})
	d.resetEvent = false
	return nil
}

// QueueNotify wakes the muxer; it never blocks.
func (d *Device) QueueNotify(index int) {
	d.mu.Lock()
	s := d.sess
	d.mu.Unlock()
	if s != nil && index >= rxQueue && index <= eventQueue {
		s.wake()
	}
}

// Reset stops the muxer and every host-side goroutine, closes all
// connections and waits for all of it before returning.
func (d *Device) Reset() {
	d.lifecycle.Lock()
	defer d.lifecycle.Unlock()
	d.stopSession()
}

func (d *Device) stopSession() {
	d.mu.Lock()
	s := d.sess
	d.sess = nil
	d.mu.Unlock()
	if s != nil {
		s.stop()
	}
}

// Suspend stops the device for a pause. The host ends of the connections
// are this process's sockets and do not survive the stop, so they are
// closed, and the next activation tells the driver with a transport reset
// event that its connections are gone (as after a restore).
func (d *Device) Suspend() {
	d.lifecycle.Lock()
	defer d.lifecycle.Unlock()
	d.stopSession()
	d.mu.Lock()
	d.resetEvent = true
	d.mu.Unlock()
}
