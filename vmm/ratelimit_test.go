package vmm

import (
	"testing"
	"time"
)

func TestSeenTableStaysFixedWhateverTheGuestTouches(t *testing.T) {
	tab := newSeenTable[uint64](unhandledTableSize)
	for a := uint64(0); a < 1_000_000; a++ {
		if !tab.add(a * 4096) {
			t.Fatalf("address %#x reported as seen before", a*4096)
		}
		if n := tab.len(); n > unhandledTableSize {
			t.Fatalf("after %d addresses the table holds %d", a+1, n)
		}
	}
	if n := tab.len(); n != unhandledTableSize {
		t.Errorf("table holds %d, want %d", n, unhandledTableSize)
	}
	// The most recent are remembered, the oldest forgotten.
	if tab.add(999_999 * 4096) {
		t.Error("the last address added is not remembered")
	}
	if !tab.add(0) {
		t.Error("the first address added is still remembered")
	}
}

func TestLogLimiterBoundsLinesAndCountsTheDropped(t *testing.T) {
	l := newLogLimiter(guestLogLines, guestLogPeriod)
	now := time.Unix(1000, 0)
	lines := 0
	var dropped uint64
	// 100,000 attempts within one second: ten lines.
	for i := 0; i < 100_000; i++ {
		if ok, d := l.allow(now.Add(time.Duration(i) * 5 * time.Microsecond)); ok {
			lines++
			dropped += d
		}
	}
	if lines != guestLogLines || dropped != 0 {
		t.Fatalf("%d lines (%d dropped reported) in one second, want %d", lines, dropped, guestLogLines)
	}
	// The first line of the next period reports the rest.
	ok, d := l.allow(now.Add(2 * time.Second))
	if !ok || d != 100_000-guestLogLines {
		t.Errorf("next period: ok %v, dropped %d, want %d", ok, d, 100_000-guestLogLines)
	}
	if ok, d := l.allow(now.Add(2 * time.Second)); !ok || d != 0 {
		t.Errorf("second line: ok %v, dropped %d", ok, d)
	}
	// Over a long loop the lines stay bounded by the rate.
	l = newLogLimiter(guestLogLines, guestLogPeriod)
	lines, dropped = 0, 0
	const attempts = 100_000
	for i := 0; i < attempts; i++ {
		if ok, d := l.allow(now.Add(time.Duration(i) * 100 * time.Microsecond)); ok { // 10 s in all
			lines++
			dropped += d
		}
	}
	if lines > 11*guestLogLines {
		t.Errorf("%d lines over 10 s, want at most %d", lines, 11*guestLogLines)
	}
	// Every attempt is a line, reported as dropped or still counted.
	if got := uint64(lines) + dropped + l.dropped; got != attempts {
		t.Errorf("%d lines, %d reported dropped and %d pending of %d attempts", lines, dropped, l.dropped, attempts)
	}
}
