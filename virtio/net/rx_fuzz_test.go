package virtionet

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// rxFuzzFeatures maps the first input byte to the receive-side features:
// the header fix-up depends on the offloads, the placement on MRG_RXBUF,
// the chains on INDIRECT_DESC and the notification on EVENT_IDX.
func rxFuzzFeatures(b byte) uint64 {
	var acked uint64 = specVersion1
	for bit, f := range []uint64{specGuestCsum, specGuestTSO4, specGuestTSO6, specGuestECN, specMrgRxbuf, 1 << 28, 1 << 29} {
		if b&(1<<bit) != 0 {
			acked |= f
		}
	}
	return acked
}

// rxBuffersOverlapRings reports whether any writable buffer the driver
// has described could land on the rings, the descriptor table or an
// indirect table. The device must cope with that (it is the guest's own
// memory), but then the used ring no longer says what the device wrote,
// so the fuzz target checks the used elements only when this is false.
func rxBuffersOverlapRings(ram []byte) bool {
	type span struct{ addr, len uint64 }
	protected := []span{{0, fuzzData}}
	var bufs []span
	scan := func(table []byte) (tables []span) {
		for i := 0; i+16 <= len(table); i += 16 {
			addr := binary.LittleEndian.Uint64(table[i:])
			n := uint64(binary.LittleEndian.Uint32(table[i+8:]))
			flags := binary.LittleEndian.Uint16(table[i+12:])
			switch {
			case flags&4 != 0:
				tables = append(tables, span{addr, n})
			case flags&2 != 0:
				bufs = append(bufs, span{addr, n})
			}
		}
		return tables
	}
	for _, t := range scan(ram[fuzzDesc : fuzzDesc+16*fuzzQueueSize]) {
		protected = append(protected, t)
		if t.addr < uint64(len(ram)) && t.len <= uint64(len(ram))-t.addr {
			scan(ram[t.addr : t.addr+t.len])
		}
	}
	for _, b := range bufs {
		for _, p := range protected {
			if b.len > 0 && p.len > 0 && b.addr < p.addr+p.len && p.addr < b.addr+b.len {
				return true
			}
		}
	}
	return false
}

// Where the input's indirect table goes, and how long the input before
// the frames is: features, available index, descriptor table, available
// ring, indirect table.
const (
	rxIndirect = 0x3000
	rxHead     = 2 + 16*fuzzQueueSize + 2*fuzzQueueSize + 64
)

// rxFrames splits the input after the queue into frames as the TAP would
// return them: each a le16 length and that many bytes, vnet header first.
func rxFrames(data []byte) [][]byte {
	var frames [][]byte
	for len(data) >= 2 && len(frames) < 16 {
		n := min(int(binary.LittleEndian.Uint16(data)), len(data)-2)
		frames = append(frames, data[2:2+n])
		data = data[2+n:]
	}
	return frames
}

// FuzzRxPlace feeds arbitrary frames from the TAP into arbitrary receive
// chains, through the header fix-up and placement the receive worker
// does. The input is one byte of features, the available index, the raw
// descriptor table, the available ring entries, then the frames.
func FuzzRxPlace(f *testing.F) {
	frame := func(flags, gso byte, payload int) []byte {
		b := binary.LittleEndian.AppendUint16(nil, uint16(specHdrLen+14+payload))
		hdr := make([]byte, specHdrLen)
		hdr[0], hdr[1] = flags, gso
		b = append(b, hdr...)
		b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0, 2, 0x88, 0xb5)
		return append(b, make([]byte, payload)...)
	}
	rxSeed := func(features, availIdx byte, descs []virtqtest.Desc, frames ...[]byte) []byte {
		in := txSeed(features, availIdx, descs)[:2+16*fuzzQueueSize+2*fuzzQueueSize]
		indirect := make([]byte, 64)
		for i, d := range []virtqtest.Desc{{Addr: 0x4000, Len: 6, Flags: 3, Next: 1}, {Addr: 0x4010, Len: 2000, Flags: 2}} {
			binary.LittleEndian.PutUint64(indirect[16*i:], d.Addr)
			binary.LittleEndian.PutUint32(indirect[16*i+8:], d.Len)
			binary.LittleEndian.PutUint16(indirect[16*i+12:], d.Flags)
			binary.LittleEndian.PutUint16(indirect[16*i+14:], d.Next)
		}
		in = append(in, indirect...)
		for _, fr := range frames {
			in = append(in, fr...)
		}
		return in
	}
	// One big buffer per chain, as Linux posts without MRG_RXBUF.
	big := []virtqtest.Desc{{Addr: 0x1000, Len: 4096, Flags: 2}, {Addr: 0x2000, Len: 4096, Flags: 2}}
	f.Add(rxSeed(0, 2, big, frame(0, 0, 50), frame(0, 0, 1000)))
	// Mergeable: small chains, a frame spread over three of them.
	small := []virtqtest.Desc{{Addr: 0x1000, Len: 64, Flags: 2}, {Addr: 0x1100, Len: 64, Flags: 2}, {Addr: 0x1200, Len: 64, Flags: 2}, {Addr: 0x1300, Len: 8, Flags: 2}}
	f.Add(rxSeed(0x10, 4, small, frame(0, 0, 150), frame(0, 0, 10)))
	// Checksum and TSO offloads, accepted and refused.
	f.Add(rxSeed(0x03, 2, big, frame(1, 1, 100), frame(3, 4, 100), frame(2, 0x81, 10)))
	f.Add(rxSeed(0x00, 2, big, frame(1, 0, 100), frame(2, 0, 100)))
	// A two-buffer chain and an indirect table.
	f.Add(rxSeed(0x20, 2, []virtqtest.Desc{{Addr: 0x1000, Len: 6, Flags: 3, Next: 1}, {Addr: 0x1010, Len: 100, Flags: 2}, {Addr: rxIndirect, Len: 32, Flags: 4}}, frame(0, 0, 40)))
	// A frame too big for any chain, and a chain too small for a header.
	f.Add(rxSeed(0, 2, []virtqtest.Desc{{Addr: 0x1000, Len: 40, Flags: 2}, {Addr: 0x1100, Len: 4, Flags: 2}}, frame(0, 0, 100), frame(0, 0, 1)))

	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < rxHead {
			return
		}
		acked := rxFuzzFeatures(in[0])
		mergeable := acked&specMrgRxbuf != 0
		mem := virtqtest.NewMemory(0, fuzzRAM)
		ram := mem.Bytes()
		binary.LittleEndian.PutUint16(ram[fuzzAvail+2:], uint16(in[1]))
		rest := in[2:]
		rest = rest[copy(ram[fuzzDesc:fuzzDesc+16*fuzzQueueSize], rest):]
		rest = rest[copy(ram[fuzzAvail+4:fuzzAvail+4+2*fuzzQueueSize], rest):]
		// Four descriptors' worth at rxIndirect, for an indirect table.
		rest = rest[copy(ram[rxIndirect:rxIndirect+64], rest):]
		frames := rxFrames(rest)

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
		irq := &countingIRQ{}
		r := receiver{d: d, mem: mem, q: q, irq: irq, mergeable: mergeable}
		var wantFrames, wantDropped, wantBytes uint64 // wantDropped: by place
		for _, fr := range frames {
			fr = append([]byte(nil), fr...)
			if len(fr) < headerLen+14 || !fixRxHeader(fr[:headerLen], acked) {
				continue // the worker drops it before place
			}
			checkRxHeader(t, fr[:headerLen], acked)
			// Data writes that land on the rings make the used ring
			// meaningless; judge them only when none can.
			overlap := rxBuffersOverlapRings(ram)
			before := q.NextUsed()
			framesBefore, droppedBefore := d.counters.rxFrames.Load(), d.counters.rxDropped.Load()
			placed, err := r.place(fr)
			if err != nil {
				if !errors.Is(err, virtio.ErrBadRing) && !errors.Is(err, virtio.ErrBadChain) {
					t.Fatalf("place: error %v is neither a bad ring nor a bad chain", err)
				}
				break // the worker asks for a reset and stops
			}
			if !placed {
				// The worker would wait for more buffers; none will come.
				if len(r.held) > 0 && !mergeable {
					t.Fatalf("holding %d chains without MRG_RXBUF", len(r.held))
				}
				break
			}
			got := d.counters.rxFrames.Load() - framesBefore
			dropped := d.counters.rxDropped.Load() - droppedBefore
			if got+dropped != 1 {
				t.Fatalf("a placed frame counted %d placed and %d dropped", got, dropped)
			}
			if len(r.held) != 0 || r.heldLen != 0 {
				t.Fatalf("still holding %d chains after placing a frame", len(r.held))
			}
			nbuf := binary.LittleEndian.Uint16(fr[hdrNumBuffersOff:])
			if got == 1 {
				wantFrames++
				wantBytes += uint64(len(fr) - headerLen)
				if nbuf == 0 || (!mergeable && nbuf != 1) || nbuf > fuzzQueueSize {
					t.Fatalf("num_buffers %d (mergeable %v, queue of %d)", nbuf, mergeable, fuzzQueueSize)
				}
			} else {
				wantDropped++
			}
			n := q.NextUsed() - before
			if n > 2*fuzzQueueSize {
				t.Fatalf("%d used elements for one frame in a queue of %d", n, fuzzQueueSize)
			}
			if overlap {
				continue
			}
			var sum uint64
			var nonzero uint16
			for i := range n {
				slot := uint64((before + i) % fuzzQueueSize)
				head := binary.LittleEndian.Uint32(ram[fuzzUsed+4+8*slot:])
				l := binary.LittleEndian.Uint32(ram[fuzzUsed+4+8*slot+4:])
				if head >= fuzzQueueSize {
					t.Fatalf("used element names head %d", head)
				}
				sum += uint64(l)
				if l != 0 {
					nonzero++
				}
			}
			if got == 1 && (sum != uint64(len(fr)) || nonzero != nbuf) {
				t.Fatalf("frame of %d bytes: used elements report %d bytes in %d chains, header says %d", len(fr), sum, nonzero, nbuf)
			}
			if got == 0 && sum != 0 {
				t.Fatalf("a dropped frame reports %d bytes written", sum)
			}
		}
		c := d.Counters()
		if c.RxFrames != wantFrames || c.RxBytes != wantBytes {
			t.Fatalf("counters %+v, want %d frames of %d bytes", c, wantFrames, wantBytes)
		}
		if c.RxDropped != wantDropped {
			t.Fatalf("counters %+v, want %d dropped", c, wantDropped)
		}
		if irq.resets != 0 {
			t.Fatal("place asked for a reset itself; that is the worker's call")
		}
		if !mem.GuardsIntact() {
			t.Fatal("wrote outside guest RAM")
		}
	})
}

// checkRxHeader checks a fixed-up receive header against the features:
// the driver must never see an offload it did not accept.
func checkRxHeader(t *testing.T, hdr []byte, acked uint64) {
	t.Helper()
	flags, gso := hdr[0], hdr[1]
	if flags&^3 != 0 || (flags != 0 && acked&specGuestCsum == 0) {
		t.Fatalf("header flags %#x reach a driver with features %#x", flags, acked)
	}
	need := map[byte]uint64{0: 0, 1: specGuestTSO4, 4: specGuestTSO6, 0x81: specGuestTSO4 | specGuestECN, 0x84: specGuestTSO6 | specGuestECN}
	if f, ok := need[gso]; !ok || acked&f != f {
		t.Fatalf("gso_type %#x reaches a driver with features %#x", gso, acked)
	}
}
