package fcapi

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ternvm/tern/vmm"
	"github.com/ternvm/tern/vmm/api"
)

func (s *Server) action(body []byte) error {
	var req Action
	if err := decode(body, &req); err != nil {
		return err
	}
	switch req.ActionType {
	case "InstanceStart":
		return s.startLocked()
	case "SendCtrlAltDel":
		if s.vm == nil {
			return errPostBootOnly
		}
		if err := s.vm.SendCtrlAltDel(); err != nil {
			return faultf("SendCtrlAltDel: %v", err)
		}
		return nil
	case "FlushMetrics":
		// Firecracker flushes on request only once the microVM runs.
		if s.vm == nil {
			return errPostBootOnly
		}
		return s.flushMetricsLocked()
	}
	return faultf("action_type %q: want \"InstanceStart\", \"SendCtrlAltDel\" or \"FlushMetrics\"", req.ActionType)
}

// Start builds and starts the configured VM, as PUT /actions
// {"action_type": "InstanceStart"} does (for --config-file).
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked()
}

func (s *Server) startLocked() error {
	if s.vm != nil {
		return errPreBootOnly
	}
	cfg, driveIDs, netIDs, err := s.vmConfig()
	if err != nil {
		return err
	}
	vm, err := vmm.New(cfg)
	if err != nil {
		return faultf("cannot build the microVM: %v", err)
	}
	if err := vm.Start(); err != nil {
		vm.Close()
		return faultf("cannot start the microVM: %v", err)
	}
	s.vm, s.driveIDs, s.netIDs = vm, driveIDs, netIDs
	s.onStart()
	return nil
}

func (s *Server) onStart() {
	s.migrationAPI = api.Handler(api.ForVM(s.vm))
	if s.opts.OnStart != nil {
		s.opts.OnStart(s.vm)
	}
}

func (s *Server) patchVM(body []byte) error {
	var req VMState
	if err := decode(body, &req); err != nil {
		return err
	}
	if req.State != "Paused" && req.State != "Resumed" {
		return faultf("state %q: want \"Paused\" or \"Resumed\"", req.State)
	}
	if s.vm == nil {
		return errPostBootOnly
	}
	began := time.Now()
	var err error
	switch {
	case s.unstarted && req.State == "Resumed":
		if err = s.vm.Start(); err == nil {
			s.unstarted = false
		}
	case s.unstarted: // a loaded snapshot: paused already
	case req.State == "Paused":
		err = s.vm.Pause()
	default:
		err = s.vm.Resume()
	}
	if err != nil {
		return faultf("%v", err)
	}
	if req.State == "Paused" {
		s.lat.record("pause_vm", began)
	} else {
		s.lat.record("resume_vm", began)
	}
	return nil
}

func (s *Server) getMMDS() (any, error) {
	if s.opts.MMDS == nil {
		return nil, faultf("MMDS not available in this tern build")
	}
	data := s.opts.MMDS.Get()
	if len(data) == 0 {
		data = []byte("{}")
	}
	return json.RawMessage(data), nil
}

func (s *Server) putMMDS(body []byte, patch bool) error {
	if s.opts.MMDS == nil {
		return faultf("MMDS not available in this tern build")
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil || v == nil {
		return faultf("the MMDS contents must be a JSON object")
	}
	var err error
	if patch {
		err = s.opts.MMDS.Patch(body)
	} else {
		err = s.opts.MMDS.Put(body)
	}
	if err != nil {
		return faultf("MMDS: %v", err)
	}
	return nil
}

func (s *Server) putMMDSConfig(body []byte) error {
	var req MMDSConfig
	if err := decode(body, &req); err != nil {
		return err
	}
	if s.vm != nil {
		return errPreBootOnly
	}
	switch req.Version {
	case "":
		req.Version = "V1"
	case "V1", "V2":
	default:
		return faultf("version %q: want \"V1\" or \"V2\"", req.Version)
	}
	if len(req.NetworkInterfaces) == 0 {
		return faultf("network_interfaces: name at least one configured interface")
	}
	for _, id := range req.NetworkInterfaces {
		found := false
		for _, n := range s.cfg.nets {
			found = found || *n.req.IfaceID == id
		}
		if !found {
			return faultf("network_interfaces: %q is not a configured network interface", id)
		}
	}
	if req.IPv4Address == "" {
		req.IPv4Address = "169.254.169.254"
	}
	ip := net.ParseIP(req.IPv4Address).To4()
	if ip == nil || !strings.Contains(req.IPv4Address, ".") || ip[0] != 169 || ip[1] != 254 || ip[2] == 0 || ip[2] == 255 {
		return faultf("ipv4_address %q: want a link-local address 169.254.1.0 to 169.254.254.255", req.IPv4Address)
	}
	req.NetworkInterfaces = append([]string(nil), req.NetworkInterfaces...)
	s.cfg.mmds = &req
	return nil
}

// migration serves tern's migration endpoints (see vmm/api) under this
// API's conventions: every error is a 400 fault.
func (s *Server) migration(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.migrationAPI
	s.mu.Unlock()
	if h == nil {
		switch r.URL.Path {
		case "/migration", "/migration/send", "/migration/cancel":
			s.fault(w, errPostBootOnly)
		default:
			s.fault(w, faultf("invalid path %q: no such endpoint", r.URL.Path))
		}
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	h.ServeHTTP(&only400{ResponseWriter: w, s: s}, r)
}

// only400 turns the tern API's 404 and other error codes into 400, whose
// bodies are already {"fault_message": ...}.
type only400 struct {
	http.ResponseWriter
	s *Server
}

func (o *only400) WriteHeader(code int) {
	if code >= 400 {
		code = http.StatusBadRequest
	}
	o.ResponseWriter.WriteHeader(code)
}

func (o *only400) Flush() {
	if f, ok := o.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (o *only400) Unwrap() http.ResponseWriter { return o.ResponseWriter }
