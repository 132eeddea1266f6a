package vsock

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// sessionOp is one guest packet of FuzzSession, decoded from 8 bytes so
// that the fuzzer reaches established connections: op, addressing (two
// bits of guest port, a host port with or without a listener, a wrong
// type, a length that lies), payload length, flags, buf_alloc, fwd_cnt.
func sessionOp(b []byte) (p pkt, lies bool) {
	guestPort := 40000 + uint32(b[1]&3)
	hostPort := uint32(5000)
	if b[1]&4 != 0 {
		hostPort = 5001 // nobody listens: the dial fails
	}
	p = guestPkt(guestPort, hostPort, uint16(b[0]%8))
	if b[1]&8 != 0 {
		p.typ = tTypeSeqpacket
	}
	p.payload = bytes.Repeat([]byte{b[2]}, int(b[2]))
	p.len = uint32(len(p.payload))
	if b[1]&16 != 0 {
		p.len += uint32(b[3]) + 1
		lies = true
	}
	p.flags = uint32(b[3] & 3)
	p.bufAlloc = uint32(binary.LittleEndian.Uint16(b[4:])) << 4
	p.fwdCnt = uint32(binary.LittleEndian.Uint16(b[6:]))
	return p, lies
}

// FuzzSession drives the connection state machine with sequences of guest
// packets (REQUEST, RW, credit update and request, SHUTDOWN, RST and
// nonsense) against a host program that echoes, and checks what the
// device sends back: only answers to what the guest opened, data only on
// established connections and never more than the guest sent, within
// the credit the guest gave.
func FuzzSession(f *testing.F) {
	op := func(o byte, addr byte, n byte, flags byte, bufAlloc uint16, fwd uint16) []byte {
		b := []byte{o, addr, n, flags, 0, 0, 0, 0}
		binary.LittleEndian.PutUint16(b[4:], bufAlloc)
		binary.LittleEndian.PutUint16(b[6:], fwd)
		return b
	}
	cat := func(ops ...[]byte) []byte { return bytes.Join(ops, nil) }
	f.Add(cat(op(tOpRequest, 0, 0, 0, 0x1000, 0), op(tOpRW, 0, 10, 0, 0x1000, 0), op(tOpCreditReq, 0, 0, 0, 0x1000, 0),
		op(tOpShutdown, 0, 0, 3, 0x1000, 0), op(tOpRst, 0, 0, 0, 0, 0)))
	f.Add(cat(op(tOpRequest, 1, 0, 0, 0, 0), op(tOpRW, 1, 200, 0, 0, 0), op(tOpCreditUpd, 1, 0, 0, 0x1000, 0), op(tOpRW, 1, 5, 0, 0x1000, 200)))
	f.Add(cat(op(tOpRequest, 4, 0, 0, 0x1000, 0), op(tOpRW, 4, 3, 0, 0x1000, 0)))
	f.Add(cat(op(tOpRequest, 2, 0, 0, 0x1000, 0), op(tOpRequest, 2, 0, 0, 0x1000, 0), op(tOpResponse, 3, 0, 0, 0, 0)))
	f.Add(cat(op(tOpRequest, 0, 0, 0, 0x1000, 0), op(tOpRW, 16, 8, 40, 0x1000, 0), op(tOpShutdown, 0, 0, 2, 0x1000, 0), op(tOpRW, 0, 1, 0, 0x1000, 0)))
	f.Add(cat(op(tOpRequest, 8, 0, 0, 0x1000, 0), op(0, 0, 0, 0, 0, 0), op(tOpCreditUpd, 3, 0, 0, 0, 0)))

	d, path := newDevice(f, tGuestCID)
	ln, err := net.Listen("unix", path+"_5000")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 8*24 {
			return
		}
		g := &guest{t: t, dev: d, path: path}
		g.activate()
		type pair struct{ guest, host uint32 }
		requested := map[pair]bool{}
		sent := map[pair]uint64{}     // RW payload bytes the guest sent
		maxAlloc := map[pair]uint32{} // the most buf_alloc the guest advertised
		var got []pkt
		for ; len(data) >= 8; data = data[8:] {
			p, _ := sessionOp(data)
			k := pair{p.srcPort, p.dstPort}
			if p.op == tOpRequest {
				requested[k] = true
			}
			if p.op == tOpRW {
				sent[k] += uint64(len(p.payload))
			}
			maxAlloc[k] = max(maxAlloc[k], p.bufAlloc)
			if len(p.payload) == 0 {
				g.sendRaw(p.encode())
			} else {
				g.sendRaw(p.encode(), p.payload)
			}
			if p.op == tOpRequest {
				// Let the dial finish, so that the packets after it meet
				// an established connection (or a refused one).
				deadline := time.Now().Add(200 * time.Millisecond)
				for answered := false; !answered && time.Now().Before(deadline); {
					g.poll()
					for _, a := range g.pending {
						answered = answered || (a.dstPort == k.guest && a.srcPort == k.host && (a.op == tOpResponse || a.op == tOpRst))
					}
					got = append(got, g.pending...)
					g.pending = nil
					if !answered {
						time.Sleep(time.Millisecond)
					}
				}
			}
		}
		g.poll()
		got = append(got, g.pending...)
		d.Reset()

		open := map[pair]bool{}
		echoed := map[pair]uint64{}
		for _, p := range got {
			k := pair{p.dstPort, p.srcPort}
			if p.srcCID != tHostCID || p.dstCID != tGuestCID || p.typ != tTypeStream || p.len > MaxPayload {
				t.Fatalf("device sent %v", p)
			}
			switch p.op {
			case tOpResponse:
				if !requested[k] {
					t.Fatalf("RESPONSE %v to a connection the guest never asked for", p)
				}
				if p.bufAlloc != BufAlloc {
					t.Fatalf("RESPONSE advertises buf_alloc %d", p.bufAlloc)
				}
				open[k] = true
			case tOpRst:
				open[k] = false
			case tOpRW:
				if !open[k] {
					t.Fatalf("RW %v on a connection that is not established", p)
				}
				echoed[k] += uint64(p.len)
				if echoed[k] > sent[k] {
					t.Fatalf("device sent %d bytes on %v, the host program only echoed %d", echoed[k], k, sent[k])
				}
				if p.len > maxAlloc[k] {
					t.Fatalf("RW of %d bytes, more than any buf_alloc (%d) the guest gave", p.len, maxAlloc[k])
				}
			case tOpShutdown, tOpCreditUpd, tOpCreditReq:
				if !open[k] {
					t.Fatalf("%v on a connection that is not established", p)
				}
			default:
				t.Fatalf("device sent op %d: %v", p.op, p)
			}
		}
		if errs := g.irq.resetErrors(); len(errs) > 0 {
			t.Fatalf("well-formed chains made the device ask for a reset: %v", errs)
		}
		if !g.mem.GuardsIntact() {
			t.Fatal("device wrote outside guest RAM")
		}
	})
}
