package main

import (
	"github.com/ternvm/tern/test/benchproc"
	"strings"
	"testing"
	"time"
)

// Lines QEMU 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18) sent on QMP during a
// loopback migration of the counter guest, copied verbatim.
const (
	qmpGreeting      = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}`
	qmpEmptyReturn   = `{"return": {}}`
	qmpStopEvent     = `{"timestamp": {"seconds": 1796533207, "microseconds": 612342}, "event": "STOP"}`
	qmpSetup         = `{"return": {"status": "setup"}}`
	qmpCompleted     = `{"return": {"status": "completed", "setup-time": 2, "downtime": 4, "total-time": 20, "ram": {"total": 268513280, "postcopy-requests": 0, "dirty-sync-count": 2, "multifd-bytes": 0, "pages-per-second": 0, "downtime-bytes": 4116, "page-size": 4096, "remaining": 0, "postcopy-bytes": 0, "mbps": 301.52222222222224, "transferred": 659721, "dirty-sync-missed-zero-copy": 0, "precopy-bytes": 655605, "duplicate": 65539, "dirty-pages-rate": 0, "skipped": 0, "normal-bytes": 69632, "normal": 17}}}`
	qmpGenericError  = `{"error": {"class": "GenericError", "desc": "Can't migrate the vm that was paused due to previous migration"}}`
	qmpStatusRunning = `{"return": {"status": "running", "singlestep": false, "running": true}}`
)

func TestParseQMPLineKinds(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		answer     bool
		errPart    string
	}{
		{"greeting", qmpGreeting, false, ""},
		{"event", qmpStopEvent, false, ""},
		{"empty return", qmpEmptyReturn, true, ""},
		{"return", qmpStatusRunning, true, ""},
		{"error", qmpGenericError, true, "GenericError: Can't migrate the vm"},
		{"garbage", `{"return": `, false, "undecodable"},
	} {
		_, answer, err := parseQMPLine([]byte(tc.line))
		if answer != tc.answer {
			t.Errorf("%s: answer %v, want %v", tc.name, answer, tc.answer)
		}
		switch {
		case tc.errPart == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.errPart != "" && (err == nil || !strings.Contains(err.Error(), tc.errPart)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.errPart)
		}
	}
}

func TestQueryMigrateCompleted(t *testing.T) {
	msg, _, err := parseQMPLine([]byte(qmpCompleted))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseQueryMigrate(msg.Return)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := m.done(); !done || err != nil {
		t.Fatalf("done %v, %v; want true, nil", done, err)
	}
	r, err := m.result()
	if err != nil {
		t.Fatal(err)
	}
	want := migResult{Total: 20 * time.Millisecond, Downtime: 4 * time.Millisecond, Sent: 659721, Rounds: 2, Throttle: noThrottle}
	if r != want {
		t.Errorf("result %+v, want %+v", r, want)
	}
}

func TestQueryMigrateInProgressAndFailed(t *testing.T) {
	msg, _, err := parseQMPLine([]byte(qmpSetup))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseQueryMigrate(msg.Return)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := m.done(); done || err != nil {
		t.Errorf("setup: done %v, %v; want false, nil", done, err)
	}
	if _, err := m.result(); err == nil {
		t.Error("setup: result without total-time succeeded")
	}

	// Written from QEMU's MigrationInfo schema: a failed migration has
	// error-desc; a throttled one cpu-throttle-percentage.
	m, err = parseQueryMigrate([]byte(`{"status": "failed", "error-desc": "Unable to write to socket: Broken pipe", "cpu-throttle-percentage": 20}`))
	if err != nil {
		t.Fatal(err)
	}
	done, err := m.done()
	if !done || err == nil || !strings.Contains(err.Error(), "migration failed: Unable to write") {
		t.Errorf("failed: done %v, %v", done, err)
	}
	if m.CPUThrottlePercentage == nil || *m.CPUThrottlePercentage != 20 {
		t.Errorf("throttle %v, want 20", m.CPUThrottlePercentage)
	}
}

func TestParseTernStatus(t *testing.T) {
	// As migrate.Status marshals: progress lines may come first; the last
	// line is the final status.
	out := `{"phase":"pre-copy","round":1,"bytes_transferred":1000}
{"phase":"completed","round":4,"bytes_transferred":541000123,"remaining_bytes":0,"total_bytes":2147483648,"pages_sent":131072,"zero_pages_sent":393216,"dirty_rate_bytes_per_s":0,"bandwidth_bytes_per_s":900000000,"throttle_percent":30,"expected_downtime_ms":0,"downtime_ms":12.5,"total_time_ms":1500.25}

`
	r, err := parseTernStatus([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := migResult{Total: 1500250 * time.Microsecond, Downtime: 12500 * time.Microsecond, Sent: 541000123, Rounds: 4, Throttle: 30}
	if r != want {
		t.Errorf("result %+v, want %+v", r, want)
	}
}

func TestParseTernStatusRefuses(t *testing.T) {
	for _, tc := range []struct{ name, out, errPart string }{
		{"empty", "\n", "printed nothing"},
		{"not json", "migration done\n", "not a JSON status"},
		{"failed", `{"phase":"failed","round":2,"error":"connection reset"}`, `phase "failed": connection reset`},
		{"missing fields", `{"phase":"completed","round":2}`, "lacks"},
	} {
		_, err := parseTernStatus([]byte(tc.out))
		if err == nil || !strings.Contains(err.Error(), tc.errPart) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.errPart)
		}
	}
}

func TestTCPListening(t *testing.T) {
	// /proc/net/tcp as Linux writes it: a listener on 127.0.0.1:45671
	// (0xB267), one on 0.0.0.0:22, and an established connection from
	// local port 0xB268.
	procNetTCP := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:B267 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 124 1 0000000000000000 100 0 0 10 0
   2: 0100007F:B268 0100007F:B267 01 00000000:00000000 00:00000000 00000000     0        0 125 1 0000000000000000 20 4 30 10 -1
`
	for port, want := range map[int]bool{45671: true, 45672: false, 22: false, 1: false} {
		if got := benchproc.TCPListening([]byte(procNetTCP), port); got != want {
			t.Errorf("port %d: listening %v, want %v", port, got, want)
		}
	}
}

func TestLastPass(t *testing.T) {
	if _, ok := lastPass([]byte("dirty: start\n")); ok {
		t.Error("found a pass before any")
	}
	con := "dirty: start\npass 00000001\npass 00000002\npass 0000000a\npass 0000" // torn last line
	if n, ok := lastPass([]byte(con)); !ok || n != 10 {
		t.Errorf("last pass %d, %v; want 10, true", n, ok)
	}
}

func TestMinMedian(t *testing.T) {
	mn, med := minMedian([]time.Duration{30, 10, 20})
	if mn != 10 || med != 20 {
		t.Errorf("min %d median %d, want 10 20", mn, med)
	}
	mn2, med2 := minMedian([]int64{4, 1, 3, 2})
	if mn2 != 1 || med2 != 2 {
		t.Errorf("min %d median %d, want 1 2", mn2, med2)
	}
}
