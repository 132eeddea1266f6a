package vsock

import (
	"slices"
	"strconv"

	"github.com/ternvm/tern/virtio"
)

// handlePacket acts on one packet from the transmit queue. Packets not
// from this guest to the host are dropped, since there is no one to answer;
// other malformed ones reset their connection or are answered with RST.
func (s *session) handlePacket(ch *virtio.Chain) {
	var hb [headerSize]byte
	if _, err := ch.ReadAt(s.cfg.mem, hb[:], 0); err != nil {
		return // shorter than a header
	}
	h := decodeHeader(hb[:])
	if h.SrcCID != s.cfg.cid || h.DstCID != HostCID {
		return
	}
	key := connKey{local: h.DstPort, peer: h.SrcPort}
	c := s.conns[key]
	if c != nil && c.dead {
		// Its RST is on the way; the guest's RST makes it unnecessary.
		if h.Op == opRst {
			s.dropLocked(c)
		}
		return
	}
	malformed := h.Type != typeStream ||
		uint64(h.Len) > uint64(ch.ReadableLen())-headerSize ||
		(h.Op == opRW && h.Len > MaxPayload)
	if c == nil {
		switch {
		case h.Op == opRst:
		case !malformed && h.Op == opRequest:
			s.guestConnect(h)
		default:
			s.replyRst(h)
		}
		return
	}
	if malformed {
		s.abort(c)
		return
	}
	c.peerBufAlloc, c.peerFwdCnt = h.BufAlloc, h.FwdCnt
	switch h.Op {
	case opResponse:
		s.accepted(c)
	case opRst:
		s.dropLocked(c)
		return
	case opShutdown:
		s.peerShutdown(c, h.Flags)
	case opRW:
		s.receive(c, ch, h.Len)
	case opCreditUpdate:
	case opCreditRequest:
		c.sendCredit = true
	default: // a second REQUEST, or an unknown op
		s.abort(c)
	}
	if !c.dead {
		// The guest's credit may have grown: the reader may read and
		// the muxer send again.
		c.cond.Broadcast()
		if c.hasWork() {
			s.markReady(c)
		}
	}
}

// replyRst answers a packet that belongs to no connection, dropping the
// answer when too many are already waiting for rx buffers.
func (s *session) replyRst(h header) {
	if len(s.strays) < maxStrays {
		s.strays = append(s.strays, rstReply(h))
		s.wake()
	}
}

// accepted handles the guest's RESPONSE to a host-initiated REQUEST.
func (s *session) accepted(c *conn) {
	if c.state != stateConnecting || c.sendRequest {
		s.abort(c)
		return
	}
	c.state = stateEstablished
	c.timer.Stop()
	c.preamble = []byte("OK " + strconv.FormatUint(uint64(c.key.local), 10) + "\n")
}

func (s *session) peerShutdown(c *conn, flags uint32) {
	if c.state != stateEstablished {
		s.abort(c)
		return
	}
	if flags&shutdownRcv != 0 {
		c.peerShutRecv = true
	}
	if flags&shutdownSend != 0 {
		c.peerShutSend = true
	}
	s.maybeFinish(c)
}

// receive takes n payload bytes for the host program, resetting a
// connection whose guest ignores the credit we gave it.
func (s *session) receive(c *conn, ch *virtio.Chain, n uint32) {
	if c.state != stateEstablished || c.peerShutSend {
		s.abort(c)
		return
	}
	if uint64(c.rxCnt-c.fwdCnt)+uint64(n) > BufAlloc {
		s.abort(c)
		return
	}
	if n == 0 {
		return
	}
	old := len(c.toHost)
	c.toHost = slices.Grow(c.toHost, int(n))[:old+int(n)]
	if _, err := ch.ReadAt(s.cfg.mem, c.toHost[old:], headerSize); err != nil {
		c.toHost = c.toHost[:old]
		s.abort(c)
		return
	}
	c.rxCnt += n
}
