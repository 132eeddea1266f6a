package kvm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDetectBackend(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "kvm")
	mods := func(names ...string) string {
		m := t.TempDir()
		for _, n := range names {
			if err := os.Mkdir(filepath.Join(m, n), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return m
	}
	if b := detectBackend(dev, mods("kvm", "kvm_pvm")); b.Kind != BackendAbsent || !strings.Contains(b.Detail, "did not bind") {
		t.Errorf("no device, kvm_pvm loaded: got %+v", b)
	}
	if b := detectBackend(dev, mods()); b.Kind != BackendAbsent || !strings.Contains(b.Detail, "not loaded") {
		t.Errorf("no device, no modules: got %+v", b)
	}
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		mods []string
		want BackendKind
		mod  string
	}{
		{[]string{"kvm", "kvm_amd"}, BackendHardware, "kvm_amd"},
		{[]string{"kvm", "kvm_intel"}, BackendHardware, "kvm_intel"},
		{[]string{"kvm", "kvm_pvm"}, BackendPVM, "kvm_pvm"},
		{[]string{"kvm"}, BackendUnknown, ""},
	}
	for _, c := range cases {
		b := detectBackend(dev, mods(c.mods...))
		if b.Kind != c.want || b.Module != c.mod {
			t.Errorf("modules %v: got %+v, want kind %d module %q", c.mods, b, c.want, c.mod)
		}
	}
}
