package mmds

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Bounds of one Stack: connections at a time (Firecracker's
// default), frames waiting for the guest, and the retransmission schedule.
const (
	maxConns     = 30
	maxQueued    = 256
	rto          = 200 * time.Millisecond
	maxRetries   = 6
	idleTimeout  = 30 * time.Second
	maxInFlight  = 32 << 10 // bytes sent and not acknowledged, whatever the window
	maxRequestIn = maxRequestHead + maxRequestBody
)

// Service is the metadata service of one VM: a store, the configuration
// and the session tokens every interface's Stack shares.
type Service struct {
	svc service
	ip  [4]byte
	now func() time.Time
	rto time.Duration // the first retransmission timeout; tests shorten it
}

// New returns the service for cfg (defaults filled) reading store.
func New(cfg Config, store *Store) (*Service, error) {
	return newService(cfg, store, time.Now)
}

func newService(cfg Config, store *Store, now func() time.Time) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, fmt.Errorf("%w: no store", ErrBadConfig)
	}
	tok, err := newTokens(now)
	if err != nil {
		return nil, err
	}
	return &Service{svc: service{store: store, cfg: cfg, tok: tok}, ip: cfg.IPv4.As4(), now: now, rto: rto}, nil
}

// Config is the service's configuration, defaults filled.
func (s *Service) Config() Config { return s.svc.cfg }

// Addr is the service's IPv4 address.
func (s *Service) Addr() netip.Addr { return netip.AddrFrom4(s.ip) }

// Stack is the service's side of one network interface: the frames the
// guest sends there to the service go in through Intercept, and the
// answers come out of Next. It is safe for concurrent use.
type Stack struct {
	svc *Service
	mac [6]byte

	mu     sync.Mutex
	conns  map[connKey]*conn
	queue  [][]byte
	ipID   uint16
	notify func()
	timer  *time.Timer
}

type connKey struct {
	ip   [4]byte
	port uint16
}

type connState int

const (
	synReceived connState = iota
	established
)

// conn is one TCP connection from the guest: it carries one request and
// its response, then closes.
type conn struct {
	key      connKey
	guestMAC [6]byte
	state    connState
	rcvNxt   uint32 // next sequence number expected from the guest
	iss      uint32
	sndUna   uint32 // oldest unacknowledged
	sndNxt   uint32 // next to send
	sndWnd   uint32
	mss      int
	in       []byte // request bytes so far
	out      []byte // the response; out[0] is sequence iss+1
	answered bool   // out holds the response and a FIN follows it
	finRcvd  bool
	retries  int
	due      time.Time // retransmission time, zero when nothing is in flight
	active   time.Time
}

// NewStack returns a Stack for one interface.
func (s *Service) NewStack() *Stack {
	return &Stack{svc: s, mac: DefaultMAC, conns: map[connKey]*conn{}}
}

// SetNotify sets the function called (without the Stack's lock) when
// frames wait in Next, so that the device delivers them.
func (st *Stack) SetNotify(fn func()) {
	st.mu.Lock()
	st.notify = fn
	st.mu.Unlock()
}

// Intercept takes one Ethernet frame the guest sent and reports whether it
// was for the service: an ARP request for its address, or an IPv4 packet
// to it. Those frames are the service's (answered or dropped) and must not
// go on to the host. frame is not kept.
func (st *Stack) Intercept(frame []byte) bool {
	eth, ok := parseEth(frame)
	if !ok {
		return false
	}
	switch eth.etherType {
	case etherTypeARP:
		a, ok := parseARP(eth.payload)
		if !ok || a.tpa != st.svc.ip {
			return false
		}
		if a.op == arpRequest {
			st.push(buildARPReply(st.mac, st.svc.ip, a))
		}
		return true
	case etherTypeIP4:
		ip, ok := parseIPv4(eth.payload)
		if !ok || ip.dst != st.svc.ip {
			return false
		}
		if ip.proto == protoTCP && !ip.frag {
			if seg, ok := parseTCP(ip.payload); ok {
				st.receive(eth.src, ip.src, seg)
			}
		}
		return true
	}
	return false
}

// Next returns the next frame (Ethernet) for the guest, or nil.
func (st *Stack) Next() []byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.queue) == 0 {
		return nil
	}
	f := st.queue[0]
	st.queue[0] = nil
	st.queue = st.queue[1:]
	return f
}

// push queues frames for the guest and wakes the device.
func (st *Stack) push(frames ...[]byte) {
	st.mu.Lock()
	fn := st.enqueue(frames...)
	st.mu.Unlock()
	if fn != nil {
		fn()
	}
}

// enqueue queues frames (dropping what does not fit: TCP sends again) and
// returns the notify function to call once the lock is released.
func (st *Stack) enqueue(frames ...[]byte) func() {
	n := 0
	for _, f := range frames {
		if len(st.queue) < maxQueued {
			st.queue = append(st.queue, f)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return st.notify
}

func (st *Stack) receive(srcMAC [6]byte, src [4]byte, seg tcpSegment) {
	st.mu.Lock()
	frames := st.handle(srcMAC, src, seg)
	st.arm()
	fn := st.enqueue(frames...)
	st.mu.Unlock()
	if fn != nil {
		fn()
	}
}

func (st *Stack) segment(c *conn, seq uint32, flags uint8, payload []byte) []byte {
	st.ipID++
	return buildTCP(tcpOut{
		dstMAC: c.guestMAC, srcMAC: st.mac, src: st.svc.ip, dst: c.key.ip,
		srcPort: mmdsPort, dstPort: c.key.port, seq: seq, ack: c.rcvNxt,
		flags: flags, mss: flags&tcpSYN != 0, id: st.ipID, payload: payload,
	})
}

// reset answers a segment that belongs to no connection (RFC 9293 3.10.7.1).
func (st *Stack) reset(srcMAC [6]byte, src [4]byte, seg tcpSegment) []byte {
	if seg.flags&tcpRST != 0 {
		return nil
	}
	st.ipID++
	o := tcpOut{dstMAC: srcMAC, srcMAC: st.mac, src: st.svc.ip, dst: src, srcPort: seg.dstPort, dstPort: seg.srcPort, id: st.ipID}
	if seg.flags&tcpACK != 0 {
		o.seq, o.flags = seg.ack, tcpRST
	} else {
		n := uint32(len(seg.payload))
		if seg.flags&tcpSYN != 0 {
			n++
		}
		if seg.flags&tcpFIN != 0 {
			n++
		}
		o.ack, o.flags = seg.seq+n, tcpRST|tcpACK
	}
	return buildTCP(o)
}

// handle runs one segment through the connection table and returns the
// frames to send. The lock is held.
func (st *Stack) handle(srcMAC [6]byte, src [4]byte, seg tcpSegment) [][]byte {
	now := st.svc.now()
	if seg.dstPort != mmdsPort {
		return [][]byte{st.reset(srcMAC, src, seg)}
	}
	key := connKey{src, seg.srcPort}
	c := st.conns[key]
	if c == nil {
		if seg.flags&(tcpSYN|tcpACK|tcpRST) != tcpSYN {
			if f := st.reset(srcMAC, src, seg); f != nil {
				return [][]byte{f}
			}
			return nil
		}
		return st.open(srcMAC, key, seg, now)
	}
	if seg.flags&tcpRST != 0 {
		// Only a reset at the expected sequence number counts (RFC 5961).
		if seg.seq == c.rcvNxt {
			delete(st.conns, key)
		}
		return nil
	}
	c.active = now
	c.guestMAC = srcMAC
	if seg.flags&tcpSYN != 0 {
		if c.state == synReceived && seg.seq+1 == c.rcvNxt {
			// Our SYN-ACK was lost: say it again.
			return [][]byte{st.segment(c, c.iss, tcpSYN|tcpACK, nil)}
		}
		return [][]byte{st.segment(c, c.sndNxt, tcpACK, nil)}
	}
	if seg.flags&tcpACK == 0 {
		return nil
	}
	if !c.acknowledge(seg, now, st.svc.rto) {
		return [][]byte{st.segment(c, c.sndNxt, tcpACK, nil)}
	}
	var out [][]byte
	ackNow := false
	if len(seg.payload) > 0 || seg.flags&tcpFIN != 0 {
		if seg.seq != c.rcvNxt {
			// Out of order or a repeat: ask again for what comes next.
			return append(out, st.segment(c, c.sndNxt, tcpACK, nil))
		}
		ackNow = true
		if !c.answered {
			room := maxRequestIn - len(c.in)
			if len(seg.payload) > room {
				st.answer(c, bad(431, "request longer than %d bytes", maxRequestIn))
			} else {
				c.in = append(c.in, seg.payload...)
			}
		}
		c.rcvNxt += uint32(len(seg.payload))
		if seg.flags&tcpFIN != 0 {
			c.rcvNxt++
			c.finRcvd = true
		}
		if !c.answered {
			req, _, err := parseRequest(c.in)
			switch {
			case err == nil:
				st.answerRequest(c, req)
			case err != errIncomplete:
				st.answer(c, err)
			case c.finRcvd:
				// The guest closed with half a request: close too.
				c.answered = true
			}
		}
	}
	if c.done() {
		delete(st.conns, key)
		if ackNow {
			out = append(out, st.segment(c, c.sndNxt, tcpACK, nil))
		}
		return out
	}
	sent := st.transmit(c, now)
	if len(sent) == 0 && ackNow {
		sent = append(sent, st.segment(c, c.sndNxt, tcpACK, nil))
	}
	return append(out, sent...)
}

// open starts a connection for a SYN, replacing the least recently
// active one when the table is full.
func (st *Stack) open(srcMAC [6]byte, key connKey, seg tcpSegment, now time.Time) [][]byte {
	if len(st.conns) >= maxConns {
		var oldest *conn
		for _, c := range st.conns {
			if oldest == nil || c.active.Before(oldest.active) {
				oldest = c
			}
		}
		delete(st.conns, oldest.key)
	}
	var r [4]byte
	rand.Read(r[:]) // never fails (crypto/rand's documented contract)
	iss := binary.BigEndian.Uint32(r[:])
	mss := seg.mss
	if mss == 0 {
		mss = defaultMSS
	}
	c := &conn{
		key: key, guestMAC: srcMAC, state: synReceived,
		rcvNxt: seg.seq + 1, iss: iss, sndUna: iss, sndNxt: iss + 1,
		sndWnd: uint32(seg.window), mss: min(max(mss, 64), ourMSS), active: now,
		due: now.Add(st.svc.rto),
	}
	st.conns[key] = c
	return [][]byte{st.segment(c, iss, tcpSYN|tcpACK, nil)}
}

// acknowledge takes the segment's ACK and window; false means the ACK is
// for data never sent.
func (c *conn) acknowledge(seg tcpSegment, now time.Time, rto time.Duration) bool {
	// Serial number arithmetic: ack must lie in (sndUna, sndNxt].
	if int32(seg.ack-c.sndNxt) > 0 {
		return false
	}
	if int32(seg.ack-c.sndUna) > 0 {
		c.sndUna = seg.ack
		c.retries = 0
		c.due = now.Add(rto)
		if c.state == synReceived {
			c.state = established
		}
	}
	if c.state == synReceived {
		return seg.ack == c.sndNxt
	}
	c.sndWnd = uint32(seg.window)
	if c.sndUna == c.sndNxt {
		c.due = time.Time{}
	}
	return true
}

// finSeq is the sequence number of our FIN.
func (c *conn) finSeq() uint32 { return c.iss + 1 + uint32(len(c.out)) }

// done reports whether both sides have closed and all is acknowledged.
func (c *conn) done() bool {
	return c.answered && c.finRcvd && c.sndUna == c.finSeq()+1
}

func (st *Stack) answerRequest(c *conn, req request) {
	st.setResponse(c, st.svc.svc.serve(req).bytes(req.minor))
}

func (st *Stack) answer(c *conn, err error) {
	r := response{status: 400, body: []byte(err.Error())}
	if b, ok := err.(*badRequest); ok {
		r = text(b.status, b.msg)
	}
	st.setResponse(c, r.bytes(1))
}

func (st *Stack) setResponse(c *conn, b []byte) {
	c.out = b
	c.in = nil
	c.answered = true
}

// transmit sends what the window allows of the response, then the FIN.
func (st *Stack) transmit(c *conn, now time.Time) [][]byte {
	if c.state != established || !c.answered {
		return nil
	}
	var out [][]byte
	base := c.iss + 1
	wnd := min(c.sndWnd, maxInFlight)
	for {
		off := c.sndNxt - base
		if off >= uint32(len(c.out)) {
			break
		}
		inFlight := c.sndNxt - c.sndUna
		if inFlight >= wnd {
			break
		}
		n := min(uint32(c.mss), uint32(len(c.out))-off, wnd-inFlight)
		out = append(out, st.segment(c, c.sndNxt, tcpACK|tcpPSH, c.out[off:off+n]))
		c.sndNxt += n
	}
	if c.sndNxt == c.finSeq() && c.sndNxt-c.sndUna <= wnd {
		out = append(out, st.segment(c, c.sndNxt, tcpFIN|tcpACK, nil))
		c.sndNxt++
	}
	if len(out) > 0 && c.due.IsZero() {
		c.due = now.Add(st.svc.rto)
	}
	return out
}

// arm sets the timer for the earliest retransmission or idle timeout.
// The lock is held.
func (st *Stack) arm() {
	var next time.Time
	for _, c := range st.conns {
		t := c.active.Add(idleTimeout)
		if !c.due.IsZero() && c.due.Before(t) {
			t = c.due
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if next.IsZero() {
		if st.timer != nil {
			st.timer.Stop()
		}
		return
	}
	d := max(next.Sub(st.svc.now()), time.Millisecond)
	if st.timer == nil {
		st.timer = time.AfterFunc(d, st.tick)
	} else {
		st.timer.Reset(d)
	}
}

// tick resends what is overdue (go back to the oldest unacknowledged
// byte), drops connections that stopped answering or idled too long.
func (st *Stack) tick() {
	st.mu.Lock()
	now := st.svc.now()
	var frames [][]byte
	for k, c := range st.conns {
		if now.Sub(c.active) > idleTimeout {
			delete(st.conns, k)
			continue
		}
		if c.due.IsZero() || now.Before(c.due) {
			continue
		}
		if c.retries++; c.retries > maxRetries {
			delete(st.conns, k)
			continue
		}
		c.due = now.Add(st.svc.rto << c.retries)
		if c.state == synReceived {
			frames = append(frames, st.segment(c, c.iss, tcpSYN|tcpACK, nil))
			continue
		}
		c.sndNxt = c.sndUna
		frames = append(frames, st.transmit(c, now)...)
	}
	st.arm()
	fn := st.enqueue(frames...)
	st.mu.Unlock()
	if fn != nil {
		fn()
	}
}

// Close stops the retransmission timer.
func (st *Stack) Close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.timer != nil {
		st.timer.Stop()
	}
	clear(st.conns)
	st.queue = nil
}
