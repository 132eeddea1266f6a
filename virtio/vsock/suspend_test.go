package vsock

import (
	"encoding/binary"
	"testing"
)

// A pause closes the host ends of the connections, so the next activation
// must tell the driver with a transport reset event, as a restore does.
func TestSuspendPostsATransportResetOnTheNextActivation(t *testing.T) {
	g := startGuest(t)
	g.dev.Suspend()
	if g.dev.sess != nil {
		t.Fatal("Suspend left the session running")
	}
	g.activate() // fresh rings; the device resumes on them
	g.waitFor("transport reset event after a suspend", func() bool { return g.ev.UsedIdx() == 1 })
	var ev uint32
	g.locked(func() {
		id, _ := g.ev.UsedElem(0)
		ev = binary.LittleEndian.Uint32(g.mem.Bytes()[evBufBase+uint64(id)*8:])
	})
	// VIRTIO_VSOCK_EVENT_TRANSPORT_RESET is 0 (virtio 1.2 5.10.6.7).
	if ev != 0 {
		t.Errorf("event id %d, want TRANSPORT_RESET (0)", ev)
	}
}
