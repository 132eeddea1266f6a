package vmm

import (
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// testPlatform is a platform with only what its logging needs.
func testPlatform() (*platform, *logtest.Hook) {
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	p := &platform{log: log}
	p.initGuestLogLimits()
	return p, hook
}

// A guest touching ever new addresses made tern remember each one
// forever and log a line for each.
func TestNoteUnhandledIsBoundedInMemoryAndLines(t *testing.T) {
	p, hook := testPlatform()
	const n = 1_000_000
	start := time.Now()
	for a := uint64(0); a < n; a++ {
		p.noteUnhandled("mmio", 0xd000_0000+a*8, false)
	}
	if got := p.unhandled.len(); got > unhandledTableSize {
		t.Errorf("%d addresses remembered, want at most %d", got, unhandledTableSize)
	}
	secs := int(time.Since(start)/time.Second) + 1
	if lines := len(hook.AllEntries()); lines > guestLogLines*(secs+1) {
		t.Errorf("%d lines logged in %d s for %d addresses", lines, secs, n)
	}
	// The next line let through says how many were dropped.
	time.Sleep(guestLogPeriod)
	hook.Reset()
	p.noteUnhandled("port", 0x80, true)
	if e := hook.LastEntry(); e == nil || e.Data["dropped"] == nil || e.Data["dropped"].(uint64) == 0 {
		t.Errorf("no dropped count on the next line: %+v", e)
	}
}

// The boot-time line is written on another goroutine (bootDone runs on
// a vCPU's thread): the test waits for the lines it expects.
func TestBootDoneLinesAreRateLimited(t *testing.T) {
	p, hook := testPlatform()
	start := time.Now()
	for i := 0; i < 100_000; i++ {
		p.bootDone(time.Duration(i) * time.Millisecond)
	}
	secs := int(time.Since(start)/time.Second) + 1
	time.Sleep(100 * time.Millisecond) // the lines let through are written
	if lines := len(hook.AllEntries()); lines < 1 || lines > guestLogLines*(secs+1) {
		t.Errorf("%d boot-time lines for 100,000 writes in %d s", lines, secs)
	}
	time.Sleep(guestLogPeriod)
	p.bootDone(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var last *logrus.Entry
		for _, e := range hook.AllEntries() {
			if e.Data["boot-time"] == time.Second.String() {
				last = e
			}
		}
		if last != nil {
			if last.Data["dropped"] == nil {
				t.Errorf("no dropped count on the next line: %+v", last)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the boot-time line of the last write was never logged")
		}
		time.Sleep(time.Millisecond)
	}
}
