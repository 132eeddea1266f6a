package virtionet

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var guestMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x02}
var peerMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x63}

// activeDevice makes a TAP with an address in a fresh namespace and a
// device on it activated with acked, and returns them with the rig.
func activeDevice(t *testing.T, tap string, acked uint64) (*Device, *rig) {
	t.Helper()
	enterNetns(t)
	d, err := New(Config{TAP: tap, MAC: guestMAC})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	link, err := netlink.LinkByName(tap)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("10.0.0.1/24")
	if err := netlink.AddrAdd(link, addr); err != nil {
		t.Fatalf("address the TAP: %v", err)
	}
	// Room for the jumbo frames some tests send.
	if err := netlink.LinkSetMTU(link, 9000); err != nil {
		t.Fatalf("TAP MTU: %v", err)
	}
	r := newRig(t, acked|specVersion1)
	return d, r
}

func activate(t *testing.T, d *Device, r *rig, acked uint64) {
	t.Helper()
	if err := d.Activate(r.mem, r.queues, r.irq, acked|specVersion1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Reset)
	t.Cleanup(r.irq.release) // runs first: a held worker must go before Reset waits for it
}

func TestTransmitReachesHost(t *testing.T) {
	d, r := activeDevice(t, "tern-tx0", 0)
	host, _ := packetSocket(t, "tern-tx0", false)
	frame := ethFrame(peerMAC, guestMAC, 200)
	r.sendTx(append(make([]byte, specHdrLen), frame...))
	activate(t, d, r, 0)
	d.QueueNotify(TxQueue)
	r.waitUsed(r.tx, 1)

	if got := recvFrame(t, host, 0, testEtherType); !bytes.Equal(got, frame) {
		t.Errorf("host got %d bytes % x..., want the %d-byte frame", len(got), got[:min(len(got), 20)], len(frame))
	}
	if id, n := r.tx.UsedElem(0); id != 0 || n != 0 {
		t.Errorf("used element (%d, %d), want head 0 with 0 bytes written", id, n)
	}
	c := d.Counters()
	if c.TxFrames != 1 || c.TxBytes != uint64(len(frame)) || c.TxDropped != 0 {
		t.Errorf("counters %+v", c)
	}
}

func TestTransmitPassesChecksumOffloadHeader(t *testing.T) {
	d, r := activeDevice(t, "tern-tx1", specCsum)
	host, _ := packetSocket(t, "tern-tx1", true)
	frame := udpFrame(peerMAC, guestMAC, []byte("checksum me later"))
	hdr := make([]byte, specHdrLen)
	hdr[0] = 1                                 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	binary.LittleEndian.PutUint16(hdr[6:], 34) // csum_start: Ethernet + IPv4
	binary.LittleEndian.PutUint16(hdr[8:], 6)  // csum_offset: UDP checksum
	r.sendTx(append(hdr, frame...))
	activate(t, d, r, specCsum)
	d.QueueNotify(TxQueue)
	r.waitUsed(r.tx, 1)

	// The host's packet socket reports the skb's offload state in a
	// 10-byte struct virtio_net_hdr: it must be what the guest sent.
	got := recvFrame(t, host, 10, 0x0800)
	if got[0] != 1 || binary.LittleEndian.Uint16(got[6:]) != 34 || binary.LittleEndian.Uint16(got[8:]) != 6 {
		t.Errorf("host sees header % x, want NEEDS_CSUM with csum_start 34, csum_offset 6", got[:10])
	}
	if !bytes.Equal(got[10:], frame) {
		t.Error("frame changed on the way")
	}
}

func TestTransmitDropsBadRequests(t *testing.T) {
	d, r := activeDevice(t, "tern-tx2", 0)

	csum := make([]byte, specHdrLen)
	csum[0] = 1 // NEEDS_CSUM, but VIRTIO_NET_F_CSUM was not negotiated
	r.sendTx(append(csum, ethFrame(peerMAC, guestMAC, 64)...))
	r.sendTx(make([]byte, 8)) // shorter than the header
	huge := make([]byte, specHdrLen+65550+1)
	copy(huge[specHdrLen:], ethFrame(peerMAC, guestMAC, 64))
	r.sendTx(huge) // one byte over the largest packet
	r.sendTx(append(make([]byte, specHdrLen), ethFrame(peerMAC, guestMAC, 64)...))
	activate(t, d, r, 0)
	d.QueueNotify(TxQueue)
	r.waitUsed(r.tx, 4)

	if c := d.Counters(); c.TxDropped != 3 || c.TxFrames != 1 {
		t.Errorf("counters %+v, want 3 dropped and 1 sent", c)
	}
	if causes := r.irq.resetCauses(); len(causes) != 0 {
		t.Errorf("bad requests caused a device reset: %v", causes)
	}
}

func TestReceiveFromHost(t *testing.T) {
	d, r := activeDevice(t, "tern-rx0", 0)
	host, ifindex := packetSocket(t, "tern-rx0", false)
	addrs := r.postRx(2048)
	activate(t, d, r, 0)

	frame := ethFrame(guestMAC, peerMAC, 300)
	if err := unix.Sendto(host, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		t.Fatalf("inject: %v", err)
	}
	r.waitUsed(r.rx, 1)

	id, n := r.rx.UsedElem(0)
	if id != 0 || n != uint32(specHdrLen+len(frame)) {
		t.Fatalf("used element (%d, %d), want (0, %d)", id, n, specHdrLen+len(frame))
	}
	got := r.bytesAt(addrs[0], n)
	// No offloads negotiated: flags and gso_type 0; num_buffers is 1
	// without MRG_RXBUF.
	if want := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}; !bytes.Equal(got[:specHdrLen], want) {
		t.Errorf("header % x, want % x", got[:specHdrLen], want)
	}
	if !bytes.Equal(got[specHdrLen:], frame) {
		t.Error("frame differs")
	}
	if c := d.Counters(); c.RxFrames != 1 || c.RxBytes != uint64(len(frame)) {
		t.Errorf("counters %+v", c)
	}
}

// injectPartialUDP sends a UDP frame whose checksum the host left to
// offload (NEEDS_CSUM) through a PACKET_VNET_HDR socket.
func injectPartialUDP(t *testing.T, tap string) []byte {
	t.Helper()
	host, ifindex := packetSocket(t, tap, true)
	frame := udpFrame(guestMAC, peerMAC, []byte("partial checksum from the host"))
	if udpChecksumOK(frame) {
		t.Fatal("test frame already carries a full checksum")
	}
	hdr := make([]byte, 10)
	hdr[0] = 1
	binary.LittleEndian.PutUint16(hdr[6:], 34)
	binary.LittleEndian.PutUint16(hdr[8:], 6)
	if err := unix.Sendto(host, append(hdr, frame...), 0, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		t.Fatalf("inject: %v", err)
	}
	return frame
}

func TestReceiveKeepsPartialChecksumForGuestCsum(t *testing.T) {
	d, r := activeDevice(t, "tern-rx1", specGuestCsum)
	addrs := r.postRx(2048)
	activate(t, d, r, specGuestCsum)
	frame := injectPartialUDP(t, "tern-rx1")
	r.waitUsed(r.rx, 1)

	_, n := r.rx.UsedElem(0)
	got := r.bytesAt(addrs[0], n)
	if got[0] != 1 || binary.LittleEndian.Uint16(got[6:]) != 34 || binary.LittleEndian.Uint16(got[8:]) != 6 {
		t.Errorf("header % x, want NEEDS_CSUM, csum_start 34, csum_offset 6", got[:specHdrLen])
	}
	if !bytes.Equal(got[specHdrLen:], frame) {
		t.Error("frame differs: the kernel should have left the checksum to the guest")
	}
}

func TestReceiveWithoutGuestCsumGetsFullChecksum(t *testing.T) {
	d, r := activeDevice(t, "tern-rx2", 0)
	addrs := r.postRx(2048)
	activate(t, d, r, 0)
	injectPartialUDP(t, "tern-rx2")
	r.waitUsed(r.rx, 1)

	_, n := r.rx.UsedElem(0)
	got := r.bytesAt(addrs[0], n)
	if got[0] != 0 {
		t.Errorf("flags %#x, want 0 for a driver without GUEST_CSUM", got[0])
	}
	if !udpChecksumOK(got[specHdrLen:]) {
		t.Error("UDP checksum does not verify: the kernel did not complete it")
	}
}

func TestReceiveMergeableSpansChains(t *testing.T) {
	d, r := activeDevice(t, "tern-rx3", specMrgRxbuf)
	host, ifindex := packetSocket(t, "tern-rx3", false)
	addrs := r.postRx(1500, 1500, 1500, 1500, 1500)
	activate(t, d, r, specMrgRxbuf)

	frame := ethFrame(guestMAC, peerMAC, 3986) // 4000 bytes, 4012 with the header
	if err := unix.Sendto(host, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		t.Fatalf("inject: %v", err)
	}
	r.waitUsed(r.rx, 3)

	var whole []byte
	for i, want := range []uint32{1500, 1500, 1012} {
		id, n := r.rx.UsedElem(uint16(i))
		if id != uint32(i) || n != want {
			t.Errorf("used element %d = (%d, %d), want (%d, %d)", i, id, n, i, want)
		}
		whole = append(whole, r.bytesAt(addrs[i], n)...)
	}
	if nb := binary.LittleEndian.Uint16(whole[10:]); nb != 3 {
		t.Errorf("num_buffers = %d, want 3", nb)
	}
	if !bytes.Equal(whole[specHdrLen:], frame) {
		t.Error("reassembled frame differs")
	}
}

func TestReceiveDropsFrameTooBigForChain(t *testing.T) {
	d, r := activeDevice(t, "tern-rx4", 0)
	host, ifindex := packetSocket(t, "tern-rx4", false)
	addrs := r.postRx(1536, 1536)
	activate(t, d, r, 0)

	big := ethFrame(guestMAC, peerMAC, 4000)
	small := ethFrame(guestMAC, peerMAC, 100)
	for _, f := range [][]byte{big, small} {
		if err := unix.Sendto(host, f, 0, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
			t.Fatalf("inject: %v", err)
		}
	}
	r.waitUsed(r.rx, 2)
	if id, n := r.rx.UsedElem(0); id != 0 || n != 0 {
		t.Errorf("too-big frame: used (%d, %d), want the chain back empty", id, n)
	}
	id, n := r.rx.UsedElem(1)
	if id != 1 || n != uint32(specHdrLen+len(small)) || !bytes.Equal(r.bytesAt(addrs[1]+specHdrLen, uint32(len(small))), small) {
		t.Errorf("small frame: used (%d, %d), want (1, %d) holding it", id, n, specHdrLen+len(small))
	}
	if c := d.Counters(); c.RxDropped != 1 || c.RxFrames != 1 {
		t.Errorf("counters %+v, want 1 dropped, 1 received", c)
	}
}

func TestReceiveWaitsForBuffers(t *testing.T) {
	if raceDetector {
		// The driver adds a buffer while the device may still be reading
		// the ring: real guests do that all the time, and nothing in a
		// byte-slice RAM can tell the race detector it is fine.
		t.Skip("driver and device share the ring without synchronisation the race detector understands")
	}
	d, r := activeDevice(t, "tern-rx5", 0)
	host, ifindex := packetSocket(t, "tern-rx5", false)
	activate(t, d, r, 0)

	frame := ethFrame(guestMAC, peerMAC, 60)
	if err := unix.Sendto(host, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		t.Fatalf("inject: %v", err)
	}
	select {
	case <-r.irq.used:
		t.Fatal("device completed a receive buffer the driver never gave")
	case <-time.After(200 * time.Millisecond):
	}
	addrs := r.postRx(2048)
	d.QueueNotify(RxQueue)
	r.waitUsed(r.rx, 1)
	if !bytes.Equal(r.bytesAt(addrs[0]+specHdrLen, uint32(len(frame))), frame) {
		t.Error("the frame that waited is not the one delivered")
	}
	if c := d.Counters(); c.RxDropped != 0 {
		t.Errorf("%d frames dropped while waiting for buffers", c.RxDropped)
	}
}

func TestReceiveOutOfBuffersAsksForNotification(t *testing.T) {
	d, r := activeDevice(t, "tern-rx7", 0)
	host, ifindex := packetSocket(t, "tern-rx7", false)
	activate(t, d, r, 0)
	if err := unix.Sendto(host, ethFrame(guestMAC, peerMAC, 60), 0, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		t.Fatalf("inject: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	d.Reset() // waits for the worker, so its ring writes are visible
	// A device waiting for buffers must leave VIRTQ_USED_F_NO_NOTIFY (1)
	// clear, or the driver would never tell it about new ones.
	if r.rx.UsedFlags()&1 != 0 {
		t.Error("device waits for buffers with notifications suppressed")
	}
	if r.rx.UsedIdx() != 0 {
		t.Error("device used a buffer the driver never gave")
	}
}

func TestRejectsTooSmallReceiveBuffers(t *testing.T) {
	d, r := activeDevice(t, "tern-rx6", specMrgRxbuf)
	host, ifindex := packetSocket(t, "tern-rx6", false)
	addrs := r.postRx(8, 2048) // 8 bytes cannot hold a vnet header
	activate(t, d, r, specMrgRxbuf)
	frame := ethFrame(guestMAC, peerMAC, 60)
	if err := unix.Sendto(host, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		t.Fatal(err)
	}
	r.waitUsed(r.rx, 2)
	if id, n := r.rx.UsedElem(0); id != 0 || n != 0 {
		t.Errorf("small buffer: used (%d, %d), want (0, 0)", id, n)
	}
	if id, n := r.rx.UsedElem(1); id != 1 || n != uint32(specHdrLen+len(frame)) {
		t.Errorf("frame: used (%d, %d)", id, n)
	}
	if !bytes.Equal(r.bytesAt(addrs[1]+specHdrLen, uint32(len(frame))), frame) {
		t.Error("frame differs")
	}
	if c := d.Counters(); c.RxBadBuffers != 1 {
		t.Errorf("RxBadBuffers = %d, want 1", c.RxBadBuffers)
	}
}

func TestResetStopsIdleWorkersPromptly(t *testing.T) {
	d, r := activeDevice(t, "tern-rst0", 0)
	if err := d.Activate(r.mem, r.queues, r.irq, specVersion1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the receive worker park in read
	done := make(chan struct{})
	go func() { d.Reset(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Reset did not return within 2s")
	}
	// Activating again works and the device still receives.
	for _, q := range r.queues {
		q.Reset()
	}
	r2 := newRig(t, specVersion1)
	host, ifindex := packetSocket(t, "tern-rst0", false)
	r2.postRx(2048)
	activate(t, d, r2, 0)
	if err := unix.Sendto(host, ethFrame(guestMAC, peerMAC, 60), 0, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		t.Fatal(err)
	}
	r2.waitUsed(r2.rx, 1)
}

func TestStateRoundTrip(t *testing.T) {
	d, r := activeDevice(t, "tern-st0", specCsum)
	r.sendTx(append(make([]byte, specHdrLen), ethFrame(peerMAC, guestMAC, 100)...))
	activate(t, d, r, specCsum|specMrgRxbuf)
	d.QueueNotify(TxQueue)
	r.waitUsed(r.tx, 1)
	r.irq.release()
	d.Reset()

	st := d.State()
	if st.TAP != "tern-st0" || st.MAC.String() != guestMAC.String() ||
		st.AckedFeatures != specVersion1|specCsum|specMrgRxbuf || st.Counters.TxFrames != 1 || st.Counters.TxBytes != 114 {
		t.Fatalf("State() = %+v", st)
	}

	other := st
	other.MAC = net.HardwareAddr{0x52, 0x54, 0, 0, 0, 9}
	other.Counters.RxFrames = 7
	if err := d.SetState(other); err != nil {
		t.Fatal(err)
	}
	if got := d.State(); got.MAC.String() != "52:54:00:00:00:09" || got.Counters.RxFrames != 7 {
		t.Errorf("after SetState: %+v", got)
	}
	cfg := make([]byte, 6)
	d.ReadConfig(0, cfg)
	if !bytes.Equal(cfg, other.MAC) {
		t.Errorf("config space MAC % x after SetState", cfg)
	}

	bad := st
	bad.TAP = "elsewhere"
	if d.SetState(bad) == nil {
		t.Error("SetState accepted another TAP's state")
	}
	bad = st
	bad.MAC = net.HardwareAddr{1, 0, 0, 0, 0, 1}
	if d.SetState(bad) == nil {
		t.Error("SetState accepted a multicast MAC")
	}
	bad = st
	bad.AckedFeatures |= specCtrlVQ
	if d.SetState(bad) == nil {
		t.Error("SetState accepted a feature never offered")
	}
	activate(t, d, newRig(t, specVersion1), 0)
	if d.SetState(st) == nil {
		t.Error("SetState accepted while active")
	}
}
