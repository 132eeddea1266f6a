package vmm

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pipeConsole is a pipe for a console: the VM writes w, the test reads r.
func pipeConsole(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// inPipe is how many bytes wait in the pipe r reads.
func inPipe(t *testing.T, r *os.File) int {
	t.Helper()
	n, err := unix.IoctlGetInt(int(r.Fd()), unix.TIOCINQ)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The guest's output reaches a pipe console before Write returns, on the
// caller's (the vCPU's) thread: waking the drainer costs the first byte
// 0.1-0.3 ms here. Were it left to the drainer, the bytes would not be in
// the pipe yet at least some of the time.
func TestConsoleWritesAPipeAtOnce(t *testing.T) {
	r, w := pipeConsole(t)
	c := newConsoleBuffer(w, consoleBufferSize)
	defer c.Close(time.Second)
	for i := range 100 {
		if n := inPipe(t, r); n != 0 {
			t.Fatalf("round %d: %d bytes in the pipe before the write", i, n)
		}
		c.Write([]byte("hello\n"))
		if n := inPipe(t, r); n != 6 {
			t.Fatalf("round %d: %d bytes in the pipe when Write returned, want 6", i, n)
		}
		if _, err := io.ReadFull(r, make([]byte, 6)); err != nil {
			t.Fatal(err)
		}
	}
}

// upper is a ConsoleFilter that drops 'x' and shouts the rest, keeping
// state (how many bytes it saw) to catch a byte filtered twice.
type upper struct {
	w    io.Writer
	seen int
}

func (u *upper) Write(p []byte) (int, error) {
	_, err := u.w.Write(u.Filter(nil, p))
	return len(p), err
}

func (u *upper) Filter(dst, p []byte) []byte {
	u.seen += len(p)
	for _, b := range p {
		if b != 'x' {
			dst = append(dst, bytes.ToUpper([]byte{b})...)
		}
	}
	return dst
}

func (u *upper) Underlying() io.Writer { return u.w }

// Through a small pipe read slowly, output goes partly straight to the
// pipe and partly through the buffer; every byte is filtered once and
// arrives once, in order.
func TestConsoleFilteredOutputArrivesOnceInOrder(t *testing.T) {
	r, w := pipeConsole(t)
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatal(err)
	}
	f := &upper{w: w}
	c := newConsoleBuffer(f, consoleBufferSize)
	got := make(chan []byte)
	go func() {
		var all []byte
		buf := make([]byte, 1000)
		for {
			time.Sleep(200 * time.Microsecond)
			n, err := r.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil {
				got <- all
				return
			}
		}
	}()
	var in, want strings.Builder
	for i := range 20_000 {
		s := []string{"a", "x", "b\n", "xyz", "hello "}[i%5]
		in.WriteString(s)
		c.Write([]byte(s))
	}
	want.WriteString(strings.ToUpper(strings.ReplaceAll(in.String(), "x", "")))
	c.Close(10 * time.Second)
	w.Close()
	out := <-got
	if c.Dropped() != 0 {
		t.Errorf("%d bytes dropped", c.Dropped())
	}
	if f.seen != in.Len() {
		t.Errorf("the filter saw %d bytes of the %d written", f.seen, in.Len())
	}
	if string(out) != want.String() {
		t.Errorf("the pipe got %d bytes, not the %d filtered bytes in order", len(out), want.Len())
	}
}

// A pipe nobody reads fills; Write still never blocks, and what neither
// the pipe nor the buffer holds is counted as dropped.
func TestConsoleNeverBlocksOnAFullPipe(t *testing.T) {
	_, w := pipeConsole(t)
	c := newConsoleBuffer(w, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10_000 {
			c.Write([]byte("0123456789abcdef"))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked on a full pipe")
	}
	c.Close(50 * time.Millisecond)
	if d := c.Dropped(); d+4096+1<<20 < 160_000 || d > 160_000 {
		t.Errorf("%d bytes dropped of 160000 (a 4 KiB buffer and a pipe of at most 1 MiB)", d)
	}
}

// A regular file console gets everything in order too, whichever way its
// file system takes the writes.
func TestConsoleFileGetsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console")
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c := newConsoleBuffer(w, consoleBufferSize)
	var want strings.Builder
	for i := range 5000 {
		s := []string{"boot ", "line\n", "x"}[i%3]
		want.WriteString(s)
		c.Write([]byte(s))
	}
	c.Close(5 * time.Second)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() || c.Dropped() != 0 {
		t.Errorf("file has %d bytes (dropped %d), want the %d written in order", len(got), c.Dropped(), want.Len())
	}
}
