package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestParseHoldLine(t *testing.T) {
	for _, tc := range []struct {
		line      string
		seq, dial int
		ok        bool
	}{
		{"seq=1 dial=1", 1, 1, true},
		{"seq=4711 dial=3\r", 4711, 3, true},
		{holdLine(12, 2), 12, 2, true},
		{"seq=0 dial=1", 0, 0, false},
		{"seq=5", 0, 0, false},
		{"seq=x dial=1", 0, 0, false},
		{"dial=1 seq=5", 0, 0, false},
		{"stop", 0, 0, false},
		{"", 0, 0, false},
	} {
		seq, dial, ok := parseHoldLine(tc.line)
		if seq != tc.seq || dial != tc.dial || ok != tc.ok {
			t.Errorf("parseHoldLine(%q) = %d, %d, %v; want %d, %d, %v", tc.line, seq, dial, ok, tc.seq, tc.dial, tc.ok)
		}
	}
}

// A connection that breaks after line 3, a line lost with it, the dialer
// back on a second connection from line 5, one line arriving twice and one
// that is not a numbered line.
func TestHoldTallyCountsConnectionsGapsAndRepeats(t *testing.T) {
	tl := newHoldTally()
	tl.accepted(1)
	for _, l := range []string{"seq=1 dial=1", "seq=2 dial=1", "seq=3 dial=1"} {
		tl.add(1, l)
	}
	tl.closed()
	tl.accepted(2)
	for _, l := range []string{"seq=5 dial=2", "seq=6 dial=2", "seq=6 dial=2", "hello", "seq=7 dial=2"} {
		tl.add(2, l)
	}
	want := []string{
		"connections=2", "max-open=1", "lines=7", "first-seq=1", "last-seq=7", "gaps=1", "repeats=1", "bad-lines=1",
		"conn1-lines=3", "conn1-first-seq=1", "conn1-last-seq=3",
		"conn2-lines=4", "conn2-first-seq=5", "conn2-last-seq=7",
	}
	if got := tl.summary(); !reflect.DeepEqual(got, want) {
		t.Errorf("summary:\n got %q\nwant %q", got, want)
	}
}

// syncBuffer is a bytes.Buffer for several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recordingListener keeps what it accepted, so a test can break a
// connection from the serving side.
type recordingListener struct {
	listener
	mu    sync.Mutex
	conns []stream
}

func (l *recordingListener) Accept() (stream, error) {
	c, err := l.listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *recordingListener) conn(i int) stream {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[i]
}

// A connection the server still holds while a second one comes shows as
// max-open=2: a host end the guest no longer has.
func TestHoldTallyCountsOverlappingConnections(t *testing.T) {
	tl := newHoldTally()
	tl.accepted(1)
	tl.accepted(2)
	tl.add(2, "seq=1 dial=2")
	tl.closed()
	tl.closed()
	tl.accepted(3)
	if got := tl.summary()[1]; got != "max-open=2" {
		t.Errorf("summary line %q, want max-open=2", got)
	}
}

// Without commands a hold-serve outlasts its connections (a guest paused
// for a snapshot drops them and dials again) and ends when signalled.
func TestHoldServeWithoutCommandsEndsOnSignal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hold.sock")
	ln, err := listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stop := make(chan os.Signal, 1)
	var out syncBuffer
	done := make(chan []string, 1)
	go func() {
		s, _ := holdServe(ln, nil, stop, &out, 10*time.Millisecond)
		done <- s
	}()
	for i := 1; i <= 2; i++ {
		c, err := dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, holdLine(i, i)+"\n")
		c.Close()
		want := fmt.Sprintf("closed conn=%d ", i)
		waitFor(t, want, func() bool { return strings.Contains(out.String(), want) })
	}
	time.Sleep(50 * time.Millisecond) // five graces: it must still be serving
	select {
	case s := <-done:
		t.Fatalf("hold-serve ended with no signal: %q", s)
	default:
	}
	stop <- syscall.SIGTERM
	s := <-done
	if s[0] != "connections=2" || s[2] != "lines=2" {
		t.Errorf("summary %q: want 2 connections and 2 lines", s)
	}
	if !strings.Contains(out.String(), "stopped-by=terminated\n") {
		t.Errorf("output %q: want the signal named", out.String())
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The dialer keeps sending on its connection, dials again when the server
// breaks it, and stops when the server sends "stop"; the server's summary
// shows the two connections and every line the dialer sent.
func TestHoldDialAndServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hold.sock")
	inner, err := listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln := &recordingListener{listener: inner}
	defer ln.Close()
	cmdR, cmdW := io.Pipe()
	var serverOut, dialOut syncBuffer
	type served struct {
		summary []string
		err     error
	}
	serverDone := make(chan served, 1)
	go func() {
		s, err := holdServe(ln, func() (io.ReadCloser, error) { return cmdR, nil }, nil, &serverOut, 50*time.Millisecond)
		serverDone <- served{s, err}
	}()
	dialDone := make(chan error, 1)
	go func() { dialDone <- holdDial("unix", path, 10*time.Millisecond, &dialOut, time.Now().Add(time.Minute)) }()

	waitFor(t, "three lines on connection 1", func() bool { return strings.Contains(serverOut.String(), "line conn=1 seq=3\n") })
	ln.conn(0).Close()
	waitFor(t, "lines on connection 2", func() bool { return strings.Contains(serverOut.String(), "line conn=2 ") })
	io.WriteString(cmdW, "stop\n")
	cmdW.Close()

	if err := <-dialDone; err != nil {
		t.Fatalf("holdDial: %v", err)
	}
	s := <-serverDone
	if s.err != nil {
		t.Fatalf("holdServe: %v", s.err)
	}
	kv := map[string]string{}
	for _, l := range s.summary {
		k, v, _ := strings.Cut(l, "=")
		kv[k] = v
	}
	dialKV := map[string]string{}
	for _, l := range strings.Split(dialOut.String(), "\n") {
		k, v, _ := strings.Cut(l, "=")
		dialKV[k] = v
	}
	if kv["connections"] != "2" || kv["repeats"] != "0" || kv["bad-lines"] != "0" || kv["first-seq"] != "1" {
		t.Errorf("server summary %q: want 2 connections, no repeats or bad lines, from line 1", s.summary)
	}
	if dialKV["reconnects"] != "1" || dialKV["dials"] != "2" {
		t.Errorf("dialer said %q: want dials=2 and reconnects=1", dialOut.String())
	}
	if kv["last-seq"] != dialKV["sent"] {
		t.Errorf("server's last line %s, dialer's last %s: every line sent before stop must arrive", kv["last-seq"], dialKV["sent"])
	}
	// A line written as the server closed connection 1 may be lost, never
	// more than that one.
	if kv["gaps"] != "0" && kv["gaps"] != "1" {
		t.Errorf("gaps=%s: at most the one line in flight when connection 1 broke may be lost", kv["gaps"])
	}
	if !strings.Contains(serverOut.String(), "command=stop conns=1\n") {
		t.Errorf("server output %q: want the stop command sent to the one open connection", serverOut.String())
	}
}
