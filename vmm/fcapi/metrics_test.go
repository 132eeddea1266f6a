package fcapi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

// within runs f and fails the test if it has not returned after limit:
// it catches a hang, it does not measure speed.
func within(t *testing.T, limit time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("%s did not return within %v: it blocked", what, limit)
	}
}

// metricsLines reads a metrics file: one JSON object a line.
func metricsLines(t *testing.T, path string) []map[string]json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]json.RawMessage
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("metrics line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// field is GROUP.FIELD of a metrics line, -1 when absent.
func field(m map[string]json.RawMessage, group, name string) int64 {
	var g map[string]int64
	if json.Unmarshal(m[group], &g) != nil {
		return -1
	}
	if v, ok := g[name]; ok {
		return v
	}
	return -1
}

// readFIFO returns the lines waiting in a FIFO that tern holds open (so
// a read never sees its end): it reads until nothing more comes for a
// moment.
func readFIFO(t *testing.T, r *os.File) []string {
	t.Helper()
	var all []byte
	buf := make([]byte, 1<<16)
	for {
		r.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := r.Read(buf)
		all = append(all, buf[:n]...)
		if err != nil {
			break
		}
	}
	if len(all) == 0 {
		return nil
	}
	if all[len(all)-1] != '\n' {
		t.Errorf("the FIFO ends with a torn line: %q", all[max(0, len(all)-80):])
	}
	return strings.Split(strings.TrimSuffix(string(all), "\n"), "\n")
}

// TestMetricsFIFOWithoutAReader: a FIFO nothing reads yet is accepted, as
// Firecracker accepts it; flushes never block however many there are
// (those the pipe has no room for are dropped and counted), and a reader
// that comes later gets whole JSON lines.
func TestMetricsFIFOWithoutAReader(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "metrics.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	s := New(Options{MetricsPeriod: time.Hour})
	c := serve(t, s)
	c.ok("PUT", "/metrics", `{"metrics_path": "`+fifo+`"}`)
	c.fault("PUT", "/metrics", `{"metrics_path": "`+fifo+`"}`, "already configured")
	failed := 0
	within(t, 20*time.Second, "2000 flushes into a FIFO nothing reads", func() {
		for range 2000 { // far more than a pipe holds
			if s.FlushMetrics() != nil {
				failed++
			}
		}
	})
	if failed == 0 {
		t.Fatal("every flush into a full FIFO reported success")
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lines := readFIFO(t, r)
	for i, l := range lines {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d from the FIFO is not JSON: %q", i+1, l)
		}
	}
	if len(lines) == 0 || len(lines) != 2000-failed {
		t.Errorf("the FIFO held %d lines; %d of 2000 flushes said they were written", len(lines), 2000-failed)
	}
	// The missed lines are counted in the next one that gets through.
	if err := s.FlushMetrics(); err != nil {
		t.Fatalf("a flush once the FIFO was drained: %v", err)
	}
	next := readFIFO(t, r)
	if len(next) != 1 {
		t.Fatalf("after one more flush the FIFO holds %q", next)
	}
	var last map[string]json.RawMessage
	if err := json.Unmarshal([]byte(next[0]), &last); err != nil {
		t.Fatalf("the line after draining: %q: %v", next[0], err)
	}
	if got := field(last, "logger", "missed_metrics_count"); got != int64(failed) {
		t.Errorf("logger.missed_metrics_count = %d, want the %d flushes that failed", got, failed)
	}
}

// TestMetricsAreWrittenPeriodically: once configured, lines come by
// themselves every MetricsPeriod (Firecracker: every minute).
func TestMetricsAreWrittenPeriodically(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.json")
	c := serve(t, New(Options{MetricsPeriod: 20 * time.Millisecond}))
	c.ok("PUT", "/metrics", `{"metrics_path": "`+path+`"}`)
	c.ok("GET", "/", "")
	waitFor(t, "three lines written without a FlushMetrics", func() bool {
		b, _ := os.ReadFile(path)
		return strings.Count(string(b), "\n") >= 3
	})
	lines := metricsLines(t, path)
	var prev int64
	seen := int64(0)
	for i, l := range lines {
		var ts int64
		json.Unmarshal(l["utc_timestamp_ms"], &ts)
		if ts < prev || ts < time.Now().Add(-time.Minute).UnixMilli() {
			t.Errorf("line %d: utc_timestamp_ms %d is not a recent time after the previous line's %d", i, ts, prev)
		}
		prev = ts
		if v := field(l, "get_api_requests", "instance_info_count"); v > 0 {
			seen += v
		}
	}
	// Counters are what was counted since the line before: the one GET /
	// appears once over all lines.
	if seen != 1 {
		t.Errorf("get_api_requests.instance_info_count adds up to %d over the lines, want the 1 GET /", seen)
	}
}

// promLine is one sample line of the Prometheus text format.
var promLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\})? ([0-9]+)$`)

// parseProm checks text against the exposition format (every sample's
// name has its HELP and TYPE before it, counters end in _total) and
// returns the samples as name or name{label="id"} -> value.
func parseProm(t *testing.T, text string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	typed := map[string]string{}
	helped := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			typed[f[2]] = f[3]
			continue
		}
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "#" && f[1] == "HELP" {
			helped[f[2]] = true
			continue
		}
		m := promLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("not a sample line of the text format: %q", l)
			continue
		}
		name := m[1]
		if !helped[name] || typed[name] == "" {
			t.Errorf("%s has no HELP or TYPE before it", name)
		}
		if (typed[name] == "counter") != strings.HasSuffix(name, "_total") {
			t.Errorf("%s is a %s", name, typed[name])
		}
		v, _ := strconv.ParseUint(m[5], 10, 64)
		key := name
		if m[2] != "" {
			key = name + "{" + m[3] + "=" + m[4] + "}"
		}
		if _, dup := out[key]; dup {
			t.Errorf("%s given twice", key)
		}
		out[key] = v
	}
	return out
}

// TestMetricsCountWhatTheGuestDid boots the counter guest with a drive,
// and checks the metrics against what happened: its console bytes are
// port writes (vcpu.exit_io_out), counters in the lines are what was
// counted since the previous line and add up to the totals GET /metrics
// gives in Prometheus's format, a paused guest adds nothing.
func TestMetricsCountWhatTheGuestDid(t *testing.T) {
	tinyguest.RequireKVM(t)
	dir := t.TempDir()
	kernel, err := tinyguest.BuildCounter(dir, tinyguest.CounterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cons console
	started := make(chan *vmm.VM, 1)
	c := serve(t, New(Options{Console: &cons, MetricsPeriod: time.Hour, OnStart: func(vm *vmm.VM) { started <- vm }}))
	path := filepath.Join(dir, "metrics.json")
	disk := file(t, "data.img", 1<<20)
	c.ok("PUT", "/metrics", `{"metrics_path": "`+path+`"}`)
	c.ok("PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 32}`)
	c.ok("PUT", "/boot-source", `{"kernel_image_path": "`+kernel+`"}`)
	c.ok("PUT", "/drives/data", `{"drive_id": "data", "path_on_host": "`+disk+`", "is_root_device": false}`)
	c.ok("PUT", "/actions", `{"action_type": "InstanceStart"}`)
	vm := <-started
	t.Cleanup(func() { vm.Close() })
	waitFor(t, "two ticks", func() bool { return cons.lastTick() >= 1 })
	c.ok("PUT", "/actions", `{"action_type": "FlushMetrics"}`)
	c.ok("PATCH", "/vm", `{"state": "Paused"}`)
	printed := len(cons.String())
	c.ok("PUT", "/actions", `{"action_type": "FlushMetrics"}`)
	c.ok("PUT", "/actions", `{"action_type": "FlushMetrics"}`)
	lines := metricsLines(t, path)
	if len(lines) != 3 {
		t.Fatalf("%d metrics lines, want 3 (one per FlushMetrics)", len(lines))
	}
	if v := field(lines[2], "vcpu", "exit_io_out"); v != 0 {
		t.Errorf("the line after one taken while paused counts %d port writes, want 0", v)
	}
	if v := field(lines[2], "put_api_requests", "actions_count"); v != 1 {
		t.Errorf("the last line counts %d PUT /actions since the line before, want 1 (the FlushMetrics that wrote it)", v)
	}
	if v := field(lines[0], "put_api_requests", "drive_count"); v != 1 {
		t.Errorf("the first line counts %d PUT /drives, want 1", v)
	}
	if v := field(lines[0], "latencies_us", "pause_vm"); v != -1 {
		t.Errorf("the first line has a pause latency (%d) before any pause", v)
	}
	if v := field(lines[1], "latencies_us", "pause_vm"); v < 0 {
		t.Errorf("the line after the pause lacks latencies_us.pause_vm")
	}
	var sum int64
	for _, l := range lines {
		sum += field(l, "vcpu", "exit_io_out")
	}
	code, text := c.do("GET", "/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, text)
	}
	prom := parseProm(t, text)
	total := prom["firecracker_vcpu_exit_io_out_total"]
	if int64(total) != sum {
		t.Errorf("the lines' vcpu.exit_io_out add up to %d, GET /metrics says %d in all", sum, total)
	}
	if total < uint64(printed) {
		t.Errorf("%d port-write exits, but the guest printed %d bytes on COM1, each one such write", total, printed)
	}
	for _, k := range []string{
		`firecracker_block_read_count_total{drive_id=data}`, `firecracker_block_write_bytes_total{drive_id=data}`,
		`firecracker_put_api_requests_actions_count_total`, `firecracker_logger_missed_metrics_count_total`,
		`firecracker_latencies_us_pause_vm`,
	} {
		if _, ok := prom[k]; !ok {
			t.Errorf("GET /metrics lacks %s:\n%s", k, text)
		}
	}
	if v := field(lines[0], "block_data", "read_count"); v != 0 {
		t.Errorf("block_data.read_count = %d; the counter guest never reads its disk", v)
	}
}

// TestLogToFIFOWithoutAReader: logging into a FIFO nothing reads never
// blocks the code that logs (in tern, vCPU threads), and a reader that
// comes later gets Firecracker's lines.
func TestLogToFIFOWithoutAReader(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "log.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	s := New(Options{ID: "vm7", Logger: log})
	c := serve(t, s)
	c.ok("PUT", "/logger", `{"log_path": "`+fifo+`", "level": "Warning", "show_level": true}`)
	within(t, 20*time.Second, "logging 5000 lines into a FIFO nothing reads", func() {
		for i := range 5000 {
			log.WithField("vcpu", 1).Warnf("line %d", i)
			log.Info("below the level: not written")
		}
	})
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9} \[vm7:fc_vcpu 1:WARN\] line (\d+) vcpu=1$`)
	n := 0
	for _, l := range readFIFO(t, r) {
		m := want.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("log line %q is not Firecracker's format", l)
		}
		if m[1] != strconv.Itoa(n) {
			t.Fatalf("log line %d says %s: lines were reordered or torn", n, m[1])
		}
		n++
	}
	if n == 0 || n >= 5000 {
		t.Errorf("the FIFO held %d of 5000 lines", n)
	}
	if got := s.logSink.Missed(); got != uint64(5000-n) {
		t.Errorf("missed log lines = %d, want the %d that did not fit", got, 5000-n)
	}
}
