package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ternvm/tern/migrate"
)

// The statuses a 1 GiB guest's migration reports, and the lines each must
// give; the expected text is worked out by hand from the numbers.
var (
	stSetup  = migrate.Status{Phase: migrate.PhaseSetup, TotalBytes: 1 << 30}
	stRound1 = migrate.Status{Phase: migrate.PhasePreCopy, Round: 1, BytesTransferred: 256 << 20,
		RemainingBytes: 768 << 20, TotalBytes: 1 << 30, Bandwidth: 2_450_000_000, DirtyRate: 12_000_000,
		ExpectedDowntimeMS: 313.5}
	// 1258291 bytes is 1.2 MiB (1.2 * 1048576 = 1258291.2).
	stRound3 = migrate.Status{Phase: migrate.PhasePreCopy, Round: 3, BytesTransferred: 512 << 20,
		RemainingBytes: 1258291, TotalBytes: 1 << 30, Bandwidth: 2_450_000_000, DirtyRate: 12_000_000,
		ExpectedDowntimeMS: 0.5}
	stStop = migrate.Status{Phase: migrate.PhaseStopAndCopy, Round: 3, BytesTransferred: 513 << 20,
		RemainingBytes: 1258291, TotalBytes: 1 << 30, Bandwidth: 2_450_000_000, DirtyRate: 3_500_000,
		ThrottlePercent: 20, ExpectedDowntimeMS: 0.5}
	// 3<<29 bytes is 1.5 GiB: more than the guest's RAM, pages having
	// gone more than once.
	stDone = migrate.Status{Phase: migrate.PhaseCompleted, Round: 3, BytesTransferred: 3 << 29,
		TotalBytes: 1 << 30, Bandwidth: 2_450_000_000, TotalTimeMS: 2400, DowntimeMS: 12.3}
)

func TestMigrateProgressPlain(t *testing.T) {
	var buf bytes.Buffer
	p := newMigrateProgress(&buf)
	if p.term {
		t.Fatal("a bytes.Buffer taken for a terminal")
	}
	later := stRound1
	later.BytesTransferred += 100 << 20 // same round: no new line
	for _, s := range []migrate.Status{stSetup, stRound1, later, stRound3, stStop, stDone} {
		p.Update(s)
	}
	p.Finish(stDone, nil)
	want := []string{
		"migrate: setup: guest RAM 1.0 GiB",
		"migrate: round 1 pre-copy: sent 256.0 MiB, remaining 768.0 MiB, 2450 MB/s, dirty 12 MB/s, throttle 0%, expected downtime 313.5 ms",
		"migrate: round 3 pre-copy: sent 512.0 MiB, remaining 1.2 MiB, 2450 MB/s, dirty 12 MB/s, throttle 0%, expected downtime 0.5 ms",
		"migrate: round 3 stop-and-copy: sent 513.0 MiB, remaining 1.2 MiB, 2450 MB/s, dirty 3.5 MB/s, throttle 20%, expected downtime 0.5 ms",
		"migrate: completed in 2.4 s: sent 1.5 GiB in 3 rounds, downtime 12.3 ms",
	}
	if got := buf.String(); got != strings.Join(want, "\n")+"\n" {
		t.Errorf("output:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestMigrateProgressFailure(t *testing.T) {
	failed := migrate.Status{Phase: migrate.PhaseFailed, Round: 2, BytesTransferred: 100 << 20, TotalTimeMS: 1500}
	cases := []struct {
		s    migrate.Status
		want string
	}{
		{failed, "migrate: failed after 1.5 s in round 2: sent 100.0 MiB\n"},
		{migrate.Status{Phase: migrate.PhaseCancelled, Round: 4, BytesTransferred: 3 << 30, TotalTimeMS: 60000},
			"migrate: cancelled after 60.0 s in round 4: sent 3.0 GiB\n"},
		// A failure reported in another phase (the outcome unknown after
		// the commit) still reads as a failure.
		{migrate.Status{Phase: migrate.PhaseStopAndCopy, Round: 5, BytesTransferred: 1 << 20, TotalTimeMS: 240},
			"migrate: failed after 0.2 s in round 5: sent 1.0 MiB\n"},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		p := newMigrateProgress(&buf)
		if finalPhase(c.s.Phase) {
			p.Update(c.s) // no line of its own: Finish says it
		}
		p.Finish(c.s, errors.New("boom"))
		if buf.String() != c.want {
			t.Errorf("Finish(%+v) wrote %q; want %q", c.s, buf.String(), c.want)
		}
	}
}

func TestMigrateProgressTerminal(t *testing.T) {
	var buf bytes.Buffer
	p := &migrateProgress{w: &buf, term: true, width: 120}
	p.Update(stRound3)
	p.Finish(stDone, nil)
	want := "\r[########--------]  50% pre-copy r3 512.0 MiB/1.0 GiB 2450 MB/s rem 1.2 MiB thr 0% ETA <1s\x1b[K" +
		"\r[################] 100% completed r3 1.5 GiB/1.0 GiB 2450 MB/s rem 0.0 MiB thr 0% ETA <1s\x1b[K\n" +
		"migrate: completed in 2.4 s: sent 1.5 GiB in 3 rounds, downtime 12.3 ms\n"
	if buf.String() != want {
		t.Errorf("terminal output\n%q\nwant\n%q", buf.String(), want)
	}

	// Narrower terminals lose the figures, then the bar, then the end.
	for _, c := range []struct {
		cols int
		want string
	}{
		{79, "[########--------]  50% pre-copy r3 2450 MB/s rem 1.2 MiB thr 0% ETA <1s"},
		{39, " 50% pre-copy r3 2450 MB/s rem 1.2 MiB "},
		{0, ""},
	} {
		if got := termLine(stRound3, c.cols); got != c.want {
			t.Errorf("termLine(cols %d) = %q; want %q", c.cols, got, c.want)
		}
	}

	// Finish without any update ends no line it did not start.
	buf.Reset()
	p = &migrateProgress{w: &buf, term: true, width: 80}
	p.Finish(migrate.Status{Phase: migrate.PhaseFailed}, errors.New("connect refused"))
	if want := "migrate: failed after 0.0 s in round 0: sent 0.0 MiB\n"; buf.String() != want {
		t.Errorf("Finish alone wrote %q; want %q", buf.String(), want)
	}
}

func TestETA(t *testing.T) {
	for _, c := range []struct {
		remaining, bandwidth uint64
		want                 string
	}{
		{768 << 20, 100_000_000, "8s"},        // 8.05 s
		{768 << 20, 1_000_000, "13m25s"},      // 805.3 s
		{1258291, 2_450_000_000, "<1s"},       // 0.5 ms
		{768 << 20, 0, "?"},                   // no rate measured yet
		{30_000_000_000, 10_000_000, "50m0s"}, // 3000 s
	} {
		if got := etaText(c.remaining, c.bandwidth); got != c.want {
			t.Errorf("etaText(%d, %d) = %q; want %q", c.remaining, c.bandwidth, got, c.want)
		}
	}
}

func TestTerminalDetection(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, term := terminalWidth(f); term {
		t.Error("a regular file taken for a terminal")
	}
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to test with: %v", err)
	}
	defer ptm.Close()
	if err := unix.IoctlSetWinsize(int(ptm.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 57}); err != nil {
		t.Skipf("cannot size the pseudo-terminal: %v", err)
	}
	if width, term := terminalWidth(ptm); !term || width != 57 {
		t.Errorf("pseudo-terminal: terminal %v, width %d; want true, 57", term, width)
	}
}

// The watcher hands Finish the final status without an error: a migration
// that ended cancelled or failed must not read as completed.
func TestMigrateProgressFinishReadsThePhase(t *testing.T) {
	for _, c := range []struct {
		s    migrate.Status
		want string
	}{
		{migrate.Status{Phase: migrate.PhaseCancelled, Round: 2, BytesTransferred: 100 << 20, TotalTimeMS: 50900},
			"migrate: cancelled after 50.9 s in round 2: sent 100.0 MiB\n"},
		{migrate.Status{Phase: migrate.PhaseFailed, Round: 1, BytesTransferred: 1 << 20, TotalTimeMS: 300},
			"migrate: failed after 0.3 s in round 1: sent 1.0 MiB\n"},
	} {
		var buf bytes.Buffer
		newMigrateProgress(&buf).Finish(c.s, nil)
		if buf.String() != c.want {
			t.Errorf("Finish(%+v, nil) wrote %q; want %q", c.s, buf.String(), c.want)
		}
	}
}
