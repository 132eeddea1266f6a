package migrate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ternvm/tern/migrate/snapshot"
)

// snapSource is a paused fake VM for WriteSnapshot: every page of
// newFakeSource's initial bitmap may be non-zero.
type snapSource struct{ *fakeSource }

func (s snapSource) Pages() (snapshot.Bitmap, error) {
	return append(snapshot.Bitmap(nil), s.initial...), nil
}

func writeSnap(t testing.TB, src *fakeSource) ([]byte, SnapshotStats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := WriteSnapshot(context.Background(), &buf, snapSource{src})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), st
}

func readSnap(stream []byte) (*fakeDest, error) {
	dst := &fakeDest{maxBytes: 1 << 20}
	return dst, ReadSnapshot(context.Background(), bytes.NewReader(stream), dst)
}

func TestSnapshotStreamRoundTrip(t *testing.T) {
	src := newFakeSource(20, 7)
	stream, st := writeSnap(t, src)
	if st.Bytes != uint64(len(stream)) {
		t.Errorf("stats say %d bytes, %d were written", st.Bytes, len(stream))
	}
	// newFakeSource fills every page of the initial bitmap but those
	// whose number is a multiple of 5 (left zero).
	var data, zero uint64
	for p := uint64(0); p < src.l.pages; p++ {
		switch {
		case !src.initial.Test(p):
		case p%5 == 0:
			zero++
		default:
			data++
		}
	}
	if st.Pages != data || st.ZeroPages != zero {
		t.Errorf("wrote %d data and %d zero pages, want %d and %d", st.Pages, st.ZeroPages, data, zero)
	}
	if string(stream[:8]) != "TERNMIG\x00" {
		t.Errorf("stream opens with %q, want the migration preamble", stream[:8])
	}
	dst, err := readSnap(stream)
	if err != nil {
		t.Fatal(err)
	}
	if !dst.started {
		t.Fatal("the destination was not started")
	}
	sameMemory(t, src, dst)
	if !reflect.DeepEqual(dst.sections, src.sections) {
		t.Errorf("sections %+v, want %+v", dst.sections, src.sections)
	}
}

// The stream goes through a pipe as it is written: nothing needs to seek
// or answer.
func TestSnapshotStreamThroughAPipe(t *testing.T) {
	src := newFakeSource(64)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	werr := make(chan error, 1)
	go func() {
		_, err := WriteSnapshot(context.Background(), pw, snapSource{src})
		pw.Close()
		werr <- err
	}()
	dst := &fakeDest{}
	if err := ReadSnapshot(context.Background(), pr, dst); err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	sameMemory(t, src, dst)
}

// Cut anywhere, the stream ends early and nothing starts.
func TestSnapshotStreamTruncated(t *testing.T) {
	stream, _ := writeSnap(t, newFakeSource(9, 3))
	for c := 0; c < len(stream); c += 1 + c/8 {
		dst, err := readSnap(stream[:c])
		if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "ended early") {
			t.Fatalf("cut at %d of %d: %v, want the stream ended early", c, len(stream), err)
		}
		if dst.started {
			t.Fatalf("cut at %d: started", c)
		}
	}
}

// A flipped bit anywhere is refused, and nothing starts.
func TestSnapshotStreamCorrupt(t *testing.T) {
	stream, _ := writeSnap(t, newFakeSource(9, 3))
	for off := 0; off < len(stream); off += 1 + off/16 {
		b := bytes.Clone(stream)
		b[off] ^= 0x04
		dst, err := readSnap(b)
		if err == nil || dst.started {
			t.Fatalf("flipped byte %d of %d: started=%v err=%v", off, len(stream), dst.started, err)
		}
		if !errors.Is(err, ErrProtocol) {
			t.Fatalf("flipped byte %d: %v, want ErrProtocol", off, err)
		}
	}
}

// A stream that claims to carry disk contents is refused before a
// single byte of a disk is written, even by a destination that could
// take streamed disks in a migration.
func TestSnapshotStreamWithDisksRefused(t *testing.T) {
	stream := newDiskStream(8192).
		msg(msgDiskExtents, diskPayload(extentOf{0, 0, 0, 4096})).
		state().msg(msgCommit).buf.Bytes()
	dst := &fakeDiskDest{fakeDest: &fakeDest{maxBytes: 1 << 20}}
	err := ReadSnapshot(context.Background(), bytes.NewReader(stream), dst)
	if err == nil || !strings.Contains(err.Error(), "cannot receive streamed disks") {
		t.Fatalf("ReadSnapshot = %v, want a refusal of streamed disks", err)
	}
	if dst.disks != nil || dst.writes != 0 || dst.started {
		t.Errorf("disks prepared %v, %d writes, started %v", dst.disks != nil, dst.writes, dst.started)
	}
}

type failingWriter struct{ left int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, errors.New("disk full")
	}
	w.left -= len(p)
	return len(p), nil
}

func TestWriteSnapshotReportsWriteErrors(t *testing.T) {
	stream, _ := writeSnap(t, newFakeSource(9))
	for _, at := range []int{0, 10, len(stream) / 2, len(stream) - 1} {
		_, err := WriteSnapshot(context.Background(), &failingWriter{left: at}, snapSource{newFakeSource(9)})
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("writer failing after %d bytes: %v", at, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WriteSnapshot(ctx, io.Discard, snapSource{newFakeSource(9)}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// FuzzReadSnapshot feeds arbitrary bytes as a snapshot stream: no panic,
// no allocation past the bounds (the fake destination refuses more than
// 1 MiB of RAM), and a started VM only for a whole valid stream, whose
// memory is then what the hello and the pages say. Each input is also
// tried with its framing repaired, to reach the payload checks.
func FuzzReadSnapshot(f *testing.F) {
	stream, _ := writeSnap(f, newFakeSource(3, 2))
	f.Add(stream)
	f.Add(stream[:len(stream)-5])
	for _, off := range []int{9, preambleSize + 5, preambleSize + headerSize + 12, len(stream) / 2, len(stream) - 40} {
		b := bytes.Clone(stream)
		b[off] ^= 0x20
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkReadSnapshot(t, in)
		checkReadSnapshot(t, fixFraming(in))
	})
}

func checkReadSnapshot(t *testing.T, in []byte) {
	dst, err := readSnap(in)
	if dst.started != (err == nil) {
		t.Fatalf("started %v with error %v", dst.started, err)
	}
	if err != nil {
		if !errors.Is(err, ErrProtocol) && !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "no room") {
			t.Fatalf("unexpected kind of error: %v", err)
		}
		return
	}
	if !dst.prepared || !dst.loaded {
		t.Fatal("started without a prepared and loaded VM")
	}
	var total uint64
	for i, r := range dst.hello.Regions {
		if uint64(len(dst.mem[i])) != r.Size {
			t.Fatalf("region %d is %d bytes, the hello says %d", i, len(dst.mem[i]), r.Size)
		}
		total += r.Size
	}
	if total > 1<<20 {
		t.Fatalf("%d bytes of RAM past the destination's bound", total)
	}
}
