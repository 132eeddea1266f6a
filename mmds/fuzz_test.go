package mmds

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net/http"
	"testing"
	"time"
)

// checkOutput checks a frame the Stack hands the guest: a whole ARP reply,
// or an IPv4 TCP segment from the service with correct checksums, no
// larger than an Ethernet frame.
func checkOutput(t *testing.T, f []byte) {
	t.Helper()
	eth, ok := parseEth(f)
	if !ok || eth.src != DefaultMAC {
		t.Fatalf("output is not an Ethernet frame from the service: % x", f[:min(len(f), 20)])
	}
	if len(f) > maxFrameSize {
		t.Fatalf("output frame of %d bytes, more than %d", len(f), maxFrameSize)
	}
	switch eth.etherType {
	case etherTypeARP:
		a, ok := parseARP(eth.payload)
		if !ok || a.op != arpReply {
			t.Fatalf("bad ARP output")
		}
	case etherTypeIP4:
		ip, ok := parseIPv4(eth.payload)
		if !ok || ip.proto != protoTCP || ip.src != mmdsIP {
			t.Fatalf("bad IPv4 output")
		}
		if fold(checksum(0, eth.payload[:ipHeaderLen])) != 0 {
			t.Fatal("bad IPv4 header checksum")
		}
		sum := checksum(0, eth.payload[12:20]) + protoTCP + uint32(len(ip.payload))
		if fold(checksum(sum, ip.payload)) != 0 {
			t.Fatal("bad TCP checksum")
		}
		if _, ok := parseTCP(ip.payload); !ok {
			t.Fatal("bad TCP segment")
		}
	default:
		t.Fatalf("output ethertype %#x", eth.etherType)
	}
}

func fuzzStack(t *testing.T, version int) *Stack {
	st := NewStore(0)
	st.Put([]byte(`{"latest":{"meta-data":{"id":"i-1","o":{"a":"b"}}},"n":[1,2]}`))
	svc, err := newService(Config{Version: version, Interfaces: []string{"x"}}, st, func() time.Time { return time.Unix(1e9, 0) })
	if err != nil {
		t.Fatal(err)
	}
	svc.rto = time.Hour // no timer goroutine during a run
	s := svc.NewStack()
	t.Cleanup(s.Close)
	return s
}

func (st *Stack) checkBounds(t *testing.T) {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.conns) > maxConns || len(st.queue) > maxQueued {
		t.Fatalf("%d connections, %d queued frames: past the bounds", len(st.conns), len(st.queue))
	}
	for _, c := range st.conns {
		if len(c.in) > maxRequestIn {
			t.Fatalf("request buffer of %d bytes", len(c.in))
		}
	}
}

// FuzzIntercept feeds raw frames (each a 2-byte length then the bytes) to a
// Stack: it must not panic, must keep its bounds, and everything it answers
// must be a well-formed frame.
func FuzzIntercept(f *testing.F) {
	f.Add(frameSeq(arpRequestFrame(mmdsIP)))
	syn := buildTCP(tcpOut{dstMAC: DefaultMAC, srcMAC: guestMAC, src: guestIP, dst: mmdsIP, srcPort: 40000, dstPort: 80, seq: 7, flags: tcpSYN, mss: true})
	f.Add(frameSeq(syn))
	f.Add(frameSeq(syn, buildTCP(tcpOut{dstMAC: DefaultMAC, srcMAC: guestMAC, src: guestIP, dst: mmdsIP, srcPort: 40000, dstPort: 80, seq: 8, flags: tcpACK | tcpPSH, payload: []byte("GET / HTTP/1.0\r\n\r\n")})))
	f.Add(frameSeq([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 0x08, 0x00, 0x4f}))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := fuzzStack(t, 2)
		for len(data) >= 2 {
			n := int(binary.BigEndian.Uint16(data))
			data = data[2:]
			n = min(n, len(data))
			frame := data[:n]
			data = data[n:]
			s.Intercept(frame)
			for out := s.Next(); out != nil; out = s.Next() {
				checkOutput(t, out)
			}
			s.checkBounds(t)
		}
	})
}

func frameSeq(frames ...[]byte) []byte {
	var b []byte
	for _, f := range frames {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b
}

// FuzzTCPSession plays a guest's TCP side from ops of 4 bytes each:
// flags, which of 4 guest ports, how the sequence and acknowledgement
// numbers relate to what the service sent (right, off by some), and a
// payload picked from request pieces. Well-formed segments reach the
// connection states and the HTTP server that raw frames rarely do.
func FuzzTCPSession(f *testing.F) {
	f.Add([]byte{tcpSYN, 0, 0, 0, tcpACK, 0, 0, 0, tcpACK | tcpPSH, 0, 0, 1, tcpACK, 0, 0, 0, tcpACK | tcpFIN, 0, 0, 0})
	f.Add([]byte{tcpSYN, 1, 0, 0, tcpACK, 1, 0, 0, tcpACK | tcpPSH, 1, 0, 2, tcpACK | tcpPSH, 1, 0, 3, tcpRST, 1, 0, 0})
	f.Add([]byte{tcpSYN, 2, 0, 0, tcpSYN, 2, 0, 0, tcpACK, 2, 0x11, 0, tcpACK | tcpPSH, 2, 0, 4})
	pieces := [][]byte{nil, []byte("GET /latest/meta-data/id HTTP/1.1\r\n\r\n"), []byte("PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 9\r\n\r\n"), []byte("GET /n"), bytes.Repeat([]byte("A"), 1400)}
	f.Fuzz(func(t *testing.T, ops []byte) {
		s := fuzzStack(t, int(len(ops)%2)+1)
		type peer struct{ seq, lastSeq uint32 }
		peers := map[uint16]*peer{}
		for ; len(ops) >= 4; ops = ops[4:] {
			port := 40000 + uint16(ops[1]%4)
			p := peers[port]
			if p == nil {
				p = &peer{seq: 1000}
				peers[port] = p
			}
			payload := pieces[int(ops[3])%len(pieces)]
			seq := p.seq + uint32(int8(ops[2]&0x0f)-int8(ops[2]&0x0f>>3<<4))
			ack := p.lastSeq + uint32(int8(ops[2]>>4)&7)
			frame := buildTCP(tcpOut{dstMAC: DefaultMAC, srcMAC: guestMAC, src: guestIP, dst: mmdsIP, srcPort: port, dstPort: 80, seq: seq, ack: ack, flags: ops[0] & 0x3f, payload: payload})
			s.Intercept(frame)
			if ops[0]&tcpSYN != 0 {
				p.seq = seq + 1
			}
			p.seq += uint32(len(payload))
			if ops[0]&tcpFIN != 0 {
				p.seq++
			}
			for out := s.Next(); out != nil; out = s.Next() {
				checkOutput(t, out)
				ip, _ := parseIPv4(out[ethHeaderLen:])
				seg, _ := parseTCP(ip.payload)
				if q := peers[seg.dstPort]; q != nil {
					q.lastSeq = seg.seq + uint32(len(seg.payload))
					if seg.flags&(tcpSYN|tcpFIN) != 0 {
						q.lastSeq++
					}
				}
			}
			s.checkBounds(t)
		}
		// Whatever the guest did, the retransmission timer's work stays
		// within bounds too.
		s.tick()
		for out := s.Next(); out != nil; out = s.Next() {
			checkOutput(t, out)
		}
	})
}

// FuzzParseRequest parses arbitrary bytes as a request: no panic, a parse
// never claims bytes it was not given, and whatever the service answers
// (or refuses with) is an HTTP response net/http can read.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("GET /latest/meta-data/id HTTP/1.1\r\nAccept: application/json\r\n\r\n"))
	f.Add([]byte("PUT /latest/api/token HTTP/1.0\r\nX-metadata-token-ttl-seconds: 21600\r\nContent-Length: 2\r\n\r\nhi"))
	f.Add([]byte("GET http://169.254.169.254/n/0 HTTP/1.1\r\nX-metadata-token: AAAA\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := fuzzStack(t, int(len(data)%2)+1)
		req, n, err := parseRequest(data)
		var out []byte
		switch {
		case err == errIncomplete:
			return
		case err != nil:
			b, ok := err.(*badRequest)
			if !ok {
				t.Fatalf("parse error of type %T", err)
			}
			out = text(b.status, b.msg).bytes(1)
		default:
			if n <= 0 || n > len(data) {
				t.Fatalf("parsed %d of %d bytes", n, len(data))
			}
			out = s.svc.svc.serve(req).bytes(req.minor)
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
		if err != nil {
			t.Fatalf("answer is not HTTP: %v\n%q", err, out)
		}
		resp.Body.Close()
	})
}

// FuzzStore puts and patches arbitrary documents (an API client's input):
// no panic, and the stored document is always valid JSON within the limit.
func FuzzStore(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,2]}}`), []byte(`{"a":{"b":null,"c":"d"}}`))
	f.Add([]byte(`[1]`), []byte(`"x"`))
	f.Add([]byte(`{"a":"<&>"}`), []byte(`{"a":1e999}`))
	f.Fuzz(func(t *testing.T, put, patch []byte) {
		s := NewStore(256)
		putErr := s.Put(put)
		s.Patch(patch)
		got := s.Get()
		if len(got) > 256 {
			t.Fatalf("document of %d bytes past the 256-byte limit", len(got))
		}
		if putErr == nil {
			if err := NewStore(256).Put(got); err != nil {
				t.Fatalf("the stored document %q does not load again: %v", got, err)
			}
		}
	})
}
