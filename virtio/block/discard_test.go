package block

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// dataAfter is SEEK_DATA: the first offset at or after off that holds
// data, or size when only a hole follows.
func dataAfter(t *testing.T, path string, off int64) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pos, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return fi.Size()
	}
	if err != nil {
		t.Fatalf("SEEK_DATA: %v", err)
	}
	return pos
}

// holeAt is SEEK_HOLE: the first offset at or after off inside a hole.
func holeAt(t *testing.T, path string, off int64) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pos, err := unix.Seek(int(f.Fd()), off, unix.SEEK_HOLE)
	if err != nil {
		t.Fatalf("SEEK_HOLE: %v", err)
	}
	return pos
}

// punchable makes an image whose sectors are all allocated and reports
// whether the file system can punch holes in it at all.
func punchable(t *testing.T, sectors int) (string, []byte) {
	t.Helper()
	path, orig := image(t, sectors)
	probe := path + ".probe"
	if err := os.WriteFile(probe, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(probe, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 4096); err != nil {
		t.Skipf("temp file system cannot punch holes: %v", err)
	}
	if holeAt(t, path, 0) != int64(len(orig)) {
		t.Skip("freshly written image already has holes")
	}
	return path, orig
}

// Sectors 8..23 are bytes 4096..12287: whole 4 KiB blocks, which every
// file system can deallocate.
const (
	holeSector = 8
	holeCount  = 16
	holeStart  = holeSector * specSector
	holeEnd    = (holeSector + holeCount) * specSector
)

func checkHole(t *testing.T, h *harness, path string, orig []byte, what string) {
	t.Helper()
	if got := holeAt(t, path, holeStart); got != holeStart {
		t.Errorf("%s: first hole at or after %d is at %d", what, holeStart, got)
	}
	if got := dataAfter(t, path, holeStart); got < holeEnd {
		t.Errorf("%s: data at %d inside the range [%d, %d) that should be a hole", what, got, holeStart, holeEnd)
	}
	want := bytes.Clone(orig)
	clear(want[holeStart:holeEnd])
	if !bytes.Equal(fileBytes(t, path), want) {
		t.Errorf("%s: image is not the original with [%d, %d) zeroed", what, holeStart, holeEnd)
	}
	r := h.do(specTIn, holeSector-1, nil, (holeCount+2)*specSector)
	h.wantStatus(what+": read back", r, specSOK)
	if !bytes.Equal(r.data, want[holeStart-specSector:holeEnd+specSector]) {
		t.Errorf("%s: read back through the queue is not zeroes between the original neighbours", what)
	}
}

func TestDiscardPunchesHole(t *testing.T) {
	path, orig := punchable(t, 32)
	h := newHarness(t, Config{Path: path}, allFeatures)
	r := h.do(specTDiscard, 0, seg(holeSector, holeCount, 0), 0)
	h.wantStatus("discard", r, specSOK)
	if r.used != 1 {
		t.Errorf("discard used length %d, want 1", r.used)
	}
	checkHole(t, h, path, orig, "discard")
}

func TestDiscardSeveralSegments(t *testing.T) {
	path, orig := punchable(t, 32)
	h := newHarness(t, Config{Path: path}, allFeatures)
	segs := append(seg(holeSector, holeCount/2, 0), seg(holeSector+holeCount/2, holeCount/2, 0)...)
	h.wantStatus("two-segment discard", h.do(specTDiscard, 0, segs, 0), specSOK)
	checkHole(t, h, path, orig, "two-segment discard")
}

func TestWriteZeroesWithUnmapPunchesHole(t *testing.T) {
	path, orig := punchable(t, 32)
	h := newHarness(t, Config{Path: path}, allFeatures)
	h.wantStatus("write-zeroes+unmap", h.do(specTWriteZeroes, 0, seg(holeSector, holeCount, specUnmapFlag), 0), specSOK)
	checkHole(t, h, path, orig, "write-zeroes+unmap")
}

func TestWriteZeroesWithoutUnmapZeroes(t *testing.T) {
	path, orig := image(t, 32)
	h := newHarness(t, Config{Path: path}, allFeatures)
	// An unaligned range: sectors 3..12.
	h.wantStatus("write-zeroes", h.do(specTWriteZeroes, 0, seg(3, 10, 0), 0), specSOK)
	want := bytes.Clone(orig)
	clear(want[3*specSector : 13*specSector])
	if !bytes.Equal(fileBytes(t, path), want) {
		t.Fatal("image is not the original with sectors 3..12 zeroed")
	}
	r := h.do(specTIn, 2, nil, 12*specSector)
	if !bytes.Equal(r.data, want[2*specSector:14*specSector]) {
		t.Error("read back after write-zeroes is not zeroes between the original neighbours")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != int64(len(orig)) {
		t.Errorf("image size %d after write-zeroes, want %d", fi.Size(), len(orig))
	}
}

func TestDiscardAndWriteZeroesRejects(t *testing.T) {
	path, orig := image(t, 32)
	h := newHarness(t, Config{Path: path}, allFeatures)
	many := bytes.Repeat(seg(0, 1, 0), MaxDiscardSeg+1)
	cases := []struct {
		name   string
		typ    uint32
		data   []byte
		status byte
	}{
		// virtio 1.2 5.2.6.2: unmap on a discard, or any reserved flag,
		// is VIRTIO_BLK_S_UNSUPP.
		{"discard with unmap", specTDiscard, seg(0, 8, specUnmapFlag), specSUnsupp},
		{"discard with a reserved flag", specTDiscard, seg(0, 8, 2), specSUnsupp},
		{"write-zeroes with a reserved flag", specTWriteZeroes, seg(0, 8, 1<<31), specSUnsupp},
		{"discard over max_discard_seg", specTDiscard, many, specSIOErr},
		{"write-zeroes over max_write_zeroes_seg", specTWriteZeroes, bytes.Repeat(seg(0, 1, 0), MaxWriteZeroesSeg+1), specSIOErr},
		{"discard over max_discard_sectors", specTDiscard, seg(0, MaxDiscardSectors+1, 0), specSIOErr},
		// One bad segment fails the request before any segment is applied.
		{"good segment then one past capacity", specTDiscard, append(seg(0, 8, 0), seg(30, 4, 0)...), specSIOErr},
		{"good segment then one with unmap", specTDiscard, append(seg(0, 8, 0), seg(8, 8, specUnmapFlag)...), specSUnsupp},
		{"write-zeroes: good segment then one past capacity", specTWriteZeroes, append(seg(0, 8, 0), seg(32, 1, 0)...), specSIOErr},
	}
	for _, c := range cases {
		h.wantStatus(c.name, h.do(c.typ, 0, c.data, 0), c.status)
	}
	if !bytes.Equal(fileBytes(t, path), orig) {
		t.Fatal("image changed after refused discard/write-zeroes requests")
	}
}

func TestDiscardNotNegotiated(t *testing.T) {
	path, orig := image(t, 32)
	h := newHarness(t, Config{Path: path}, virtioV1|specFFlush)
	h.wantStatus("discard without DISCARD", h.do(specTDiscard, 0, seg(0, 8, 0), 0), specSUnsupp)
	h.wantStatus("write-zeroes without WRITE_ZEROES", h.do(specTWriteZeroes, 0, seg(0, 8, 0), 0), specSUnsupp)
	if !bytes.Equal(fileBytes(t, path), orig) {
		t.Fatal("image changed")
	}
}
