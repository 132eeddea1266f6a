package nested

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWedgeWatchFiresOnceOnASplitMarker(t *testing.T) {
	var out bytes.Buffer
	fired := 0
	w := &wedgeWatch{w: &out, wedged: func(string) { fired++ }}
	console := "[  340.593619] watchdog: BUG: soft lockup - CPU#1 stuck for 313s! [tern:104]\n"
	// Byte by byte: the marker never arrives in one write.
	for i := range len(console) {
		w.Write([]byte{console[i]})
	}
	w.Write([]byte(console))
	if fired != 1 {
		t.Errorf("wedged called %d times, want 1", fired)
	}
	if out.String() != console+console {
		t.Errorf("output not passed through unchanged: %q", out.String())
	}
}

func TestWedgeWatchIgnoresAHealthyConsole(t *testing.T) {
	var out bytes.Buffer
	w := &wedgeWatch{w: &out, wedged: func(string) { t.Error("wedged called on a healthy console") }}
	w.Write([]byte("TEST-HOST running scenario virtio.sh\nwatchdog: enabled\nBUG: none\n"))
}

func TestWatchHeartbeatFiresWhenTheFileStopsGrowing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heartbeat")
	if err := os.WriteFile(path, []byte("TEST-HOST up\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stalled := make(chan time.Duration, 1)
	start := time.Now()
	go watchHeartbeat(context.Background(), path, time.Second, 10*time.Millisecond, func(d time.Duration) { stalled <- d })
	// Beat for a while: no stall may be reported meanwhile.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 30 {
		select {
		case d := <-stalled:
			t.Fatalf("stall reported after %v while the file kept growing", d)
		default:
		}
		f.WriteString("TEST-HOST alive\n")
		time.Sleep(20 * time.Millisecond)
	}
	beating := time.Since(start)
	select {
	case d := <-stalled:
		if d < time.Second {
			t.Errorf("stall reported after %v of silence, limit 1s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no stall reported 10 s after the beats stopped (beat for %v)", beating)
	}
}

func TestWatchHeartbeatCountsABootThatNeverBeats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "never-written")
	stalled := make(chan time.Duration, 1)
	go watchHeartbeat(context.Background(), path, 100*time.Millisecond, 10*time.Millisecond, func(d time.Duration) { stalled <- d })
	select {
	case <-stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("a heartbeat file that never appears was not reported")
	}
}

func TestWatchHeartbeatStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		watchHeartbeat(ctx, filepath.Join(t.TempDir(), "x"), time.Hour, 10*time.Millisecond, func(time.Duration) { t.Error("stall reported") })
		close(done)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watchHeartbeat did not return after its context ended")
	}
}

// wedgingBackend wedges its first wedges runs, then returns last.
type wedgingBackend struct {
	wedges int
	last   error
	runs   int
}

func (b *wedgingBackend) Describe() string { return "wedging" }

func (b *wedgingBackend) Run(ctx context.Context, job Job) (*Result, error) {
	b.runs++
	if b.runs <= b.wedges {
		return nil, fmt.Errorf("scenario %s: %w: heartbeat stopped", job.Entry, ErrHostWedged)
	}
	if b.last != nil {
		return nil, b.last
	}
	return &Result{RC: 0, Output: "ok"}, nil
}

func TestRunOnFreshHostsRerunsOnlyWedgedRuns(t *testing.T) {
	other := errors.New("qemu failed")
	for _, tc := range []struct {
		name         string
		b            *wedgingBackend
		tries        int
		wantRuns     int
		wantWedged   bool
		wantErr      error
		wantReruns   int
		wantLastText string
	}{
		{"healthy", &wedgingBackend{}, 3, 1, false, nil, 0, ""},
		{"wedged twice then passes", &wedgingBackend{wedges: 2}, 3, 3, false, nil, 2, "try 3 of 3"},
		{"wedged every time", &wedgingBackend{wedges: 5}, 3, 3, true, nil, 2, "try 3 of 3"},
		{"another failure is not rerun", &wedgingBackend{last: other}, 3, 1, false, other, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reruns []string
			res, err := RunOnFreshHosts(context.Background(), tc.b, Job{Entry: "x.sh"}, tc.tries, time.Minute, func(msg string) { reruns = append(reruns, msg) })
			if tc.b.runs != tc.wantRuns {
				t.Errorf("%d runs, want %d", tc.b.runs, tc.wantRuns)
			}
			if len(reruns) != tc.wantReruns {
				t.Errorf("%d rerun messages, want %d: %q", len(reruns), tc.wantReruns, reruns)
			}
			if len(reruns) > 0 {
				last := reruns[len(reruns)-1]
				if !strings.Contains(last, tc.wantLastText) || !strings.Contains(last, "heartbeat stopped") {
					t.Errorf("rerun message %q does not give the wedge and %q", last, tc.wantLastText)
				}
			}
			switch {
			case tc.wantWedged:
				if !errors.Is(err, ErrHostWedged) {
					t.Errorf("err = %v, want ErrHostWedged", err)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("err = %v, want %v", err, tc.wantErr)
				}
			default:
				if err != nil || res == nil {
					t.Errorf("res, err = %v, %v; want a result", res, err)
				}
			}
		})
	}
}

// A test host whose own kernel panicked is a wedged host; a guest's panic
// that a scenario printed is not.
func TestHostPanickedTellsTheHostsPanicFromAGuests(t *testing.T) {
	for _, tc := range []struct {
		console string
		want    bool
	}{
		{"[   60.185222] BUG: TASK stack guard page was hit at 00000000d5f957e6\n[   60.293516] Kernel panic - not syncing: corrupted stack end detected inside scheduler\n[   60.294472] Kernel Offset: disabled\n", true},
		{"[ 5.1] Kernel panic - not syncing: Fatal exception\n", true},
		{"SCENARIO-CHECK ok boot\n        [    2.100000] Kernel panic - not syncing: VFS: Unable to mount root fs\n", false},
		{"[source guest] [    2.100000] Kernel panic - not syncing: VFS: Unable to mount root fs\n", false},
		{"[   12.000000] kvm: SMP vm created on host with unstable TSC\n", false},
	} {
		if got := hostPanicked(tc.console); got != tc.want {
			t.Errorf("hostPanicked(%q) = %v, want %v", tc.console, got, tc.want)
		}
	}
}

// A test host that ended without reporting its scenario's exit status is
// a wedged host, panicked or not; a status it reported but garbled is not.
func TestEndedEarlyIsAWedgedHost(t *testing.T) {
	panicked := "SCENARIO-RUN vsock: tern run ...\n[   60.293516] Kernel panic - not syncing: Fatal exception in interrupt\n"
	silent := "SCENARIO-RUN vsock: tern run ...\n[vsock-host-serve host] elapsed-ms=693\n"
	for _, tc := range []struct {
		console, want string
	}{
		{panicked, "its kernel panicked"},
		{silent, "reset or powered off with no panic"},
	} {
		_, err := scenarioRC(tc.console)
		got := endedEarly(tc.console, err)
		if !errors.Is(got, ErrHostWedged) || !strings.Contains(got.Error(), tc.want) {
			t.Errorf("endedEarly(%q) = %v, want a wedged host: %s", tc.console, got, tc.want)
		}
	}
	_, err := scenarioRC("@@TERN-SCENARIO-RC=99999999999999999999@@\n")
	if err == nil {
		t.Fatal("an exit status out of range parsed")
	}
	if got := endedEarly("", err); errors.Is(got, ErrHostWedged) {
		t.Errorf("a garbled exit status = %v, want no wedged host", got)
	}
}
