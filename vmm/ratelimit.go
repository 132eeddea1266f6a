package vmm

import (
	"sync"
	"time"
)

// The guest decides how often tern would log about it: what it touches
// and how often it writes the boot timer. These bound what that can cost.
const (
	// unhandledTableSize is how many distinct unhandled addresses are
	// remembered (so that each is logged once while it is remembered).
	unhandledTableSize = 256
	// guestLogLines is how many lines a guest-triggered log may write
	// per guestLogPeriod.
	guestLogLines  = 10
	guestLogPeriod = time.Second
)

// seenTable remembers the last n distinct keys added. It replaces a map
// that grew with every address a guest touched: its size is fixed, the
// oldest key making way for a new one.
type seenTable[K comparable] struct {
	mu   sync.Mutex
	set  map[K]struct{}
	ring []K // insertion order; next is the slot to reuse
	next int
	max  int
}

func newSeenTable[K comparable](n int) *seenTable[K] {
	return &seenTable[K]{set: make(map[K]struct{}, n), ring: make([]K, 0, n), max: n}
}

// add records k and reports whether it was new.
func (t *seenTable[K]) add(k K) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.set[k]; ok {
		return false
	}
	if len(t.ring) < t.max {
		t.ring = append(t.ring, k)
	} else {
		delete(t.set, t.ring[t.next])
		t.ring[t.next] = k
		t.next = (t.next + 1) % t.max
	}
	t.set[k] = struct{}{}
	return true
}

// len is how many keys are remembered.
func (t *seenTable[K]) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.set)
}

// logLimiter lets through at most lines log lines per period and counts
// the rest, so that the next line let through can say how many were
// dropped.
type logLimiter struct {
	mu      sync.Mutex
	lines   int
	period  time.Duration
	start   time.Time // of the current period
	used    int       // lines let through in it
	dropped uint64    // since the last line let through
}

func newLogLimiter(lines int, period time.Duration) *logLimiter {
	return &logLimiter{lines: lines, period: period}
}

// allow reports whether a line may be logged at now and, if so, how many
// were dropped since the previous one.
func (l *logLimiter) allow(now time.Time) (ok bool, dropped uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.period || now.Before(l.start) {
		l.start, l.used = now, 0
	}
	if l.used >= l.lines {
		l.dropped++
		return false, 0
	}
	l.used++
	dropped, l.dropped = l.dropped, 0
	return true, dropped
}
