package virtionet

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
	"golang.org/x/sys/unix"
)

// Feature bit numbers from virtio 1.2 section 5.1.3 and 6, written here
// independently of the package's constants.
const (
	specCsum      = 1 << 0
	specGuestCsum = 1 << 1
	specMAC       = 1 << 5
	specGuestTSO4 = 1 << 7
	specGuestTSO6 = 1 << 8
	specGuestECN  = 1 << 9
	specGuestUFO  = 1 << 10
	specHostTSO4  = 1 << 11
	specHostTSO6  = 1 << 12
	specHostECN   = 1 << 13
	specHostUFO   = 1 << 14
	specMrgRxbuf  = 1 << 15
	specStatus    = 1 << 16
	specCtrlVQ    = 1 << 17
	specMQ        = 1 << 22
	specVersion1  = 1 << 32
)

// struct virtio_net_hdr_v1 is 12 bytes: flags, gso_type, le16 hdr_len,
// gso_size, csum_start, csum_offset, num_buffers.
const specHdrLen = 12

// testEtherType is IEEE 802 "local experimental" EtherType 1, which no
// part of the host stack answers.
const testEtherType = 0x88b5

// testIRQ hands each used-buffer interrupt to the test and holds the
// signalling worker until the test has looked at the rings, so that the
// test's reads of guest memory are ordered after the device's writes
// (and the race detector can see it), as they would be by a real
// interrupt. Once released, workers are no longer held.
type testIRQ struct {
	used     chan chan struct{}
	released chan struct{}
	held     chan struct{} // the worker the test holds now, if any

	mu     sync.Mutex
	resets []error
}

func newTestIRQ() *testIRQ {
	return &testIRQ{used: make(chan chan struct{}), released: make(chan struct{})}
}

func (i *testIRQ) Signal(r virtio.InterruptReason) error {
	if r != virtio.InterruptUsedBuffer {
		return nil
	}
	resume := make(chan struct{})
	select {
	case i.used <- resume:
		select {
		case <-resume:
		case <-i.released:
		}
	case <-i.released:
	}
	return nil
}

// release lets every worker go, for good.
func (i *testIRQ) release() {
	select {
	case <-i.released:
	default:
		close(i.released)
	}
}

func (i *testIRQ) NeedsReset(err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.resets = append(i.resets, err)
}

func (i *testIRQ) resetCauses() []error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]error(nil), i.resets...)
}

// rig is a guest's view of the device: RAM, both queues and an interrupt.
type rig struct {
	t        *testing.T
	mem      *virtqtest.Memory
	rx, tx   *virtqtest.Driver
	queues   []*virtio.Queue
	irq      *testIRQ
	nextData uint64
	nextDesc [2]uint16
}

const (
	rigQueueSize = 256
	rigRAM       = 8 << 20
	rigDataBase  = 0x20000
)

func newRig(t *testing.T, acked uint64) *rig {
	t.Helper()
	mem := virtqtest.NewMemory(0, rigRAM)
	r := &rig{
		t:        t,
		mem:      mem,
		rx:       virtqtest.Layout(mem, rigQueueSize, 0x0),
		tx:       virtqtest.Layout(mem, rigQueueSize, 0x8000),
		irq:      newTestIRQ(),
		nextData: rigDataBase,
	}
	for _, d := range []*virtqtest.Driver{r.rx, r.tx} {
		q, err := virtio.NewQueue(rigQueueSize)
		if err != nil {
			t.Fatal(err)
		}
		q.SetDescTable(d.Desc)
		q.SetAvailRing(d.Avail)
		q.SetUsedRing(d.Used)
		q.SetFeatures(acked)
		if err := q.Validate(mem); err != nil {
			t.Fatal(err)
		}
		q.SetReady(true)
		r.queues = append(r.queues, q)
	}
	return r
}

func (r *rig) alloc(n uint32) uint64 {
	a := r.nextData
	r.nextData += (uint64(n) + 15) &^ 15
	if r.nextData > rigRAM {
		r.t.Fatal("test rig out of RAM")
	}
	return a
}

// postRx makes one device-writable chain of each length available.
func (r *rig) postRx(lens ...uint32) (addrs []uint64) {
	for _, n := range lens {
		a := r.alloc(n)
		head := r.rx.Chain(r.nextDesc[0], virtqtest.Seg{Addr: a, Len: n, Write: true})
		r.nextDesc[0] = (r.nextDesc[0] + 1) % rigQueueSize
		r.rx.Publish(head)
		addrs = append(addrs, a)
	}
	return addrs
}

// sendTx queues pkt (vnet header and frame), split into two readable
// buffers to exercise gathering.
func (r *rig) sendTx(pkt []byte) {
	split := len(pkt) / 2
	var segs []virtqtest.Seg
	for _, part := range [][]byte{pkt[:split], pkt[split:]} {
		a := r.alloc(uint32(len(part)))
		copy(r.mem.Bytes()[a:], part)
		segs = append(segs, virtqtest.Seg{Addr: a, Len: uint32(len(part))})
	}
	head := r.tx.Chain(r.nextDesc[1], segs...)
	r.nextDesc[1] = (r.nextDesc[1] + uint16(len(segs))) % rigQueueSize
	r.tx.Publish(head)
}

// waitUsed waits for used-buffer interrupts until the driver's used index
// reaches want, and keeps the worker that raised the last one waiting
// until the next waitUsed or the end of the test.
func (r *rig) waitUsed(d *virtqtest.Driver, want uint16) {
	r.t.Helper()
	if r.irq.held != nil {
		close(r.irq.held)
		r.irq.held = nil
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case resume := <-r.irq.used:
			if d.UsedIdx() == want {
				r.irq.held = resume
				return
			}
			close(resume)
		case <-deadline:
			r.t.Fatalf("used index did not reach %d within 5s (resets: %v)", want, r.irq.resetCauses())
		}
	}
}

func (r *rig) bytesAt(addr uint64, n uint32) []byte {
	return append([]byte(nil), r.mem.Bytes()[addr:addr+uint64(n)]...)
}

// enterNetns moves the calling goroutine, for good, onto an OS thread in
// a new, empty network namespace, so the test can make interfaces without
// touching the host's. The thread is discarded when the test ends.
func enterNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and TAP devices")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("no TUN/TAP support: %v", err)
	}
	runtime.LockOSThread() // never unlocked: the thread dies with the test goroutine
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Skipf("unshare(CLONE_NEWNET): %v", err)
	}
	// Keep IPv6 neighbour discovery and MLD off the test interfaces.
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0)
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/all/disable_ipv6", []byte("1"), 0)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// packetSocket opens an AF_PACKET socket bound to the interface: the
// host's side of the wire. With vnetHdr each packet carries a 10-byte
// struct virtio_net_hdr in front (PACKET_VNET_HDR).
func packetSocket(t *testing.T, ifname string, vnetHdr bool) (fd int, ifindex int) {
	t.Helper()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		t.Fatalf("AF_PACKET socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if vnetHdr {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			t.Fatalf("PACKET_VNET_HDR: %v", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		t.Fatalf("bind AF_PACKET to %s: %v", ifname, err)
	}
	tv := unix.Timeval{Sec: 3}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd, ifi.Index
}

// recvFrame returns the next packet arriving on the interface (not one
// it sends) that is at least 14 bytes past skip and has the EtherType.
func recvFrame(t *testing.T, fd int, skip int, etherType uint16) []byte {
	t.Helper()
	buf := make([]byte, 70000)
	for range 100 {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				t.Fatalf("no frame with EtherType %#x on the host side within 3s", etherType)
			}
			t.Fatalf("recvfrom: %v", err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if n >= skip+14 && binary.BigEndian.Uint16(buf[skip+12:]) == etherType {
			return append([]byte(nil), buf[:n]...)
		}
	}
	t.Fatalf("100 unrelated frames, none with EtherType %#x", etherType)
	return nil
}

// ethFrame builds an Ethernet frame with the test EtherType.
func ethFrame(dst, src net.HardwareAddr, payloadLen int) []byte {
	f := make([]byte, 14+payloadLen)
	copy(f[0:], dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], testEtherType)
	for i := 14; i < len(f); i++ {
		f[i] = byte(i * 7)
	}
	return f
}

// ones sums 16-bit big-endian words, the Internet checksum's arithmetic
// (RFC 1071), folded to 16 bits.
func ones(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return sum
}

// udpFrame builds Ethernet + IPv4 (20 bytes) + UDP (8 bytes) + payload,
// with the IPv4 checksum done and the UDP checksum field holding the
// folded pseudo-header sum, as a stack leaves it for checksum offload.
// The UDP checksum field is at 14+20+6 = 40.
func udpFrame(dst, src net.HardwareAddr, payload []byte) []byte {
	f := make([]byte, 14+20+8+len(payload))
	copy(f[0:], dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8] = 64
	ip[9] = 17 // UDP
	copy(ip[12:], []byte{10, 0, 0, 2})
	copy(ip[16:], []byte{10, 0, 0, 99})
	binary.BigEndian.PutUint16(ip[10:], ^uint16(ones(0, ip)))
	udp := f[34:]
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], 9)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(udp[8:], payload)
	binary.BigEndian.PutUint16(udp[6:], uint16(pseudoSum(f)))
	return f
}

func pseudoSum(f []byte) uint32 {
	ip := f[14:34]
	var ph [12]byte
	copy(ph[0:], ip[12:20])
	ph[9] = 17
	binary.BigEndian.PutUint16(ph[10:], uint16(len(f)-34))
	return ones(0, ph[:])
}

// udpChecksumOK reports whether the UDP checksum of f verifies.
func udpChecksumOK(f []byte) bool {
	return ones(pseudoSum(f), f[34:]) == 0xffff
}
