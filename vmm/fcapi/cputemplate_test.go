package fcapi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vmCPU is what GET /vm/config says about the CPU template.
type vmCPU struct {
	Machine struct {
		Template string `json:"cpu_template"`
	} `json:"machine-config"`
	CPUConfig *struct {
		CPUID []struct {
			Leaf      string `json:"leaf"`
			Modifiers []struct {
				Register string `json:"register"`
				Bitmap   string `json:"bitmap"`
			} `json:"modifiers"`
		} `json:"cpuid_modifiers"`
	} `json:"cpu-config"`
}

func (c *client) cpuConfig() vmCPU {
	c.t.Helper()
	var got vmCPU
	if err := json.Unmarshal([]byte(c.ok("GET", "/vm/config", "")), &got); err != nil {
		c.t.Fatal(err)
	}
	return got
}

// A custom template from PUT /cpu-config (Firecracker's documentation
// example's shape): clears SSE4A (leaf 0x80000001 ECX bit 6).
const noSSE4A = `{"cpuid_modifiers": [{"leaf": "0x80000001", "subleaf": "0x0", "flags": 0,
	"modifiers": [{"register": "ecx", "bitmap": "0bx0xxxxxx"}]}]}`

// TestCPUTemplatesLastOneWins: a static template from machine-config and
// a custom one from /cpu-config replace each other, the last one set
// wins, and a machine-config without cpu_template keeps what is there,
// as in Firecracker; GET /vm/config shows which.
func TestCPUTemplatesLastOneWins(t *testing.T) {
	c := serve(t, New(Options{}))
	if got := c.cpuConfig(); got.Machine.Template != "None" || got.CPUConfig != nil {
		t.Errorf("fresh: %+v, want None and no cpu-config", got)
	}
	c.ok("PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 64, "cpu_template": "T2A"}`)
	if got := c.cpuConfig(); got.Machine.Template != "T2A" || got.CPUConfig != nil {
		t.Errorf("after T2A: %+v", got)
	}
	if !strings.Contains(c.ok("GET", "/machine-config", ""), `"cpu_template":"T2A"`) {
		t.Error("GET /machine-config does not show T2A")
	}
	c.ok("PUT", "/machine-config", `{"vcpu_count": 2, "mem_size_mib": 64}`)
	if got := c.cpuConfig(); got.Machine.Template != "T2A" {
		t.Errorf("PUT without cpu_template dropped T2A: %+v", got)
	}
	c.ok("PUT", "/cpu-config", noSSE4A)
	got := c.cpuConfig()
	if got.Machine.Template != "None" || got.CPUConfig == nil || len(got.CPUConfig.CPUID) != 1 {
		t.Fatalf("after PUT /cpu-config: %+v, want the custom template shown", got)
	}
	m := got.CPUConfig.CPUID[0]
	if m.Leaf != "0x80000001" || len(m.Modifiers) != 1 || m.Modifiers[0].Register != "ecx" ||
		m.Modifiers[0].Bitmap != "0b"+strings.Repeat("x", 25)+"0xxxxxx" {
		t.Errorf("custom template shown as %+v", m)
	}
	c.ok("PATCH", "/machine-config", `{"cpu_template": "C3"}`)
	if got := c.cpuConfig(); got.Machine.Template != "C3" || got.CPUConfig != nil {
		t.Errorf("after PATCH C3: %+v", got)
	}
	c.ok("PATCH", "/machine-config", `{"cpu_template": "None"}`)
	if got := c.cpuConfig(); got.Machine.Template != "None" || got.CPUConfig != nil {
		t.Errorf("after None: %+v", got)
	}
	// Configuring a template is boot-specific: no snapshot load after it.
	c.fault("PUT", "/snapshot/load", `{"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"}`, "boot-specific")
}

// TestConfigFileCPUConfig: a configuration file's cpu-config is a custom
// template inline or the path of a file holding one, and wins over the
// file's cpu_template.
func TestConfigFileCPUConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tmpl.json")
	if err := os.WriteFile(path, []byte(noSSE4A), 0o644); err != nil {
		t.Fatal(err)
	}
	quoted, _ := json.Marshal(path)
	for name, cpu := range map[string]string{"inline": noSSE4A, "path": string(quoted)} {
		t.Run(name, func(t *testing.T) {
			s := New(Options{})
			err := s.ApplyConfig([]byte(`{"machine-config": {"vcpu_count": 1, "mem_size_mib": 64, "cpu_template": "T2"}, "cpu-config": ` + cpu + `}`))
			if err != nil {
				t.Fatal(err)
			}
			got := serve(t, s).cpuConfig()
			if got.Machine.Template != "None" || got.CPUConfig == nil || got.CPUConfig.CPUID[0].Leaf != "0x80000001" {
				t.Errorf("%+v, want the custom template", got)
			}
		})
	}
	for name, tc := range map[string]struct{ cpu, want string }{
		"missing file": {`"/nonexistent/tmpl.json"`, "no such file"},
		"bad template": {`{"msr_modifiers": [{"addr": "0x10a", "bitmap": "0bq"}]}`, "msr_modifiers[0]"},
	} {
		err := New(Options{}).ApplyConfig([]byte(`{"cpu-config": ` + tc.cpu + `}`))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "cpu-config") {
			t.Errorf("%s: %v, want an error naming cpu-config and %q", name, err, tc.want)
		}
	}
}
