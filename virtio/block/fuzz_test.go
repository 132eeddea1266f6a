package block

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// FuzzRequest feeds arbitrary request bytes, laid out in a few readable
// buffers, and a writable area of arbitrary size to the device's request
// handling. Whatever the bytes, the device must not panic, must report a
// valid status in the last writable byte, must not claim more written
// bytes than there is room for, must not write outside guest RAM, and
// must leave the image alone whenever it reports failure or the request
// was not one that writes.
func FuzzRequest(f *testing.F) {
	for _, s := range [][]byte{
		header(specTIn, 0),
		append(header(specTOut, 2), bytes.Repeat([]byte{0xab}, specSector)...),
		header(specTFlush, 0),
		header(specTGetID, 0),
		append(header(specTDiscard, 0), seg(1, 2, 0)...),
		append(header(specTWriteZeroes, 0), seg(6, 2, specUnmapFlag)...),
		append(header(specTOut, 7), bytes.Repeat([]byte{1}, 2*specSector)...),
		header(specTIn, ^uint64(0)),
	} {
		f.Add(s, uint16(specSector+1), uint8(0))
		f.Add(s, uint16(1), uint8(5))
	}

	const sectors = 8
	path, orig := image(f, sectors)
	dev, err := New(Config{Path: path, ID: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { dev.Close() })
	img, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { img.Close() })

	f.Fuzz(func(t *testing.T, req []byte, writable uint16, split uint8) {
		if len(req) > 4*specSector+64 {
			req = req[:4*specSector+64]
		}
		if writable > 4*specSector+64 {
			writable = 4*specSector + 64
		}
		mem := virtqtest.NewMemory(0, 64<<10)
		drv := virtqtest.Layout(mem, 16, 0)
		q, err := virtio.NewQueue(16)
		if err != nil {
			t.Fatal(err)
		}
		q.SetDescTable(drv.Desc)
		q.SetAvailRing(drv.Avail)
		q.SetUsedRing(drv.Used)
		q.SetReady(true)

		// Readable buffers: req cut into 1 to 4 pieces.
		next := uint64(0x1000)
		var segs []virtqtest.Seg
		pieces := int(split%4) + 1
		for i := range pieces {
			part := req[len(req)*i/pieces : len(req)*(i+1)/pieces]
			if len(part) == 0 && (i > 0 || len(req) > 0) {
				continue
			}
			copy(mem.Bytes()[next:], part)
			segs = append(segs, virtqtest.Seg{Addr: next, Len: uint32(len(part))})
			next += uint64(len(part)) + 16
		}
		// Writable area, in one buffer or two.
		wbufs := []uint32{uint32(writable)}
		if split&4 != 0 && writable > 1 {
			wbufs = []uint32{uint32(writable) / 2, uint32(writable) - uint32(writable)/2}
		}
		for _, n := range wbufs {
			if n == 0 {
				continue
			}
			for i := range n {
				mem.Bytes()[next+uint64(i)] = 0xee
			}
			segs = append(segs, virtqtest.Seg{Addr: next, Len: n, Write: true})
			next += uint64(n) + 16
		}
		drv.Publish(drv.Chain(0, segs...))
		c, err := q.Pop(mem)
		if err != nil || c == nil {
			t.Fatalf("Pop of a well-formed chain: %v, %v", c, err)
		}

		used, fatal := dev.serve(mem, c, allFeatures)

		if !mem.GuardsIntact() {
			t.Fatal("device wrote outside guest RAM")
		}
		if writable == 0 {
			if !errors.Is(fatal, ErrNoStatus) || used != 0 {
				t.Fatalf("no writable byte: used %d, error %v; want 0, ErrNoStatus", used, fatal)
			}
		} else if fatal != nil {
			t.Fatalf("serve: %v", fatal)
		}
		if used > uint32(writable) {
			t.Fatalf("used length %d with %d writable bytes", used, writable)
		}
		status := byte(0xee)
		if writable > 0 {
			last := segs[len(segs)-1]
			status = mem.Bytes()[last.Addr+uint64(last.Len)-1]
			if status > specSUnsupp {
				t.Fatalf("status byte %d", status)
			}
		}
		var typ uint32
		if len(req) >= 4 {
			typ = binary.LittleEndian.Uint32(req)
		}
		writes := typ == specTOut || typ == specTDiscard || typ == specTWriteZeroes
		got := make([]byte, len(orig)+1)
		n, _ := img.ReadAt(got, 0)
		got = got[:n]
		if (status != specSOK || !writes) && !bytes.Equal(got, orig) {
			t.Fatalf("type %d with status %d changed the image", typ, status)
		}
		if len(got) != len(orig) {
			t.Fatalf("image size changed to %d from %d", len(got), len(orig))
		}
		if !bytes.Equal(got, orig) {
			if _, err := img.WriteAt(orig, 0); err != nil {
				t.Fatal(err)
			}
		}
	})
}
