package e2e_test

import "testing"

// TestVsock: a host program and a guest program exchange data both ways
// over virtio-vsock, guest-initiated and host-initiated, with matching
// sha256 sums on both ends.
func TestVsock(t *testing.T) {
	runScenario(t, "vsock.sh", []expectedRun{{"vsock", "1"}})
}

// TestNet: the host and the guest ping each other over virtio-net on a TAP
// and exchange a 4 MiB TCP stream with matching sha256 sums on both ends;
// then a guest reads tern's metadata service (MMDS version 2, with a
// session token) and gets Ctrl+Alt+Del through tern's API.
func TestNet(t *testing.T) {
	runScenario(t, "net.sh", []expectedRun{{"net", "1"}, {"mmds", "1"}, {"mmds1", "1"}})
}
