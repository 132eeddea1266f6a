package main

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The long-lived connections the snapshot scenario keeps across a pause, a
// snapshot and a restore. One side ("hold-dial") connects and sends one
// numbered line a second, "seq=N dial=D" (N counts lines over the whole
// run, D the connections it made so far), re-dialling when the connection
// breaks; the other side ("hold-serve") accepts connections, records every
// line with the number of the connection it came on, and can send command
// lines back. The host can then tell one connection that survived from a
// connection that was broken and made again, and see lines that were lost.

// holdTimeout bounds a hold-dial or hold-serve: a whole scenario, restores
// included, but never forever.
const holdTimeout = 10 * time.Minute

// stopCommand is the command line that ends a hold-dial.
const stopCommand = "stop"

// holdLine is the line a dialer sends as its seq-th, on its dial-th
// connection.
func holdLine(seq, dial int) string { return fmt.Sprintf("seq=%d dial=%d", seq, dial) }

// parseHoldLine reads a holdLine back.
func parseHoldLine(line string) (seq, dial int, ok bool) {
	s, d, found := strings.Cut(strings.TrimSpace(line), " ")
	if !found || !strings.HasPrefix(s, "seq=") || !strings.HasPrefix(d, "dial=") {
		return 0, 0, false
	}
	seq, err1 := strconv.Atoi(s[len("seq="):])
	dial, err2 := strconv.Atoi(d[len("dial="):])
	if err1 != nil || err2 != nil || seq < 1 || dial < 1 {
		return 0, 0, false
	}
	return seq, dial, true
}

// noKeepAlive turns TCP keep-alive off on c (other kinds have none): a
// paused guest answers no probe, and a connection must outlast a pause of
// any length.
func noKeepAlive(c any) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetKeepAlive(false)
	}
}

// connTally is what arrived on one connection.
type connTally struct {
	lines       int
	first, last int // sequence numbers
}

// holdTally is what a hold-serve saw, over all its connections, in
// arrival order.
type holdTally struct {
	connections int
	open        int // connections open now
	maxOpen     int // the most connections open at once
	lines       int
	bad         int // lines that are not holdLines
	first, last int // sequence numbers of the first and the last line
	max         int // the highest sequence number so far
	gaps        int // sequence numbers skipped over (lines lost)
	repeats     int // lines whose number is not above every earlier one
	perConn     map[int]*connTally
}

func newHoldTally() *holdTally { return &holdTally{perConn: map[int]*connTally{}} }

// accepted records connection number conn.
func (t *holdTally) accepted(conn int) {
	t.connections++
	t.open++
	t.maxOpen = max(t.maxOpen, t.open)
	t.perConn[conn] = &connTally{}
}

// closed records the end of an accepted connection.
func (t *holdTally) closed() { t.open-- }

// add records a line that came on connection conn; ok is false for a line
// that is not a holdLine.
func (t *holdTally) add(conn int, line string) (seq int, ok bool) {
	seq, _, ok = parseHoldLine(line)
	if !ok {
		t.bad++
		return 0, false
	}
	t.lines++
	if t.lines == 1 {
		t.first = seq
	} else if seq <= t.max {
		t.repeats++
	} else {
		t.gaps += seq - t.max - 1
	}
	t.last = seq
	t.max = max(t.max, seq)
	c := t.perConn[conn]
	if c == nil {
		c = &connTally{}
		t.perConn[conn] = c
	}
	c.lines++
	if c.lines == 1 {
		c.first = seq
	}
	c.last = seq
	return seq, true
}

// summary is the tally as "key=value" lines, in a fixed order.
func (t *holdTally) summary() []string {
	out := []string{
		fmt.Sprintf("connections=%d", t.connections),
		fmt.Sprintf("max-open=%d", t.maxOpen),
		fmt.Sprintf("lines=%d", t.lines),
		fmt.Sprintf("first-seq=%d", t.first),
		fmt.Sprintf("last-seq=%d", t.last),
		fmt.Sprintf("gaps=%d", t.gaps),
		fmt.Sprintf("repeats=%d", t.repeats),
		fmt.Sprintf("bad-lines=%d", t.bad),
	}
	conns := make([]int, 0, len(t.perConn))
	for n := range t.perConn {
		conns = append(conns, n)
	}
	sort.Ints(conns)
	for _, n := range conns {
		c := t.perConn[n]
		out = append(out,
			fmt.Sprintf("conn%d-lines=%d", n, c.lines),
			fmt.Sprintf("conn%d-first-seq=%d", n, c.first),
			fmt.Sprintf("conn%d-last-seq=%d", n, c.last))
	}
	return out
}
