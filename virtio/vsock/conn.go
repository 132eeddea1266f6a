package vsock

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// creditThreshold: once the guest believes it has less free space than
// this in our buffer, every forwarded write is followed by a credit update
// so that a guest waiting for credit is never left stalled.
const creditThreshold = MaxPayload

// connKey names a connection by its host-side (local) and guest-side
// (peer) ports; the CIDs are fixed.
type connKey struct{ local, peer uint32 }

type connState int

const (
	// stateConnecting: host-initiated, waiting for the guest's RESPONSE.
	stateConnecting connState = iota
	// stateDialing: guest-initiated, dialing the host program's socket.
	stateDialing
	stateEstablished
)

// conn is one stream connection. Its fields are guarded by session.mu.
type conn struct {
	key   connKey
	state connState
	host  *net.UnixConn // nil while dialing
	// cond (on session.mu) wakes the reader and writer goroutines.
	cond  *sync.Cond
	timer *time.Timer

	// dead: the host side is closed and the goroutines are leaving; a
	// dead connection only waits for its RST to reach the guest.
	// removed: it is out of the table.
	dead, removed bool
	inReady       bool

	// Control packets waiting for an rx buffer.
	sendRequest, sendResponse, sendCredit, sendRst bool

	// Guest to host. rxCnt counts payload bytes received from the guest,
	// fwdCnt those written to the host program, lastFwdSent the fwd_cnt
	// the guest last saw from us.
	preamble                   []byte // "OK <port>\n", written before data
	toHost                     []byte
	rxCnt, fwdCnt, lastFwdSent uint32
	peerShutSend, peerShutRecv bool
	hostWriteClosed            bool

	// Host to guest. txCnt counts payload bytes sent to the guest;
	// peerBufAlloc and peerFwdCnt are the guest's last advertisement.
	stage                    []byte // the reader's buffer, MaxPayload bytes
	toGuest                  []byte // unsent part of stage
	txCnt                    uint32
	peerBufAlloc, peerFwdCnt uint32
	hostEOF, shutdownSent    bool
}

func (s *session) newConn(key connKey, state connState) *conn {
	return &conn{key: key, state: state, cond: sync.NewCond(&s.mu)}
}

// peerCredit is how many more payload bytes the guest can take. A guest
// that reports more forwarded than was sent gets no credit rather than a
// wrapped huge one.
func (c *conn) peerCredit() uint32 {
	inFlight := c.txCnt - c.peerFwdCnt
	if inFlight > c.peerBufAlloc {
		return 0
	}
	return c.peerBufAlloc - inFlight
}

func (c *conn) dataReady() bool {
	return c.state == stateEstablished && len(c.toGuest) > 0 && !c.peerShutRecv && c.peerCredit() > 0
}

func (c *conn) shutdownReady() bool {
	return c.hostEOF && !c.shutdownSent && (len(c.toGuest) == 0 || c.peerShutRecv)
}

func (c *conn) hasWork() bool {
	if c.removed {
		return false
	}
	if c.dead {
		return c.sendRst
	}
	return c.sendRequest || c.sendResponse || c.sendCredit || c.dataReady() || c.shutdownReady()
}

// markReady queues c for the muxer's next look at the rx queue.
func (s *session) markReady(c *conn) {
	if !c.inReady && !c.removed {
		c.inReady = true
		s.ready = append(s.ready, c)
	}
	s.wake()
}

// kill closes the host side and makes the goroutines leave.
func (s *session) kill(c *conn) {
	if c.dead {
		return
	}
	c.dead = true
	if c.host != nil {
		c.host.Close()
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.toHost, c.toGuest, c.preamble, c.stage = nil, nil, nil, nil
	c.cond.Broadcast()
}

// abort kills c and tells the guest with RST; c leaves the table once the
// RST is in an rx buffer.
func (s *session) abort(c *conn) {
	if c.removed {
		return
	}
	s.kill(c)
	c.sendRst = true
	s.markReady(c)
}

// dropLocked kills c and forgets it, sending nothing.
func (s *session) dropLocked(c *conn) {
	s.kill(c)
	if c.removed {
		return
	}
	c.removed = true
	delete(s.conns, c.key)
	if c.inReady {
		for i, r := range s.ready {
			if r == c {
				s.ready = append(s.ready[:i], s.ready[i+1:]...)
				break
			}
		}
		c.inReady = false
	}
}

// maybeFinish resets a connection once both directions are over: the
// guest sent everything and it reached the host, and the host has nothing
// more for the guest (or the guest wants nothing more).
func (s *session) maybeFinish(c *conn) {
	if c.dead || c.state != stateEstablished {
		return
	}
	if c.peerShutSend && c.hostWriteClosed && (c.shutdownSent || c.peerShutRecv) {
		s.abort(c)
	}
}

func (s *session) startIO(c *conn) {
	s.wg.Add(2)
	go s.readLoop(c)
	go s.writeLoop(c)
}

// readLoop moves bytes from the host program to c.toGuest, reading no
// more than the guest has credit for, and only once the muxer has sent
// what it read before.
func (s *session) readLoop(c *conn) {
	defer s.wg.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for !c.dead && !c.canRead() {
			c.cond.Wait()
		}
		if c.dead {
			return
		}
		if c.stage == nil {
			c.stage = make([]byte, MaxPayload)
		}
		buf := c.stage[:min(MaxPayload, c.peerCredit())]
		host := c.host
		s.mu.Unlock()
		n, err := host.Read(buf)
		s.mu.Lock()
		if c.dead {
			return
		}
		if n > 0 {
			c.toGuest = buf[:n]
			s.markReady(c)
		}
		if errors.Is(err, io.EOF) {
			c.hostEOF = true
			s.markReady(c)
			return
		}
		if err != nil {
			s.abort(c)
			return
		}
	}
}

func (c *conn) canRead() bool {
	return c.state == stateEstablished && !c.hostEOF && !c.peerShutRecv &&
		len(c.toGuest) == 0 && c.peerCredit() > 0
}

// writeLoop moves bytes from c.toHost to the host program, counts them
// as forwarded, and half-closes the host connection after the guest's
// SHUTDOWN(SEND) once everything before it is written.
func (s *session) writeLoop(c *conn) {
	defer s.wg.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for !c.dead && len(c.preamble) == 0 && len(c.toHost) == 0 && !(c.peerShutSend && !c.hostWriteClosed) {
			c.cond.Wait()
		}
		if c.dead {
			return
		}
		host := c.host
		if len(c.preamble) == 0 && len(c.toHost) == 0 {
			c.hostWriteClosed = true
			s.mu.Unlock()
			err := host.CloseWrite()
			s.mu.Lock()
			if c.dead {
				return
			}
			if err != nil {
				s.abort(c)
				return
			}
			s.maybeFinish(c)
			continue
		}
		pre, data := c.preamble, c.toHost
		c.preamble, c.toHost = nil, nil
		s.mu.Unlock()
		bufs := net.Buffers{pre, data}
		_, err := bufs.WriteTo(host)
		s.mu.Lock()
		if c.dead {
			return
		}
		if err != nil {
			s.abort(c)
			return
		}
		c.fwdCnt += uint32(len(data))
		if BufAlloc-(c.rxCnt-c.lastFwdSent) < creditThreshold {
			c.sendCredit = true
			s.markReady(c)
		}
	}
}
