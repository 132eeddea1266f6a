// Package api serves a running VM's controls over HTTP on a Unix socket, in
// the shape of Firecracker's API where the two overlap, so that tools which
// drive Firecracker's balloon and pause/resume drive tern's the same way.
//
//	GET   /vm                  {"state": "Running"|"Paused"}
//	PATCH /vm                  {"state": "Paused"|"Resumed"}
//	PUT   /snapshot/create     {"dir": DIR, "snapshot_type": "Full"|"Diff"} (VM paused)
//	GET   /balloon, PATCH /balloon {"amount_mib": N}, GET /balloon/statistics
//	PUT   /migration/send      MigrationRequest: dial the destination and start migrating
//	GET   /migration           the migration's status (migrate.Status); with
//	                           ?watch=1, one JSON line per change until it ends
//	PUT   /migration/cancel    cancel it; the guest runs on here
//	PATCH /drives/{id}         {"rate_limiter": RateLimiter}; id: the disk's id= or diskN (disk0 is vda)
//	PATCH /network-interfaces/{id} {"rx_rate_limiter": RateLimiter, "tx_rate_limiter": RateLimiter};
//	                           id: the TAP's name or netN
//	PATCH /entropy             {"rate_limiter": RateLimiter}
//	PUT   /actions             {"action_type": "SendCtrlAltDel"}: press Ctrl+Alt+Del on the
//	                           guest's keyboard (its init decides: Linux reboots or signals init)
//
// A RateLimiter is Firecracker's {"bandwidth": TokenBucket, "ops":
// TokenBucket} with TokenBucket {"size": N, "one_time_burst": N,
// "refill_time": MS}; a bucket left out is kept, one of size 0 removed.
//
// Errors answer 4xx with {"fault_message": "..."}.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/vmm"
)

// Balloon is the balloon's state as the API reports it.
type Balloon struct {
	AmountMiB    uint32 `json:"amount_mib"` // the target
	ActualMiB    uint32 `json:"actual_mib"` // what the guest has inflated
	DeflateOnOOM bool   `json:"deflate_on_oom"`
}

// Controller is what the API drives; ForVM makes one of a *vmm.VM.
type Controller interface {
	SetBalloonTarget(mib uint32) error
	BalloonInfo() (Balloon, error)
	BalloonStats() (map[string]uint64, error)
	Pause() error
	Resume() error
	Paused() bool
	CreateSnapshot(dir string, diff bool) (Snapshot, error)
	StartMigration(req MigrationRequest) error
	MigrationStatus() (migrate.Status, error)
	CancelMigration() error
	SendCtrlAltDel() error
	RateLimitController
}

// MigrationRequest is the body of PUT /migration/send.
type MigrationRequest struct {
	To         string  `json:"to"`                    // tcp:HOST:PORT or unix:PATH
	DowntimeMS float64 `json:"downtime_ms,omitempty"` // stop-and-copy target; 0: the default
	TimeoutMS  int64   `json:"timeout_ms,omitempty"`  // the whole migration; 0: none
	OnTimeout  string  `json:"on_timeout,omitempty"`  // "cancel" (the default) or "force"
	Bandwidth  uint64  `json:"bandwidth,omitempty"`   // bytes per second; 0: no cap
	WithDisks  bool    `json:"with_disks,omitempty"`  // stream the disks' contents too
	TLSCert    string  `json:"tls_cert,omitempty"`
	TLSKey     string  `json:"tls_key,omitempty"`
	TLSCA      string  `json:"tls_ca,omitempty"`
	Insecure   bool    `json:"insecure,omitempty"` // plain TCP without TLS
}

// migrationWatchPoll is how often GET /migration?watch=1 looks for news.
const migrationWatchPoll = 20 * time.Millisecond

// Snapshot describes a snapshot the VM wrote.
type Snapshot struct {
	Dir               string `json:"dir"`
	Type              string `json:"snapshot_type"` // "Full" or "Diff"
	StateBytes        int64  `json:"state_bytes"`
	MemoryBytes       uint64 `json:"memory_bytes"`        // the guest's RAM
	MemoryStoredBytes uint64 `json:"memory_stored_bytes"` // what the memory file holds
	TookMicros        int64  `json:"took_us"`
}

// ErrNotFound marks a request for a device the VM does not have; it is
// vmm's, which vmm.ErrNoBalloon, vmm.ErrNoDevice and vmm.ErrNoMigration
// wrap, so one errors.Is maps them all to 404.
var ErrNotFound = vmm.ErrNotFound

// Handler routes the API's requests to c.
func Handler(c Controller) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /balloon", func(w http.ResponseWriter, r *http.Request) {
		b, err := c.BalloonInfo()
		reply(w, b, err)
	})
	mux.HandleFunc("PATCH /balloon", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			AmountMiB *uint32 `json:"amount_mib"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.AmountMiB == nil {
			fault(w, http.StatusBadRequest, fmt.Errorf("body must be {\"amount_mib\": N}: %v", err))
			return
		}
		if err := c.SetBalloonTarget(*req.AmountMiB); err != nil {
			fault(w, status(err), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /balloon/statistics", func(w http.ResponseWriter, r *http.Request) {
		s, err := c.BalloonStats()
		reply(w, s, err)
	})
	mux.HandleFunc("GET /vm", func(w http.ResponseWriter, r *http.Request) {
		state := "Running"
		if c.Paused() {
			state = "Paused"
		}
		reply(w, map[string]string{"state": state}, nil)
	})
	mux.HandleFunc("PATCH /vm", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			State string `json:"state"`
		}
		if err := decode(w, r, &req); err != nil {
			return
		}
		var err error
		switch req.State {
		case "Paused":
			err = c.Pause()
		case "Resumed":
			err = c.Resume()
		default:
			fault(w, http.StatusBadRequest, fmt.Errorf("state %q: want \"Paused\" or \"Resumed\"", req.State))
			return
		}
		if err != nil {
			fault(w, status(err), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT /snapshot/create", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Dir  string `json:"dir"`
			Type string `json:"snapshot_type"`
		}
		if err := decode(w, r, &req); err != nil {
			return
		}
		if req.Dir == "" || (req.Type != "" && req.Type != "Full" && req.Type != "Diff") {
			fault(w, http.StatusBadRequest, fmt.Errorf("body must be {\"dir\": DIR, \"snapshot_type\": \"Full\"|\"Diff\"}"))
			return
		}
		s, err := c.CreateSnapshot(req.Dir, req.Type == "Diff")
		reply(w, s, err)
	})
	mux.HandleFunc("PUT /migration/send", func(w http.ResponseWriter, r *http.Request) {
		var req MigrationRequest
		if err := decode(w, r, &req); err != nil {
			return
		}
		if req.To == "" {
			fault(w, http.StatusBadRequest, errors.New("body must name the destination: {\"to\": \"tcp:HOST:PORT\"|\"unix:PATH\", ...}"))
			return
		}
		if err := c.StartMigration(req); err != nil {
			fault(w, status(err), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT /migration/cancel", func(w http.ResponseWriter, r *http.Request) {
		if err := c.CancelMigration(); err != nil {
			fault(w, status(err), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /migration", func(w http.ResponseWriter, r *http.Request) {
		st, err := c.MigrationStatus()
		if err != nil || r.URL.Query().Get("watch") == "" {
			reply(w, st, err)
			return
		}
		watchMigration(w, r, c, st)
	})
	mux.HandleFunc("PUT /actions", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ActionType string `json:"action_type"`
		}
		if err := decode(w, r, &req); err != nil {
			return
		}
		if req.ActionType != "SendCtrlAltDel" {
			fault(w, http.StatusBadRequest, fmt.Errorf("action_type %q: this API has \"SendCtrlAltDel\"", req.ActionType))
			return
		}
		if err := c.SendCtrlAltDel(); err != nil {
			fault(w, status(err), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	rateLimitRoutes(mux, c)
	// The mux answers unknown paths, wrong methods and unclean paths
	// itself, in plain text or with a redirect; clients of a
	// Firecracker-style API expect every failure as a JSON fault.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(&jsonFaults{ResponseWriter: w, path: r.URL.Path}, r)
	})
}

// jsonFaults turns the mux's own plain-text errors and redirects into
// fault replies; the handlers' replies, which are JSON, pass unchanged.
type jsonFaults struct {
	http.ResponseWriter
	path    string
	swallow bool // the mux's plain-text body is being replaced
}

func (j *jsonFaults) WriteHeader(code int) {
	if code < 300 || strings.HasPrefix(j.Header().Get("Content-Type"), "application/json") {
		j.ResponseWriter.WriteHeader(code)
		return
	}
	j.swallow = true
	j.Header().Del("Location")
	j.Header().Del("X-Content-Type-Options")
	msg := strings.TrimSpace(http.StatusText(code))
	if code < 400 {
		// A redirect to the cleaned path: API paths are exact.
		code, msg = http.StatusNotFound, "path is not in canonical form"
	}
	fault(j.ResponseWriter, code, fmt.Errorf("%s %q", strings.ToLower(msg), j.path))
}

func (j *jsonFaults) Write(b []byte) (int, error) {
	if j.swallow {
		return len(b), nil
	}
	return j.ResponseWriter.Write(b)
}

// Flush lets the migration watch stream through the wrapper.
func (j *jsonFaults) Flush() {
	if f, ok := j.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the real writer (write deadlines).
func (j *jsonFaults) Unwrap() http.ResponseWriter { return j.ResponseWriter }

// watchMigration streams the status as JSON lines, one per change, until
// the migration ends or the client goes. A tern whose guest migrated away
// keeps its API open until this has sent the final status.
func watchMigration(w http.ResponseWriter, r *http.Request, c Controller, st migrate.Status) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	tk := time.NewTicker(migrationWatchPoll)
	defer tk.Stop()
	var last migrate.Status
	for first := true; ; first = false {
		if first || st != last {
			// A long migration outlives the server's write timeout;
			// each line gets its own.
			_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if enc.Encode(st) != nil || rc.Flush() != nil {
				return
			}
			last = st
		}
		switch st.Phase {
		case migrate.PhaseCompleted, migrate.PhaseFailed, migrate.PhaseCancelled:
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tk.C:
		}
		var err error
		if st, err = c.MigrationStatus(); err != nil {
			return
		}
	}
}

// decode reads a small JSON body into v, answering 400 itself on failure.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fault(w, http.StatusBadRequest, fmt.Errorf("malformed request body: %w", err))
		return err
	}
	return nil
}

// Timeouts of the API's server: a client that stalls or idles must not
// hold a connection (a descriptor and a goroutine) for ever.
// WriteTimeout runs from the end of the request's headers to the end of
// the response, so it covers the handler: it must outlast a snapshot of
// a large guest.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second // bodies are at most 4 KiB
	WriteTimeout      = 5 * time.Minute
	IdleTimeout       = time.Minute
)

// Serve answers API requests on ln until it is closed, with at most
// MaxConns connections open at once.
func Serve(ln net.Listener, c Controller) *http.Server {
	srv := &http.Server{
		Handler:           Handler(c),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    16 << 10,
	}
	go srv.Serve(LimitListener(ln, MaxConns))
	return srv
}

func status(err error) int {
	if errors.Is(err, ErrNotFound) {
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		fault(w, status(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// fault answers with Firecracker's error body.
func fault(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"fault_message": err.Error()})
}
