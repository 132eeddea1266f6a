package virtionet

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// Fuzz layout: an 8-entry transmit queue in 128 KiB of RAM. The input is
// one byte of negotiated features, the available index, the raw
// descriptor table, the available ring entries and the bytes of the data
// area, so the fuzzer controls everything a guest controls.
const (
	fuzzQueueSize = 8
	fuzzDesc      = 0x0
	fuzzAvail     = 0x80
	fuzzUsed      = 0x100
	fuzzData      = 0x200
	fuzzRAM       = 128 << 10
)

// fuzzFeatures maps the first input byte to feature bits.
func fuzzFeatures(b byte) uint64 {
	var acked uint64 = specVersion1
	for bit, f := range []uint64{specCsum, specHostTSO4, specHostTSO6, specHostECN, 1 << 28, 1 << 29} {
		if b&(1<<bit) != 0 {
			acked |= f
		}
	}
	return acked
}

type countingIRQ struct{ signals, resets int }

func (c *countingIRQ) Signal(virtio.InterruptReason) error { c.signals++; return nil }
func (c *countingIRQ) NeedsReset(error)                    { c.resets++ }

// frameSink stands in for the TAP file: the transmit path writes to an
// io.Writer, and this one checks each packet as the kernel would get it.
type frameSink struct {
	t      *testing.T
	acked  uint64
	frames int
}

func (s *frameSink) Write(p []byte) (int, error) {
	s.frames++
	if len(p) < specHdrLen+14 || len(p) > specHdrLen+65550 {
		s.t.Fatalf("wrote a %d-byte packet: outside [26, 65562]", len(p))
	}
	flags, gso := p[0], p[1]
	if flags > 1 || (flags == 1 && s.acked&specCsum == 0) {
		s.t.Fatalf("passed flags %#x with features %#x", flags, s.acked)
	}
	need := map[byte]uint64{0: 0, 1: specHostTSO4, 4: specHostTSO6, 0x81: specHostTSO4 | specHostECN, 0x84: specHostTSO6 | specHostECN}
	f, ok := need[gso]
	if !ok || s.acked&f != f {
		s.t.Fatalf("passed gso_type %#x with features %#x", gso, s.acked)
	}
	return len(p), nil
}

func FuzzTxChain(f *testing.F) {
	f.Add(txSeed(0, 1, []virtqtest.Desc{{Addr: fuzzData, Len: 12, Flags: 1, Next: 1}, {Addr: fuzzData + 12, Len: 60}}))
	f.Add(txSeed(1, 1, []virtqtest.Desc{{Addr: fuzzData, Len: 100}}))
	f.Add(txSeed(0x10, 1, []virtqtest.Desc{{Addr: fuzzData, Len: 32, Flags: 4}}))
	f.Add(txSeed(0, 9, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 2 {
			return
		}
		acked := fuzzFeatures(in[0])
		mem := virtqtest.NewMemory(0, fuzzRAM)
		ram := mem.Bytes()
		binary.LittleEndian.PutUint16(ram[fuzzAvail+2:], uint16(in[1]))
		rest := in[2:]
		n := copy(ram[fuzzDesc:fuzzDesc+16*fuzzQueueSize], rest)
		rest = rest[n:]
		n = copy(ram[fuzzAvail+4:fuzzAvail+4+2*fuzzQueueSize], rest)
		rest = rest[n:]
		copy(ram[fuzzData:], rest)

		q, err := virtio.NewQueue(fuzzQueueSize)
		if err != nil {
			t.Fatal(err)
		}
		q.SetDescTable(fuzzDesc)
		q.SetAvailRing(fuzzAvail)
		q.SetUsedRing(fuzzUsed)
		q.SetFeatures(acked)
		q.SetReady(true)

		d := &Device{}
		sink := &frameSink{t: t, acked: acked}
		irq := &countingIRQ{}
		err = d.txDrain(mem, q, irq, acked, make([]byte, maxPacketLen), sink, make(chan struct{}))

		if err != nil && !errors.Is(err, virtio.ErrBadRing) && !errors.Is(err, virtio.ErrBadChain) {
			t.Fatalf("txDrain error %v is neither a bad ring nor a bad chain", err)
		}
		used := binary.LittleEndian.Uint16(ram[fuzzUsed+2:])
		c := d.Counters()
		if c.TxFrames != uint64(sink.frames) {
			t.Fatalf("TxFrames %d, but %d packets written", c.TxFrames, sink.frames)
		}
		if c.TxFrames+c.TxDropped != uint64(used) {
			t.Fatalf("%d sent + %d dropped, but %d chains completed", c.TxFrames, c.TxDropped, used)
		}
		if err == nil && used != uint16(in[1]) {
			t.Fatalf("no error, yet %d of %d chains completed", used, in[1])
		}
		for i := range min(used, fuzzQueueSize) {
			if l := binary.LittleEndian.Uint32(ram[fuzzUsed+4+8*uint64(i)+4:]); l != 0 {
				t.Fatalf("used element %d reports %d bytes written to a transmit buffer", i, l)
			}
		}
		if !mem.GuardsIntact() {
			t.Fatal("wrote outside guest RAM")
		}
	})
}

// txSeed builds a fuzz input from descriptors, with avail ring entry i
// naming descriptor i and a data area holding an Ethernet frame.
func txSeed(features, availIdx byte, descs []virtqtest.Desc) []byte {
	in := []byte{features, availIdx}
	table := make([]byte, 16*fuzzQueueSize)
	for i, d := range descs {
		binary.LittleEndian.PutUint64(table[16*i:], d.Addr)
		binary.LittleEndian.PutUint32(table[16*i+8:], d.Len)
		binary.LittleEndian.PutUint16(table[16*i+12:], d.Flags)
		binary.LittleEndian.PutUint16(table[16*i+14:], d.Next)
	}
	in = append(in, table...)
	ring := make([]byte, 2*fuzzQueueSize)
	for i := range fuzzQueueSize {
		binary.LittleEndian.PutUint16(ring[2*i:], uint16(i))
	}
	in = append(in, ring...)
	data := make([]byte, 128)
	data[0] = features & 1 // NEEDS_CSUM exactly when CSUM is negotiated
	copy(data[12:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0, 2, 0x88, 0xb5})
	return append(in, data...)
}
