package vsock

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ternvm/tern/virtio/internal/virtqtest"
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

// A connection request the guest queued before a pause or snapshot belongs
// to a connection the transport reset ends: the device must not connect a
// host end for it (nothing would ever close that end).
func TestStaleRequestIsDroppedWhenAResetIsPending(t *testing.T) {
	d, path := newDevice(t, tGuestCID)
	ln, err := net.Listen("unix", fmt.Sprintf("%s_%d", path, 5003))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	if err := d.SetState(State{GuestCID: tGuestCID, SocketPath: path}); err != nil {
		t.Fatal(err)
	}
	g := &guest{t: t, dev: d, path: path}
	g.layout()
	// Queued before the driver saw the reset: as a restored ring holds it.
	req := guestPkt(40003, 5003, tOpRequest).encode()
	copy(g.mem.Bytes()[txBufBase:], req)
	g.tx.Chain(0, virtqtest.Seg{Addr: txBufBase, Len: uint32(len(req))})
	g.tx.Publish(0)
	g.start()
	defer d.Reset()
	g.waitFor("the stale request returned", func() bool { return g.tx.UsedIdx() == 1 })
	g.waitFor("transport reset event", func() bool { return g.ev.UsedIdx() == 1 })
	select {
	case <-accepted:
		t.Fatal("the device connected a host end for a request queued before the reset")
	case <-time.After(200 * time.Millisecond):
	}
	g.expectNone(50 * time.Millisecond) // and told the guest nothing about it
}
