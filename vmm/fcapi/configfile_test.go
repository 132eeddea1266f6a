package fcapi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// jsonNames is the JSON key of each field of t.
func jsonNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// ApplyConfig reads the file's sections through configFile: a section
// FullConfig gains must be read there too, or a file that gives it would
// be refused as an unknown key.
func TestConfigFileHasEveryFullConfigSection(t *testing.T) {
	full, file := jsonNames(reflect.TypeFor[FullConfig]()), jsonNames(reflect.TypeFor[configFile]())
	if !slices.Equal(full, file) {
		t.Fatalf("FullConfig's keys %v, configFile's %v", full, file)
	}
}

// A configuration file is held to what each section's PUT holds its body
// to, and what the file says is what GET /vm/config then gives.
func TestApplyConfigAsThePUTsWould(t *testing.T) {
	kernel := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(kernel, []byte("not really a kernel"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, _ := json.Marshal(kernel)
	good := `{"boot-source": {"kernel_image_path": ` + string(k) + `, "boot_args": "console=ttyS0"},
		"machine-config": {"vcpu_count": 2, "mem_size_mib": 256},
		"balloon": null, "drives": [], "network-interfaces": null}`
	s := New(Options{})
	if err := s.ApplyConfig([]byte(good)); err != nil {
		t.Fatalf("a good file: %v", err)
	}
	got := s.fullConfig()
	if m := got.MachineConfig; m == nil || *m.VCPUCount != 2 || *m.MemSizeMiB != 256 {
		t.Errorf("machine-config applied as %+v, want 2 vCPUs and 256 MiB", got.MachineConfig)
	}
	if b := got.BootSource; b == nil || b.KernelImagePath != kernel || b.BootArgs != "console=ttyS0" {
		t.Errorf("boot-source applied as %+v", got.BootSource)
	}
	if got.Balloon != nil {
		t.Errorf("a null balloon was applied as %+v", got.Balloon)
	}

	for _, c := range []struct{ name, file, want string }{
		{"unknown key", `{"machine_config": {}}`, `unknown field "machine_config"`},
		{"unknown field in a section", `{"machine-config": {"vcpu_count": 1, "mem_size_mib": 64, "cores": 4}}`, `unknown field "cores"`},
		{"wrong type in a section", `{"machine-config": {"vcpu_count": 1, "mem_size_mib": "lots"}}`, "mem_size_mib"},
		{"a PUT's own check", `{"machine-config": {"vcpu_count": 1}}`, "needs vcpu_count and mem_size_mib"},
		{"drive without id", `{"drives": [{"path_on_host": "/x", "is_root_device": false}]}`, "lacks drive_id"},
		{"interface without id", `{"network-interfaces": [{"host_dev_name": "tap0"}]}`, "lacks iface_id"},
		{"memory hotplug", `{"memory-hotplug": {"total_size_mib": 1024}}`, "not implemented"},
		{"pmem", `{"pmem": [{"id": "p"}]}`, "not implemented"},
		{"not an object", `[]`, "configuration file"},
		{"a section not an object", `{"boot-source": 3}`, "boot-source"},
	} {
		err := New(Options{}).ApplyConfig([]byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}
