package fcapi

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ternvm/tern/vmm"
)

// Metrics, as Firecracker writes them and as tern counts them.
//
// A flush (PUT /actions {"action_type": "FlushMetrics"}, every
// MetricsPeriod, and once at exit) writes one JSON line to the metrics
// file or FIFO: {"utc_timestamp_ms": T, "GROUP": {"FIELD": N, ...}, ...}
// with Firecracker's group and field names. As in Firecracker, a counter
// holds what was counted since the previous line that was written (its
// counters reset on each flush), and a gauge (a latency, the balloon's
// size) holds its value now. Per-device groups are named after the
// device's id (block_ID for drive ID, net_ID for interface ID), and
// "block" and "net" add them up.
//
// GET /metrics on the API socket answers the same values in Prometheus's
// text format (version 0.0.4): GROUP_FIELD prefixed with "firecracker_",
// counters with their totals since the start and "_total" appended,
// per-device values labelled drive_id or iface_id. It was written here
// rather than taken from github.com/prometheus/client_golang: the format
// is a few lines of text, and that module would bring a dozen others
// (protobuf among them) into a binary that has none.
//
// Only what tern counts is reported; Firecracker's other fields are left
// out rather than written as zeros that would look measured.

// sample is one metric value.
type sample struct {
	group, field string
	// label and id name the device a per-device value is for (label
	// "drive_id", id "rootfs"); empty for the others.
	label, id string
	value     uint64
	counter   bool
}

func (m sample) key() string { return m.group + "\x00" + m.id + "\x00" + m.field }

// apiCounts count API requests by Firecracker's metric names. They are
// guarded by their own lock: ServeHTTP counts outside the server's.
type apiCounts struct {
	mu sync.Mutex
	n  map[[2]string]uint64 // {group, field}
}

func (c *apiCounts) add(group, field string) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[[2]string]uint64{}
	}
	c.n[[2]string{group, field}]++
	c.mu.Unlock()
}

func (c *apiCounts) samples() []sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]sample, 0, len(c.n))
	for k, v := range c.n {
		out = append(out, sample{group: k[0], field: k[1], value: v, counter: true})
	}
	return out
}

// apiMetric is the group and the field prefix (FIELD_count, FIELD_fails)
// Firecracker counts a request under; ok is false for requests it has no
// counter for.
func apiMetric(method, path string) (group, field string, ok bool) {
	res := strings.TrimPrefix(path, "/")
	if i := strings.IndexByte(res, '/'); i >= 0 {
		switch res[:i] {
		case "drives", "network-interfaces", "pmem":
			res = res[:i]
		}
	}
	var m map[string]string
	switch method {
	case "GET":
		group, m = "get_api_requests", map[string]string{
			"": "instance_info", "machine-config": "machine_cfg", "mmds": "mmds", "version": "vmm_version", "hotplug/memory": "hotplug_memory"}
	case "PUT":
		group, m = "put_api_requests", map[string]string{
			"actions": "actions", "boot-source": "boot_source", "drives": "drive", "logger": "logger",
			"machine-config": "machine_cfg", "cpu-config": "cpu_cfg", "metrics": "metrics",
			"network-interfaces": "network", "mmds": "mmds", "mmds/config": "mmds", "vsock": "vsock",
			"pmem": "pmem", "serial": "serial", "hotplug/memory": "hotplug_memory"}
	case "PATCH":
		group, m = "patch_api_requests", map[string]string{
			"drives": "drive", "network-interfaces": "network", "machine-config": "machine_cfg", "mmds": "mmds", "hotplug/memory": "hotplug_memory"}
	}
	field, ok = m[res]
	return group, field, ok
}

// countRequest counts one API request and, if it failed, its failure.
func (s *Server) countRequest(method, path string, failed bool) {
	group, field, ok := apiMetric(method, path)
	if !ok {
		return
	}
	s.api.add(group, field+"_count")
	if failed && method != "GET" {
		s.api.add(group, field+"_fails")
	}
}

// latencies are Firecracker's latencies_us: how long the last of each
// operation took, in microseconds, as the API answered it.
type latencies struct {
	mu sync.Mutex
	us map[string]uint64
}

func (l *latencies) record(what string, since time.Time) {
	l.mu.Lock()
	if l.us == nil {
		l.us = map[string]uint64{}
	}
	l.us[what] = uint64(time.Since(since).Microseconds())
	l.mu.Unlock()
}

func (l *latencies) samples() []sample {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sample
	for k, v := range l.us {
		out = append(out, sample{group: "latencies_us", field: k, value: v})
	}
	return out
}

// metricsState is the metrics output and what its last line reported.
type metricsState struct {
	sink *lineSink
	path string
	// last holds each counter's total at the last line written, so that
	// the next line holds what was counted since.
	last map[string]uint64
	stop chan struct{} // ends the periodic flush
}

func (m *metricsState) close() {
	if m.stop != nil {
		close(m.stop)
		m.stop = nil
	}
	if m.sink != nil {
		m.sink.Close()
	}
}

// samples gathers every value tern has now. The caller holds s.mu.
func (s *Server) samples() []sample {
	out := s.api.samples()
	out = append(out, s.lat.samples()...)
	out = append(out,
		sample{group: "logger", field: "missed_log_count", value: s.logSink.Missed(), counter: true},
		sample{group: "logger", field: "missed_metrics_count", value: s.metrics.sink.Missed(), counter: true},
	)
	if s.vm == nil {
		return out
	}
	vm := s.vm.Metrics()
	e := vm.Exits
	for _, c := range []struct {
		field string
		v     uint64
	}{{"exit_io_in", e.IOIn}, {"exit_io_out", e.IOOut}, {"exit_mmio_read", e.MMIORead}, {"exit_mmio_write", e.MMIOWrite}} {
		out = append(out, sample{group: "vcpu", field: c.field, value: c.v, counter: true})
	}
	// Firecracker counts missed console writes; tern counts the bytes.
	out = append(out, sample{group: "uart", field: "missed_write_count", value: vm.ConsoleDropped, counter: true})
	for _, d := range vm.Disks {
		id := s.driveIDFor(d)
		for _, c := range []struct {
			field string
			v     uint64
		}{
			{"read_count", d.ReadCount}, {"read_bytes", d.ReadBytes}, {"write_count", d.WriteCount},
			{"write_bytes", d.WriteBytes}, {"flush_count", d.FlushCount}, {"execute_fails", d.Failed},
		} {
			out = append(out, sample{group: "block", field: c.field, label: "drive_id", id: id, value: c.v, counter: true})
		}
	}
	for _, n := range vm.Nets {
		id := s.ifaceIDFor(n)
		for _, c := range []struct {
			field string
			v     uint64
		}{
			{"rx_bytes_count", n.RxBytes}, {"rx_packets_count", n.RxFrames}, {"no_rx_avail_buffer", n.RxDropped},
			{"tx_bytes_count", n.TxBytes}, {"tx_packets_count", n.TxFrames}, {"tx_fails", n.TxDropped},
		} {
			out = append(out, sample{group: "net", field: c.field, label: "iface_id", id: id, value: c.v, counter: true})
		}
	}
	if info, err := s.vm.BalloonInfo(); err == nil {
		out = append(out,
			sample{group: "balloon", field: "target_mib", value: uint64(info.TargetMiB)},
			sample{group: "balloon", field: "actual_mib", value: uint64(info.ActualMiB)})
	}
	return out
}

// driveIDFor is the Firecracker id of a disk: the id it was configured
// under, else (a VM loaded from a snapshot) its serial, else diskN.
func (s *Server) driveIDFor(d vmm.DiskMetrics) string {
	for id, name := range s.driveIDs {
		if name == d.Name {
			return id
		}
	}
	if d.ID != "" {
		return d.ID
	}
	return d.Name
}

// ifaceIDFor is the Firecracker id of an interface, else its TAP's name.
func (s *Server) ifaceIDFor(n vmm.NetMetrics) string {
	for id, tap := range s.netIDs {
		if tap == n.TAP {
			return id
		}
	}
	return n.TAP
}

func (s *Server) putMetrics(body []byte) error {
	var req Metrics
	if err := decode(body, &req); err != nil {
		return err
	}
	if s.vm != nil {
		return errPreBootOnly
	}
	return s.configureMetrics(req)
}

// ConfigureMetrics names the metrics file or FIFO (PUT /metrics, or
// --metrics-path); from then on a line is written every MetricsPeriod.
func (s *Server) ConfigureMetrics(req Metrics) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.configureMetrics(req)
}

func (s *Server) configureMetrics(req Metrics) error {
	if s.metrics.sink != nil {
		return faultf("metrics are already configured (to %s); Firecracker allows it once", s.metrics.path)
	}
	sink, err := openSink(req.MetricsPath)
	if err != nil {
		return faultf("metrics_path: %v", err)
	}
	stop := make(chan struct{})
	s.metrics = metricsState{sink: sink, path: req.MetricsPath, last: map[string]uint64{}, stop: stop}
	s.cfg.metrics = &req
	period := s.opts.MetricsPeriod
	if period <= 0 {
		period = DefaultMetricsPeriod
	}
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.FlushMetrics()
			case <-stop:
				return
			}
		}
	}()
	return nil
}

// DefaultMetricsPeriod is how often Firecracker writes its metrics by
// itself.
const DefaultMetricsPeriod = 60 * time.Second

// FlushMetrics writes one line of metrics, as PUT /actions
// {"action_type": "FlushMetrics"} does after boot; tern's own callers
// (the periodic flush, the last line at exit) use it in any phase.
func (s *Server) FlushMetrics() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushMetricsLocked()
}

func (s *Server) flushMetricsLocked() error {
	if s.metrics.sink == nil {
		return faultf("metrics are not configured (PUT /metrics first)")
	}
	now := time.Now()
	line, totals := s.metricsLine(now)
	before := s.metrics.sink.Missed()
	s.metrics.sink.Write(line)
	if s.metrics.sink.Missed() != before {
		// Not written: the next line carries these counts.
		return faultf("writing metrics to %s: the reader has no room (the line is dropped and counted)", s.metrics.path)
	}
	s.metrics.last = totals
	return nil
}

// metricsLine is the JSON line of the values now, counters as what was
// counted since the last line written, and each counter's total.
func (s *Server) metricsLine(now time.Time) ([]byte, map[string]uint64) {
	totals := map[string]uint64{}
	groups := map[string]map[string]uint64{}
	put := func(group, field string, v uint64, add bool) {
		g := groups[group]
		if g == nil {
			g = map[string]uint64{}
			groups[group] = g
		}
		if add {
			g[field] += v
		} else {
			g[field] = v
		}
	}
	for _, m := range s.samples() {
		v := m.value
		if m.counter {
			totals[m.key()] = v
			v -= min(v, s.metrics.last[m.key()])
		}
		if m.id == "" {
			put(m.group, m.field, v, false)
			continue
		}
		put(m.group+"_"+m.id, m.field, v, false)
		put(m.group, m.field, v, true) // the devices added up, as Firecracker's "block" and "net"
	}
	out := map[string]any{"utc_timestamp_ms": now.UnixMilli()}
	for g, fields := range groups {
		out[g] = fields
	}
	line, _ := json.Marshal(out) // maps of numbers always marshal
	return append(line, '\n'), totals
}

// prometheusText is GET /metrics: the samples in Prometheus's text
// exposition format.
func (s *Server) prometheusText() []byte {
	ms := s.samples()
	name := func(m sample) string {
		n := "firecracker_" + m.group + "_" + m.field
		if m.counter {
			n += "_total"
		}
		return n
	}
	sort.Slice(ms, func(i, j int) bool {
		if a, b := name(ms[i]), name(ms[j]); a != b {
			return a < b
		}
		return ms[i].id < ms[j].id
	})
	var b strings.Builder
	prev := ""
	for _, m := range ms {
		n := name(m)
		if n != prev {
			kind, help := "gauge", "value now"
			if m.counter {
				kind, help = "counter", "total since the start"
			}
			fmt.Fprintf(&b, "# HELP %s Firecracker's %s.%s, %s.\n# TYPE %s %s\n", n, m.group, m.field, help, n, kind)
			prev = n
		}
		if m.label != "" {
			fmt.Fprintf(&b, "%s{%s=\"%s\"} %d\n", n, m.label, escapeLabel(m.id), m.value)
		} else {
			fmt.Fprintf(&b, "%s %d\n", n, m.value)
		}
	}
	return []byte(b.String())
}

// escapeLabel escapes a label value as the text format wants: backslash,
// double quote and newline.
func escapeLabel(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}
