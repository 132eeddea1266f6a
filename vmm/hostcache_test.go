package vmm_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"github.com/ternvm/tern/internal/cpuidcache"
	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

// cpuidFrom is where the "supported CPUID" debug line says the answer
// came from, or "" if there was none.
func cpuidFrom(hook *test.Hook) string {
	for _, e := range hook.AllEntries() {
		if e.Message == "supported CPUID" {
			from, _ := e.Data["from"].(string)
			return from
		}
	}
	return ""
}

// helloWithCache runs the hello guest in a VM whose HostCacheDir is dir
// until it powers off after its line, and returns the VM's log.
func helloWithCache(t *testing.T, dir string) *test.Hook {
	t.Helper()
	v, cons, hook := newGuest(t, 32<<20, tinyguest.BuildHello, func(c *vmm.Config) { c.HostCacheDir = dir })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reason, err := v.Run(ctx)
	v.Close()
	if err != nil || reason != vmm.StopPoweroff || !strings.Contains(cons.String(), tinyguest.HelloLine) {
		t.Fatalf("%v, %v, console %q; want a poweroff after %q", reason, err, cons.String(), tinyguest.HelloLine)
	}
	return hook
}

// The first guest asks KVM and keeps the answer in HostCacheDir; the next
// reads it there, and its guest runs as well.
func TestNewKeepsThenReadsTheHostCPUID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	for i, want := range []string{cpuidcache.Kept.String(), cpuidcache.Read.String()} {
		if got := cpuidFrom(helloWithCache(t, dir)); got != want {
			t.Errorf("guest %d: supported CPUID from %q, want %q", i+1, got, want)
		}
		if i == 0 {
			if _, err := os.Stat(filepath.Join(dir, cpuidcache.FileName)); err != nil {
				t.Fatalf("nothing kept: %v", err)
			}
		}
	}
}

// A cache directory others may write is not used, and the log says so at
// warning level; the guest runs on KVM's own answer.
func TestUnsafeHostCacheIsNotUsed(t *testing.T) {
	tinyguest.RequireKVM(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	hook := helloWithCache(t, dir)
	warned := false
	for _, e := range hook.AllEntries() {
		if err, ok := e.Data["error"].(error); ok && e.Level == logrus.WarnLevel && strings.Contains(e.Message, "host cache not used") && strings.Contains(err.Error(), dir) {
			warned = true
		}
	}
	if !warned {
		t.Error("no warning names the unsafe cache directory")
	}
	if _, err := os.Stat(filepath.Join(dir, cpuidcache.FileName)); err == nil {
		t.Error("the answer was kept in a directory others may write")
	}
}
