package migrate

import (
	"sync"
	"time"
)

// Waits for the peer, when the connection supports deadlines.
const (
	acceptTimeout  = 30 * time.Second // preamble and reply to the hello
	readyTimeout   = 60 * time.Second // the destination loads the state
	runningTimeout = 30 * time.Second // the destination starts the guest
	idleTimeout    = 60 * time.Second // destination: between messages
	writeTimeout   = 60 * time.Second // one message going out
	abortTimeout   = 5 * time.Second  // a best-effort abort
)

// deadliner is the part of net.Conn used to bound waits.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// deadlines sets a connection's deadlines, unless the migration was
// interrupted: then every deadline is in the past, so that a late
// SetReadDeadline cannot undo the interruption and leave I/O blocked.
type deadlines struct {
	conn        deadliner // nil: the connection has none; all methods do nothing
	mu          sync.Mutex
	interrupted bool
}

func newDeadlines(conn any) *deadlines {
	d, _ := conn.(deadliner)
	return &deadlines{conn: d}
}

func (d *deadlines) at(limit time.Duration) time.Time {
	switch {
	case d.interrupted:
		return time.Unix(1, 0)
	case limit == 0:
		return time.Time{}
	}
	return time.Now().Add(limit)
}

// read bounds the reads from now on (and any pending one) to limit; zero
// means no bound.
func (d *deadlines) read(limit time.Duration) {
	if d.conn == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_ = d.conn.SetReadDeadline(d.at(limit)) // a conn that cannot keep it fails its I/O instead
}

func (d *deadlines) write(limit time.Duration) {
	if d.conn == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_ = d.conn.SetWriteDeadline(d.at(limit))
}

// interrupt unblocks all I/O for good (ctx cancelled).
func (d *deadlines) interrupt() {
	if d.conn == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.interrupted = true
	_ = d.conn.SetReadDeadline(time.Unix(1, 0))
	_ = d.conn.SetWriteDeadline(time.Unix(1, 0))
}

// resume lifts an interruption so that a last message (an abort) can go
// out within limit.
func (d *deadlines) resumeWrites(limit time.Duration) {
	if d.conn == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.interrupted = false
	_ = d.conn.SetWriteDeadline(time.Now().Add(limit))
}

// reset clears both deadlines, leaving the connection as it came.
func (d *deadlines) reset() {
	if d.conn == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_ = d.conn.SetReadDeadline(time.Time{})
	_ = d.conn.SetWriteDeadline(time.Time{})
}
