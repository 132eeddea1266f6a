package block

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// chunksOf lists the chunk numbers a write log bitmap marks.
func chunksOf(b []uint64) []int {
	var cs []int
	for i, w := range b {
		for j := 0; j < 64; j++ {
			if w&(1<<j) != 0 {
				cs = append(cs, i*64+j)
			}
		}
	}
	return cs
}

// The chunk size the tests count with, written out: 64 KiB.
const specChunk = 65536

func TestWriteLogRecordsWhatTheGuestChanges(t *testing.T) {
	// 5 chunks and a half: the last chunk is short.
	path, _ := image(t, (5*specChunk+specChunk/2)/specSector)
	h := newHarness(t, Config{Path: path}, allFeatures)

	h.wantStatus("write before the log", h.do(specTOut, 0, bytes.Repeat([]byte{1}, specSector), 0), specSOK)
	if b := h.dev.TakeWritten(); b != nil {
		t.Fatalf("TakeWritten without a log: %v, want nil", b)
	}
	h.dev.StartWriteLog()
	if got := chunksOf(h.dev.TakeWritten()); len(got) != 0 {
		t.Fatalf("a fresh log marks chunks %v", got)
	}
	// A read changes nothing; a write straddling chunks 0 and 1 marks
	// both; one into the short last chunk marks it.
	h.wantStatus("read", h.do(specTIn, 0, nil, 4*specSector), specSOK)
	h.wantStatus("write across chunks", h.do(specTOut, specChunk/specSector-1, make([]byte, 2*specSector), 0), specSOK)
	h.wantStatus("write into the last chunk", h.do(specTOut, 5*specChunk/specSector+3, make([]byte, specSector), 0), specSOK)
	if got, want := chunksOf(h.dev.TakeWritten()), []int{0, 1, 5}; !slices.Equal(got, want) {
		t.Errorf("log after writes: chunks %v, want %v", got, want)
	}
	// Taking starts a new record.
	if got := chunksOf(h.dev.TakeWritten()); len(got) != 0 {
		t.Errorf("second take: chunks %v, want none", got)
	}
	// Discard and write-zeroes change the image too.
	h.wantStatus("discard", h.do(specTDiscard, 2*specChunk/specSector, seg(2*specChunk/specSector, specSector/specSector, 0), 0), specSOK)
	h.wantStatus("write-zeroes", h.do(specTWriteZeroes, 0, seg(3*specChunk/specSector, 2*specChunk/specSector, specUnmapFlag), 0), specSOK)
	if got, want := chunksOf(h.dev.TakeWritten()), []int{2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("log after discard and write-zeroes: chunks %v, want %v", got, want)
	}
	// A refused request changes nothing and marks nothing.
	h.wantStatus("write past the end", h.do(specTOut, h.dev.Capacity(), make([]byte, specSector), 0), specSIOErr)
	if got := chunksOf(h.dev.TakeWritten()); len(got) != 0 {
		t.Errorf("a refused write marked chunks %v", got)
	}
	h.dev.StopWriteLog()
	h.wantStatus("write after the log", h.do(specTOut, 0, make([]byte, specSector), 0), specSOK)
	if b := h.dev.TakeWritten(); b != nil {
		t.Errorf("TakeWritten after StopWriteLog: %v, want nil", b)
	}
}

// A migration reads the image while the worker writes it: every write
// that completes after a take is in the next one, so a reader that
// re-reads what the log marks ends with the image's bytes.
func TestWriteLogFollowedByReadsConverges(t *testing.T) {
	const chunks = 8
	path, _ := image(t, chunks*specChunk/specSector)
	h := newHarness(t, Config{Path: path}, allFeatures)
	h.dev.StartWriteLog()
	mirror := make([]byte, h.dev.Size())
	if err := h.dev.ReadAt(mirror, 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The harness hands out each descriptor once: 3 per request.
		for i := range 80 {
			c := uint64(i*5) % chunks
			h.do(specTOut, c*specChunk/specSector+uint64(i%7), bytes.Repeat([]byte{byte(i)}, 3*specSector), 0)
		}
	}()
	copyMarked := func() {
		for _, c := range chunksOf(h.dev.TakeWritten()) {
			if err := h.dev.ReadAt(mirror[c*specChunk:(c+1)*specChunk], int64(c*specChunk)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		copyMarked()
	}
	h.dev.Reset() // quiesced, as a paused VM's device
	copyMarked()
	if !bytes.Equal(mirror, fileBytes(t, path)) {
		t.Error("the copy made from the write log differs from the image")
	}
}

func TestReadAtChecksBounds(t *testing.T) {
	path, orig := image(t, 16)
	h := newHarness(t, Config{Path: path, ReadOnly: true}, allFeatures)
	p := make([]byte, 2*specSector)
	if err := h.dev.ReadAt(p, 3*specSector); err != nil || !bytes.Equal(p, orig[3*specSector:5*specSector]) {
		t.Errorf("ReadAt: %v, bytes equal %v", err, bytes.Equal(p, orig[3*specSector:5*specSector]))
	}
	for _, off := range []int64{-1, 15 * specSector, 16 * specSector, 1 << 62} {
		if err := h.dev.ReadAt(p, off); err == nil {
			t.Errorf("ReadAt of %d bytes at %d: no error", len(p), off)
		}
	}
}

func TestDataExtentsSkipHoles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sparse.img")
	const size = 64 << 20
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{0xab}, 1<<20)
	for _, off := range []int64{8 << 20, 40 << 20} {
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	dev, err := New(Config{Path: path, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	var total int64
	var spans [][2]int64
	err = dev.DataExtents(func(off, n int64) error {
		if n <= 0 || off < 0 || off+n > size {
			t.Errorf("extent [%d, +%d) outside the disk", off, n)
		}
		if len(spans) > 0 && off < spans[len(spans)-1][1] {
			t.Errorf("extent at %d overlaps or precedes the one before", off)
		}
		spans = append(spans, [2]int64{off, off + n})
		total += n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	covered := func(off int64) bool {
		for _, s := range spans {
			if off >= s[0] && off < s[1] {
				return true
			}
		}
		return false
	}
	for _, off := range []int64{8 << 20, 9<<20 - 1, 40 << 20, 41<<20 - 1} {
		if !covered(off) {
			t.Errorf("byte %d holds data but no extent covers it (extents %v)", off, spans)
		}
	}
	if total == size {
		t.Logf("this file system reports no holes; every byte is data")
	} else if total > 8<<20 {
		t.Errorf("extents cover %d bytes of a file with 2 MiB of data", total)
	}
	stop := errors.New("stop")
	if err := dev.DataExtents(func(off, n int64) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("DataExtents returned %v, want fn's error", err)
	}
}
