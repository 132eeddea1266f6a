package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ternvm/tern/migrate"
)

type fakeVM struct {
	target  uint32
	has     bool
	actual  uint32
	stats   map[string]uint64
	refuseN uint32

	paused   bool
	snapDir  string
	snapDiff bool

	mu        sync.Mutex
	migReq    *MigrationRequest
	migStates []migrate.Status // what MigrationStatus returns, one per call, the last repeated
	cancelled bool
	limits    *limitsSeen
	cads      int
}

func (f *fakeVM) SendCtrlAltDel() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cads++
	return nil
}

func (f *fakeVM) StartMigration(req MigrationRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.To == "tcp:nowhere:1" {
		return fmt.Errorf("dial tcp:nowhere:1: no such host")
	}
	f.migReq = &req
	return nil
}

func (f *fakeVM) MigrationStatus() (migrate.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.migStates) == 0 {
		return migrate.Status{}, fmt.Errorf("no migration: %w", ErrNotFound)
	}
	st := f.migStates[0]
	if len(f.migStates) > 1 {
		f.migStates = f.migStates[1:]
	}
	return st, nil
}

func (f *fakeVM) CancelMigration() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = true
	return nil
}

func (f *fakeVM) SetBalloonTarget(mib uint32) error {
	if !f.has {
		return fmt.Errorf("no balloon: %w", ErrNotFound)
	}
	if mib > f.refuseN {
		return fmt.Errorf("balloon target of %d MiB is more than the guest's %d MiB", mib, f.refuseN)
	}
	f.target = mib
	return nil
}

func (f *fakeVM) BalloonInfo() (Balloon, error) {
	if !f.has {
		return Balloon{}, fmt.Errorf("no balloon: %w", ErrNotFound)
	}
	return Balloon{AmountMiB: f.target, ActualMiB: f.actual}, nil
}

func (f *fakeVM) BalloonStats() (map[string]uint64, error) { return f.stats, nil }

func (f *fakeVM) Pause() error  { f.paused = true; return nil }
func (f *fakeVM) Resume() error { f.paused = false; return nil }
func (f *fakeVM) Paused() bool  { return f.paused }

func (f *fakeVM) CreateSnapshot(dir string, diff bool) (Snapshot, error) {
	if !f.paused {
		return Snapshot{}, fmt.Errorf("the VM is not paused")
	}
	f.snapDir, f.snapDiff = dir, diff
	return Snapshot{Dir: dir, Type: "Full", MemoryBytes: 1 << 20}, nil
}

// client talks HTTP over the Unix socket the way a user's tool would.
func client(t *testing.T, c Controller) *http.Client {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := Serve(ln, c)
	t.Cleanup(func() { srv.Close() })
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

func do(t *testing.T, hc *http.Client, method, path, body string) (int, string) {
	req, err := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBalloonOverUnixSocket(t *testing.T) {
	vm := &fakeVM{has: true, actual: 3, refuseN: 256, stats: map[string]uint64{"free-memory": 42}}
	hc := client(t, vm)

	if code, body := do(t, hc, "PATCH", "/balloon", `{"amount_mib": 64}`); code != http.StatusNoContent {
		t.Fatalf("PATCH /balloon: %d %s", code, body)
	}
	if vm.target != 64 {
		t.Errorf("target = %d, want 64", vm.target)
	}
	code, body := do(t, hc, "GET", "/balloon", "")
	var b Balloon
	if code != http.StatusOK || json.Unmarshal([]byte(body), &b) != nil || b.AmountMiB != 64 || b.ActualMiB != 3 {
		t.Errorf("GET /balloon = %d %s", code, body)
	}
	code, body = do(t, hc, "GET", "/balloon/statistics", "")
	if code != http.StatusOK || !strings.Contains(body, `"free-memory":42`) {
		t.Errorf("GET /balloon/statistics = %d %s", code, body)
	}
}

func TestBadRequestsGetAFaultMessage(t *testing.T) {
	hc := client(t, &fakeVM{has: true, refuseN: 128})
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"PATCH", "/balloon", `{"amount_mib": 512}`, 400, "more than the guest's 128 MiB"},
		{"PATCH", "/balloon", `{"amount": 5}`, 400, "amount_mib"},
		{"PATCH", "/balloon", `not json`, 400, "amount_mib"},
		{"PATCH", "/balloon", `{}`, 400, "amount_mib"},
		{"PATCH", "/balloon", `{"amount_mib": -1}`, 400, "amount_mib"},
		{"DELETE", "/balloon", ``, 405, ""},
		{"GET", "/nothing", ``, 404, ""},
	} {
		code, body := do(t, hc, c.method, c.path, c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s %q = %d %s, want %d containing %q", c.method, c.path, c.body, code, body, c.code, c.want)
		}
	}
	hc = client(t, &fakeVM{})
	if code, body := do(t, hc, "PATCH", "/balloon", `{"amount_mib": 1}`); code != 404 || !strings.Contains(body, "fault_message") {
		t.Errorf("balloon request to a VM without one = %d %s, want 404 with a fault_message", code, body)
	}
}

func TestPauseSnapshotResume(t *testing.T) {
	vm := &fakeVM{}
	hc := client(t, vm)
	if code, body := do(t, hc, "PUT", "/snapshot/create", `{"dir": "/s"}`); code != 400 || !strings.Contains(body, "not paused") {
		t.Errorf("snapshot of a running VM = %d %s, want 400 naming the cause", code, body)
	}
	if code, body := do(t, hc, "PATCH", "/vm", `{"state": "Paused"}`); code != http.StatusNoContent || !vm.paused {
		t.Fatalf("PATCH /vm Paused = %d %s, paused %v", code, body, vm.paused)
	}
	if code, body := do(t, hc, "GET", "/vm", ""); code != 200 || !strings.Contains(body, `"Paused"`) {
		t.Errorf("GET /vm = %d %s, want Paused", code, body)
	}
	code, body := do(t, hc, "PUT", "/snapshot/create", `{"dir": "/snap/a", "snapshot_type": "Diff"}`)
	if code != 200 || vm.snapDir != "/snap/a" || !vm.snapDiff || !strings.Contains(body, `"memory_bytes":1048576`) {
		t.Errorf("PUT /snapshot/create = %d %s (dir %q diff %v)", code, body, vm.snapDir, vm.snapDiff)
	}
	if code, body := do(t, hc, "PATCH", "/vm", `{"state": "Resumed"}`); code != http.StatusNoContent || vm.paused {
		t.Errorf("PATCH /vm Resumed = %d %s, paused %v", code, body, vm.paused)
	}
	for _, bad := range []string{`{"state": "Stopped"}`, `{"state": "Paused", "x": 1}`, `nope`} {
		if code, body := do(t, hc, "PATCH", "/vm", bad); code != 400 || !strings.Contains(body, "fault_message") {
			t.Errorf("PATCH /vm %s = %d %s, want 400", bad, code, body)
		}
	}
	if code, _ := do(t, hc, "PUT", "/snapshot/create", `{"dir": "/s", "snapshot_type": "Partial"}`); code != 400 {
		t.Errorf("snapshot_type Partial = %d, want 400", code)
	}
}

func TestMigrationRoutes(t *testing.T) {
	vm := &fakeVM{}
	hc := client(t, vm)
	if code, body := do(t, hc, "GET", "/migration", ""); code != 404 || !strings.Contains(body, "no migration") {
		t.Errorf("GET /migration before any = %d %s, want 404", code, body)
	}
	body := `{"to": "tcp:10.0.0.9:7000", "downtime_ms": 20, "timeout_ms": 60000, "on_timeout": "force", "bandwidth": 1000000, "tls_cert": "c", "tls_key": "k", "tls_ca": "a"}`
	if code, out := do(t, hc, "PUT", "/migration/send", body); code != http.StatusNoContent {
		t.Fatalf("PUT /migration/send = %d %s", code, out)
	}
	want := MigrationRequest{To: "tcp:10.0.0.9:7000", DowntimeMS: 20, TimeoutMS: 60000, OnTimeout: "force", Bandwidth: 1000000, TLSCert: "c", TLSKey: "k", TLSCA: "a"}
	if vm.migReq == nil || *vm.migReq != want {
		t.Errorf("request reached the VM as %+v, want %+v", vm.migReq, want)
	}
	for _, bad := range []struct{ body, want string }{
		{`{"downtime_ms": 5}`, "must name the destination"},
		{`{"to": "tcp:x:1", "colour": 1}`, "unknown field"},
		{`{"to": "tcp:nowhere:1"}`, "no such host"},
	} {
		if code, out := do(t, hc, "PUT", "/migration/send", bad.body); code != 400 || !strings.Contains(out, bad.want) {
			t.Errorf("PUT /migration/send %s = %d %s, want 400 with %q", bad.body, code, out, bad.want)
		}
	}
	if code, out := do(t, hc, "PUT", "/migration/cancel", ""); code != http.StatusNoContent || !vm.cancelled {
		t.Errorf("PUT /migration/cancel = %d %s, cancelled %v", code, out, vm.cancelled)
	}
}

// A watcher sees each change once, in order, and the stream ends with the
// final status.
func TestMigrationWatchStreamsUntilTheEnd(t *testing.T) {
	vm := &fakeVM{migStates: []migrate.Status{
		{Phase: migrate.PhaseSetup},
		{Phase: migrate.PhasePreCopy, Round: 1, BytesTransferred: 100},
		{Phase: migrate.PhasePreCopy, Round: 1, BytesTransferred: 100},
		{Phase: migrate.PhasePreCopy, Round: 2, BytesTransferred: 150},
		{Phase: migrate.PhaseCompleted, Round: 2, BytesTransferred: 160, DowntimeMS: 3.5, TotalTimeMS: 40},
	}}
	hc := client(t, vm)
	code, out := do(t, hc, "GET", "/migration?watch=1", "")
	if code != 200 {
		t.Fatalf("GET /migration?watch=1 = %d %s", code, out)
	}
	var phases []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var st migrate.Status
		if err := json.Unmarshal([]byte(line), &st); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		phases = append(phases, fmt.Sprintf("%s/%d/%d", st.Phase, st.Round, st.BytesTransferred))
	}
	want := "setup/0/0 pre-copy/1/100 pre-copy/2/150 completed/2/160"
	if got := strings.Join(phases, " "); got != want {
		t.Errorf("watched %s, want %s", got, want)
	}
	if !strings.Contains(out, `"downtime_ms":3.5`) || !strings.Contains(out, `"total_time_ms":40`) {
		t.Errorf("final line lacks the times: %s", out)
	}
}

func TestActionsSendCtrlAltDel(t *testing.T) {
	vm := &fakeVM{}
	hc := client(t, vm)
	if code, body := do(t, hc, "PUT", "/actions", `{"action_type": "SendCtrlAltDel"}`); code != http.StatusNoContent || body != "" {
		t.Fatalf("PUT /actions SendCtrlAltDel: %d %q, want 204 and no body", code, body)
	}
	if vm.cads != 1 {
		t.Fatalf("Ctrl+Alt+Del sent %d times, want 1", vm.cads)
	}
	for _, body := range []string{`{"action_type": "InstanceStart"}`, `{}`, `{"action_type": "SendCtrlAltDel", "x": 1}`, `not json`} {
		code, resp := do(t, hc, "PUT", "/actions", body)
		if code != http.StatusBadRequest || !strings.Contains(resp, "fault_message") {
			t.Errorf("PUT /actions %s: %d %s, want 400 with a fault", body, code, resp)
		}
	}
	if vm.cads != 1 {
		t.Errorf("refused actions pressed Ctrl+Alt+Del (%d times)", vm.cads)
	}
}
