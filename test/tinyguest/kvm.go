package tinyguest

import (
	"testing"

	"github.com/ternvm/tern/kvm"
)

// RequireKVM skips t where this host has no usable /dev/kvm, and
// otherwise logs which KVM backs it, since what a guest can do (and what
// a figure means) depends on it.
func RequireKVM(t testing.TB) {
	t.Helper()
	b := kvm.DetectBackend("/dev/kvm")
	if b.Kind == kvm.BackendAbsent {
		t.Skipf("this host has no usable /dev/kvm (%v): the test runs tiny guests on it", b)
	}
	t.Logf("running on this host's /dev/kvm (backend: %v)", b)
}
