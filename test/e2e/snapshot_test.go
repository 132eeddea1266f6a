package e2e_test

import "testing"

// TestSnapshot: a guest with work in flight (a counter on its console and
// its virtio-blk disk, a TCP connection over a TAP, vsock both ways) is
// snapshotted, its tern stopped, and restored by a new tern on a copy of
// its disk; the counter, the TCP connection and the clock go on, vsock is
// dialled again; a full and a diff snapshot of the restored guest are
// merged and restored once more; a truncated and a corrupt snapshot are
// refused. No run is listed for checkRun: the booted source ends by
// SIGTERM once snapshotted (exit 143), and a restored guest does not boot
// again, so the scenario checks the source's boot lines itself.
func TestSnapshot(t *testing.T) {
	runScenario(t, "snapshot.sh", nil)
}
