package nested

import (
	"bytes"
	"errors"
	"sync"
)

// ErrHostWedged reports that the test host's own kernel stopped scheduling
// (its soft-lockup watchdog fired). A user process cannot cause that on a
// sound kernel: it is the emulated test host failing (QEMU TCG emulating
// SVM under the host's kvm-amd), not the scenario, so the run says nothing
// about tern and a caller may run the scenario again on a fresh test host.
var ErrHostWedged = errors.New("the nested test host's kernel wedged (soft lockup watchdog fired)")

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
	wedged func()
}

func (x *wedgeWatch) Write(p []byte) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n, err := x.w.Write(p)
	if !x.fired {
		x.recent = append(x.recent, p...)
		if bytes.Contains(x.recent, softLockup) {
			x.fired = true
			x.wedged()
		}
		if keep := len(softLockup); len(x.recent) > keep {
			x.recent = append(x.recent[:0], x.recent[len(x.recent)-keep:]...)
		}
	}
	return n, err
}
