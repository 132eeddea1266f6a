package vsock

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
)

// fuzzRecords splits fuzz input into tx chains: each record is a le16
// length and that many bytes, sent as one chain whose first descriptor
// holds at most a header, as Linux lays packets out.
func fuzzRecords(data []byte) [][]byte {
	var recs [][]byte
	for len(data) >= 2 && len(recs) < 32 {
		n := int(binary.LittleEndian.Uint16(data))
		data = data[2:]
		n = min(n, len(data))
		recs = append(recs, data[:n])
		data = data[n:]
	}
	return recs
}

func record(p pkt) []byte {
	b := append(p.encode(), p.payload...)
	return append(binary.LittleEndian.AppendUint16(nil, uint16(len(b))), b...)
}

func FuzzTxPacket(f *testing.F) {
	req := guestPkt(40000, 5000, tOpRequest)
	rw := guestPkt(40000, 5000, tOpRW)
	rw.payload = []byte("hello")
	rw.len = 5
	sd := guestPkt(40000, 5000, tOpShutdown)
	sd.flags = tShutSend | tShutRcv
	creq := guestPkt(40000, 5000, tOpCreditReq)
	lie := guestPkt(40000, 5000, tOpRW)
	lie.len = 60000
	f.Add(record(req))
	f.Add(append(append(append(record(req), record(rw)...), record(creq)...), record(sd)...))
	f.Add(append(record(req), record(lie)...))
	f.Add(record(guestPkt(1, 2, 99)))

	d, path := newDevice(f, tGuestCID)
	// A host program on port 5000 that echoes, so that fuzzed packets can
	// reach established connections.
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
		g := &guest{t: t, dev: d, path: path}
		g.activate()
		for _, rec := range fuzzRecords(data) {
			if len(rec) > tHdrLen {
				g.sendRaw(rec[:tHdrLen], rec[tHdrLen:])
			} else {
				g.sendRaw(rec)
			}
		}
		g.poll()
		for _, p := range g.pending {
			if p.srcCID != tHostCID || p.dstCID != tGuestCID || p.typ != tTypeStream {
				t.Errorf("device sent %v", p)
			}
		}
		d.Reset()
		if errs := g.irq.resetErrors(); len(errs) > 0 {
			t.Fatalf("well-formed chains made the device ask for a reset: %v", errs)
		}
		if !g.mem.GuardsIntact() {
			t.Fatal("device wrote outside guest RAM")
		}
	})
}
