package nested

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	hw := Probe{KVMExists: true, VendorModules: []string{"kvm_amd"}, CPUVirtFlag: "svm"}
	tests := []struct {
		name string
		p    Probe
		want Kind
		why  string
	}{
		{"no /dev/kvm (this project's machines)", Probe{PVMPresent: true}, KindNested, "/dev/kvm absent here"},
		{"/dev/kvm from kvm_pvm", Probe{KVMExists: true, PVMPresent: true}, KindNested, "kvm_pvm"},
		{"/dev/kvm not openable", Probe{KVMExists: true, KVMOpenErr: errors.New("permission denied"), VendorModules: []string{"kvm_amd"}, CPUVirtFlag: "svm"}, KindNested, "permission denied"},
		{"vendor module without svm/vmx", Probe{KVMExists: true, VendorModules: []string{"kvm_intel"}}, KindNested, "neither svm nor vmx"},
		{"no vendor module", Probe{KVMExists: true}, KindNested, "no kvm_amd or kvm_intel"},
		{"AMD-V host", hw, KindDirect, "kvm_amd (svm)"},
		{"forced nested on an AMD-V host", Probe{KVMExists: true, VendorModules: []string{"kvm_amd"}, CPUVirtFlag: "svm", Forced: KindNested}, KindNested, "TERN_TEST_BACKEND=nested"},
		{"forced direct", Probe{Forced: KindDirect}, KindDirect, "TERN_TEST_BACKEND=direct"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, why := Decide(tc.p)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("Decide = %s, %q; want %s and a reason mentioning %q", got, why, tc.want, tc.why)
			}
		})
	}
}

func TestCPUVirtFlag(t *testing.T) {
	amd := "processor\t: 0\nflags\t\t: fpu vme svm lm\n\nprocessor\t: 1\nflags\t\t: fpu svm\n"
	pvm := "processor\t: 0\nflags\t\t: fpu hypervisor lm\n"
	if got := cpuVirtFlag(amd); got != "svm" {
		t.Errorf("AMD-V cpuinfo: %q, want svm", got)
	}
	if got := cpuVirtFlag(pvm); got != "" {
		t.Errorf("cpuinfo without svm/vmx: %q, want none", got)
	}
}

func TestScenarioRC(t *testing.T) {
	console := "TEST-HOST running scenario x.sh\r\nSCENARIO-CHECK ok a\r\n@@TERN-SCENARIO-RC=3@@\r\n[    4.5] reboot: Power down\r\n"
	if rc, err := scenarioRC(console); err != nil || rc != 3 {
		t.Errorf("scenarioRC = %d, %v; want 3", rc, err)
	}
	if _, err := scenarioRC("Kernel panic - not syncing\n"); err == nil {
		t.Error("a console without the marker gave no error")
	}
}

// The exports the host /init sources must give the script back the exact
// values, quotes and spaces included.
func TestShellExportsRoundTrip(t *testing.T) {
	env := map[string]string{"A": "plain", "B": "it's got 'quotes' and $dollars", "C": "two  spaces"}
	file := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(file, []byte(shellExports(env)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", `. "$0"; printf '%s|%s|%s' "$A" "$B" "$C"`, file).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := env["A"] + "|" + env["B"] + "|" + env["C"]; string(out) != want {
		t.Errorf("sh read back %q, want %q", out, want)
	}
}

func TestCheckJobRejectsPathsInFileNames(t *testing.T) {
	tern := filepath.Join(t.TempDir(), "tern")
	os.WriteFile(tern, nil, 0o755)
	if err := checkJob(Job{Files: map[string][]byte{"../x.sh": nil}, Entry: "../x.sh", Tern: tern}); err == nil {
		t.Error("a file name with a path was accepted")
	}
	if err := checkJob(Job{Files: map[string][]byte{"a.sh": nil}, Entry: "b.sh", Tern: tern}); err == nil {
		t.Error("an entry that is not among the files was accepted")
	}
	if err := checkJob(Job{Files: map[string][]byte{"a.sh": nil}, Entry: "a.sh", Tern: tern}); err != nil {
		t.Errorf("a good job was refused: %v", err)
	}
}

func TestDropTCGFeatureWarnings(t *testing.T) {
	in := "qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.07H:EBX.rdseed [bit 18]\n" +
		"qemu-system-x86_64: warning: something else\nSeaBIOS\n"
	if got, want := dropTCGFeatureWarnings(in), "qemu-system-x86_64: warning: something else\nSeaBIOS\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
