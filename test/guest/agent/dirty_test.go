package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Every pass writes every page with a non-zero byte, and says so every
// report passes.
func TestDirtyWritesEveryPageEachPass(t *testing.T) {
	buf := make([]byte, 8*pageSize)
	var out bytes.Buffer
	dirty(buf, 0, 2, 4, time.Now, &out)
	for off := 0; off < len(buf); off += pageSize {
		if buf[off] != 5 {
			t.Fatalf("page %d holds %d after 4 passes, want 5", off/pageSize, buf[off])
		}
	}
	if out.String() != "dirty-passes=2\ndirty-passes=4\n" {
		t.Errorf("printed %q", out.String())
	}
}

// fakeClock advances by step at every reading, and by jump once, at
// reading jumpAt: a vCPU that did not run for a while.
type fakeClock struct {
	t          time.Time
	step, jump time.Duration
	reads      int
	jumpAt     int
}

func (c *fakeClock) now() time.Time {
	c.reads++
	c.t = c.t.Add(c.step)
	if c.reads == c.jumpAt {
		c.t = c.t.Add(c.jump)
	}
	return c.t
}

// Pages go one per interval of the time the dirtier runs; after time in
// which it did not run it goes on at the same pace, without a burst that
// would make the lost pages up (a throttle must slow it down).
func TestDirtyPacesItselfWithoutCatchingUp(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0), step: 10 * time.Microsecond, jump: time.Second, jumpAt: 500}
	buf := make([]byte, 20*pageSize)
	dirty(buf, time.Millisecond, 1, 1, c.now, &strings.Builder{})
	// 20 pages a millisecond apart, each waited for in 10 µs readings:
	// about 100 readings a page, but for the one written as the clock
	// jumped, which goes at once. Catching up would write the 15 pages
	// after the jump without a wait.
	if c.reads < 19*100-50 {
		t.Errorf("%d clock readings for 20 pages a millisecond apart: the dirtier did not wait between pages (it caught up on the jump?)", c.reads)
	}
	if c.reads > 20*100+100 {
		t.Errorf("%d clock readings for 20 pages a millisecond apart: it waited longer than asked", c.reads)
	}
}
