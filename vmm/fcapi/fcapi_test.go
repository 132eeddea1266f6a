package fcapi

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternvm/tern/mmds"
)

// serve runs s on a real Unix socket and returns a client for it.
func serve(t *testing.T, s *Server) *client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "fc.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close(); s.Close() })
	return &client{t: t, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}}
}

type client struct {
	t  *testing.T
	hc *http.Client
}

// do sends one request and returns the status and body.
func (c *client) do(method, path, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// ok sends a request that must succeed: 204 without a body for PUT and
// PATCH, 200 with a body for GET.
func (c *client) ok(method, path, body string) string {
	c.t.Helper()
	code, out := c.do(method, path, body)
	want := http.StatusNoContent
	if method == http.MethodGet {
		want = http.StatusOK
	}
	if code != want {
		c.t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, code, out, want)
	}
	if want == http.StatusNoContent && out != "" {
		c.t.Errorf("%s %s: 204 with a body %q", method, path, out)
	}
	return out
}

// fault sends a request that must fail with 400 and a fault message
// containing want.
func (c *client) fault(method, path, body, want string) {
	c.t.Helper()
	code, out := c.do(method, path, body)
	if code != http.StatusBadRequest {
		c.t.Errorf("%s %s: status %d (%s), want 400", method, path, code, out)
		return
	}
	var f map[string]string
	if err := json.Unmarshal([]byte(out), &f); err != nil || len(f) != 1 {
		c.t.Errorf("%s %s: body %q is not {\"fault_message\": ...}", method, path, out)
		return
	}
	if !strings.Contains(f["fault_message"], want) {
		c.t.Errorf("%s %s: fault_message %q lacks %q", method, path, f["fault_message"], want)
	}
}

// file makes a file of size bytes.
func file(t *testing.T, name string, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestErrorConventions checks that every kind of bad request answers 400
// with one fault_message naming the problem, before any VM exists.
func TestErrorConventions(t *testing.T) {
	c := serve(t, New(Options{}))
	disk := file(t, "disk.img", 1<<20)
	cases := []struct {
		name, method, path, body, want string
	}{
		{"unknown path", "GET", "/nosuch", "", "no such endpoint"},
		{"unknown nested path", "GET", "/machine-config/x", "", "no such endpoint"},
		{"trailing slash", "GET", "/version/", "", "no such endpoint"},
		{"drives without id", "PUT", "/drives", `{}`, "want /drives/{id}"},
		{"bad method", "DELETE", "/machine-config", "", "invalid method DELETE"},
		{"GET of a PUT-only path", "GET", "/boot-source", "", "invalid method GET"},
		{"bad JSON", "PUT", "/machine-config", `{"vcpu_count": `, "malformed request body"},
		{"trailing data", "PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 64} {}`, "data after the JSON value"},
		{"empty body", "PUT", "/machine-config", ``, "needs a JSON body"},
		{"unknown field", "PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 64, "turbo": true}`, `unknown field "turbo"`},
		{"wrong type", "PUT", "/machine-config", `{"vcpu_count": "two", "mem_size_mib": 64}`, "malformed request body"},
		{"missing required", "PUT", "/machine-config", `{"vcpu_count": 1}`, "needs vcpu_count and mem_size_mib"},
		{"too many vCPUs", "PUT", "/machine-config", `{"vcpu_count": 33, "mem_size_mib": 64}`, "vcpu_count 33"},
		{"smt", "PUT", "/machine-config", `{"vcpu_count": 2, "mem_size_mib": 64, "smt": true}`, "does not expose SMT"},
		{"unknown cpu template", "PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 64, "cpu_template": "T3"}`, `no static CPU template "T3"`},
		{"cpu template T2CL", "PATCH", "/machine-config", `{"cpu_template": "T2CL"}`, "not implemented by tern"},
		{"transparent huge pages", "PATCH", "/machine-config", `{"huge_pages": "Transparent"}`, "transparent huge pages"},
		{"odd memory with 2M pages", "PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 65, "huge_pages": "2M"}`, "multiple of 2"},
		{"drive id mismatch", "PUT", "/drives/a", `{"drive_id": "b", "path_on_host": "` + disk + `", "is_root_device": false}`, `drive_id "b" in the body differs from "a"`},
		{"drive id missing", "PUT", "/drives/a", `{"path_on_host": "` + disk + `", "is_root_device": false}`, "lacks drive_id"},
		{"bad drive id", "PUT", "/drives/a-b", `{"drive_id": "a-b", "path_on_host": "` + disk + `", "is_root_device": false}`, "letters, digits and underscores"},
		{"missing drive file", "PUT", "/drives/a", `{"drive_id": "a", "path_on_host": "/nonexistent/disk", "is_root_device": false}`, "no such file"},
		{"vhost-user drive", "PUT", "/drives/a", `{"drive_id": "a", "socket": "/x", "is_root_device": false}`, "vhost-user"},
		{"iface id mismatch", "PUT", "/network-interfaces/eth0", `{"iface_id": "eth1", "host_dev_name": "tap0"}`, `iface_id "eth1" in the body differs`},
		{"bad MAC", "PUT", "/network-interfaces/eth0", `{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "zz"}`, "not a MAC address"},
		{"missing kernel", "PUT", "/boot-source", `{"kernel_image_path": "/nonexistent/vmlinux"}`, "kernel_image_path"},
		{"vsock cid", "PUT", "/vsock", `{"guest_cid": 2, "uds_path": "/tmp/x.sock"}`, "vsock"},
		{"bad rate limiter", "PUT", "/entropy", `{"rate_limiter": {"bandwidth": {"size": 1}}}`, "refill_time"},
		{"PATCH /vm before boot", "PATCH", "/vm", `{"state": "Paused"}`, msgPostBootOnly},
		{"bad vm state", "PATCH", "/vm", `{"state": "Frozen"}`, `state "Frozen"`},
		{"PATCH drive before boot", "PATCH", "/drives/a", `{"drive_id": "a", "path_on_host": "` + disk + `"}`, msgPostBootOnly},
		{"PATCH net before boot", "PATCH", "/network-interfaces/a", `{"iface_id": "a"}`, msgPostBootOnly},
		{"snapshot before boot", "PUT", "/snapshot/create", `{"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"}`, msgPostBootOnly},
		{"SendCtrlAltDel before boot", "PUT", "/actions", `{"action_type": "SendCtrlAltDel"}`, msgPostBootOnly},
		{"unknown action", "PUT", "/actions", `{"action_type": "Reboot"}`, `action_type "Reboot"`},
		{"start without boot source", "PUT", "/actions", `{"action_type": "InstanceStart"}`, "no boot source"},
		{"FlushMetrics before boot", "PUT", "/actions", `{"action_type": "FlushMetrics"}`, msgPostBootOnly},
		{"migration before boot", "GET", "/migration", "", msgPostBootOnly},
		{"balloon not configured", "GET", "/balloon", "", "no balloon device"},
		{"balloon hinting", "PUT", "/balloon", `{"amount_mib": 0, "deflate_on_oom": false, "free_page_hinting": true}`, "not implemented by tern"},
		{"hinting endpoint", "PATCH", "/balloon/hinting/start", `{}`, "not implemented by tern"},
		{"pmem", "PUT", "/pmem/p0", `{"id": "p0", "path_on_host": "/x"}`, "not implemented by tern"},
		{"memory hotplug", "PUT", "/hotplug/memory", `{"total_size_mib": 1024}`, "not implemented by tern"},
		{"cpu-config bad bitmap", "PUT", "/cpu-config", `{"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [{"register": "eax", "bitmap": "0b2"}]}]}`, "is not 0, 1, x or _"},
		{"cpu-config decimal leaf", "PUT", "/cpu-config", `{"cpuid_modifiers": [{"leaf": "1", "subleaf": "0x0", "flags": 0, "modifiers": []}]}`, "0x (hexadecimal) or 0b (binary)"},
		{"cpu-config for aarch64", "PUT", "/cpu-config", `{"reg_modifiers": []}`, "aarch64"},
		{"cpu-config empty", "PUT", "/cpu-config", ``, "needs a JSON body"},
		{"serial rate limiter", "PUT", "/serial", `{"rate_limiter": {"size": 1, "refill_time": 1}}`, "not implemented by tern"},
		{"mmds without a store", "GET", "/mmds", "", "MMDS not available"},
		{"mmds config without interfaces", "PUT", "/mmds/config", `{"network_interfaces": []}`, "at least one configured interface"},
		{"mmds config unknown interface", "PUT", "/mmds/config", `{"network_interfaces": ["eth9"]}`, `"eth9" is not a configured network interface`},
		{"uffd backend", "PUT", "/snapshot/load", `{"snapshot_path": "/tmp/s", "mem_backend": {"backend_type": "Uffd", "backend_path": "/tmp/u"}}`, "userfaultfd"},
		{"load without memory", "PUT", "/snapshot/load", `{"snapshot_path": "/tmp/s"}`, "needs mem_backend or mem_file_path"},
		{"bad logger level", "PUT", "/logger", `{"level": "Loud"}`, `level "Loud"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.fault(tc.method, tc.path, tc.body, tc.want)
		})
	}
}

// TestBodyCap: a body of MaxBodyBytes is read; one byte more is refused.
func TestBodyCap(t *testing.T) {
	c := serve(t, New(Options{}))
	// A valid request padded with spaces to the cap exactly.
	body := `{"vcpu_count": 2, "mem_size_mib": 64}`
	body += strings.Repeat(" ", 51200-len(body))
	c.ok("PUT", "/machine-config", body)
	c.fault("PUT", "/machine-config", body+" ", "larger than 51200 bytes")
}

// TestLoadAfterBootSpecificConfig: as Firecracker, a snapshot cannot be
// loaded once the VM is being configured for a boot.
func TestLoadAfterBootSpecificConfig(t *testing.T) {
	c := serve(t, New(Options{}))
	c.ok("PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 64}`)
	c.fault("PUT", "/snapshot/load", `{"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"}`, "after configuring boot-specific resources")
}

// TestVMConfigEchoesWhatWasPut configures a VM piece by piece and reads
// it back whole from GET /vm/config.
func TestVMConfigEchoesWhatWasPut(t *testing.T) {
	c := serve(t, New(Options{}))
	kernel := file(t, "vmlinux", 4096)
	root, data := file(t, "root.img", 1<<20), file(t, "data.img", 1<<20)
	c.ok("PUT", "/machine-config", `{"vcpu_count": 2, "mem_size_mib": 256, "track_dirty_pages": true}`)
	c.ok("PATCH", "/machine-config", `{"mem_size_mib": 512}`)
	c.ok("PUT", "/boot-source", `{"kernel_image_path": "`+kernel+`", "boot_args": "console=ttyS0"}`)
	c.ok("PUT", "/drives/rootfs", `{"drive_id": "rootfs", "path_on_host": "`+root+`", "is_root_device": true, "is_read_only": true}`)
	c.ok("PUT", "/drives/data", `{"drive_id": "data", "path_on_host": "`+data+`", "is_root_device": false,
		"rate_limiter": {"bandwidth": {"size": 1000000, "refill_time": 1000}}}`)
	c.ok("PUT", "/network-interfaces/eth0", `{"iface_id": "eth0", "host_dev_name": "tap7", "guest_mac": "06:00:ac:10:00:02"}`)
	c.ok("PUT", "/vsock", `{"guest_cid": 3, "uds_path": "/tmp/v.sock"}`)
	c.ok("PUT", "/balloon", `{"amount_mib": 64, "deflate_on_oom": true, "stats_polling_interval_s": 1}`)
	c.ok("PATCH", "/balloon", `{"amount_mib": 32}`)
	c.ok("PUT", "/mmds/config", `{"version": "V2", "network_interfaces": ["eth0"]}`)
	c.fault("PUT", "/drives/other", `{"drive_id": "other", "path_on_host": "`+data+`", "is_root_device": true}`, "already the root device")

	var got struct {
		Machine struct {
			VCPUs int    `json:"vcpu_count"`
			Mem   int    `json:"mem_size_mib"`
			Dirty bool   `json:"track_dirty_pages"`
			Huge  string `json:"huge_pages"`
		} `json:"machine-config"`
		Boot struct {
			Kernel string `json:"kernel_image_path"`
			Args   string `json:"boot_args"`
		} `json:"boot-source"`
		Drives []struct {
			ID   string `json:"drive_id"`
			Path string `json:"path_on_host"`
			Root bool   `json:"is_root_device"`
			RO   bool   `json:"is_read_only"`
			RL   *struct {
				BW struct {
					Size uint64 `json:"size"`
				} `json:"bandwidth"`
			} `json:"rate_limiter"`
		} `json:"drives"`
		Nets []struct {
			ID  string `json:"iface_id"`
			Tap string `json:"host_dev_name"`
			MAC string `json:"guest_mac"`
		} `json:"network-interfaces"`
		Vsock struct {
			CID uint64 `json:"guest_cid"`
			UDS string `json:"uds_path"`
		} `json:"vsock"`
		Balloon struct {
			Amount int  `json:"amount_mib"`
			OOM    bool `json:"deflate_on_oom"`
			Stats  int  `json:"stats_polling_interval_s"`
		} `json:"balloon"`
		MMDS struct {
			Version string   `json:"version"`
			Ifaces  []string `json:"network_interfaces"`
			Addr    string   `json:"ipv4_address"`
		} `json:"mmds-config"`
	}
	if err := json.Unmarshal([]byte(c.ok("GET", "/vm/config", "")), &got); err != nil {
		t.Fatal(err)
	}
	m := got.Machine
	if m.VCPUs != 2 || m.Mem != 512 || !m.Dirty || m.Huge != "None" {
		t.Errorf("machine-config = %+v, want 2 vCPUs, 512 MiB, dirty tracking, no huge pages", m)
	}
	if got.Boot.Kernel != kernel || got.Boot.Args != "console=ttyS0" {
		t.Errorf("boot-source = %+v", got.Boot)
	}
	if len(got.Drives) != 2 || got.Drives[0].ID != "rootfs" || got.Drives[0].Path != root || !got.Drives[0].Root || !got.Drives[0].RO ||
		got.Drives[1].ID != "data" || got.Drives[1].Path != data || got.Drives[1].Root || got.Drives[1].RL == nil || got.Drives[1].RL.BW.Size != 1000000 {
		t.Errorf("drives = %+v", got.Drives)
	}
	if len(got.Nets) != 1 || got.Nets[0].ID != "eth0" || got.Nets[0].Tap != "tap7" || got.Nets[0].MAC != "06:00:ac:10:00:02" {
		t.Errorf("network-interfaces = %+v", got.Nets)
	}
	if got.Vsock.CID != 3 || got.Vsock.UDS != "/tmp/v.sock" {
		t.Errorf("vsock = %+v", got.Vsock)
	}
	if got.Balloon.Amount != 32 || !got.Balloon.OOM || got.Balloon.Stats != 1 {
		t.Errorf("balloon = %+v, want 32 MiB (patched), deflate on OOM, stats every 1 s", got.Balloon)
	}
	if got.MMDS.Version != "V2" || len(got.MMDS.Ifaces) != 1 || got.MMDS.Ifaces[0] != "eth0" || got.MMDS.Addr != "169.254.169.254" {
		t.Errorf("mmds-config = %+v, want V2 on eth0 at the default address", got.MMDS)
	}
	var inst InstanceInfo
	json.Unmarshal([]byte(c.ok("GET", "/", "")), &inst)
	if inst.State != "Not started" {
		t.Errorf("GET / state = %q before InstanceStart", inst.State)
	}
}

func TestMMDSGoesToTheStore(t *testing.T) {
	c := serve(t, New(Options{MMDS: mmds.NewStore(0)}))
	c.ok("PUT", "/mmds", `{"latest": {"meta-data": {"ami-id": "ami-1"}}}`)
	c.ok("PATCH", "/mmds", `{"extra": 1}`)
	var got map[string]any
	json.Unmarshal([]byte(c.ok("GET", "/mmds", "")), &got)
	if got["extra"] != float64(1) || got["latest"] == nil {
		t.Errorf("GET /mmds = %v", got)
	}
	c.fault("PUT", "/mmds", `[1, 2]`, "must be a JSON object")
}
