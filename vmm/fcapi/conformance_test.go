package fcapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ternvm/tern/mmds"
	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

// The conformance table: every path and method of Firecracker's API as
// its description gives them, written by hand from Firecracker v1.13.1
// (src/firecracker/swagger/firecracker.yaml at tag v1.13.1): the methods
// each path takes, the status of a success (200 with JSON for a GET, 204
// without a body otherwise; 400 with {"fault_message"} for an error), the
// body's required fields, and the phase each may be used in. The phases
// are the description's "Pre-boot only" / "Post-boot only", and where it
// says nothing, Firecracker's own rules in that release
// (src/vmm/src/rpc_interface.rs: the requests its pre-boot controller
// refuses as not supported before start, and those its runtime controller
// refuses after start). TestErrorConventions covers the kinds of bad
// request one by one; this covers every endpoint.

type phase int

const (
	preBoot  phase = iota + 1 // refused once the microVM runs
	postBoot                  // refused before
	anyPhase
)

type endpoint struct {
	method, path string
	phase        phase
	// body is a valid body for tern's test VM; required lists the body's
	// required fields.
	body     string
	required []string
	// freeForm: the body is any JSON object (MMDS contents), so unknown
	// fields are not refused.
	freeForm bool
}

// conformanceFiles are the host files the table's bodies name.
type conformanceFiles struct {
	kernel, disk, vsock, metrics, snap, mem, tap string
}

func conformanceTable(f conformanceFiles) []endpoint {
	return []endpoint{
		{method: "GET", path: "/", phase: anyPhase},
		{method: "GET", path: "/version", phase: anyPhase},
		{method: "GET", path: "/machine-config", phase: anyPhase},
		{method: "PUT", path: "/machine-config", phase: preBoot, body: `{"vcpu_count": 1, "mem_size_mib": 32}`, required: []string{"vcpu_count", "mem_size_mib"}},
		{method: "PATCH", path: "/machine-config", phase: preBoot, body: `{"mem_size_mib": 32}`},
		{method: "PUT", path: "/boot-source", phase: preBoot, body: `{"kernel_image_path": "` + f.kernel + `"}`, required: []string{"kernel_image_path"}},
		{method: "PUT", path: "/drives/data", phase: preBoot, body: `{"drive_id": "data", "path_on_host": "` + f.disk + `", "is_root_device": false}`, required: []string{"drive_id", "is_root_device"}},
		{method: "PATCH", path: "/drives/data", phase: postBoot, body: `{"drive_id": "data", "rate_limiter": {"ops": {"size": 1000, "refill_time": 1000}}}`, required: []string{"drive_id"}},
		{method: "PUT", path: "/network-interfaces/eth0", phase: preBoot, body: `{"iface_id": "eth0", "host_dev_name": "` + f.tap + `"}`, required: []string{"iface_id", "host_dev_name"}},
		{method: "PATCH", path: "/network-interfaces/eth0", phase: postBoot, body: `{"iface_id": "eth0", "rx_rate_limiter": {"bandwidth": {"size": 1000000, "refill_time": 1000}}}`, required: []string{"iface_id"}},
		{method: "PUT", path: "/vsock", phase: preBoot, body: `{"guest_cid": 3, "uds_path": "` + f.vsock + `"}`, required: []string{"guest_cid", "uds_path"}},
		{method: "PUT", path: "/entropy", phase: preBoot, body: `{}`},
		{method: "PUT", path: "/balloon", phase: preBoot, body: `{"amount_mib": 0, "deflate_on_oom": false, "stats_polling_interval_s": 1}`, required: []string{"amount_mib", "deflate_on_oom"}},
		{method: "GET", path: "/balloon", phase: anyPhase},
		// The description: "before or after machine startup" (Firecracker
		// 1.13.1's code refuses both before; tern follows the description).
		{method: "PATCH", path: "/balloon", phase: anyPhase, body: `{"amount_mib": 0}`, required: []string{"amount_mib"}},
		{method: "GET", path: "/balloon/statistics", phase: postBoot},
		{method: "PATCH", path: "/balloon/statistics", phase: anyPhase, body: `{"stats_polling_interval_s": 1}`, required: []string{"stats_polling_interval_s"}},
		{method: "PUT", path: "/logger", phase: preBoot, body: `{"level": "Info", "show_level": true}`},
		{method: "PUT", path: "/metrics", phase: preBoot, body: `{"metrics_path": "` + f.metrics + `"}`, required: []string{"metrics_path"}},
		{method: "PUT", path: "/mmds", phase: anyPhase, body: `{"latest": {"id": "i-1"}}`, freeForm: true},
		{method: "PATCH", path: "/mmds", phase: anyPhase, body: `{"extra": 1}`, freeForm: true},
		{method: "GET", path: "/mmds", phase: anyPhase},
		{method: "PUT", path: "/mmds/config", phase: preBoot, body: `{"network_interfaces": ["eth0"]}`, required: []string{"network_interfaces"}},
		{method: "PUT", path: "/cpu-config", phase: preBoot, body: `{"cpuid_modifiers": []}`},
		{method: "GET", path: "/vm/config", phase: anyPhase},
		{method: "PUT", path: "/actions", phase: postBoot, body: `{"action_type": "FlushMetrics"}`, required: []string{"action_type"}},
		{method: "PATCH", path: "/vm", phase: postBoot, body: `{"state": "Paused"}`, required: []string{"state"}},
		{method: "PUT", path: "/snapshot/create", phase: postBoot, body: `{"snapshot_type": "Full", "snapshot_path": "` + f.snap + `", "mem_file_path": "` + f.mem + `"}`, required: []string{"snapshot_path", "mem_file_path"}},
		{method: "PATCH", path: "/vm", phase: postBoot, body: `{"state": "Resumed"}`, required: []string{"state"}},
		// Checked in a fresh server: a load is refused once boot-specific
		// configuration was given.
		{method: "PUT", path: "/snapshot/load", phase: preBoot, body: `{"snapshot_path": "` + f.snap + `", "mem_backend": {"backend_type": "File", "backend_path": "` + f.mem + `"}}`, required: []string{"snapshot_path"}},
		// The last pre-boot request: it boots the microVM.
		{method: "PUT", path: "/actions", phase: preBoot, body: `{"action_type": "InstanceStart"}`, required: []string{"action_type"}},
	}
}

// without returns body with field removed.
func without(t *testing.T, body, field string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, field)
	b, _ := json.Marshal(m)
	return string(b)
}

// withUnknown returns body with a field Firecracker does not define.
func withUnknown(t *testing.T, body string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	m["no_such_field"] = 1
	b, _ := json.Marshal(m)
	return string(b)
}

// conform sends e in its phase: it must succeed; and with each required
// field left out, an unknown field added or no body, it must fail with a
// fault.
func (c *client) conform(t *testing.T, e endpoint) {
	t.Helper()
	name := e.method + " " + e.path
	for _, f := range e.required {
		c.fault(e.method, e.path, without(t, e.body, f), "")
	}
	if e.body != "" && !e.freeForm {
		c.fault(e.method, e.path, withUnknown(t, e.body), `unknown field "no_such_field"`)
	}
	if e.method != "GET" && e.body != "" {
		c.fault(e.method, e.path, "", "")
	}
	out := c.ok(e.method, e.path, e.body)
	if e.method == "GET" && !json.Valid([]byte(out)) {
		t.Errorf("%s: 200 with a body that is not JSON: %q", name, out)
	}
}

// TestConformance runs the table against one microVM (the counter tiny
// guest with a drive, a network interface, vsock, entropy, a balloon,
// metrics, the logger and MMDS) through its whole life, then loads its
// snapshot in a fresh server.
func TestConformance(t *testing.T) {
	tinyguest.RequireKVM(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root: the microVM's network interface is a TAP tern creates")
	}
	dir := t.TempDir()
	kernel, err := tinyguest.BuildCounter(dir, tinyguest.CounterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := conformanceFiles{
		kernel: kernel, disk: file(t, "data.img", 1<<20), vsock: filepath.Join(dir, "v.sock"),
		metrics: filepath.Join(dir, "metrics"), snap: filepath.Join(dir, "snap"), mem: filepath.Join(dir, "mem"),
		tap: fmt.Sprintf("tern-fcc%d", os.Getpid()%100000),
	}
	table := conformanceTable(f)
	started := make(chan *vmm.VM, 1)
	c := serve(t, New(Options{MMDS: mmds.NewStore(0), OnStart: func(vm *vmm.VM) { started <- vm }}))

	paths := map[string][]string{}
	for _, e := range table {
		if !slices.Contains(paths[e.path], e.method) {
			paths[e.path] = append(paths[e.path], e.method)
		}
	}
	t.Run("methods", func(t *testing.T) {
		c.t = t
		for p, ms := range paths {
			for _, m := range []string{"GET", "PUT", "PATCH", "POST", "DELETE"} {
				// GET /metrics is tern's own (Prometheus text).
				if slices.Contains(ms, m) || p == "/metrics" && m == "GET" {
					continue
				}
				c.fault(m, p, "{}", "invalid method "+m)
			}
		}
	})

	t.Run("before boot", func(t *testing.T) {
		c.t = t
		for _, e := range table {
			switch {
			case e.path == "/snapshot/load" || e.body == `{"action_type": "InstanceStart"}`:
				// Below.
			case e.phase == postBoot:
				c.fault(e.method, e.path, e.body, msgPostBootOnly)
			default:
				c.conform(t, e)
			}
		}
		// SendCtrlAltDel is post-boot only too.
		c.fault("PUT", "/actions", `{"action_type": "SendCtrlAltDel"}`, msgPostBootOnly)
		c.fault("PUT", "/snapshot/load", table[len(table)-2].body, "after configuring boot-specific resources")
		c.conform(t, table[len(table)-1]) // InstanceStart
	})
	vm := <-started
	t.Cleanup(func() { vm.Close() })
	var inst InstanceInfo
	json.Unmarshal([]byte(c.ok("GET", "/", "")), &inst)
	if inst.State != "Running" || inst.AppName == "" || inst.VMMVersion != APIVersion {
		t.Errorf("GET / after InstanceStart = %+v", inst)
	}

	t.Run("after boot", func(t *testing.T) {
		c.t = t
		for _, e := range table {
			if e.phase == preBoot {
				c.fault(e.method, e.path, e.body, msgPreBootOnly)
				continue
			}
			c.conform(t, e)
		}
	})
	if _, err := os.Stat(f.snap); err != nil {
		t.Fatalf("no snapshot to load: %v", err)
	}
	vm.Close() // its disk lock and vsock socket go

	t.Run("snapshot load", func(t *testing.T) {
		loaded := make(chan *vmm.VM, 1)
		c2 := serve(t, New(Options{OnStart: func(vm *vmm.VM) { loaded <- vm }}))
		c2.conform(t, table[len(table)-2])
		vm2 := <-loaded
		t.Cleanup(func() { vm2.Close() })
		var inst InstanceInfo
		json.Unmarshal([]byte(c2.ok("GET", "/", "")), &inst)
		if inst.State != "Paused" {
			t.Errorf("GET / after a load without resume_vm: %q, want Paused", inst.State)
		}
		c2.fault("PUT", "/snapshot/load", table[len(table)-2].body, msgPreBootOnly)
	})
}

// TestConformanceErrorShape: every fault is status 400 with a JSON body
// of exactly one string field, fault_message, and the Content-Type says
// JSON; a success of a PUT has no body at all.
func TestConformanceErrorShape(t *testing.T) {
	c := serve(t, New(Options{}))
	for _, r := range [][3]string{
		{"GET", "/nosuch", ""}, {"DELETE", "/", ""}, {"PUT", "/machine-config", "{"},
		{"PUT", "/boot-source", `{"kernel_image_path": 1}`}, {"PATCH", "/vm", `{"state": "Paused"}`},
	} {
		req, _ := http.NewRequest(r[0], "http://localhost"+r[1], strings.NewReader(r[2]))
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		msg, isString := body["fault_message"].(string)
		if resp.StatusCode != 400 || err != nil || len(body) != 1 || !isString || msg == "" {
			t.Errorf("%s %s: %d %v %v; want 400 {\"fault_message\": \"...\"}", r[0], r[1], resp.StatusCode, body, err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", r[0], r[1], ct)
		}
	}
}
