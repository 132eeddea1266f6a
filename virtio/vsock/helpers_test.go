package vsock

import (
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// Values from virtio 1.2 section 5.10, written out for the tests.
const (
	tHdrLen        = 44 // sizeof(struct virtio_vsock_hdr)
	tHostCID       = 2
	tTypeStream    = 1
	tTypeSeqpacket = 2
	tOpRequest     = 1
	tOpResponse    = 2
	tOpRst         = 3
	tOpShutdown    = 4
	tOpRW          = 5
	tOpCreditUpd   = 6
	tOpCreditReq   = 7
	tShutRcv       = 1
	tShutSend      = 2
	tDeviceID      = 19
	tFeatureSeqpkt = 1 << 1 // VIRTIO_VSOCK_F_SEQPACKET
	tGuestCID      = 42
	tBufAlloc      = 256 << 10 // what the brief asks the device to advertise
)

// pkt is struct virtio_vsock_hdr plus its payload, as the test driver
// sees it.
type pkt struct {
	srcCID, dstCID   uint64
	srcPort, dstPort uint32
	len              uint32
	typ, op          uint16
	flags            uint32
	bufAlloc, fwdCnt uint32
	payload          []byte
}

func (p pkt) String() string {
	return fmt.Sprintf("{%d:%d -> %d:%d op %d type %d len %d flags %d buf_alloc %d fwd_cnt %d}",
		p.srcCID, p.srcPort, p.dstCID, p.dstPort, p.op, p.typ, p.len, p.flags, p.bufAlloc, p.fwdCnt)
}

// encode lays the header out at the offsets of the specification.
func (p pkt) encode() []byte {
	b := make([]byte, tHdrLen)
	le := binary.LittleEndian
	le.PutUint64(b[0:], p.srcCID)
	le.PutUint64(b[8:], p.dstCID)
	le.PutUint32(b[16:], p.srcPort)
	le.PutUint32(b[20:], p.dstPort)
	le.PutUint32(b[24:], p.len)
	le.PutUint16(b[28:], p.typ)
	le.PutUint16(b[30:], p.op)
	le.PutUint32(b[32:], p.flags)
	le.PutUint32(b[36:], p.bufAlloc)
	le.PutUint32(b[40:], p.fwdCnt)
	return b
}

func decodePkt(b []byte) pkt {
	le := binary.LittleEndian
	return pkt{
		srcCID: le.Uint64(b[0:]), dstCID: le.Uint64(b[8:]),
		srcPort: le.Uint32(b[16:]), dstPort: le.Uint32(b[20:]),
		len: le.Uint32(b[24:]), typ: le.Uint16(b[28:]), op: le.Uint16(b[30:]),
		flags: le.Uint32(b[32:]), bufAlloc: le.Uint32(b[36:]), fwdCnt: le.Uint32(b[40:]),
	}
}

// guestPkt is a packet from the guest to the host on a stream socket.
func guestPkt(srcPort, dstPort uint32, op uint16) pkt {
	return pkt{srcCID: tGuestCID, dstCID: tHostCID, srcPort: srcPort, dstPort: dstPort, typ: tTypeStream, op: op, bufAlloc: 1 << 20}
}

type fakeIRQ struct {
	mu      sync.Mutex
	signals int
	resets  []error
}

func (f *fakeIRQ) Signal(r virtio.InterruptReason) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signals++
	return nil
}

func (f *fakeIRQ) NeedsReset(cause error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resets = append(f.resets, cause)
}

func (f *fakeIRQ) resetErrors() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]error(nil), f.resets...)
}

// Guest memory layout of the test driver.
const (
	memSize     = 4 << 20
	rxRingBase  = 0x1000
	txRingBase  = 0x6000
	evRingBase  = 0xb000
	rxBufBase   = 0x10000
	rxBufSize   = tHdrLen + 4096
	rxBuffers   = 64
	evBufBase   = 0x0f000
	evBuffers   = 4
	txBufBase   = 0x100000
	txSlotSize  = 0x11000 // a header and a 64 KiB payload
	txSlots     = 16
	queueSize   = 256
	waitTimeout = 5 * time.Second
)

// guest plays the guest's virtio-vsock driver against a Device.
type guest struct {
	t              *testing.T
	dev            *Device
	path           string
	mem            *virtqtest.Memory
	rx, tx, ev     *virtqtest.Driver
	queues         []*virtio.Queue
	irq            *fakeIRQ
	rxSeen, txSeen uint16
	evSeen         uint16
	txCount        int
	pending        []pkt // received but not yet taken by a test
}

// newDevice creates a device on a socket in a fresh temporary directory.
// Unix socket paths are short, so the directory is kept short too.
func newDevice(t testing.TB, cid uint64) (*Device, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.sock")
	d, err := New(Config{GuestCID: cid, SocketPath: path})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d, path
}

// startGuest creates a device and activates it with fresh queues.
func startGuest(t *testing.T) *guest {
	t.Helper()
	d, path := newDevice(t, tGuestCID)
	g := &guest{t: t, dev: d, path: path}
	g.activate()
	t.Cleanup(func() { d.Reset() })
	return g
}

// activate lays out the three queues, posts rx and event buffers and
// activates the device, as a driver does before DRIVER_OK.
func (g *guest) activate() {
	g.t.Helper()
	g.layout()
	g.start()
}

// layout lays out the queues and posts rx and event buffers without
// activating the device.
func (g *guest) layout() {
	g.t.Helper()
	g.mem = virtqtest.NewMemory(0, memSize)
	g.rx = virtqtest.Layout(g.mem, queueSize, rxRingBase)
	g.tx = virtqtest.Layout(g.mem, queueSize, txRingBase)
	g.ev = virtqtest.Layout(g.mem, queueSize, evRingBase)
	g.rxSeen, g.txSeen, g.evSeen, g.txCount, g.pending = 0, 0, 0, 0, nil
	g.queues = nil
	for _, drv := range []*virtqtest.Driver{g.rx, g.tx, g.ev} {
		q, err := virtio.NewQueue(queueSize)
		if err != nil {
			g.t.Fatal(err)
		}
		q.SetDescTable(drv.Desc)
		q.SetAvailRing(drv.Avail)
		q.SetUsedRing(drv.Used)
		q.SetFeatures(virtio.FeatureVersion1)
		q.SetReady(true)
		g.queues = append(g.queues, q)
	}
	for i := range uint16(rxBuffers) {
		g.rx.Chain(i, virtqtest.Seg{Addr: rxBufBase + uint64(i)*rxBufSize, Len: rxBufSize, Write: true})
		g.rx.Publish(i)
	}
	for i := range uint16(evBuffers) {
		g.ev.Chain(i, virtqtest.Seg{Addr: evBufBase + uint64(i)*8, Len: 8, Write: true})
		g.ev.Publish(i)
	}
}

// start activates the device on the rings activate laid out.
func (g *guest) start() {
	g.t.Helper()
	g.irq = &fakeIRQ{}
	if err := g.dev.Activate(g.mem, g.queues, g.irq, virtio.FeatureVersion1); err != nil {
		g.t.Fatalf("Activate: %v", err)
	}
}

// locked runs f while the device cannot touch guest memory: the muxer
// only does so holding its session lock.
func (g *guest) locked(f func()) {
	g.dev.mu.Lock()
	s := g.dev.sess
	g.dev.mu.Unlock()
	if s == nil {
		f()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// sendRaw puts one tx chain made of the given readable segments' bytes
// and waits until the device has used it.
func (g *guest) sendRaw(parts ...[]byte) {
	g.t.Helper()
	slot := g.txCount % txSlots
	g.txCount++
	base := txBufBase + uint64(slot)*txSlotSize
	var segs []virtqtest.Seg
	off := uint64(0)
	g.locked(func() {
		for _, p := range parts {
			copy(g.mem.Bytes()[base+off:], p)
			segs = append(segs, virtqtest.Seg{Addr: base + off, Len: uint32(len(p))})
			off += uint64(len(p))
		}
		head := uint16(slot * 2)
		g.tx.Chain(head, segs...)
		g.tx.Publish(head)
	})
	g.dev.QueueNotify(1)
	want := g.txSeen + 1
	g.waitFor("tx chain used", func() bool { return g.tx.UsedIdx() == want })
	g.txSeen = want
}

// send transmits p with its payload in a second descriptor, as Linux does.
func (g *guest) send(p pkt) {
	g.t.Helper()
	if p.len == 0 {
		p.len = uint32(len(p.payload))
	}
	if len(p.payload) == 0 {
		g.sendRaw(p.encode())
		return
	}
	g.sendRaw(p.encode(), p.payload)
}

// waitFor polls cond under the device lock until it holds.
func (g *guest) waitFor(what string, cond func() bool) {
	g.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for i := 0; ; i++ {
		var ok bool
		g.locked(func() { ok = cond() })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("timed out waiting for %s", what)
		}
		// The device usually answers within microseconds.
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(time.Millisecond)
		}
	}
}

// poll takes the packets the device put in the rx queue, reposting each
// buffer.
func (g *guest) poll() {
	g.locked(func() {
		for g.rx.UsedIdx() != g.rxSeen {
			id, n := g.rx.UsedElem(g.rxSeen)
			g.rxSeen++
			if n < tHdrLen || n > rxBufSize {
				g.t.Errorf("rx used length %d is outside [%d, %d]", n, tHdrLen, rxBufSize)
				continue
			}
			buf := g.mem.Bytes()[rxBufBase+uint64(id)*rxBufSize:][:n]
			p := decodePkt(buf)
			if p.len != n-tHdrLen {
				g.t.Errorf("packet %v has len %d but the used length is %d", p, p.len, n)
			}
			p.payload = append([]byte(nil), buf[tHdrLen:]...)
			g.pending = append(g.pending, p)
			g.rx.Publish(uint16(id))
		}
	})
	g.dev.QueueNotify(0)
}

// recv waits for the next packet from the device.
func (g *guest) recv() pkt {
	g.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for len(g.pending) == 0 {
		if time.Now().After(deadline) {
			g.t.Fatalf("timed out waiting for a packet from the device")
		}
		time.Sleep(time.Millisecond)
		g.poll()
	}
	p := g.pending[0]
	g.pending = g.pending[1:]
	return p
}

// expectNone checks that no packet arrives for a while.
func (g *guest) expectNone(d time.Duration) {
	g.t.Helper()
	time.Sleep(d)
	g.poll()
	if len(g.pending) > 0 {
		g.t.Fatalf("unexpected packet from the device: %v", g.pending[0])
	}
}

// expect receives a packet and checks its addressing and op.
func (g *guest) expect(op uint16, hostPort, guestPort uint32) pkt {
	g.t.Helper()
	p := g.recv()
	if p.op != op || p.srcCID != tHostCID || p.dstCID != tGuestCID || p.srcPort != hostPort ||
		p.dstPort != guestPort || p.typ != tTypeStream {
		g.t.Fatalf("got %v, want op %d from %d:%d to %d:%d type %d", p, op, tHostCID, hostPort, tGuestCID, guestPort, tTypeStream)
	}
	return p
}

// recvData collects RW payload for the connection until n bytes arrived.
func (g *guest) recvData(hostPort, guestPort uint32, n int) []byte {
	g.t.Helper()
	var got []byte
	for len(got) < n {
		p := g.expect(tOpRW, hostPort, guestPort)
		got = append(got, p.payload...)
	}
	if len(got) != n {
		g.t.Fatalf("received %d bytes, want %d", len(got), n)
	}
	return got
}

// sendData sends data in RW packets of at most chunk bytes.
func (g *guest) sendData(guestPort, hostPort uint32, data []byte, chunk int) {
	g.t.Helper()
	for len(data) > 0 {
		n := min(chunk, len(data))
		p := guestPkt(guestPort, hostPort, tOpRW)
		p.payload = data[:n]
		g.send(p)
		data = data[n:]
	}
}

// guestConnect opens a guest-initiated connection to the host port and
// returns the host program's side of it.
func (g *guest) guestConnect(guestPort, hostPort uint32, bufAlloc uint32) net.Conn {
	g.t.Helper()
	ln, err := net.Listen("unix", fmt.Sprintf("%s_%d", g.path, hostPort))
	if err != nil {
		g.t.Fatal(err)
	}
	defer ln.Close()
	req := guestPkt(guestPort, hostPort, tOpRequest)
	req.bufAlloc = bufAlloc
	g.send(req)
	resp := g.expect(tOpResponse, hostPort, guestPort)
	if resp.bufAlloc != tBufAlloc {
		g.t.Errorf("RESPONSE advertises buf_alloc %d, want %d", resp.bufAlloc, tBufAlloc)
	}
	hc, err := ln.Accept()
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { hc.Close() })
	return hc
}
