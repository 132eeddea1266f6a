package vmm

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// stuckWriter never returns from Write until released, like a console
// pipe whose reader stopped reading.
type stuckWriter struct{ release chan struct{} }

func (w stuckWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

func TestConsoleBufferNeverBlocksOnAStuckWriter(t *testing.T) {
	w := stuckWriter{make(chan struct{})}
	defer close(w.release)
	c := newConsoleBuffer(w, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := []byte("0123456789abcdef")
		for i := 0; i < 10_000; i++ { // 160,000 bytes through a 4 KiB buffer
			if n, err := c.Write(b); n != len(b) || err != nil {
				t.Errorf("Write: %d, %v", n, err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked behind a stuck console")
	}
	// At most one buffer is held by the stuck write and one waits.
	if d := c.Dropped(); d < 160_000-2*4096 || d > 160_000 {
		t.Errorf("%d bytes dropped, want about %d", d, 160_000-4096)
	}
	start := time.Now()
	c.Close(100 * time.Millisecond)
	if time.Since(start) > 2*time.Second {
		t.Error("Close waited past its timeout")
	}
	if d := c.Dropped(); d < 160_000-4096 {
		t.Errorf("after Close %d bytes dropped, want the buffered ones counted too", d)
	}
}

// slowBuffer is a bytes.Buffer that takes its time.
type slowBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *slowBuffer) Write(p []byte) (int, error) {
	time.Sleep(50 * time.Microsecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func TestConsoleBufferDeliversEveryByteInOrder(t *testing.T) {
	var out slowBuffer
	c := newConsoleBuffer(&out, consoleBufferSize)
	var want bytes.Buffer
	for i := 0; i < 100_000; i++ { // byte by byte, as the UART writes
		b := []byte{byte(i * 7)}
		want.Write(b)
		c.Write(b)
	}
	c.Close(5 * time.Second)
	if c.Dropped() != 0 {
		t.Errorf("%d bytes dropped", c.Dropped())
	}
	if !bytes.Equal(out.b.Bytes(), want.Bytes()) {
		t.Errorf("received %d bytes, not the %d written in order", out.b.Len(), want.Len())
	}
	if n, _ := c.Write([]byte("late")); n != 4 || c.Dropped() != 4 {
		t.Errorf("a write after Close: n %d, dropped %d", n, c.Dropped())
	}
}

type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, errors.New("EPIPE") }

func TestConsoleBufferCountsWhatTheWriterRefuses(t *testing.T) {
	c := newConsoleBuffer(failingWriter{}, 1024)
	c.Write([]byte("hello"))
	c.Close(time.Second)
	if c.Dropped() != 5 || c.Err() == nil {
		t.Errorf("dropped %d, err %v; want 5 and the writer's error", c.Dropped(), c.Err())
	}
}

// Flush returns once the real writer has everything, so a caller who saw
// the VM stop reads its whole console.
func TestConsoleBufferFlushDeliversEverything(t *testing.T) {
	var got syncBuffer
	c := newConsoleBuffer(&slowWriter{w: &got, delay: 5 * time.Millisecond}, 1<<10)
	defer c.Close(time.Second)
	for i := 0; i < 20; i++ {
		c.Write([]byte("line\n"))
	}
	if !c.Flush(5 * time.Second) {
		t.Fatal("Flush gave up")
	}
	if g := got.String(); g != strings.Repeat("line\n", 20) {
		t.Errorf("after Flush the writer has %q", g)
	}
}

// syncBuffer is a bytes.Buffer safe for the drainer and the test at once.
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

// slowWriter takes its time over every write, like a console on a slow
// terminal.
type slowWriter struct {
	w     io.Writer
	delay time.Duration
}

func (s *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(s.delay)
	return s.w.Write(p)
}
