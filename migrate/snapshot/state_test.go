package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func sampleSections() []Section {
	return []Section{
		{"config", []byte(`{"CPUs":2}`)},
		{"vcpu/0", bytes.Repeat([]byte{7}, 300)},
		{"device/disk0", []byte{0, 1, 2, 0xff}},
		{"empty", []byte{}},
	}
}

func mustEncode(t testing.TB, s []Section) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteState(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rawFile assembles a state file by hand from FORMAT.md: header fields,
// the given body, and the SHA-256 of everything before the trailer. It
// lets the tests build files the writer refuses to produce.
func rawFile(version, flags, count uint32, body []byte) []byte {
	b := []byte("TERNSNAP")
	b = binary.LittleEndian.AppendUint32(b, version)
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = binary.LittleEndian.AppendUint32(b, count)
	b = append(b, body...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func withoutTrailer(b []byte) []byte { return b[:len(b)-sha256.Size] }

// rawSection encodes one section per FORMAT.md.
func rawSection(name string, dataLen uint64, data []byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, uint16(len(name)))
	b = append(b, name...)
	b = binary.LittleEndian.AppendUint64(b, dataLen)
	return append(b, data...)
}

func TestWriteStateMatchesTheDocumentedLayout(t *testing.T) {
	got := mustEncode(t, []Section{{"config", []byte("{}")}, {"vcpu/0", []byte{1, 2, 3}}})
	want := []byte{
		'T', 'E', 'R', 'N', 'S', 'N', 'A', 'P',
		1, 0, 0, 0, // version
		0, 0, 0, 0, // flags
		2, 0, 0, 0, // section count
		6, 0, 'c', 'o', 'n', 'f', 'i', 'g', 2, 0, 0, 0, 0, 0, 0, 0, '{', '}',
		6, 0, 'v', 'c', 'p', 'u', '/', '0', 3, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3,
	}
	sum := sha256.Sum256(want)
	want = append(want, sum[:]...)
	if !bytes.Equal(got, want) {
		t.Errorf("WriteState wrote\n% x\nwant\n% x", got, want)
	}
	// FORMAT.md's sizes: an empty file, and its one-section example.
	if n := len(mustEncode(t, nil)); n != 52 {
		t.Errorf("a file without sections is %d bytes, want 52", n)
	}
	if n := len(mustEncode(t, []Section{{"vm", []byte("{}")}})); n != 66 {
		t.Errorf("FORMAT.md's example is %d bytes, want 66", n)
	}
}

func TestReadStateRoundTrip(t *testing.T) {
	long := strings.Repeat("n", 255)
	for _, sections := range [][]Section{
		nil,
		sampleSections(),
		{{long, []byte("x")}, {"!~", bytes.Repeat([]byte{0}, 70000)}},
	} {
		got, err := ReadState(bytes.NewReader(mustEncode(t, sections)), 1<<20)
		if err != nil {
			t.Fatalf("%d sections: %v", len(sections), err)
		}
		if len(got) != len(sections) {
			t.Fatalf("read %d sections, wrote %d", len(got), len(sections))
		}
		for i := range got {
			if got[i].Name != sections[i].Name || !bytes.Equal(got[i].Data, sections[i].Data) {
				t.Errorf("section %d: read %q (%d bytes), wrote %q (%d bytes)", i, got[i].Name, len(got[i].Data), sections[i].Name, len(sections[i].Data))
			}
		}
	}
}

func TestReadStateRejectsBadFiles(t *testing.T) {
	good := mustEncode(t, sampleSections())
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	sec := rawSection("a", 1, []byte{1})
	for _, c := range []struct {
		name    string
		data    []byte
		want    error
		message string // the whole error text, where the brief fixes it
		alt     error  // another acceptable sentinel
	}{
		{"magic", append([]byte("ELF!xxxx"), good[8:]...), ErrBadMagic, `vmstate: not a tern snapshot (magic "ELF!xxxx")`, nil},
		{"short non-magic", []byte("PK"), ErrBadMagic, `vmstate: not a tern snapshot (magic "PK")`, nil},
		{"version", rawFile(7, 0, 0, nil), ErrVersion, "vmstate: format version 7, this tern reads version 1", nil},
		{"version 0", rawFile(0, 0, 0, nil), ErrVersion, "", nil},
		{"flag bit", rawFile(1, 1<<31, 0, nil), ErrMalformed, "vmstate: malformed: unknown flag bits 0x80000000", nil},
		{"too many sections", rawFile(1, 0, MaxSections+1, nil), ErrMalformed, "", nil},
		{"empty name", rawFile(1, 0, 1, rawSection("", 0, nil)), ErrMalformed, "", nil},
		{"name of 256 bytes", rawFile(1, 0, 1, rawSection(strings.Repeat("a", 256), 0, nil)), ErrMalformed, "", nil},
		{"space in name", rawFile(1, 0, 1, rawSection("vcpu 0", 0, nil)), ErrMalformed, "", nil},
		{"control byte in name", rawFile(1, 0, 1, rawSection("vcpu\n", 0, nil)), ErrMalformed, "", nil},
		{"non-ASCII name", rawFile(1, 0, 1, rawSection("vcpu\xc3\xa9", 0, nil)), ErrMalformed, "", nil},
		{"duplicate name", rawFile(1, 0, 2, append(bytes.Clone(sec), sec...)), ErrMalformed, `vmstate: malformed: section "a" appears twice`, nil},
		{"section past the end", rawFile(1, 0, 1, rawSection("vcpu/1", 4096, make([]byte, 68))), ErrTruncated,
			// 68 data bytes plus the 32-byte trailer are what is left.
			`vmstate: truncated: section "vcpu/1" needs 4096 bytes, 100 left`, nil},
		// The reader takes the trailer for a second section.
		{"fewer sections than counted", rawFile(1, 0, 2, sec), ErrTruncated, "", ErrMalformed},
		// The reader finds the trailer right after the header, where
		// the checksum does not match.
		{"more sections than counted", rawFile(1, 0, 0, sec), ErrChecksum, "", nil},
		{"trailing garbage", append(bytes.Clone(good), 1, 2, 3), ErrMalformed, "vmstate: malformed: 3 bytes after the checksum trailer", nil},
		{"bad checksum", flipped, ErrChecksum, "vmstate: checksum mismatch: the file is corrupt", nil},
		{"empty file", nil, ErrTruncated, "", nil},
	} {
		got, err := ReadState(bytes.NewReader(c.data), 1<<20)
		if got != nil || !(errors.Is(err, c.want) || c.alt != nil && errors.Is(err, c.alt)) {
			t.Errorf("%s: got %d sections, error %v; want %v", c.name, len(got), err, c.want)
			continue
		}
		if c.message != "" && err.Error() != c.message {
			t.Errorf("%s: message %q, want %q", c.name, err, c.message)
		}
	}
}

func TestReadStateFailsOnEveryPrefix(t *testing.T) {
	good := mustEncode(t, sampleSections())
	for n := 0; n < len(good); n++ {
		got, err := ReadState(bytes.NewReader(good[:n]), 1<<20)
		if got != nil || !errors.Is(err, ErrTruncated) {
			t.Fatalf("file cut to %d of %d bytes: %d sections, error %v; want ErrTruncated", n, len(good), len(got), err)
		}
	}
}

func TestReadStateFailsOnEveryFlippedByte(t *testing.T) {
	good := mustEncode(t, sampleSections())
	for i := range good {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(good)
			bad[i] ^= mask
			if got, err := ReadState(bytes.NewReader(bad), 1<<20); err == nil || got != nil {
				t.Fatalf("byte %d flipped with %#x was accepted", i, mask)
			}
		}
	}
}

// A tiny file declaring enormous lengths or counts must fail on its real
// size, not allocate what it declares.
func TestReadStateDoesNotAllocateDeclaredSizes(t *testing.T) {
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"section of 2^62 bytes", rawFile(1, 0, 1, rawSection("memory", 1<<62, []byte("tiny")))},
		{"section of 2^64-1 bytes", rawFile(1, 0, 1, rawSection("memory", 1<<64-1, nil))},
		{"4096 sections counted, one present", withoutTrailer(rawFile(1, 0, MaxSections, rawSection("a", 0, nil)))},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := ReadState(bytes.NewReader(c.data), 1<<40)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: %v, want ErrTruncated", c.name, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("%s: reading a %d-byte file allocated %d bytes", c.name, len(c.data), n)
		}
	}
}

// endless is a reader that never ends, like /dev/zero.
type endless struct{}

func (endless) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestReadStateEnforcesMaxSize(t *testing.T) {
	good := mustEncode(t, sampleSections())
	if _, err := ReadState(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Errorf("a file of exactly maxSize bytes: %v", err)
	}
	if _, err := ReadState(bytes.NewReader(good), int64(len(good)-1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a file one byte over maxSize: %v, want ErrTooLarge", err)
	}
	if _, err := ReadState(endless{}, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Errorf("an endless stream: %v, want ErrTooLarge", err)
	}
	if _, err := ReadState(bytes.NewReader(good), 0); err == nil {
		t.Error("a zero size limit was accepted")
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestReadStatePassesOnReadErrors(t *testing.T) {
	boom := errors.New("disk on fire")
	if _, err := ReadState(io.MultiReader(bytes.NewReader([]byte("TERN")), failingReader{boom}), 1<<20); !errors.Is(err, boom) {
		t.Errorf("got %v, want the reader's error", err)
	}
}

func TestWriteStateRefusesWhatReadStateRefuses(t *testing.T) {
	many := make([]Section, MaxSections+1)
	for i := range many {
		many[i] = Section{Name: "s/" + strconv.Itoa(i)}
	}
	for name, sections := range map[string][]Section{
		"duplicate":       {{"a", nil}, {"b", nil}, {"a", nil}},
		"empty name":      {{"", nil}},
		"long name":       {{strings.Repeat("a", 256), nil}},
		"space":           {{"has space", nil}},
		"too many":        many,
		"non-ASCII":       {{"dév", nil}},
		"NUL in the name": {{"a\x00", nil}},
	} {
		var b bytes.Buffer
		err := WriteState(&b, sections)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
		if b.Len() != 0 {
			t.Errorf("%s: %d bytes written before the error", name, b.Len())
		}
	}
}

func TestEncodedSize(t *testing.T) {
	s := sampleSections()
	if got, want := EncodedSize(s), uint64(len(mustEncode(t, s))); got != want {
		t.Errorf("EncodedSize = %d, WriteState wrote %d", got, want)
	}
}

func TestReadStateReturnsIndependentData(t *testing.T) {
	data := mustEncode(t, sampleSections())
	got, err := ReadState(bytes.NewReader(data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	got[0].Data = append(got[0].Data, "more"...)
	if !reflect.DeepEqual(got[1], sampleSections()[1]) {
		t.Error("appending to one section's data changed the next one")
	}
}
