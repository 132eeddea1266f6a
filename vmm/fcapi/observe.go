package fcapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/ternvm/tern/internal/safefile"
)

func openOutput(path string, truncate bool) (*os.File, error) {
	if path == "" {
		return nil, fmt.Errorf("no path given")
	}
	return safefile.OpenOutput(path, truncate)
}

// logLevels are Firecracker's level names (matched without case).
var logLevels = map[string]logrus.Level{
	"error": logrus.ErrorLevel, "warning": logrus.WarnLevel, "warn": logrus.WarnLevel,
	"info": logrus.InfoLevel, "debug": logrus.DebugLevel, "trace": logrus.TraceLevel,
}

func (s *Server) putLogger(body []byte) error {
	var req Logger
	if err := decode(body, &req); err != nil {
		return err
	}
	if s.vm != nil {
		return errPreBootOnly
	}
	return s.configureLogger(req)
}

// ConfigureLogger applies a logger configuration (PUT /logger, or the
// --level and --log-path flags).
func (s *Server) ConfigureLogger(req Logger) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.configureLogger(req)
}

func (s *Server) configureLogger(req Logger) error {
	l := s.opts.Logger
	level, off := logrus.InfoLevel, false
	if req.Level != nil {
		name := strings.ToLower(*req.Level)
		lv, ok := logLevels[name]
		switch {
		case name == "off":
			off = true
		case !ok:
			return faultf("level %q: want Error, Warning, Info, Debug, Trace or Off", *req.Level)
		default:
			level = lv
		}
	}
	if req.Module != nil && *req.Module != "" {
		return notImplemented("filtering the log by module (module)")
	}
	var out io.Writer
	if req.LogPath != nil {
		f, err := openOutput(*req.LogPath, false)
		if err != nil {
			return faultf("log_path: %v", err)
		}
		out = f
	}
	if out != nil {
		l.SetOutput(out)
	}
	if off {
		l.SetOutput(io.Discard)
	}
	l.SetLevel(level)
	f := &logFormat{id: s.opts.ID}
	if req.ShowLevel != nil {
		f.level = *req.ShowLevel
	}
	if req.ShowLogOrigin != nil {
		f.origin = *req.ShowLogOrigin
		l.SetReportCaller(f.origin)
	}
	l.SetFormatter(f)
	s.cfg.logger = &req
	return nil
}

// logFormat writes Firecracker's log line: a timestamp, then
// [id(:level)(:file:line)], the message and tern's fields.
type logFormat struct {
	id            string
	level, origin bool
}

func (f *logFormat) Format(e *logrus.Entry) ([]byte, error) {
	var b bytes.Buffer
	id := f.id
	if id == "" {
		id = "anonymous-instance"
	}
	fmt.Fprintf(&b, "%s [%s", e.Time.UTC().Format("2006-01-02T15:04:05.000000000"), id)
	if f.level {
		fmt.Fprintf(&b, ":%s", strings.ToUpper(e.Level.String()))
	}
	if f.origin && e.Caller != nil {
		fmt.Fprintf(&b, ":%s:%d", e.Caller.File, e.Caller.Line)
	}
	fmt.Fprintf(&b, "] %s", e.Message)
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, e.Data[k])
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// requestCounts are the API's own counters, for the metrics.
type requestCounts struct {
	get, put, patch, faults atomic.Uint64
}

func (c *requestCounts) add(method string) {
	switch method {
	case "GET":
		c.get.Add(1)
	case "PUT":
		c.put.Add(1)
	case "PATCH":
		c.patch.Add(1)
	}
}

func (c *requestCounts) fail() { c.faults.Add(1) }

// metricsSink is where FlushMetrics writes.
type metricsSink struct {
	f *os.File
}

func (m *metricsSink) close() {
	if m.f != nil {
		m.f.Close()
		m.f = nil
	}
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
// --metrics-path).
func (s *Server) ConfigureMetrics(req Metrics) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.configureMetrics(req)
}

func (s *Server) configureMetrics(req Metrics) error {
	if s.metrics.f != nil {
		return faultf("metrics are already configured (to %s); Firecracker allows it once", s.cfg.metrics.MetricsPath)
	}
	f, err := openOutput(req.MetricsPath, false)
	if err != nil {
		return faultf("metrics_path: %v", err)
	}
	s.metrics.f = f
	s.cfg.metrics = &req
	return nil
}

// Metrics is one line of metrics: the counters tern has, grouped as
// Firecracker groups its own. Firecracker has many more; these are the
// ones tern counts.
type MetricsLine struct {
	UTCTimestampMS int64 `json:"utc_timestamp_ms"`
	APIServer      struct {
		GetCount   uint64 `json:"get_count"`
		PutCount   uint64 `json:"put_count"`
		PatchCount uint64 `json:"patch_count"`
		FaultCount uint64 `json:"fault_count"`
	} `json:"api_server"`
	UART struct {
		// MissedWriteCount is console output dropped because its
		// reader did not keep up.
		MissedWriteCount uint64 `json:"missed_write_count"`
	} `json:"uart"`
	Balloon *struct {
		TargetMiB uint32 `json:"target_mib"`
		ActualMiB uint32 `json:"actual_mib"`
	} `json:"balloon,omitempty"`
}

// FlushMetrics writes one line of metrics, as PUT /actions
// {"action_type": "FlushMetrics"} does.
func (s *Server) FlushMetrics() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushMetricsLocked()
}

func (s *Server) flushMetricsLocked() error {
	if s.metrics.f == nil {
		return faultf("metrics are not configured (PUT /metrics first)")
	}
	var m MetricsLine
	m.UTCTimestampMS = time.Now().UnixMilli()
	m.APIServer.GetCount = s.counts.get.Load()
	m.APIServer.PutCount = s.counts.put.Load()
	m.APIServer.PatchCount = s.counts.patch.Load()
	m.APIServer.FaultCount = s.counts.faults.Load()
	if s.vm != nil {
		m.UART.MissedWriteCount = s.vm.ConsoleDropped()
		if info, err := s.vm.BalloonInfo(); err == nil {
			m.Balloon = &struct {
				TargetMiB uint32 `json:"target_mib"`
				ActualMiB uint32 `json:"actual_mib"`
			}{info.TargetMiB, info.ActualMiB}
		}
	}
	line, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := s.metrics.f.Write(append(line, '\n')); err != nil {
		return faultf("writing metrics: %v", err)
	}
	return nil
}
