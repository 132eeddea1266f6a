package balloon

import (
	"encoding/binary"
	"testing"
)

// A paused driver still has its pages in the balloon: Suspend must keep
// the actual count a Reset (a driver starting over) forgets.
func TestSuspendKeepsActualWhereResetClearsIt(t *testing.T) {
	r := newRig(t, Config{TargetMiB: 8})
	r.activate()
	var v [4]byte
	binary.LittleEndian.PutUint32(v[:], 2048)
	r.dev.WriteConfig(4, v[:]) // actual, offset 4 of struct virtio_balloon_config
	r.dev.Suspend()
	if got := r.dev.Actual(); got != 2048 {
		t.Errorf("actual after Suspend = %d, want 2048", got)
	}
	r.activate()
	r.dev.Reset()
	if got := r.dev.Actual(); got != 0 {
		t.Errorf("actual after Reset = %d, want 0", got)
	}
}
