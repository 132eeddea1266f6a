package vsock

import (
	"encoding/binary"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

func TestMalformedPackets(t *testing.T) {
	g := startGuest(t)
	// Dropped without an answer: there is no one to answer.
	g.sendRaw(make([]byte, 20)) // shorter than a header
	wrongDst := guestPkt(1, 5000, tOpRequest)
	wrongDst.dstCID = 3
	g.send(wrongDst)
	wrongSrc := guestPkt(1, 5000, tOpRequest)
	wrongSrc.srcCID = tGuestCID + 1
	g.send(wrongSrc)
	g.send(guestPkt(1, 5000, tOpRst)) // RST is never answered

	// Answered with RST, addresses swapped.
	unknownOp := guestPkt(2, 5000, 99)
	seqpacket := guestPkt(3, 5000, tOpRequest)
	seqpacket.typ = tTypeSeqpacket
	lenPastChain := guestPkt(4, 5000, tOpRW)
	lenPastChain.len = 100 // and no payload follows
	hugeLen := guestPkt(5, 5000, tOpRW)
	hugeLen.len = 0xffffffff
	rwNoConn := guestPkt(6, 5000, tOpRW)
	rwNoConn.payload = []byte("x")
	creditNoConn := guestPkt(7, 5000, tOpCreditUpd)
	for _, p := range []pkt{unknownOp, seqpacket, lenPastChain, hugeLen, rwNoConn, creditNoConn} {
		g.send(p)
	}
	for port := uint32(2); port <= 7; port++ {
		p := g.expect(tOpRst, 5000, port)
		if p.len != 0 {
			t.Errorf("RST carries %d payload bytes", p.len)
		}
	}
	g.expectNone(50 * time.Millisecond)
	if errs := g.irq.resetErrors(); len(errs) > 0 {
		t.Fatalf("malformed packets made the device ask for a reset: %v", errs)
	}
	// The device still works.
	g.guestConnect(40030, 5030, 1<<20)
}

func TestMalformedPacketResetsItsConnection(t *testing.T) {
	g := startGuest(t)
	hc := g.guestConnect(40031, 5031, 1<<20)
	bad := guestPkt(40031, 5031, tOpRW)
	bad.len = 4096 // but the chain carries only the header
	g.send(bad)
	g.expect(tOpRst, 5031, 40031)
	hc.SetReadDeadline(time.Now().Add(waitTimeout))
	if got, err := io.ReadAll(hc); err != nil || len(got) != 0 {
		t.Fatalf("host program read %q, %v; want EOF", got, err)
	}
}

// A malformed descriptor chain is a broken driver: the device asks for a
// reset instead of guessing.
func TestBrokenRingNeedsReset(t *testing.T) {
	g := startGuest(t)
	g.locked(func() {
		// A chain whose buffer lies outside guest RAM.
		g.tx.Chain(0, virtqtest.Seg{Addr: memSize + 0x1000, Len: 44})
		g.tx.Publish(0)
	})
	g.dev.QueueNotify(1)
	deadline := time.Now().Add(waitTimeout)
	for len(g.irq.resetErrors()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("device did not ask for a reset")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestResetClosesEverythingAndReactivates(t *testing.T) {
	before := deviceGoroutines()
	g := startGuest(t)
	hc1 := g.guestConnect(40040, 5040, 1<<20)
	hc2, hr2 := hostConnect(t, g.path, 80)
	hostPort := g.acceptRequest(80)
	g.send(guestPkt(80, hostPort, tOpResponse))
	if line, err := hr2.ReadString('\n'); err != nil || line[:2] != "OK" {
		t.Fatalf("OK line: %q, %v", line, err)
	}
	g.dev.Reset()
	for _, hc := range []interface {
		SetReadDeadline(time.Time) error
		Read([]byte) (int, error)
	}{hc1, hc2} {
		hc.SetReadDeadline(time.Now().Add(waitTimeout))
		if n, err := hc.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("host connection after Reset: %d, %v; want EOF", n, err)
		}
	}
	hc1.Close()
	hc2.Close()
	// Every goroutine of the session is gone when Reset returns. Counted
	// by their stacks, not runtime.NumGoroutine: that also counts the
	// runtime's own (cleanup goroutines come and go), which once made
	// this fail with no device goroutine left.
	var left []string
	for id, stack := range deviceGoroutines() {
		if _, old := before[id]; !old {
			left = append(left, stack)
		}
	}
	if len(left) > 0 {
		t.Fatalf("%d of the device's goroutines still run after Reset:\n%s", len(left), strings.Join(left, "\n\n"))
	}
	g.activate()
	g.guestConnect(40041, 5041, 1<<20)
	hc3, hr3 := hostConnect(t, g.path, 81)
	_ = hc3
	hostPort = g.acceptRequest(81)
	g.send(guestPkt(81, hostPort, tOpResponse))
	if line, err := hr3.ReadString('\n'); err != nil || line[:2] != "OK" {
		t.Fatalf("OK line after reactivation: %q, %v", line, err)
	}
}

// A host program that connects while the driver is not running waits in
// the backlog and is served after activation.
func TestHostConnectBeforeActivation(t *testing.T) {
	d, path := newDevice(t, tGuestCID)
	g := &guest{t: t, dev: d, path: path}
	_, hr := hostConnect(t, path, 90)
	g.activate()
	defer d.Reset()
	hostPort := g.acceptRequest(90)
	g.send(guestPkt(90, hostPort, tOpResponse))
	if line, err := hr.ReadString('\n'); err != nil || line[:2] != "OK" {
		t.Fatalf("OK line: %q, %v", line, err)
	}
}

func TestStateAndTransportResetEvent(t *testing.T) {
	d, path := newDevice(t, 5)
	if st := d.State(); st.GuestCID != 5 || st.SocketPath != path {
		t.Fatalf("State = %+v, want CID 5 and %s", st, path)
	}
	if err := d.SetState(State{GuestCID: 2}); err == nil {
		t.Errorf("SetState accepted CID 2")
	}
	if err := d.SetState(State{GuestCID: tGuestCID, SocketPath: path}); err != nil {
		t.Fatalf("SetState: %v", err)
	}
	cfg := make([]byte, 8)
	d.ReadConfig(0, cfg)
	if got := binary.LittleEndian.Uint64(cfg); got != tGuestCID {
		t.Errorf("guest_cid after SetState = %d, want %d", got, tGuestCID)
	}
	g := &guest{t: t, dev: d, path: path}
	g.activate()
	defer d.Reset()
	if err := d.SetState(State{GuestCID: 9}); err == nil {
		t.Errorf("SetState succeeded on an active device")
	}
	// struct virtio_vsock_event { le32 id; }, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET = 0.
	g.waitFor("transport reset event", func() bool { return g.ev.UsedIdx() == 1 })
	var id, n uint32
	var ev uint32
	g.locked(func() {
		id, n = g.ev.UsedElem(0)
		ev = binary.LittleEndian.Uint32(g.mem.Bytes()[evBufBase+uint64(id)*8:])
	})
	if n != 4 || ev != 0 {
		t.Errorf("event buffer: used length %d, id %d; want 4 and TRANSPORT_RESET (0)", n, ev)
	}
	// Only once.
	time.Sleep(20 * time.Millisecond)
	g.locked(func() {
		if g.ev.UsedIdx() != 1 {
			t.Errorf("event queue used %d buffers, want 1", g.ev.UsedIdx())
		}
	})
	// A fresh activation without a restore posts none.
	d.Reset()
	g.activate()
	time.Sleep(20 * time.Millisecond)
	g.locked(func() {
		if g.ev.UsedIdx() != 0 {
			t.Errorf("event posted without a restore")
		}
	})
}

// deviceGoroutines returns, by goroutine id, the stacks of the goroutines
// running this package's own (non-test) code.
func deviceGoroutines() map[string]string {
	buf := make([]byte, 1<<20)
	out := map[string]string{}
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		id, _, _ := strings.Cut(g, " [")
		for _, l := range strings.Split(g, "\n") {
			file, _, _ := strings.Cut(strings.TrimSpace(l), ":")
			if strings.Contains(file, "/virtio/vsock/") && strings.HasSuffix(file, ".go") && !strings.HasSuffix(file, "_test.go") {
				out[id] = g
				break
			}
		}
	}
	return out
}
