package migrate

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ternvm/tern/migrate/snapshot"
)

// recordStream runs a whole migration and returns what the source sent.
func recordStream(t testing.TB, pages ...int) []byte {
	src := newFakeSource(pages...)
	src.guest = busyGuest
	dst := &fakeDest{}
	sc, dc := pipePair(t)
	rec := &recorder{Conn: sc}
	o := migrate(t, context.Background(), rec, dc, src, dst, SendOptions{Downtime: time.Nanosecond})
	if o.err != nil || o.recvEr != nil {
		t.Fatalf("Send: %v; Receive: %v", o.err, o.recvEr)
	}
	return rec.bytes()
}

// splitStream cuts a recorded stream into its preamble and messages.
func splitStream(t testing.TB, s []byte) (pre []byte, msgs [][]byte) {
	pre, s = s[:preambleSize], s[preambleSize:]
	for len(s) > 0 {
		n := headerSize + int(binary.LittleEndian.Uint32(s[4:])) + trailerSize
		msgs = append(msgs, s[:n])
		s = s[n:]
	}
	return pre, msgs
}

func replay(stream []byte) (*fakeDest, ReceiveResult, error) {
	dst := &fakeDest{maxBytes: 1 << 20}
	res, err := Receive(context.Background(), streamConn{bytes.NewReader(stream)}, dst)
	return dst, res, err
}

func TestReplayRecordedStream(t *testing.T) {
	stream := recordStream(t, 20, 3)
	dst, res, err := replay(stream)
	if err != nil || !res.Started || !dst.started {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	_, msgs := splitStream(t, stream)
	if len(msgs) < 6 {
		t.Fatalf("only %d messages", len(msgs))
	}
}

// Cut at every message boundary and inside each message's parts, the
// stream ends early: nothing starts.
func TestTruncatedStream(t *testing.T) {
	stream := recordStream(t, 20, 3)
	_, msgs := splitStream(t, stream)
	cuts := []int{0, 5, preambleSize}
	off := preambleSize
	for _, m := range msgs[:len(msgs)-1] {
		cuts = append(cuts, off+7, off+headerSize, off+headerSize+1, off+len(m)-2, off+len(m))
		off += len(m)
	}
	cuts = append(cuts, len(stream)-1)
	for _, c := range cuts {
		dst, res, err := replay(stream[:c])
		if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "ended early") {
			t.Errorf("cut at %d: %v, want the stream ended early", c, err)
		}
		if res.Started || dst.started {
			t.Errorf("cut at %d: started", c)
		}
	}
}

func TestReorderedMessages(t *testing.T) {
	pre, msgs := splitStream(t, recordStream(t, 20, 3))
	join := func(ms ...[]byte) []byte { return bytes.Join(append([][]byte{pre}, ms...), nil) }
	cases := map[string][]byte{
		"swapped":    join(append([][]byte{msgs[0], msgs[2], msgs[1]}, msgs[3:]...)...),
		"duplicated": join(append([][]byte{msgs[0], msgs[1], msgs[1]}, msgs[2:]...)...),
		"dropped":    join(append([][]byte{msgs[0]}, msgs[2:]...)...),
	}
	for name, s := range cases {
		dst, res, err := replay(s)
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "sequence") {
			t.Errorf("%s: %v, want a sequence error", name, err)
		}
		if res.Started || dst.started {
			t.Errorf("%s: started", name)
		}
	}
	dst, _, err := replay(join(append([][]byte{msgs[0], msgs[2], msgs[1]}, msgs[3:]...)...))
	if want := "message 1: sequence 2, expected 1"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("swapped: %v, want %q", err, want)
	}
	_ = dst
}

// streamOf writes a source's stream message by message with correct
// framing, so that only the order or content is wrong.
type streamOf struct {
	buf bytes.Buffer
	mw  msgWriter
}

func newStream(t testing.TB, hello bool) *streamOf {
	s := &streamOf{}
	s.mw.w = &s.buf
	s.buf.Write(appendPreamble(nil, 0))
	if hello {
		p, _ := json.Marshal(Hello{Regions: []snapshot.MemoryRegion{{GPA: 0, Size: 4 * pageSize}, {GPA: 1 << 20, Size: 2 * pageSize}}, Config: []byte(`{}`)})
		s.msg(msgHello, p)
	}
	return s
}

func (s *streamOf) msg(t msgType, parts ...[]byte) *streamOf {
	s.mw.write(t, parts...)
	return s
}

func (s *streamOf) state() *streamOf {
	var b bytesWriter
	snapshot.WriteState(&b, []snapshot.Section{{Name: "vm", Data: []byte("{}")}})
	return s.msg(msgState, b.b)
}

// pagesPayload encodes runs {first, n, flags}, with data for each
// non-zero run.
func pagesPayload(runs ...[3]uint64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(runs)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	var data []byte
	for _, r := range runs {
		b = binary.LittleEndian.AppendUint64(b, r[0])
		b = binary.LittleEndian.AppendUint32(b, uint32(r[1]))
		b = binary.LittleEndian.AppendUint32(b, uint32(r[2]))
		if r[2]&runZero == 0 && r[1] < 16 {
			data = append(data, bytes.Repeat([]byte{0x5a}, int(r[1])*pageSize)...)
		}
	}
	return append(b, data...)
}

func TestBadStreams(t *testing.T) {
	cases := []struct {
		name   string
		stream *streamOf
		want   string
		is     error
	}{
		{"pages after state", newStream(t, true).state().msg(msgPages, pagesPayload([3]uint64{0, 1, 0})), "pages after the state", ErrProtocol},
		{"commit before state", newStream(t, true).msg(msgCommit), "commit before the state", ErrProtocol},
		{"state twice", newStream(t, true).state().state(), "a second state", ErrProtocol},
		{"second hello", newStream(t, true).msg(msgHello, []byte(`{}`)), "unexpected after the handshake", ErrProtocol},
		{"no hello", newStream(t, false).state(), "must open with a hello", ErrProtocol},
		{"destination's message", newStream(t, true).msg(msgReady), "cannot come from", ErrProtocol},
		{"disk extents without streamed disks", newStream(t, true).msg(msgDiskExtents, diskPayload(extentOf{0, 0, 0, 512})), "announced no streamed disks", ErrProtocol},
		{"reserved page request", newStream(t, true).msg(msgPageRequest), "reserved", ErrProtocol},
		{"unknown type", newStream(t, true).msg(77), "unknown type 77", ErrProtocol},
		{"abort", newStream(t, true).msg(msgAbort, []byte(`{"error":"operator said no"}`)), "operator said no", ErrAborted},
		{"run past the guest", newStream(t, true).msg(msgPages, pagesPayload([3]uint64{5, 2, 0})), "goes past the guest's 6 pages", ErrProtocol},
		{"run across regions", newStream(t, true).msg(msgPages, pagesPayload([3]uint64{3, 2, 0})), "crosses the end of RAM region 0", ErrProtocol},
		{"empty run", newStream(t, true).msg(msgPages, pagesPayload([3]uint64{0, 0, 0})), "is empty", ErrProtocol},
		{"unknown run flag", newStream(t, true).msg(msgPages, pagesPayload([3]uint64{0, 1, 2})), "unknown flags", ErrProtocol},
		{"data missing", newStream(t, true).msg(msgPages, pagesPayload([3]uint64{0, 1, 0})[:8+16+100]), "the header says", ErrProtocol},
		{"huge run count", newStream(t, true).msg(msgPages, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}), "at most 4096", ErrProtocol},
		{"bad hello region", newStream(t, false).msg(msgHello, []byte(`{"regions":[{"GPA":4096,"Size":100}],"config":{}}`)), "page-aligned", ErrProtocol},
		{"hello without config", newStream(t, false).msg(msgHello, []byte(`{"regions":[{"GPA":0,"Size":4096}]}`)), "no VM configuration", ErrProtocol},
		{"corrupt state", newStream(t, true).msg(msgState, []byte("TERNSNAP garbage")), "message 1 (state)", ErrProtocol},
	}
	for _, c := range cases {
		dst, res, err := replay(c.stream.buf.Bytes())
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %v with %q", c.name, err, c.is, c.want)
		}
		if res.Started || dst.started {
			t.Errorf("%s: started", c.name)
		}
	}
}

// A checksum mismatch in a header or payload is refused, naming the
// message.
func TestChecksums(t *testing.T) {
	s := newStream(t, true).msg(msgPages, pagesPayload([3]uint64{0, 2, 0})).buf.Bytes()
	_, msgs := splitStream(t, s)
	pagesAt := preambleSize + len(msgs[0])
	for off, want := range map[int]string{
		pagesAt + 4:               "message 1: header checksum mismatch",
		pagesAt + headerSize + 50: "message 1 (pages): payload checksum mismatch",
		len(s) - 1:                "message 1 (pages): payload checksum mismatch",
	} {
		bad := bytes.Clone(s)
		bad[off] ^= 1
		_, _, err := replay(bad)
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), want) {
			t.Errorf("flip at %d: %v, want %q", off, err, want)
		}
	}
}

// rawHeader frames a message header claiming length bytes.
func rawHeader(t msgType, length, seq uint32) []byte {
	h := make([]byte, headerSize)
	h[0] = byte(t)
	binary.LittleEndian.PutUint32(h[4:], length)
	binary.LittleEndian.PutUint32(h[8:], seq)
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(h[:12], castagnolis()))
	return h
}

// A header's length is checked before anything is allocated for it, and
// a legal but large length costs only what actually arrives.
func TestLengthsBoundAllocation(t *testing.T) {
	for _, c := range []struct {
		length uint32
		want   string
	}{
		{2 << 30, "message 1: state message of 2147483648 bytes exceeds 67108864"},
		{60 << 20, "ended early after 1000 of 62914560 payload bytes"},
	} {
		s := newStream(t, true).buf.Bytes()
		s = append(s, rawHeader(msgState, c.length, 1)...)
		s = append(s, make([]byte, 1000)...)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, _, err := replay(s)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("length %d: %v, want %q", c.length, err, c.want)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
			t.Errorf("length %d: %d bytes allocated", c.length, got)
		}
	}
	// A hello that claims more than its bound.
	s := append(appendPreamble(nil, 0), rawHeader(msgHello, 1<<20+1, 0)...)
	if _, _, err := replay(s); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "hello message of 1048577 bytes exceeds 1048576") {
		t.Errorf("big hello: %v", err)
	}
}

func TestPreambleChecks(t *testing.T) {
	for name, c := range map[string]struct {
		pre  []byte
		want string
	}{
		"other program": {[]byte("GET / HTTP/1.1\r\nHost"), "not a tern migration endpoint"},
		"version 2":     {append([]byte(preambleMagic), 2, 0, 0, 0, 0, 0, 0, 0), "version 2, this tern speaks version 1"},
		"flags":         {append([]byte(preambleMagic), 1, 0, 0, 0, 3, 0, 0, 0), "unknown flags 0x2"},
	} {
		_, _, err := replay(c.pre)
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// fixFraming rewrites sequence numbers and checksums wherever the input
// parses as messages, so that the fuzzer gets past them to the checks
// behind.
func fixFraming(in []byte) []byte {
	out := bytes.Clone(in)
	s := out[min(len(out), preambleSize):]
	for seq := uint32(0); len(s) >= headerSize; seq++ {
		binary.LittleEndian.PutUint32(s[8:], seq)
		binary.LittleEndian.PutUint32(s[12:], crc32.Checksum(s[:12], castagnolis()))
		n := int(binary.LittleEndian.Uint32(s[4:]))
		if n > len(s)-headerSize-trailerSize {
			break
		}
		binary.LittleEndian.PutUint32(s[headerSize+n:], crc32.Checksum(s[headerSize:headerSize+n], castagnolis()))
		s = s[headerSize+n+trailerSize:]
	}
	return out
}

// FuzzReceive feeds arbitrary bytes as the source's stream: Receive must
// never panic, never allocate past its bounds (the fake destination
// refuses more than 1 MiB of RAM), and start the guest only for a whole,
// valid stream. Each input is also tried with its framing repaired.
func FuzzReceive(f *testing.F) {
	// Small, so that the fuzzer's minimization of inputs stays quick.
	stream := recordStream(f, 3, 2)
	f.Add(stream)
	f.Add(stream[:len(stream)/2])
	for _, off := range []int{3, preambleSize + 2, preambleSize + headerSize + 10, len(stream) / 3, len(stream) - 30} {
		b := bytes.Clone(stream)
		b[off] ^= 0x10
		f.Add(b)
	}
	f.Add(newStream(f, true).msg(msgPages, pagesPayload([3]uint64{0, 2, 0}, [3]uint64{2, 2, 1}, [3]uint64{4, 1, 0})).state().msg(msgCommit).buf.Bytes())
	f.Add(newDiskStream(8192, 4096).msg(msgDiskExtents, diskPayload(extentOf{0, 0, 512, 1024}, extentOf{1, extentZero, 0, 4096})).state().msg(msgCommit).buf.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		checkReceive(t, in)
		checkReceive(t, fixFraming(in))
	})
}

func checkReceive(t *testing.T, in []byte) {
	ddst, res, err := replayDisks(in)
	dst := ddst.fakeDest
	if res.Started != (err == nil) {
		t.Fatalf("started %v with error %v", res.Started, err)
	}
	if res.Started && !(dst.prepared && dst.loaded && dst.started) {
		t.Fatal("started without a prepared and loaded VM")
	}
	if !res.Started && dst.started {
		t.Fatalf("the destination runs the guest but Receive failed: %v", err)
	}
	if err != nil && !errors.Is(err, ErrProtocol) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrAborted) && !strings.Contains(err.Error(), "no room") && !strings.Contains(err.Error(), "loading") {
		t.Fatalf("unexpected kind of error: %v", err)
	}
}

// BenchmarkSendReceive moves a 256 MiB guest of non-zero pages over a
// Unix socket pair.
func BenchmarkSendReceive(b *testing.B) {
	src := newFakeSource(256 << 20 / pageSize)
	for p := uint64(0); p < src.l.pages; p++ {
		binary.LittleEndian.PutUint64(src.page(p), p+1) // non-zero, cheap to fill
	}
	dst := &fakeDest{reuse: true, maxBytes: 512 << 20}
	b.SetBytes(256 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sc, dc := unixPair(b)
		src.paused = false
		o := migrate(b, context.Background(), sc, dc, src, dst, SendOptions{})
		if o.err != nil || o.recvEr != nil {
			b.Fatalf("Send: %v; Receive: %v", o.err, o.recvEr)
		}
	}
}
