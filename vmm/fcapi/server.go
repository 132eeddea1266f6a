// Package fcapi is tern's Firecracker-compatible face: an http.Handler that
// answers Firecracker's API (the API description of Firecracker
// APIVersion) on a Unix socket, so that clients written for Firecracker
// (its Go SDK, Kata Containers, firecracker-containerd) drive tern.
//
// A Server starts in the pre-boot phase, in which the VM is configured
// piece by piece (machine, boot source, drives, network interfaces, ...)
// into a vmm.Config; PUT /actions {"action_type": "InstanceStart"} builds
// it with vmm.New and starts it, and PUT /snapshot/load restores one
// instead. Firecracker's conventions hold throughout: 204 without a body
// for a successful PUT or PATCH, 200 with JSON for a GET, and 400 with
// {"fault_message": "..."} for every error, including an unknown path, a
// method the path does not take, a malformed body, an unknown field, an
// id in the body that differs from the path's, and a request of the wrong
// phase. Bodies are capped at MaxBodyBytes.
//
// Endpoints tern does not implement (pmem, memory hotplug, balloon free
// page hinting, the userfaultfd memory backend) answer 400 saying so.
// Beyond Firecracker's API, GET /metrics answers the metrics in
// Prometheus's text format (see metrics.go) and /migration is tern's live
// migration. vmm never imports this package.
package fcapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/ternvm/tern/mmds"
	"github.com/ternvm/tern/virtio/ratelimit"
	"github.com/ternvm/tern/vmm"
	"github.com/ternvm/tern/vmm/api"
)

// APIVersion is the version of Firecracker's API this package implements:
// GET /version reports it, and `tern firecracker --version` prints it in
// Firecracker's format.
const APIVersion = "1.13.0"

// MaxBodyBytes is Firecracker's cap on a request body.
const MaxBodyBytes = 51200

// The fault messages of a request of the wrong phase, Firecracker's words.
const (
	msgPreBootOnly  = "The requested operation is not supported after starting the microVM."
	msgPostBootOnly = "The requested operation is not supported before starting the microVM."
)

// Options configure a Server.
type Options struct {
	// ID is the instance's id, reported by GET / and in log lines.
	ID string
	// Console receives the guest's serial output unless PUT /serial names
	// a file; nil discards it. ConsoleInput, if set, feeds the serial port.
	Console      io.Writer
	ConsoleInput io.Reader
	// KVMPath is the KVM device; empty means vmm's default.
	KVMPath string
	// HostCacheDir is vmm.Config.HostCacheDir for the microVM.
	HostCacheDir string
	// Logger is the monitor's logger, given to vmm; PUT /logger sets its
	// output, level and format. nil: one that discards until PUT /logger.
	Logger *logrus.Logger
	// MMDS serves /mmds; nil answers those requests 400 (MMDS not
	// available).
	MMDS *mmds.Store
	// Started is when the process started; boot times count from it.
	Started time.Time
	// MetricsPeriod is how often metrics are written once configured;
	// zero means DefaultMetricsPeriod, Firecracker's minute.
	MetricsPeriod time.Duration
	// OnStart, if set, hears of each VM this server builds or restores,
	// once it exists (still paused, for a snapshot loaded without
	// resume_vm). The caller waits for the guest's end with vm.Wait.
	OnStart func(vm *vmm.VM)
	// BeforeRun, if set, is given to each VM this server builds or
	// restores (vmm.Config.BeforeRun): tern firecracker installs its
	// seccomp filter there.
	BeforeRun func() error
}

// Server is the Firecracker API of one microVM. Its zero value is not
// usable; make one with New.
type Server struct {
	opts Options

	// mu serialises requests, as Firecracker's single API thread does:
	// each sees the state the previous one left.
	mu  sync.Mutex
	cfg preboot
	vm  *vmm.VM
	// unstarted: a snapshot was loaded without resume_vm; the VM starts
	// on PATCH /vm {"state": "Resumed"} (it reads as paused till then).
	unstarted bool
	// driveIDs and netIDs map Firecracker's ids to the names vmm's
	// methods take (diskN, the TAP), fixed at InstanceStart.
	driveIDs map[string]string
	netIDs   map[string]string
	// migrationAPI is tern's own API on the VM, for /migration.
	migrationAPI http.Handler

	metrics metricsState
	logSink *lineSink // the log's file or FIFO, once PUT /logger named one
	api     apiCounts
	lat     latencies
}

// New returns a Server in the pre-boot phase.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = logrus.New()
		opts.Logger.SetOutput(io.Discard)
	}
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	return &Server{opts: opts, cfg: newPreboot()}
}

// MMDSConfig returns the body of the last PUT /mmds/config, and whether
// there was one, for the MMDS wiring.
func (s *Server) MMDSConfig() (MMDSConfig, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.mmds == nil {
		return MMDSConfig{}, false
	}
	c := *s.cfg.mmds
	c.NetworkInterfaces = append([]string(nil), c.NetworkInterfaces...)
	return c, true
}

// VM returns the VM once InstanceStart or a snapshot load made it, else nil.
func (s *Server) VM() *vmm.VM {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vm
}

// Close releases what the pre-boot configuration opened (the serial
// output file, the metrics file). The VM itself is its owner's to close.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.close()
	s.metrics.close()
	if s.logSink != nil {
		// Later lines are dropped: the logger may outlive the server.
		s.logSink.Close()
	}
}

// faultError is an error whose message is the fault message as it is.
type faultError struct{ msg string }

func (e *faultError) Error() string { return e.msg }

func faultf(format string, a ...any) error { return &faultError{fmt.Sprintf(format, a...)} }

var (
	errPreBootOnly  = &faultError{msgPreBootOnly}
	errPostBootOnly = &faultError{msgPostBootOnly}
)

// notImplemented answers an endpoint or option tern lacks.
func notImplemented(what string) error {
	return faultf("%s: not implemented by tern (it implements Firecracker's API %s in part; see its README)", what, APIVersion)
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Paths are exact: no cleaning, no trailing slash.
	path := r.URL.Path
	if strings.HasPrefix(path, "/migration") {
		s.migration(w, r)
		return
	}
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fault(w, faultf("request body is larger than %d bytes", MaxBodyBytes))
			return
		}
		if err != nil {
			s.fault(w, faultf("reading the request body: %v", err))
			return
		}
	}
	v, err := s.route(r.Method, path, body)
	s.countRequest(r.Method, path, err != nil)
	if err != nil {
		s.fault(w, err)
		return
	}
	if text, ok := v.(promText); ok {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		w.Write(text)
		return
	}
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	out, err := json.Marshal(v)
	if err != nil {
		s.fault(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

func (s *Server) fault(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"fault_message": err.Error()})
}

// route dispatches one request; for a GET it returns the body to answer.
func (s *Server) route(method, path string, body []byte) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, id, hasID := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !strings.HasPrefix(path, "/") {
		return nil, faultf("invalid path %q", path)
	}
	// Paths with an id: /drives/{id}, /network-interfaces/{id}, /pmem/{id};
	// and the fixed sub-paths below.
	switch res {
	case "drives", "network-interfaces", "pmem":
		if !hasID || id == "" || strings.Contains(id, "/") {
			return nil, faultf("invalid path %q: want /%s/{id}", path, res)
		}
	default:
		if hasID {
			res = strings.TrimPrefix(path, "/")
		}
	}
	type handler func() (any, error)
	none := func(f func() error) handler { return func() (any, error) { return nil, f() } }
	var routes map[string]handler
	switch res {
	case "":
		routes = map[string]handler{"GET": s.getInstance}
	case "version":
		routes = map[string]handler{"GET": func() (any, error) {
			return map[string]string{"firecracker_version": APIVersion}, nil
		}}
	case "machine-config":
		routes = map[string]handler{
			"GET":   func() (any, error) { return s.cfg.machine.view(), nil },
			"PUT":   none(func() error { return s.putMachine(body, false) }),
			"PATCH": none(func() error { return s.putMachine(body, true) }),
		}
	case "boot-source":
		routes = map[string]handler{"PUT": none(func() error { return s.putBootSource(body) })}
	case "drives":
		routes = map[string]handler{
			"PUT":   none(func() error { return s.putDrive(id, body) }),
			"PATCH": none(func() error { return s.patchDrive(id, body) }),
		}
	case "network-interfaces":
		routes = map[string]handler{
			"PUT":   none(func() error { return s.putNet(id, body) }),
			"PATCH": none(func() error { return s.patchNet(id, body) }),
		}
	case "vsock":
		routes = map[string]handler{"PUT": none(func() error { return s.putVsock(body) })}
	case "entropy":
		routes = map[string]handler{"PUT": none(func() error { return s.putEntropy(body) })}
	case "serial":
		routes = map[string]handler{"PUT": none(func() error { return s.putSerial(body) })}
	case "logger":
		routes = map[string]handler{"PUT": none(func() error { return s.putLogger(body) })}
	case "metrics":
		routes = map[string]handler{
			// GET is tern's: the metrics in Prometheus's text format.
			"GET": func() (any, error) { return promText(s.prometheusText()), nil },
			"PUT": none(func() error { return s.putMetrics(body) }),
		}
	case "balloon":
		routes = map[string]handler{
			"GET":   s.getBalloon,
			"PUT":   none(func() error { return s.putBalloon(body) }),
			"PATCH": none(func() error { return s.patchBalloon(body) }),
		}
	case "balloon/statistics":
		routes = map[string]handler{
			"GET":   s.getBalloonStats,
			"PATCH": none(func() error { return s.patchBalloonStats(body) }),
		}
	case "mmds":
		routes = map[string]handler{
			"GET":   s.getMMDS,
			"PUT":   none(func() error { return s.putMMDS(body, false) }),
			"PATCH": none(func() error { return s.putMMDS(body, true) }),
		}
	case "mmds/config":
		routes = map[string]handler{"PUT": none(func() error { return s.putMMDSConfig(body) })}
	case "cpu-config":
		routes = map[string]handler{"PUT": none(func() error { return s.putCPUConfig(body) })}
	case "vm":
		routes = map[string]handler{"PATCH": none(func() error { return s.patchVM(body) })}
	case "vm/config":
		routes = map[string]handler{"GET": func() (any, error) { return s.fullConfig(), nil }}
	case "snapshot/create":
		routes = map[string]handler{"PUT": none(func() error { return s.createSnapshot(body) })}
	case "snapshot/load":
		routes = map[string]handler{"PUT": none(func() error { return s.loadSnapshot(body) })}
	case "actions":
		routes = map[string]handler{"PUT": none(func() error { return s.action(body) })}
	case "pmem":
		return nil, notImplemented("virtio-pmem devices (/pmem)")
	case "hotplug/memory":
		return nil, notImplemented("memory hotplug (/hotplug/memory)")
	case "balloon/hinting/start", "balloon/hinting/stop", "balloon/hinting/status":
		return nil, notImplemented("balloon free page hinting (/" + res + ")")
	default:
		return nil, faultf("invalid path %q: no such endpoint", path)
	}
	h, ok := routes[method]
	if !ok {
		var allowed []string
		for _, m := range []string{"GET", "PUT", "PATCH"} {
			if routes[m] != nil {
				allowed = append(allowed, m)
			}
		}
		return nil, faultf("invalid method %s for %s (it takes %s)", method, path, strings.Join(allowed, ", "))
	}
	return h()
}

// promText is a GET's answer that is Prometheus text, not JSON.
type promText []byte

// decode reads a JSON body into v: one value, no unknown fields, nothing
// after it.
func decode(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return faultf("the request needs a JSON body")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return faultf("malformed request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return faultf("malformed request body: data after the JSON value")
	}
	return nil
}

// matchID checks that an id repeated in the body is the path's.
func matchID(field string, body *string, path string) error {
	if body == nil {
		return faultf("the body lacks %s (it must be %q, as in the path)", field, path)
	}
	if *body != path {
		return faultf("%s %q in the body differs from %q in the path", field, *body, path)
	}
	return nil
}

// checkID applies Firecracker's rule for ids: 1 to 64 characters, letters,
// digits and underscores.
func checkID(kind, id string) error {
	if id == "" || len(id) > 64 {
		return faultf("invalid %s %q: an id has 1 to 64 characters", kind, id)
	}
	for _, c := range id {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return faultf("invalid %s %q: an id has only letters, digits and underscores", kind, id)
		}
	}
	return nil
}

// rateLimit converts an optional rate limiter body.
func rateLimit(field string, rl *api.RateLimiter) (*ratelimit.Config, error) {
	if rl == nil {
		return nil, nil
	}
	c, err := rl.Config()
	if err != nil {
		return nil, faultf("%s: %v", field, err)
	}
	return &c, nil
}

func (s *Server) getInstance() (any, error) {
	state := "Not started"
	if s.vm != nil {
		state = "Running"
		if s.unstarted || s.vm.State() == vmm.StatePaused {
			state = "Paused"
		}
	}
	return InstanceInfo{AppName: "tern", ID: s.opts.ID, State: state, VMMVersion: APIVersion}, nil
}

// fileExists checks a host path the request names, so that a bad one
// fails the request that gave it rather than InstanceStart.
func fileExists(what, path string) error {
	if path == "" {
		return faultf("%s: no path given", what)
	}
	if _, err := os.Stat(path); err != nil {
		return faultf("%s: %v", what, err)
	}
	return nil
}
