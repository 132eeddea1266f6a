package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternvm/tern/test/tinyguest"
)

func TestCacheDirFor(t *testing.T) {
	dirs := map[string]bool{"/run": true, "/run/user/1000": true}
	isDir := func(p string) bool { return dirs[p] }
	for _, c := range []struct {
		euid int
		xdg  string
		want string
	}{
		{0, "", "/run/tern"},
		{0, "/run/user/1000", "/run/tern"}, // root's is /run's, whatever the environment says
		{1000, "/run/user/1000", "/run/user/1000/tern"},
		{1000, "", ""},               // no runtime directory: nothing kept
		{1000, "/run/user/1001", ""}, // one that does not exist
		{1000, "/nonexistent/tern", ""},
	} {
		if got := cacheDirFor(c.euid, c.xdg, isDir); got != c.want {
			t.Errorf("euid %d, XDG_RUNTIME_DIR %q: %q, want %q", c.euid, c.xdg, got, c.want)
		}
	}
	if got := cacheDirFor(0, "", func(string) bool { return false }); got != "" {
		t.Errorf("no /run: %q, want none", got)
	}
}

// tern run and tern firecracker keep KVM's supported CPUID in --cache-dir
// and read it from there the next time; --cache-dir "" keeps nothing.
func TestCacheDirReachesTheVM(t *testing.T) {
	tinyguest.RequireKVM(t)
	dir := t.TempDir()
	kernel, err := tinyguest.BuildHello(dir)
	if err != nil {
		t.Fatal(err)
	}
	fcConfig := filepath.Join(dir, "vm.json")
	os.WriteFile(fcConfig, []byte(`{"boot-source": {"kernel_image_path": "`+kernel+`"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 32}}`), 0o600)
	_, seccompFlags := fcSeccomp(t)
	cache := filepath.Join(dir, "cache")
	run := []string{"tern", "--log-level", "debug", "run", "--kernel", kernel, "--pvh", "--memory", "32M", "--console", "stdio"}
	fc := []string{"tern", "firecracker", "--level", "Debug", "--no-api", "--config-file", fcConfig}
	for _, c := range []struct {
		argv      []string
		cache     string
		dir, from string // as the "supported CPUID" line gives them
	}{
		{run, cache, cache, `from="kvm, kept"`},
		{run, cache, cache, "from=cache"},
		{fc, cache, cache, "from=cache"},
		{run, "", "", "from=kvm"},
	} {
		argv := append(append(append([]string(nil), c.argv...), "--cache-dir", c.cache), seccompFlags...)
		code, out, errOut := runFirecracker(t, argv...)
		if code != 0 || !strings.Contains(out, tinyguest.HelloLine) {
			t.Fatalf("%v: exit %d, console %q; stderr: %s", argv, code, out, errOut)
		}
		var line string
		for _, l := range strings.Split(errOut, "\n") {
			if strings.Contains(l, "supported CPUID") {
				line = l
			}
		}
		if !strings.Contains(line, " dir="+c.dir+" ") || !strings.HasSuffix(line, c.from) {
			t.Errorf("%v: supported CPUID line %q, want dir=%s and %s; stderr:\n%s", argv, line, c.dir, c.from, errOut)
		}
	}
}
