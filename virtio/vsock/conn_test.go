package vsock

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// hostConnect plays a host program: it connects to the device socket and
// asks for guest port; it returns the connection and a reader over it.
func hostConnect(t *testing.T, path string, port uint32) (*net.UnixConn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "CONNECT %d\n", port); err != nil {
		t.Fatal(err)
	}
	return c.(*net.UnixConn), bufio.NewReader(c)
}

// acceptRequest waits for the device's REQUEST for guestPort and returns
// the host-side port it chose.
func (g *guest) acceptRequest(guestPort uint32) uint32 {
	g.t.Helper()
	p := g.recv()
	if p.op != tOpRequest || p.srcCID != tHostCID || p.dstCID != tGuestCID || p.dstPort != guestPort ||
		p.typ != tTypeStream || p.len != 0 {
		g.t.Fatalf("got %v, want a stream REQUEST from CID 2 to %d:%d", p, tGuestCID, guestPort)
	}
	if p.bufAlloc != tBufAlloc {
		g.t.Errorf("REQUEST advertises buf_alloc %d, want %d", p.bufAlloc, tBufAlloc)
	}
	return p.srcPort
}

func TestHostInitiatedConnection(t *testing.T) {
	g := startGuest(t)
	const guestPort = 1234
	hc, hr := hostConnect(t, g.path, guestPort)
	hostPort := g.acceptRequest(guestPort)

	resp := guestPkt(guestPort, hostPort, tOpResponse)
	g.send(resp)
	line, err := hr.ReadString('\n')
	if err != nil {
		t.Fatalf("read OK line: %v", err)
	}
	if want := fmt.Sprintf("OK %d\n", hostPort); line != want {
		t.Fatalf("host program got %q, want %q", line, want)
	}

	// Host to guest: 200 KiB, more than one packet and one rx buffer.
	toGuest := randomBytes(t, 200<<10)
	go hc.Write(toGuest)
	got := g.recvData(hostPort, guestPort, len(toGuest))
	if sha256.Sum256(got) != sha256.Sum256(toGuest) {
		t.Fatalf("guest received different bytes than the host program wrote")
	}

	// Guest to host: 150 KiB in 4 KiB packets, within the device's credit.
	toHost := randomBytes(t, 150<<10)
	readDone := make(chan []byte)
	go func() {
		b := make([]byte, len(toHost))
		io.ReadFull(hr, b)
		readDone <- b
	}()
	g.sendData(guestPort, hostPort, toHost, 4096)
	select {
	case b := <-readDone:
		if sha256.Sum256(b) != sha256.Sum256(toHost) {
			t.Fatalf("host program received different bytes than the guest sent")
		}
	case <-time.After(waitTimeout):
		t.Fatal("host program did not receive the guest's data")
	}
	if errs := g.irq.resetErrors(); len(errs) > 0 {
		t.Fatalf("device asked for a reset: %v", errs)
	}
}

func TestHostConnectDataBeforeOKIsKept(t *testing.T) {
	g := startGuest(t)
	c, err := net.Dial("unix", g.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A program that does not wait for OK before writing.
	io.WriteString(c, "CONNECT 77\nearly bytes")
	hostPort := g.acceptRequest(77)
	g.send(guestPkt(77, hostPort, tOpResponse))
	got := g.recvData(hostPort, 77, len("early bytes"))
	if string(got) != "early bytes" {
		t.Fatalf("guest got %q, want %q", got, "early bytes")
	}
}

func TestHostConnectRefusedByGuest(t *testing.T) {
	g := startGuest(t)
	hc, hr := hostConnect(t, g.path, 99)
	hostPort := g.acceptRequest(99)
	g.send(guestPkt(99, hostPort, tOpRst))
	hc.SetReadDeadline(time.Now().Add(waitTimeout))
	rest, err := io.ReadAll(hr)
	if err != nil {
		t.Fatalf("host connection: %v, want EOF", err)
	}
	if len(rest) != 0 {
		t.Fatalf("host program got %q after the guest refused, want nothing", rest)
	}
}

func TestHostConnectBadLine(t *testing.T) {
	g := startGuest(t)
	for _, line := range []string{"HELLO\n", "CONNECT x\n", "CONNECT 4294967296\n", strings.Repeat("C", 100)} {
		c, err := net.Dial("unix", g.path)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, line)
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		rest, err := io.ReadAll(c)
		c.Close()
		// Closing with unread bytes is a reset rather than an EOF.
		if (err != nil && !errors.Is(err, syscall.ECONNRESET)) || len(rest) != 0 {
			t.Errorf("after %q: read %q, %v; want the device to close the connection", line, rest, err)
		}
	}
	g.expectNone(50 * time.Millisecond)
}

func TestGuestInitiatedConnection(t *testing.T) {
	g := startGuest(t)
	hc := g.guestConnect(40000, 5000, 1<<20)

	g.sendData(40000, 5000, []byte("hello"), 4096)
	buf := make([]byte, 5)
	hc.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(hc, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("host program read %q, %v; want %q", buf, err, "hello")
	}

	big := randomBytes(t, 100<<10)
	go hc.Write(big)
	got := g.recvData(5000, 40000, len(big))
	if !bytes.Equal(got, big) {
		t.Fatalf("guest received different bytes than the host program wrote")
	}
}

func TestGuestConnectRefused(t *testing.T) {
	g := startGuest(t)
	// Nothing listens on "<path>_5001".
	for range 2 {
		g.send(guestPkt(40001, 5001, tOpRequest))
		g.expect(tOpRst, 5001, 40001)
	}
}

func TestGuestRequestToPortWithLongPath(t *testing.T) {
	g := startGuest(t)
	g.send(guestPkt(40002, 4294967295, tOpRequest))
	g.expect(tOpRst, 4294967295, 40002)
}

// The device sends no more than the guest's free credit and resumes when
// a CREDIT_UPDATE grants more.
func TestCreditFlowControlTowardsGuest(t *testing.T) {
	g := startGuest(t)
	const credit = 8192
	hc := g.guestConnect(40010, 5010, credit)
	data := randomBytes(t, 4*credit)
	go hc.Write(data)

	got := g.recvData(5010, 40010, credit)
	g.expectNone(200 * time.Millisecond)

	upd := guestPkt(40010, 5010, tOpCreditUpd)
	upd.bufAlloc, upd.fwdCnt = credit, credit // the guest consumed everything
	g.send(upd)
	got = append(got, g.recvData(5010, 40010, credit)...)
	g.expectNone(200 * time.Millisecond)

	upd.bufAlloc, upd.fwdCnt = 2*credit, 2*credit // a bigger buffer
	g.send(upd)
	got = append(got, g.recvData(5010, 40010, 2*credit)...)
	if !bytes.Equal(got, data) {
		t.Fatalf("guest received different bytes than the host program wrote")
	}
}

// The device reports what it forwarded to the host when asked.
func TestCreditRequestIsAnswered(t *testing.T) {
	g := startGuest(t)
	hc := g.guestConnect(40011, 5011, 1<<20)
	g.sendData(40011, 5011, make([]byte, 10000), 4096)
	hc.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(hc, make([]byte, 10000)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		g.send(guestPkt(40011, 5011, tOpCreditReq))
		p := g.expect(tOpCreditUpd, 5011, 40011)
		if p.bufAlloc != tBufAlloc {
			t.Fatalf("CREDIT_UPDATE buf_alloc = %d, want %d", p.bufAlloc, tBufAlloc)
		}
		if p.fwdCnt == 10000 {
			break
		}
		if p.fwdCnt > 10000 || time.Now().After(deadline) {
			t.Fatalf("CREDIT_UPDATE fwd_cnt = %d, want 10000", p.fwdCnt)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A guest that sends more than the credit the device advertised gets its
// connection reset. The host program does not read, so the device's
// buffer and the socket buffer fill up.
func TestGuestExceedingCreditIsReset(t *testing.T) {
	g := startGuest(t)
	g.guestConnect(40012, 5012, 1<<20)
	chunk := make([]byte, 64<<10)
	for range 32 { // 2 MiB, far more than 256 KiB plus a socket buffer
		p := guestPkt(40012, 5012, tOpRW)
		p.payload = chunk
		g.send(p)
		g.poll()
		for _, p := range g.pending {
			switch {
			case p.op == tOpCreditUpd:
			case p.op == tOpRst && p.srcPort == 5012 && p.dstPort == 40012:
				return
			default:
				t.Fatalf("got %v, want RST for the connection", p)
			}
		}
		g.pending = nil
	}
	t.Fatalf("the device took 2 MiB from a guest it gave %d bytes of credit", tBufAlloc)
}

func TestGuestShutdownSendThenHostClose(t *testing.T) {
	g := startGuest(t)
	hc := g.guestConnect(40020, 5020, 1<<20)
	g.sendData(40020, 5020, []byte("last words"), 4096)
	sd := guestPkt(40020, 5020, tOpShutdown)
	sd.flags = tShutSend
	g.send(sd)

	hc.SetReadDeadline(time.Now().Add(waitTimeout))
	got, err := io.ReadAll(hc)
	if err != nil || string(got) != "last words" {
		t.Fatalf("host program read %q, %v; want %q then EOF", got, err, "last words")
	}
	// The other direction still works.
	io.WriteString(hc, "reply")
	if got := g.recvData(5020, 40020, 5); string(got) != "reply" {
		t.Fatalf("guest got %q, want %q", got, "reply")
	}
	hc.Close()
	p := g.expect(tOpShutdown, 5020, 40020)
	if p.flags != tShutSend {
		t.Errorf("SHUTDOWN flags = %d, want SEND (%d)", p.flags, tShutSend)
	}
	// Both directions are over: the device ends the connection.
	g.expect(tOpRst, 5020, 40020)
}

func TestGuestFullShutdownIsAnsweredWithRst(t *testing.T) {
	g := startGuest(t)
	hc := g.guestConnect(40021, 5021, 1<<20)
	g.sendData(40021, 5021, []byte("bye"), 4096)
	sd := guestPkt(40021, 5021, tOpShutdown)
	sd.flags = tShutSend | tShutRcv
	g.send(sd)
	hc.SetReadDeadline(time.Now().Add(waitTimeout))
	got, err := io.ReadAll(hc)
	if err != nil || string(got) != "bye" {
		t.Fatalf("host program read %q, %v; want %q then EOF", got, err, "bye")
	}
	g.expect(tOpRst, 5021, 40021)
	// The connection is gone: data for it is answered with RST.
	g.sendData(40021, 5021, []byte("late"), 4096)
	g.expect(tOpRst, 5021, 40021)
}

func TestHostHalfCloseSendsShutdown(t *testing.T) {
	g := startGuest(t)
	hc := g.guestConnect(40022, 5022, 1<<20).(*net.UnixConn)
	io.WriteString(hc, "done")
	hc.CloseWrite()
	if got := g.recvData(5022, 40022, 4); string(got) != "done" {
		t.Fatalf("guest got %q, want %q", got, "done")
	}
	p := g.expect(tOpShutdown, 5022, 40022)
	if p.flags != tShutSend {
		t.Errorf("SHUTDOWN flags = %d, want SEND (%d)", p.flags, tShutSend)
	}
	// The guest may still send.
	g.sendData(40022, 5022, []byte("more"), 4096)
	buf := make([]byte, 4)
	hc.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(hc, buf); err != nil || string(buf) != "more" {
		t.Fatalf("host program read %q, %v; want %q", buf, err, "more")
	}
}

func TestGuestRstClosesHostConnection(t *testing.T) {
	g := startGuest(t)
	hc := g.guestConnect(40023, 5023, 1<<20)
	g.send(guestPkt(40023, 5023, tOpRst))
	hc.SetReadDeadline(time.Now().Add(waitTimeout))
	if got, err := io.ReadAll(hc); err != nil || len(got) != 0 {
		t.Fatalf("host program read %q, %v; want EOF", got, err)
	}
	g.expectNone(50 * time.Millisecond)
}
