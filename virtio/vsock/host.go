package vsock

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

const (
	// firstHostPort is where host-side ports of host-initiated
	// connections start, well above the ports guest services use.
	firstHostPort = 1 << 30
	// maxConnectLine bounds the "CONNECT <port>\n" line.
	maxConnectLine = 32
)

// acceptLoop takes host connections until the session stops.
func (s *session) acceptLoop() {
	defer s.wg.Done()
	for {
		hc, err := s.cfg.ln.AcceptUnix()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors or the like: try again shortly.
			select {
			case <-s.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		s.mu.Lock()
		if s.stopped || len(s.conns)+len(s.handshakes) >= MaxConnections {
			s.mu.Unlock()
			hc.Close()
			continue
		}
		s.handshakes[hc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handshake(hc)
	}
}

// handshake reads the host program's CONNECT line and opens the
// connection to the guest.
func (s *session) handshake(hc *net.UnixConn) {
	defer s.wg.Done()
	port, err := readConnect(hc)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.handshakes, hc)
	if err != nil || s.stopped || len(s.conns) >= MaxConnections {
		hc.Close()
		return
	}
	local := s.allocPort(port)
	c := s.newConn(connKey{local: local, peer: port}, stateConnecting)
	c.host = hc
	c.sendRequest = true
	s.conns[c.key] = c
	c.timer = time.AfterFunc(connectTimeout, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !c.dead && c.state == stateConnecting {
			s.abort(c)
		}
	})
	s.startIO(c)
	s.markReady(c)
}

// readConnect reads "CONNECT <port>\n" a byte at a time, so that data the
// program sends right after the line stays in the socket for the guest.
// It takes any reader so that the parser can be fuzzed without a socket.
func readConnect(hc io.Reader) (uint32, error) {
	var line []byte
	var b [1]byte
	for {
		if _, err := hc.Read(b[:]); err != nil {
			return 0, fmt.Errorf("read CONNECT line: %w", err)
		}
		if b[0] == '\n' {
			break
		}
		if len(line) == maxConnectLine {
			return 0, fmt.Errorf("CONNECT line longer than %d bytes", maxConnectLine)
		}
		line = append(line, b[0])
	}
	rest, ok := strings.CutPrefix(strings.TrimSuffix(string(line), "\r"), "CONNECT ")
	if !ok {
		return 0, fmt.Errorf("expected \"CONNECT <port>\", got %q", line)
	}
	port, err := strconv.ParseUint(strings.TrimSpace(rest), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("CONNECT port: %w", err)
	}
	return uint32(port), nil
}

// allocPort picks a host-side port not in use with peer. With at most
// MaxConnections connections the loop finds one within that many steps.
func (s *session) allocPort(peer uint32) uint32 {
	for range MaxConnections + 1 {
		p := s.nextPort
		s.nextPort++
		if s.nextPort < firstHostPort {
			s.nextPort = firstHostPort
		}
		if _, used := s.conns[connKey{local: p, peer: peer}]; !used {
			return p
		}
	}
	return s.nextPort
}

// guestConnect starts a guest-initiated connection to "<path>_<port>".
func (s *session) guestConnect(h header) {
	if len(s.conns)+len(s.handshakes) >= MaxConnections {
		s.replyRst(h)
		return
	}
	c := s.newConn(connKey{local: h.DstPort, peer: h.SrcPort}, stateDialing)
	c.peerBufAlloc, c.peerFwdCnt = h.BufAlloc, h.FwdCnt
	s.conns[c.key] = c
	s.wg.Add(1)
	go s.dial(c)
}

func (s *session) dial(c *conn) {
	defer s.wg.Done()
	path := s.cfg.path + "_" + strconv.FormatUint(uint64(c.key.local), 10)
	d := net.Dialer{Timeout: connectTimeout}
	nc, err := d.DialContext(s.ctx, "unix", path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.dead {
		if nc != nil {
			nc.Close()
		}
		return
	}
	if err != nil {
		s.abort(c)
		return
	}
	c.host = nc.(*net.UnixConn)
	c.state = stateEstablished
	c.sendResponse = true
	s.startIO(c)
	s.markReady(c)
}
