package api

import (
	"bufio"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func listenUnix(t *testing.T) (net.Listener, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	return ln, sock
}

// getVM sends GET /vm on c and reports whether an answer came within d.
func getVM(t *testing.T, c net.Conn, d time.Duration) bool {
	t.Helper()
	c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("GET /vm HTTP/1.1\r\nHost: tern\r\n\r\n")); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// 20,000 idle connections exhausted tern's descriptors: Serve holds at
// most MaxConns open; the next waits until one closes.
func TestServeCapsOpenConnections(t *testing.T) {
	ln, sock := listenUnix(t)
	srv := Serve(ln, &fakeVM{})
	defer srv.Close()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < MaxConns; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if !getVM(t, c, 5*time.Second) { // accepted, served, now idle
			t.Fatalf("connection %d not served", i)
		}
	}
	extra, err := net.Dial("unix", sock) // queued in the backlog
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if getVM(t, extra, 300*time.Millisecond) {
		t.Fatalf("connection %d was served while %d were open", MaxConns+1, MaxConns)
	}
	extra.Close()
	conns[0].Close()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	conns[0] = c
	if !getVM(t, c, 5*time.Second) {
		t.Error("no connection served after one closed")
	}
}

func TestServeSetsTimeouts(t *testing.T) {
	ln, _ := listenUnix(t)
	srv := Serve(ln, &fakeVM{})
	defer srv.Close()
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.IdleTimeout == 0 || srv.WriteTimeout < time.Minute {
		t.Errorf("timeouts: header %v, read %v, write %v, idle %v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
}

func TestLimitListenerCloseReleasesAccept(t *testing.T) {
	ln, sock := listenUnix(t)
	l := LimitListener(ln, 1)
	go func() {
		c, _ := net.Dial("unix", sock)
		if c != nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }() // waits: the one slot is taken
	time.Sleep(50 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("Accept after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept blocked past Close")
	}
}
