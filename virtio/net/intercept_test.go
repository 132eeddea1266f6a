package virtionet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/ternvm/tern/mmds"
	"golang.org/x/sys/unix"
)

// arpRequest is a guest's ARP request for target, written out from RFC 826.
func arpRequest(target [4]byte) []byte {
	f := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	f = append(f, guestMAC...)
	f = append(f, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01)
	f = append(f, guestMAC...)
	f = append(f, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0)
	return append(f, target[:]...)
}

func TestInterceptedFramesStayOffTheTAP(t *testing.T) {
	d, r := activeDevice(t, "tern-mmds0", 0)
	store := mmds.NewStore(0)
	svc, err := mmds.New(mmds.Config{Interfaces: []string{"net0"}}, store)
	if err != nil {
		t.Fatal(err)
	}
	stack := svc.NewStack()
	defer stack.Close()
	d.SetInterceptor(stack)
	host, _ := packetSocket(t, "tern-mmds0", false)
	addrs := r.postRx(2048)
	activate(t, d, r, 0)
	// Let the receive worker settle into its TAP read: the answer must
	// wake it there.
	time.Sleep(50 * time.Millisecond)

	r.sendTx(append(make([]byte, specHdrLen), arpRequest([4]byte{169, 254, 169, 254})...))
	d.QueueNotify(TxQueue)
	r.waitUsed(r.rx, 1)
	_, n := r.rx.UsedElem(0)
	got := r.bytesAt(addrs[0], n)
	if len(got) < specHdrLen+42 {
		t.Fatalf("answer of %d bytes", len(got))
	}
	arp := got[specHdrLen+14:]
	if op := binary.BigEndian.Uint16(arp[6:8]); op != 2 {
		t.Fatalf("answer is ARP operation %d, want a reply (2)", op)
	}
	if !bytes.Equal(arp[8:14], []byte{0x06, 0x01, 0x23, 0x45, 0x67, 0x01}) || !bytes.Equal(arp[14:18], []byte{169, 254, 169, 254}) {
		t.Errorf("reply says %x is at % x", arp[14:18], arp[8:14])
	}

	// An ordinary frame after it goes to the host, and nothing before it.
	frame := ethFrame(peerMAC, guestMAC, 100)
	r.sendTx(append(make([]byte, specHdrLen), frame...))
	d.QueueNotify(TxQueue)
	r.waitUsed(r.tx, 2) // also lets a transmit worker waiting on its first signal go
	if err := unix.SetsockoptTimeval(host, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 3}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for {
		n, from, err := unix.Recvfrom(host, buf, 0)
		if errors.Is(err, unix.EAGAIN) {
			t.Fatal("the ordinary frame did not reach the host")
		} else if err != nil {
			t.Fatal(err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if n >= 14 && binary.BigEndian.Uint16(buf[12:]) == 0x0806 {
			t.Fatal("the ARP request for the MMDS address reached the host")
		}
		if bytes.Equal(buf[:n], frame) {
			break
		}
	}
	if c := d.Counters(); c.TxIntercepted != 1 || c.TxFrames != 1 || c.RxFrames != 1 {
		t.Errorf("counters %+v, want 1 intercepted, 1 sent, 1 received", c)
	}
}

func TestConfigID(t *testing.T) {
	for _, id := range []string{"eth0", "", "a-b_c.1"} {
		if err := (Config{ID: id, TAP: "t0"}).Validate(); err != nil {
			t.Errorf("id %q: %v", id, err)
		}
	}
	for _, id := range []string{"has space", "tab\t", string(make([]byte, 65)), "é"} {
		if err := (Config{ID: id, TAP: "t0"}).Validate(); !errors.Is(err, ErrBadID) {
			t.Errorf("id %q: %v, want ErrBadID", id, err)
		}
	}
}
