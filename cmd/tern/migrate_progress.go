package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ternvm/tern/migrate"
)

// migrateProgress shows `tern migrate send`'s progress: on a terminal one
// line redrawn in place (bar, phase, round, rate, remaining, throttle,
// ETA); elsewhere (a log, a pipe, CI) one plain line per round and per
// phase change, so the record reads top to bottom. Safe for concurrent
// use; Update fits migrate.SendOptions.Progress.
//
// Written here rather than taken from a progress-bar library: the line is
// a handful of fields of migrate.Status, the plain mode (which such
// libraries treat as an afterthought) matters as much as the bar, and the
// libraries on offer would bring three or more modules for about a
// hundred lines.
type migrateProgress struct {
	mu    sync.Mutex
	w     io.Writer
	term  bool // redraw one line in place
	width int  // the terminal's columns

	last  migrate.Status
	seen  bool // last holds an update
	drawn bool // a redrawn line is on screen, not yet ended
}

// newMigrateProgress writes to w, redrawing a line in place when w is a
// terminal.
func newMigrateProgress(w io.Writer) *migrateProgress {
	width, term := terminalWidth(w)
	return &migrateProgress{w: w, term: term, width: width}
}

// terminalWidth says whether w is a terminal, and its width in columns.
func terminalWidth(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return 0, false
	}
	// f stays referenced by the caller's writer, so its fd stays open.
	fd := int(f.Fd())
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return 0, false
	}
	width := 80
	if ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
		width = int(ws.Col)
	}
	return width, true
}

// Update shows s. Updates in the final phases (completed, failed,
// cancelled) only redraw the bar; Finish says how it ended.
func (p *migrateProgress) Update(s migrate.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := !p.seen || s.Phase != p.last.Phase || s.Round != p.last.Round
	p.last, p.seen = s, true
	if p.term {
		// Status comes per round and per phase change, so redrawing on
		// each needs no rate limit.
		p.redraw(s)
		return
	}
	if changed && !finalPhase(s.Phase) {
		fmt.Fprintln(p.w, plainLine(s))
	}
}

// Finish ends the display with s, the final status, and a summary line.
// It does not print err itself (the CLI says it as tern's error line); err
// only decides between a success and a failure summary.
func (p *migrateProgress) Finish(s migrate.Status, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.term && p.drawn {
		// A status without totals (a failure before the handshake, say)
		// would blank the bar; the last update's stays instead.
		if s.TotalBytes > 0 {
			p.redraw(s)
		}
		fmt.Fprint(p.w, "\n")
		p.drawn = false
	}
	fmt.Fprintln(p.w, summaryLine(s, err))
}

func (p *migrateProgress) redraw(s migrate.Status) {
	fmt.Fprint(p.w, "\r"+termLine(s, p.width-1)+"\x1b[K")
	p.drawn = true
}

func finalPhase(ph migrate.Phase) bool {
	return ph == migrate.PhaseCompleted || ph == migrate.PhaseFailed || ph == migrate.PhaseCancelled
}

// plainLine is one round or phase change, for a log.
func plainLine(s migrate.Status) string {
	if s.Phase == migrate.PhaseSetup {
		return "migrate: setup: guest RAM " + sizeText(s.TotalBytes)
	}
	return fmt.Sprintf("migrate: round %d %s: sent %s, remaining %s, %s, dirty %s, throttle %d%%, expected downtime %.1f ms",
		s.Round, s.Phase, sizeText(s.BytesTransferred), sizeText(s.RemainingBytes),
		rateText(s.Bandwidth), rateText(s.DirtyRate), s.ThrottlePercent, s.ExpectedDowntimeMS)
}

func summaryLine(s migrate.Status, err error) string {
	if err == nil && s.Phase == migrate.PhaseCompleted {
		return fmt.Sprintf("migrate: completed in %.1f s: sent %s in %d rounds, downtime %.1f ms",
			s.TotalTimeMS/1000, sizeText(s.BytesTransferred), s.Round, s.DowntimeMS)
	}
	ph := s.Phase
	if ph != migrate.PhaseCancelled {
		ph = migrate.PhaseFailed
	}
	return fmt.Sprintf("migrate: %s after %.1f s in round %d: sent %s", ph, s.TotalTimeMS/1000, s.Round, sizeText(s.BytesTransferred))
}

const barWidth = 16

// termLine is the redrawn line, at most cols columns. As the terminal
// narrows, the sent/total figures go first (the bar shows them), then the
// bar, then the line is cut.
func termLine(s migrate.Status, cols int) string {
	pct := uint64(0)
	if s.TotalBytes > 0 {
		// Transferred can pass total (pages sent again, headers).
		pct = min(100, s.BytesTransferred*100/s.TotalBytes)
	}
	filled := int(pct) * barWidth / 100
	bar := "[" + strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled) + "] "
	head := fmt.Sprintf("%3d%% %s r%d ", pct, s.Phase, s.Round)
	sizes := sizeText(s.BytesTransferred) + "/" + sizeText(s.TotalBytes) + " "
	tail := fmt.Sprintf("%s rem %s thr %d%% ETA %s", rateText(s.Bandwidth), sizeText(s.RemainingBytes),
		s.ThrottlePercent, etaText(s.RemainingBytes, s.Bandwidth))
	cols = max(cols, 0)
	for _, line := range []string{bar + head + sizes + tail, bar + head + tail} {
		if len(line) <= cols {
			return line
		}
	}
	line := head + tail
	return line[:min(len(line), cols)]
}

// sizeText is a byte count in binary units.
func sizeText(b uint64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// rateText is bytes per second in MB/s (decimal, as links are rated),
// with a decimal place while it is small.
func rateText(bps uint64) string {
	mb := float64(bps) / 1e6
	if mb < 10 {
		return fmt.Sprintf("%.1f MB/s", mb)
	}
	return fmt.Sprintf("%.0f MB/s", mb)
}

// etaText is how long the remaining bytes take at bandwidth.
func etaText(remaining, bandwidth uint64) string {
	if bandwidth == 0 {
		return "?"
	}
	d := time.Duration(float64(remaining) / float64(bandwidth) * float64(time.Second))
	if d < time.Second {
		return "<1s"
	}
	return d.Round(time.Second).String()
}
