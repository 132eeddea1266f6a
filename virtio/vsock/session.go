package vsock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ternvm/tern/virtio"
)

const (
	// maxStrays bounds the RST replies queued for packets that belong to
	// no connection; more are dropped while the guest gives no rx buffers.
	maxStrays = 64
	// maxRounds bounds how often one wake-up goes back to a queue that
	// keeps refilling, so that one queue cannot starve the others.
	maxRounds = 16
	// connectTimeout is how long a host-initiated connection waits for
	// the guest's RESPONSE, and a guest-initiated one for its dial.
	connectTimeout = 2 * time.Second
)

type sessionConfig struct {
	cid           uint64
	path          string
	ln            *net.UnixListener
	mem           virtio.Memory
	rx, tx, event *virtio.Queue
	irq           virtio.Interrupt
	resetEvent    bool
}

// session is one activation of the device: the muxer and every
// connection, from Activate to Reset.
type session struct {
	cfg sessionConfig

	wakeCh chan struct{}
	done   chan struct{} // closed by stop
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex // guards everything below, and guest memory
	stopped    bool
	broken     bool // a ring was malformed: queues are no longer touched
	conns      map[connKey]*conn
	handshakes map[*net.UnixConn]struct{}
	ready      []*conn  // connections with packets for the guest, FIFO
	strays     []header // RST replies to packets of no connection
	nextPort   uint32
	resetEvent bool
}

func startSession(cfg sessionConfig) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		cfg:        cfg,
		wakeCh:     make(chan struct{}, 1),
		done:       make(chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
		conns:      make(map[connKey]*conn),
		handshakes: make(map[*net.UnixConn]struct{}),
		nextPort:   firstHostPort,
		resetEvent: cfg.resetEvent,
	}
	if s.resetEvent {
		// The driver is not running yet (a restore or resume activates
		// devices before vCPUs): whatever its transmit queue holds
		// belongs to connections the reset event ends. Serving a
		// request from it would connect a host end whose guest end the
		// reset then kills, leaving the host end open for good.
		s.discardTx()
	}
	s.wg.Add(2)
	go s.muxer()
	go s.acceptLoop()
	s.wake()
	return s
}

// wake asks the muxer for a pass over the queues.
func (s *session) wake() {
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

// stop ends the session and waits for all its goroutines.
func (s *session) stop() {
	s.mu.Lock()
	s.stopped = true
	close(s.done)
	s.cancel()
	for _, c := range s.conns {
		s.dropLocked(c)
	}
	for hc := range s.handshakes {
		hc.Close()
	}
	s.mu.Unlock()
	// Wake Accept; the listener stays open for the next activation.
	_ = s.cfg.ln.SetDeadline(time.Unix(1, 0))
	s.wg.Wait()
	_ = s.cfg.ln.SetDeadline(time.Time{})
}

func (s *session) muxer() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.wakeCh:
		}
		s.mu.Lock()
		if !s.stopped && !s.broken {
			if err := s.pass(); err != nil {
				s.broken = true
				s.cfg.irq.NeedsReset(fmt.Errorf("vsock: %w", err))
			}
		}
		s.mu.Unlock()
	}
}

// pass processes the transmit queue, then fills the receive and event
// queues, then interrupts the driver for each queue it used.
func (s *session) pass() error {
	txUsed, err := s.drainTx()
	if err != nil {
		return fmt.Errorf("tx queue: %w", err)
	}
	rxUsed, err := s.fillRx()
	if err != nil {
		return fmt.Errorf("rx queue: %w", err)
	}
	evUsed, err := s.fillEvent()
	if err != nil {
		return fmt.Errorf("event queue: %w", err)
	}
	var errs []error
	for _, u := range []struct {
		q    *virtio.Queue
		used bool
	}{{s.cfg.tx, txUsed}, {s.cfg.rx, rxUsed}, {s.cfg.event, evUsed}} {
		if !u.used {
			continue
		}
		notify, err := u.q.NeedsNotification(s.cfg.mem)
		if err != nil {
			errs = append(errs, err)
		} else if notify {
			errs = append(errs, s.cfg.irq.Signal(virtio.InterruptUsedBuffer))
		}
	}
	return errors.Join(errs...)
}

// drainTx handles every packet the driver queued, up to maxRounds refills.
func (s *session) drainTx() (used bool, err error) {
	q, mem := s.cfg.tx, s.cfg.mem
	for range maxRounds {
		if err := q.DisableNotification(mem); err != nil {
			return used, err
		}
		for range q.Size() {
			c, err := q.Pop(mem)
			if err != nil {
				return used, err
			}
			if c == nil {
				break
			}
			s.handlePacket(c)
			if err := q.AddUsed(mem, c.Head, 0); err != nil {
				return used, err
			}
			used = true
		}
		more, err := q.EnableNotification(mem)
		if err != nil || !more {
			return used, err
		}
	}
	s.wake() // come back for the rest after the other queues had a turn
	return used, nil
}

// fillRx puts queued packets into the driver's receive buffers until
// either runs out. A chain is popped only when a packet is waiting, since
// a popped chain cannot be given back unused.
func (s *session) fillRx() (used bool, err error) {
	q, mem := s.cfg.rx, s.cfg.mem
	for range int(q.Size()) * maxRounds {
		if !s.hasRxWork() {
			return used, nil
		}
		c, err := q.Pop(mem)
		if err != nil {
			return used, err
		}
		if c == nil {
			more, err := q.EnableNotification(mem)
			if err != nil || !more {
				return used, err
			}
			continue
		}
		n := s.writePacket(c)
		if err := q.AddUsed(mem, c.Head, n); err != nil {
			return used, err
		}
		used = true
	}
	s.wake()
	return used, nil
}

// discardTx returns every chain waiting in the transmit queue unread. An
// error leaves the rest for the muxer, which reports it.
func (s *session) discardTx() {
	q, mem := s.cfg.tx, s.cfg.mem
	for range q.Size() {
		c, err := q.Pop(mem)
		if err != nil || c == nil {
			return
		}
		if err := q.AddUsed(mem, c.Head, 0); err != nil {
			return
		}
	}
}

// fillEvent posts a pending transport reset event.
func (s *session) fillEvent() (used bool, err error) {
	q, mem := s.cfg.event, s.cfg.mem
	if !q.Ready() {
		return false, nil
	}
	for range q.Size() {
		if !s.resetEvent {
			break
		}
		c, err := q.Pop(mem)
		if err != nil || c == nil {
			return used, err
		}
		var n uint32
		if c.WritableLen() >= eventSize {
			// struct virtio_vsock_event { le32 id; }
			ev := [eventSize]byte{eventTransportReset}
			if _, err := c.WriteAt(mem, ev[:], 0); err == nil {
				n = eventSize
				s.resetEvent = false
			}
		}
		if err := q.AddUsed(mem, c.Head, n); err != nil {
			return used, err
		}
		used = true
	}
	return used, nil
}
