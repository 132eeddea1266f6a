package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"testing/iotest"
	"time"
)

// relayPayload is n bytes that differ from their neighbours, so that a
// byte moved, lost or changed shows.
func relayPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// Whatever sizes the reads come in, exactly the byte at the offset is
// inverted and every other byte goes through unchanged.
func TestForwardFlipsTheByteAtTheOffset(t *testing.T) {
	data := relayPayload(100_000)
	for _, at := range []int64{0, 1, 4095, 4096, 65535, 65536, 99_999} {
		for name, r := range map[string]func(io.Reader) io.Reader{
			"whole": func(r io.Reader) io.Reader { return r },
			"half":  iotest.HalfReader,
			"bytes": iotest.OneByteReader,
		} {
			var out bytes.Buffer
			rep := relayReport{}
			rerr, werr := forward(&out, r(bytes.NewReader(data)), relayFault{"flip", at}, &rep)
			if rerr != io.EOF || werr != nil {
				t.Fatalf("flip at %d, %s reads: forward = %v, %v; want io.EOF, nil", at, name, rerr, werr)
			}
			want := bytes.Clone(data)
			want[at] = ^want[at]
			if !bytes.Equal(out.Bytes(), want) || rep.toTarget != int64(len(data)) {
				t.Errorf("flip at %d, %s reads: forwarded %d bytes, want %d with only byte %d inverted", at, name, out.Len(), len(data), at)
			}
			if !rep.flipped || rep.flipFrom != data[at] || rep.flipTo != ^data[at] {
				t.Errorf("flip at %d, %s reads: report %+v", at, name, rep)
			}
		}
	}
}

// A cut forwards exactly the bytes before it and stops reading there; an
// offset past the stream's end forwards it all and says the cut missed.
func TestForwardCutsAfterTheOffset(t *testing.T) {
	data := relayPayload(100_000)
	for _, at := range []int64{0, 1, 65536, 70_000, 100_000, 200_000} {
		var out bytes.Buffer
		rep := relayReport{fault: relayFault{"cut", at}}
		rerr, werr := forward(&out, iotest.HalfReader(bytes.NewReader(data)), rep.fault, &rep)
		if werr != nil {
			t.Fatalf("cut at %d: write error %v", at, werr)
		}
		n := min(at, int64(len(data)))
		if !bytes.Equal(out.Bytes(), data[:n]) || rep.toTarget != n {
			t.Errorf("cut at %d: forwarded %d bytes, want the first %d", at, out.Len(), n)
		}
		if at <= int64(len(data)) {
			if !rep.cut || rerr != nil {
				t.Errorf("cut at %d: cut=%v, read error %v; want a cut and no error", at, rep.cut, rerr)
			}
		} else if rep.cut || rerr != io.EOF || rep.summary()[2] != "cut-missed=200000" {
			t.Errorf("cut at %d past the end: cut=%v, read error %v, summary %q; want io.EOF and cut-missed", at, rep.cut, rerr, rep.summary())
		}
	}
}

// startRelay runs relay on a loopback port in front of target.
func startRelay(t *testing.T, target string, f relayFault) (addr string, done <-chan relayReport) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan relayReport, 1)
	go func() {
		rep, err := relay(ln, target, f)
		if err != nil {
			t.Errorf("relay: %v", err)
		}
		ch <- rep
	}()
	return ln.Addr().String(), ch
}

// receiver accepts one connection on a loopback port and hands it to
// serve.
func receiver(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	return ln.Addr().String()
}

func dialRelay(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

// Over TCP a flip changes one byte on the way to the receiver, nothing on
// the way back, and half-closes pass through both ways.
func TestRelayFlipsOneByteOnTheWayToTheReceiver(t *testing.T) {
	data := relayPayload(1 << 20)
	got := make(chan []byte, 1)
	target := receiver(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		got <- b
		io.WriteString(c, "ok\n")
	})
	addr, done := startRelay(t, target, relayFault{"flip", 300_000})
	c := dialRelay(t, addr)
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	back, err := io.ReadAll(c)
	if err != nil || string(back) != "ok\n" {
		t.Fatalf("the sender read %q, %v back; want the receiver's \"ok\" and its end", back, err)
	}
	want := bytes.Clone(data)
	want[300_000] = ^want[300_000]
	if b := <-got; !bytes.Equal(b, want) {
		t.Errorf("the receiver got %d bytes, want %d with only byte 300000 inverted", len(b), len(want))
	}
	rep := <-done
	if rep.toTarget != int64(len(data)) || rep.toSource != 3 || !rep.flipped {
		t.Errorf("report %q: want every byte each way and the flip", rep.summary())
	}
}

// A cut ends the receiver's stream after exactly the bytes before it and
// breaks the sender's connection too.
func TestRelayCutClosesBothEnds(t *testing.T) {
	got := make(chan int, 1)
	target := receiver(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		got <- len(b)
	})
	addr, done := startRelay(t, target, relayFault{"cut", 200_000})
	c := dialRelay(t, addr)
	wrote := make(chan error, 1)
	go func() {
		// More than the relay forwards and the sockets hold: the
		// sender must see the connection break while writing.
		_, err := c.Write(relayPayload(64 << 20))
		wrote <- err
	}()
	if n := <-got; n != 200_000 {
		t.Errorf("the receiver got %d bytes before its stream ended, want 200000", n)
	}
	if err := <-wrote; err == nil {
		t.Error("the sender wrote 64 MiB through a cut connection without an error")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("the sender's write hung until its deadline: %v", err)
	}
	if rep := <-done; !rep.cut || rep.toTarget != 200_000 {
		t.Errorf("report %q: want the cut at 200000", rep.summary())
	}
}

// A receiver that stops reading, says why and closes (a migration's abort)
// is heard by the sender even while it still writes: the relay takes the
// rest of its stream rather than reset the connection under that reason.
func TestRelayCarriesTheReceiversLastWords(t *testing.T) {
	target := receiver(t, func(c net.Conn) {
		io.ReadFull(c, make([]byte, 1000))
		io.WriteString(c, "abort: checksum\n")
	})
	addr, done := startRelay(t, target, relayFault{"flip", 10})
	c := dialRelay(t, addr)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		chunk := relayPayload(64 << 10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "abort: checksum\n" {
		t.Fatalf("the sender read %q, %v; want the receiver's reason", line, err)
	}
	c.Close()
	if rep := <-done; rep.toSource != int64(len(line)) {
		t.Errorf("report %q: want the reason's %d bytes back", rep.summary(), len(line))
	}
}
