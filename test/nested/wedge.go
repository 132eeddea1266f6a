package nested

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// ErrHostWedged reports that the test host itself stopped: its kernel's
// soft-lockup watchdog fired, or its heartbeat stopped. A user process
// cannot cause either on a sound kernel (every step of a scenario has its
// own time limit inside the test host): it is the emulated test host
// failing (QEMU TCG emulating SVM under the host's kvm-amd), not the
// scenario, so the run says nothing about tern and a caller may run the
// scenario again on a fresh test host.
var ErrHostWedged = errors.New("the nested test host wedged")

// softLockup is what the test host kernel prints when a CPU has not
// scheduled for twice its watchdog threshold.
var softLockup = []byte("watchdog: BUG: soft lockup")

// wedgeWatch passes console output through to w and calls wedged once,
// as soon as the output shows the test host's soft-lockup report.
type wedgeWatch struct {
	mu     sync.Mutex
	w      interface{ Write([]byte) (int, error) }
	recent []byte // the last bytes seen, so a marker split across writes is found
	fired  bool
	wedged func(reason string)
}

func (x *wedgeWatch) Write(p []byte) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n, err := x.w.Write(p)
	if !x.fired {
		x.recent = append(x.recent, p...)
		if bytes.Contains(x.recent, softLockup) {
			x.fired = true
			x.wedged("its kernel reported a soft lockup")
		}
		if keep := len(softLockup); len(x.recent) > keep {
			x.recent = append(x.recent[:0], x.recent[len(x.recent)-keep:]...)
		}
	}
	return n, err
}

// watchHeartbeat calls stalled once, and returns, when the file at path
// (the test host's second serial port, to which its /init writes a line
// every few seconds) has not grown for limit. A test host whose clock or
// scheduler stopped prints no soft-lockup report (the watchdog runs on
// the same timers), so only its silence tells. The time before the first
// beat counts too: a host that hangs while booting is as stuck. It
// returns when ctx ends.
func watchHeartbeat(ctx context.Context, path string, limit, every time.Duration, stalled func(silent time.Duration)) {
	last := time.Now()
	var size int64 = -1
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if fi, err := os.Stat(path); err == nil && fi.Size() != size {
				size, last = fi.Size(), now
				continue
			}
			if silent := now.Sub(last); silent >= limit {
				stalled(silent)
				return
			}
		}
	}
}

// moduleLines returns the "TEST-HOST module" lines the test host wrote to
// its heartbeat port at start (/proc/modules: where kvm-amd sits), which
// place a wedged CPU's instruction pointer inside a module.
func moduleLines(heartbeat string) string {
	data, err := os.ReadFile(heartbeat)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.HasPrefix(line, "TEST-HOST module ") {
			b.WriteString(strings.TrimRight(line, "\r\n") + "\n")
		}
	}
	return b.String()
}

// RunOnFreshHosts runs job on b, each run within perTry of ctx, and runs
// it again while a run fails only because the test host wedged
// (ErrHostWedged), up to tries runs in all. rerun hears, before each
// further run, why it happens. The last run's outcome is returned.
func RunOnFreshHosts(ctx context.Context, b Backend, job Job, tries int, perTry time.Duration, rerun func(msg string)) (*Result, error) {
	return onFreshHosts(ctx, "a fresh test host", tries, perTry, rerun, func(ctx context.Context) (*Result, error) {
		return b.Run(ctx, job)
	})
}

// onFreshHosts calls run, each time within perTry of ctx, again while it
// fails with ErrHostWedged, up to tries times in all; fresh names the
// new test hosts each further try gets, for rerun's message.
func onFreshHosts[T any](ctx context.Context, fresh string, tries int, perTry time.Duration, rerun func(msg string), run func(context.Context) (T, error)) (T, error) {
	var res T
	var err error
	for try := 1; try <= tries; try++ {
		if try > 1 {
			rerun(fmt.Sprintf("%v\nrunning it again on %s (try %d of %d)", err, fresh, try, tries))
		}
		runCtx, cancel := context.WithTimeout(ctx, perTry)
		res, err = run(runCtx)
		cancel()
		if !errors.Is(err, ErrHostWedged) {
			break
		}
	}
	return res, err
}
