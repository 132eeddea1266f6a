package vmm

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Console output buffering: the guest's serial output is written on the
// vCPU thread, so a console reader that stops reading must not be able
// to stop the vCPU.
const (
	consoleBufferSize = 1 << 20
	// consoleFlushTimeout is how long closing waits for buffered output
	// to reach a slow console before giving up on it.
	consoleFlushTimeout = 2 * time.Second
)

// ConsoleFilter is a Config.Console that rewrites the guest's output
// before it reaches another writer, as tern's terminal filter drops the
// guest's terminal control sequences. The VM calls Filter as the bytes
// arrive, in order, and writes what it returns to Underlying; where that
// is an *os.File, it can then write to the file on the vCPU's thread at
// once (see consoleBuffer), with no goroutine in between.
type ConsoleFilter interface {
	io.Writer
	// Filter appends to dst what p becomes and returns it.
	Filter(dst, p []byte) []byte
	// Underlying is where the filtered output goes.
	Underlying() io.Writer
}

// consoleBuffer is an io.Writer that never blocks. Where the console is
// a file that takes a write without blocking (RWF_NOWAIT: a pipe with
// room, say) and nothing is waiting, Write writes to it at once, on the
// vCPU's thread; everything else goes into a bounded buffer that a
// goroutine of its own drains into the real writer, in order. Waking that
// goroutine costs the guest's output 0.1-0.3 ms on the development
// machine: the vCPU's thread holds one of the two Go processors while it
// is in the guest. When the buffer is full, bytes are dropped and
// counted, as are bytes the real writer refused.
type consoleBuffer struct {
	w      io.Writer
	filter func(dst, p []byte) []byte // nil: w takes the guest's bytes as they are
	// file is w's descriptor where writes to it may be tried without
	// blocking; nil once one was refused for good.
	file     syscall.RawConn
	filtered []byte // Write's scratch for the filter's output
	max      int
	mu       sync.Mutex
	cond     *sync.Cond
	buf      []byte // waiting to be written
	// spare is the drainer's last chunk, reused so that steady output
	// does not allocate.
	spare   []byte
	closed  bool
	writing bool // the drainer is in the real writer
	done    chan struct{}
	dropped atomic.Uint64
	werr    error // the real writer's first error
}

func newConsoleBuffer(w io.Writer, max int) *consoleBuffer {
	c := &consoleBuffer{w: w, max: max, done: make(chan struct{})}
	if f, ok := w.(ConsoleFilter); ok {
		c.filter, c.w = f.Filter, f.Underlying()
	}
	if f, ok := c.w.(*os.File); ok {
		if rc, err := f.SyscallConn(); err == nil {
			c.file = rc
		}
	}
	c.cond = sync.NewCond(&c.mu)
	go c.drain()
	return c
}

// Write takes as much of p as fits and drops the rest; it never blocks
// on the real writer and always reports len(p) written, so the UART
// sees a console that is always ready.
func (c *consoleBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.dropped.Add(uint64(len(p)))
		return len(p), nil
	}
	q := p
	if c.filter != nil {
		c.filtered = c.filter(c.filtered[:0], p)
		q = c.filtered
	}
	if c.file != nil && len(c.buf) == 0 && !c.writing && len(q) > 0 {
		q = q[c.writeNow(q):]
	}
	n := min(len(q), c.max-len(c.buf))
	c.buf = append(c.buf, q[:n]...)
	c.mu.Unlock()
	if n > 0 {
		c.cond.Signal()
	}
	if lost := len(q) - n; lost > 0 {
		c.dropped.Add(uint64(lost))
	}
	return len(p), nil
}

// writeNow writes what of q the file takes without blocking and returns
// how much that was. A file that cannot be written that way (a terminal,
// a file system without RWF_NOWAIT) or that failed is left to the
// drainer from then on, which reports its errors. Called with mu held.
func (c *consoleBuffer) writeNow(q []byte) int {
	var n int
	var err error
	cerr := c.file.Control(func(fd uintptr) {
		for {
			n, err = unix.Pwritev2(int(fd), [][]byte{q}, -1, unix.RWF_NOWAIT)
			if err != unix.EINTR {
				return
			}
		}
	})
	if cerr == nil && err == nil {
		return n
	}
	if cerr != nil || !errors.Is(err, unix.EAGAIN) {
		c.file = nil
	}
	return 0
}

func (c *consoleBuffer) drain() {
	defer close(c.done)
	for {
		c.mu.Lock()
		for len(c.buf) == 0 && !c.closed {
			c.cond.Wait()
		}
		if len(c.buf) == 0 {
			c.mu.Unlock()
			return
		}
		chunk := c.buf
		c.buf = c.spare[:0]
		c.writing = true
		c.mu.Unlock()

		n, err := c.w.Write(chunk)
		if err != nil || n < len(chunk) {
			c.dropped.Add(uint64(len(chunk) - min(n, len(chunk))))
			c.mu.Lock()
			if c.werr == nil && err != nil {
				c.werr = err
			}
			c.mu.Unlock()
		}
		c.mu.Lock()
		c.spare = chunk
		c.writing = false
		c.mu.Unlock()
	}
}

// Flush waits up to timeout until everything written so far has reached
// the real writer, and reports whether it did: a VM that stopped has said
// all it will say once Wait returns.
func (c *consoleBuffer) Flush(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		idle := len(c.buf) == 0 && !c.writing
		c.mu.Unlock()
		if idle {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// Dropped is how many bytes of output never reached the real writer (or
// are still buffered after Close gave up on it).
func (c *consoleBuffer) Dropped() uint64 { return c.dropped.Load() }

// Err is the first error the real writer returned.
func (c *consoleBuffer) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.werr
}

// Close stops taking output and waits up to timeout for what is buffered
// to be written; what is not by then counts as dropped. The drainer
// itself may stay blocked in the real writer.
func (c *consoleBuffer) Close(timeout time.Duration) {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	c.cond.Broadcast()
	if already {
		return
	}
	select {
	case <-c.done:
	case <-time.After(timeout):
		c.mu.Lock()
		c.dropped.Add(uint64(len(c.buf)))
		c.buf = nil
		c.mu.Unlock()
	}
}

// ConsoleDropped returns how many bytes of the guest's console output
// were dropped because the console did not keep up (or failed).
func (v *VM) ConsoleDropped() uint64 {
	if v.plat == nil || v.plat.console == nil {
		return 0
	}
	return v.plat.console.Dropped()
}
