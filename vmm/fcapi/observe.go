package fcapi

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"
)

// The log, as Firecracker writes it (its API 1.13: PUT /logger with
// log_path, level, show_level, show_log_origin and module; text only,
// Firecracker's logger has no other format): one line per message,
//
//	2026-12-06T07:51:02.123456789 [ID:THREAD:LEVEL:FILE:LINE] message
//
// LEVEL only with show_level, FILE:LINE only with show_log_origin. THREAD
// is the role of the thread that logged in Firecracker's names: fc_vcpu N
// for a line about vCPU N, fc_vmm otherwise. tern's structured fields
// follow the message as key=value.

// logLevels are Firecracker's level names (matched without case).
var logLevels = map[string]logrus.Level{
	"error": logrus.ErrorLevel, "warning": logrus.WarnLevel, "warn": logrus.WarnLevel,
	"info": logrus.InfoLevel, "debug": logrus.DebugLevel, "trace": logrus.TraceLevel,
}

// levelNames are Firecracker's words for the levels in a line.
var levelNames = map[logrus.Level]string{
	logrus.PanicLevel: "ERROR", logrus.FatalLevel: "ERROR", logrus.ErrorLevel: "ERROR",
	logrus.WarnLevel: "WARN", logrus.InfoLevel: "INFO", logrus.DebugLevel: "DEBUG", logrus.TraceLevel: "TRACE",
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
	if req.LogPath != nil {
		sink, err := openSink(*req.LogPath)
		if err != nil {
			return faultf("log_path: %v", err)
		}
		if s.logSink != nil {
			s.logSink.Close()
		}
		s.logSink = sink
		l.SetOutput(sink)
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

// logFormat writes Firecracker's log line.
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
	thread := "fc_vmm"
	if v, ok := e.Data["vcpu"]; ok {
		thread = fmt.Sprintf("fc_vcpu %v", v)
	}
	fmt.Fprintf(&b, "%s [%s:%s", e.Time.UTC().Format("2006-01-02T15:04:05.000000000"), id, thread)
	if f.level {
		fmt.Fprintf(&b, ":%s", levelNames[e.Level])
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
