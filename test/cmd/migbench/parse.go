package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// qmpMessage is one line QEMU's QMP monitor sends: a greeting, an
// asynchronous event, or the answer to a command (return or error).
type qmpMessage struct {
	Greeting json.RawMessage `json:"QMP"`
	Event    string          `json:"event"`
	Return   json.RawMessage `json:"return"`
	Error    *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// parseQMPLine decodes one QMP line. isAnswer says whether it answers a
// command (return or error); events and the greeting are not answers and
// the caller skips them. An error reply comes back as err.
func parseQMPLine(line []byte) (msg qmpMessage, isAnswer bool, err error) {
	if err := json.Unmarshal(line, &msg); err != nil {
		return msg, false, fmt.Errorf("QMP: undecodable line %q: %w", truncate(string(line), 200), err)
	}
	switch {
	case msg.Error != nil:
		return msg, true, fmt.Errorf("QMP error %s: %s", msg.Error.Class, msg.Error.Desc)
	case msg.Return != nil:
		return msg, true, nil
	}
	return msg, false, nil
}

// qemuMigration is the part of QMP's query-migrate answer the bench reads
// (MigrationInfo in QEMU's qapi/migration.json). Times are milliseconds.
type qemuMigration struct {
	Status    string `json:"status"`
	TotalTime *int64 `json:"total-time"`
	Downtime  *int64 `json:"downtime"`
	// ExpectedDowntime is only there while the migration runs.
	ExpectedDowntime *int64 `json:"expected-downtime"`
	RAM              *struct {
		Transferred    int64   `json:"transferred"`
		Remaining      int64   `json:"remaining"`
		Total          int64   `json:"total"`
		Duplicate      int64   `json:"duplicate"`
		Normal         int64   `json:"normal"`
		DirtySyncCount int64   `json:"dirty-sync-count"`
		DirtyPagesRate int64   `json:"dirty-pages-rate"`
		Mbps           float64 `json:"mbps"`
	} `json:"ram"`
	// CPUThrottlePercentage appears once auto-converge throttles.
	CPUThrottlePercentage *int64 `json:"cpu-throttle-percentage"`
	ErrorDesc             string `json:"error-desc"`
}

// parseQueryMigrate decodes the return value of query-migrate.
func parseQueryMigrate(ret json.RawMessage) (qemuMigration, error) {
	var m qemuMigration
	if err := json.Unmarshal(ret, &m); err != nil {
		return m, fmt.Errorf("query-migrate: undecodable answer %q: %w", truncate(string(ret), 200), err)
	}
	return m, nil
}

// done says whether a QEMU migration has ended, and with what error if it
// did not complete.
func (m qemuMigration) done() (bool, error) {
	switch m.Status {
	case "completed":
		return true, nil
	case "failed", "cancelled":
		msg := "migration " + m.Status
		if m.ErrorDesc != "" {
			msg += ": " + m.ErrorDesc
		}
		return true, errors.New(msg)
	}
	return false, nil
}

// result turns a completed QEMU migration into the bench's figures; QEMU
// leaves out what it did not measure, and so does the error.
func (m qemuMigration) result() (migResult, error) {
	if m.TotalTime == nil || m.Downtime == nil || m.RAM == nil {
		return migResult{}, fmt.Errorf("query-migrate: a completed migration without total-time, downtime or ram: %+v", m)
	}
	r := migResult{
		Total:    time.Duration(*m.TotalTime) * time.Millisecond,
		Downtime: time.Duration(*m.Downtime) * time.Millisecond,
		Sent:     m.RAM.Transferred,
		Rounds:   m.RAM.DirtySyncCount,
	}
	// QEMU only reports a throttle while auto-converge (off by default)
	// holds the guest back.
	r.Throttle = noThrottle
	if m.CPUThrottlePercentage != nil {
		r.Throttle = *m.CPUThrottlePercentage
	}
	return r, nil
}

// ternStatus mirrors the JSON status `tern migrate send --output json`
// prints (migrate.Status); kept separate so the bench reads the CLI's
// output as an outsider would.
type ternStatus struct {
	Phase            string   `json:"phase"`
	Round            *int64   `json:"round"`
	BytesTransferred *int64   `json:"bytes_transferred"`
	ThrottlePercent  *int64   `json:"throttle_percent"`
	DowntimeMS       *float64 `json:"downtime_ms"`
	TotalTimeMS      *float64 `json:"total_time_ms"`
	Error            string   `json:"error"`
}

// parseTernStatus reads the last non-empty line of send's stdout, which
// the contract says is the final JSON status, and checks it completed.
func parseTernStatus(stdout []byte) (migResult, error) {
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		return migResult{}, errors.New("tern migrate send printed nothing on stdout")
	}
	var s ternStatus
	if err := json.Unmarshal([]byte(last), &s); err != nil {
		return migResult{}, fmt.Errorf("tern migrate send: last stdout line is not a JSON status: %q: %w", truncate(last, 200), err)
	}
	if s.Phase != "completed" {
		msg := fmt.Sprintf("tern migrate send ended in phase %q", s.Phase)
		if s.Error != "" {
			msg += ": " + s.Error
		}
		return migResult{}, errors.New(msg)
	}
	if s.TotalTimeMS == nil || s.DowntimeMS == nil || s.BytesTransferred == nil || s.Round == nil {
		return migResult{}, fmt.Errorf("tern migrate send: status lacks total_time_ms, downtime_ms, bytes_transferred or round: %q", truncate(last, 200))
	}
	r := migResult{
		Total:    msDuration(*s.TotalTimeMS),
		Downtime: msDuration(*s.DowntimeMS),
		Sent:     *s.BytesTransferred,
		Rounds:   *s.Round,
	}
	r.Throttle = noThrottle
	if s.ThrottlePercent != nil {
		r.Throttle = *s.ThrottlePercent
	}
	return r, nil
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// lastPass returns the highest pass count in the dirty guest's console
// output (lines "pass XXXXXXXX"), and whether there was one. A torn last
// line (the guest is still writing it) is skipped.
func lastPass(console []byte) (uint32, bool) {
	var best uint32
	found := false
	for _, l := range strings.Split(string(console), "\n") {
		l = strings.TrimRight(l, "\r")
		hex, ok := strings.CutPrefix(l, "pass ")
		if !ok || len(hex) != 8 {
			continue
		}
		n, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			continue
		}
		if !found || uint32(n) > best {
			best, found = uint32(n), true
		}
	}
	return best, found
}

// minMedian returns the smallest and the median of xs (the lower middle
// one for an even count); xs must not be empty.
func minMedian[T cmp.Ordered](xs []T) (T, T) {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[0], s[(len(s)-1)/2]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
