package mmds

import (
	"bytes"
	"testing"
	"time"
)

var (
	guestMAC = [6]byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	guestIP  = [4]byte{169, 254, 0, 2}
	mmdsIP   = [4]byte{169, 254, 169, 254}
)

func testStack(t *testing.T) *Stack {
	t.Helper()
	st := NewStore(0)
	st.Put([]byte(`{"k":"v"}`))
	svc, err := New(Config{Interfaces: []string{"net0"}}, st)
	if err != nil {
		t.Fatal(err)
	}
	svc.rto = time.Millisecond
	s := svc.NewStack()
	t.Cleanup(s.Close)
	return s
}

// arpRequestFrame is an ARP request as a Linux guest broadcasts it,
// written out field by field from RFC 826.
func arpRequestFrame(target [4]byte) []byte {
	b := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // broadcast
		0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // guest
		0x08, 0x06, // ARP
		0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // Ethernet, IPv4, request
		0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 169, 254, 0, 2, // sender
		0, 0, 0, 0, 0, 0, // target hardware: unknown
	}
	return append(b, target[:]...)
}

func TestARPReply(t *testing.T) {
	s := testStack(t)
	woken := 0
	s.SetNotify(func() { woken++ })
	if !s.Intercept(arpRequestFrame(mmdsIP)) {
		t.Fatal("ARP request for the service's address not taken")
	}
	if woken != 1 {
		t.Errorf("notify called %d times, want 1", woken)
	}
	r := s.Next()
	want := []byte{
		0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // to the guest
		0x06, 0x01, 0x23, 0x45, 0x67, 0x01, // from Firecracker's MMDS MAC
		0x08, 0x06,
		0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02, // reply
		0x06, 0x01, 0x23, 0x45, 0x67, 0x01, 169, 254, 169, 254,
		0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 169, 254, 0, 2,
	}
	if !bytes.Equal(r, want) {
		t.Errorf("ARP reply\n% x\nwant\n% x", r, want)
	}
	if s.Next() != nil {
		t.Error("more than one reply")
	}
	if s.Intercept(arpRequestFrame([4]byte{169, 254, 0, 1})) {
		t.Error("ARP request for another address taken: it belongs on the TAP")
	}
}

func TestFramesForOthersPass(t *testing.T) {
	s := testStack(t)
	other := buildTCP(tcpOut{dstMAC: [6]byte{2}, srcMAC: guestMAC, src: guestIP, dst: [4]byte{10, 0, 0, 1}, srcPort: 1000, dstPort: 80, flags: tcpSYN})
	if s.Intercept(other) {
		t.Error("a TCP SYN to 10.0.0.1 was taken")
	}
	for _, f := range [][]byte{nil, {1, 2, 3}, make([]byte, 14)} {
		if s.Intercept(f) {
			t.Errorf("%d-byte non-frame taken", len(f))
		}
	}
	// UDP to the service's address is the service's: dropped, not forwarded.
	udp := buildTCP(tcpOut{dstMAC: DefaultMAC, srcMAC: guestMAC, src: guestIP, dst: mmdsIP, srcPort: 1000, dstPort: 80})
	udp[ethHeaderLen+9] = 17
	if !s.Intercept(udp) || s.Next() != nil {
		t.Error("UDP to the service's address must be taken and not answered")
	}
}

func TestTCPClosedPortAnswersReset(t *testing.T) {
	s := testStack(t)
	syn := buildTCP(tcpOut{dstMAC: DefaultMAC, srcMAC: guestMAC, src: guestIP, dst: mmdsIP, srcPort: 40000, dstPort: 22, seq: 1000, flags: tcpSYN})
	if !s.Intercept(syn) {
		t.Fatal("SYN to the service's address not taken")
	}
	r := s.Next()
	if r == nil {
		t.Fatal("no answer")
	}
	ip, _ := parseIPv4(r[ethHeaderLen:])
	seg, _ := parseTCP(ip.payload)
	if seg.flags != tcpRST|tcpACK || seg.ack != 1001 || seg.srcPort != 22 || seg.dstPort != 40000 {
		t.Errorf("answer flags %#x ack %d ports %d->%d, want RST|ACK ack 1001 22->40000", seg.flags, seg.ack, seg.srcPort, seg.dstPort)
	}
	// The checksums verify: a sum over a header with its checksum is 0.
	if fold(checksum(0, r[ethHeaderLen:ethHeaderLen+ipHeaderLen])) != 0 {
		t.Error("IPv4 header checksum wrong")
	}
	tcp := r[ethHeaderLen+ipHeaderLen:]
	sum := checksum(0, r[ethHeaderLen+12:ethHeaderLen+20]) + protoTCP + uint32(len(tcp))
	if fold(checksum(sum, tcp)) != 0 {
		t.Error("TCP checksum wrong")
	}
}

func TestConnectionTableBounded(t *testing.T) {
	s := testStack(t)
	for i := 0; i < 3*maxConns; i++ {
		syn := buildTCP(tcpOut{dstMAC: DefaultMAC, srcMAC: guestMAC, src: guestIP, dst: mmdsIP, srcPort: uint16(30000 + i), dstPort: 80, seq: 1, flags: tcpSYN})
		s.Intercept(syn)
	}
	s.mu.Lock()
	n := len(s.conns)
	s.mu.Unlock()
	if n > maxConns {
		t.Fatalf("%d connections held, at most %d allowed", n, maxConns)
	}
	for s.Next() != nil {
	}
	// Half-open connections go once the guest stops answering.
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		n = len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d half-open connections still held", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
