package fcapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ternvm/tern/mmds"
)

// FuzzAPIBodies sends arbitrary bodies to every endpoint of a fresh
// server: each answer is 204 or 200, or a 400 with one fault message,
// and nothing panics.
func FuzzAPIBodies(f *testing.F) {
	seeds := []string{
		`{"vcpu_count": 2, "mem_size_mib": 64}`, `{"huge_pages": "2M"}`, `{"kernel_image_path": "/dev/null"}`,
		`{"drive_id": "a", "path_on_host": "/dev/null", "is_root_device": true}`,
		`{"iface_id": "a", "host_dev_name": "tap0", "guest_mac": "06:00:00:00:00:01", "rx_rate_limiter": {"ops": {"size": 1, "refill_time": 1}}}`,
		`{"guest_cid": 3, "uds_path": "/nonexistent/v.sock"}`, `{"rate_limiter": {"bandwidth": {"size": 18446744073709551615, "refill_time": 18446744073709551615}}}`,
		`{"amount_mib": 4294967295, "deflate_on_oom": true}`, `{"state": "Paused"}`, `{"action_type": "InstanceStart"}`,
		`{"snapshot_path": "/nonexistent/s", "mem_backend": {"backend_type": "File", "backend_path": "/nonexistent/m"}}`,
		`{"version": "V2", "network_interfaces": ["a"], "ipv4_address": "169.254.0.1"}`, `{"level": "Off"}`, `null`, `[]`, `{"a":`, ``,
	}
	for i, s := range seeds {
		f.Add(uint8(i), s)
	}
	paths := []string{"/machine-config", "/boot-source", "/drives/a", "/network-interfaces/a", "/vsock", "/entropy",
		"/balloon", "/balloon/statistics", "/vm", "/actions", "/snapshot/load", "/snapshot/create", "/mmds/config",
		"/logger", "/serial", "/mmds", "/cpu-config", "/drives/a/b", "/"}
	methods := []string{"PUT", "PATCH", "GET"}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		s := New(Options{MMDS: mmds.NewStore(0)})
		defer s.Close()
		// A few requests, so that a body can meet the state earlier
		// ones left.
		for i := 0; i < 3; i++ {
			k := int(which) + i*7
			method, path := methods[k%len(methods)], paths[k%len(paths)]
			if rest := strings.NewReplacer("/nonexistent/", "", "/dev/null", "").Replace(body); strings.Contains(rest, "/") {
				// Fuzzed paths must not make the server write host
				// files (logs, metrics, serial output).
				return
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
			switch rec.Code {
			case http.StatusOK, http.StatusNoContent:
			case http.StatusBadRequest:
				var fm map[string]string
				if err := json.Unmarshal(rec.Body.Bytes(), &fm); err != nil || fm["fault_message"] == "" {
					t.Fatalf("%s %s %q: 400 body %q is not a fault", method, path, body, rec.Body.String())
				}
			default:
				t.Fatalf("%s %s %q: status %d", method, path, body, rec.Code)
			}
		}
	})
}

// FuzzApplyConfig applies arbitrary configuration files to a fresh
// server: each is applied or refused with an error, and nothing panics.
func FuzzApplyConfig(f *testing.F) {
	for _, s := range []string{
		`{"boot-source": {"kernel_image_path": "/dev/null"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}`,
		`{"drives": [{"drive_id": "a", "path_on_host": "/dev/null", "is_root_device": true}], "network-interfaces": [{"iface_id": "a", "host_dev_name": "tap0"}]}`,
		`{"cpu-config": {"cpuid_modifiers": []}, "balloon": null, "vsock": {"guest_cid": 3, "uds_path": "/nonexistent/v.sock"}}`,
		`{"drives": [{}]}`, `{"memory-hotplug": {}}`, `{"pmem": [1]}`, `{"machine_config": {}}`, `[]`, `null`, `{"a":`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		if rest := strings.NewReplacer("/nonexistent/", "", "/dev/null", "").Replace(file); strings.Contains(rest, "/") {
			// Fuzzed paths must not make the server write host files
			// (logs, metrics, serial output) or read templates.
			return
		}
		s := New(Options{MMDS: mmds.NewStore(0)})
		defer s.Close()
		_ = s.ApplyConfig([]byte(file))
	})
}
