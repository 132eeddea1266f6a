package vsock

import "github.com/ternvm/tern/virtio"

// hasRxWork reports whether a packet is waiting for an rx buffer, dropping
// connections from the front of the ready list that have nothing to send
// any more.
func (s *session) hasRxWork() bool {
	for len(s.ready) > 0 && !s.ready[0].hasWork() {
		s.ready[0].inReady = false
		s.ready = s.ready[1:]
	}
	return len(s.strays) > 0 || len(s.ready) > 0
}

// writePacket fills one rx chain with the next waiting packet and returns
// the bytes written. A chain too small for a header gets nothing and the
// packet waits for the next one.
func (s *session) writePacket(ch *virtio.Chain) uint32 {
	if ch.WritableLen() < headerSize {
		return 0
	}
	var hb [headerSize]byte
	if len(s.strays) > 0 {
		s.strays[0].encode(hb[:])
		if _, err := ch.WriteAt(s.cfg.mem, hb[:], 0); err != nil {
			return 0
		}
		s.strays = s.strays[1:]
		return headerSize
	}
	c := s.ready[0]
	s.ready = s.ready[1:]
	c.inReady = false
	h, payload := s.nextPacket(c, ch.WritableLen()-headerSize)
	h.encode(hb[:])
	if _, err := ch.WriteAt(s.cfg.mem, hb[:], 0); err != nil {
		s.markReady(c)
		return 0
	}
	if _, err := ch.WriteAt(s.cfg.mem, payload, headerSize); err != nil {
		s.markReady(c)
		return 0
	}
	s.sent(c, h)
	if c.hasWork() {
		s.markReady(c)
	}
	return headerSize + h.Len
}

// nextPacket picks c's most urgent packet; room is the payload space of
// the rx buffer.
func (s *session) nextPacket(c *conn, room uint32) (header, []byte) {
	h := header{
		SrcCID: HostCID, DstCID: s.cfg.cid,
		SrcPort: c.key.local, DstPort: c.key.peer,
		Type: typeStream, BufAlloc: BufAlloc, FwdCnt: c.fwdCnt,
	}
	var payload []byte
	switch {
	case c.sendRst:
		h.Op = opRst
	case c.sendRequest:
		h.Op = opRequest
	case c.sendResponse:
		h.Op = opResponse
	case c.dataReady() && room > 0:
		n := min(uint32(len(c.toGuest)), c.peerCredit(), room, MaxPayload)
		h.Op, h.Len = opRW, n
		payload = c.toGuest[:n]
	case c.shutdownReady():
		h.Op, h.Flags = opShutdown, shutdownSend
	default:
		h.Op = opCreditUpdate
	}
	return h, payload
}

// sent records that h reached the guest.
func (s *session) sent(c *conn, h header) {
	c.lastFwdSent = h.FwdCnt
	c.sendCredit = false
	switch h.Op {
	case opRst:
		s.dropLocked(c)
	case opRequest:
		c.sendRequest = false
	case opResponse:
		c.sendResponse = false
	case opRW:
		c.txCnt += h.Len
		c.toGuest = c.toGuest[h.Len:]
		if len(c.toGuest) == 0 {
			c.cond.Broadcast() // the reader may fill the buffer again
		}
	case opShutdown:
		c.shutdownSent = true
		s.maybeFinish(c)
	}
}
