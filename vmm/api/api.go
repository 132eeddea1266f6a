// Package api serves a running VM's controls over HTTP on a Unix socket, in
// the shape of Firecracker's API where the two overlap, so that tools which
// drive Firecracker's balloon drive tern's the same way. Only what a running
// VM offers today is here; pause, resume and snapshots join it later.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Balloon is the balloon's state as the API reports it.
type Balloon struct {
	AmountMiB    uint32 `json:"amount_mib"` // the target
	ActualMiB    uint32 `json:"actual_mib"` // what the guest has inflated
	DeflateOnOOM bool   `json:"deflate_on_oom"`
}

// Controller is what the API drives; *vmm.VM implements it.
type Controller interface {
	SetBalloonTarget(mib uint32) error
	BalloonInfo() (Balloon, error)
	BalloonStats() (map[string]uint64, error)
}

// ErrNotFound marks a request for a device the VM does not have.
var ErrNotFound = errors.New("not found")

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
	return mux
}

// Serve answers API requests on ln until it is closed.
func Serve(ln net.Listener, c Controller) *http.Server {
	srv := &http.Server{Handler: Handler(c), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
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
