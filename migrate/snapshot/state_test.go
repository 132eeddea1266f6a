package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func sample() []Section {
	return []Section{{"config", []byte(`{"CPUs":2}`)}, {"vcpu/0", bytes.Repeat([]byte{7}, 300)}, {"empty", nil}}
}

func encoded(t testing.TB, s []Section) []byte {
	var b bytes.Buffer
	if err := WriteState(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestStateRoundTripAndLayout(t *testing.T) {
	data := encoded(t, sample())
	// The layout FORMAT.md gives: magic, version 1, flags 0, count 3.
	if string(data[:8]) != "TERNSNAP" || binary.LittleEndian.Uint32(data[8:]) != 1 ||
		binary.LittleEndian.Uint32(data[12:]) != 0 || binary.LittleEndian.Uint32(data[16:]) != 3 {
		t.Fatalf("header % x", data[:20])
	}
	// First section: name length 6, "config", data length 10.
	if binary.LittleEndian.Uint16(data[20:]) != 6 || string(data[22:28]) != "config" || binary.LittleEndian.Uint64(data[28:]) != 10 {
		t.Fatalf("first section header % x", data[20:36])
	}
	got, err := ReadState(bytes.NewReader(data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := sample()
	want[2].Data = []byte{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %v, want %v", got, want)
	}
}

func TestEveryTruncationFails(t *testing.T) {
	data := encoded(t, sample())
	for n := 0; n < len(data); n++ {
		_, err := ReadState(bytes.NewReader(data[:n]), 1<<20)
		if err == nil {
			t.Fatalf("a file cut to %d of %d bytes was accepted", n, len(data))
		}
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrChecksum) {
			t.Fatalf("cut to %d bytes: %v, want truncated, malformed or checksum", n, err)
		}
	}
}

func TestEveryFlippedByteFails(t *testing.T) {
	data := encoded(t, sample())
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0x40
		if _, err := ReadState(bytes.NewReader(bad), 1<<20); err == nil {
			t.Fatalf("a flip of byte %d was accepted", i)
		}
	}
}

func TestReadStateNamesTheProblem(t *testing.T) {
	data := encoded(t, sample())
	withVersion := bytes.Clone(data)
	binary.LittleEndian.PutUint32(withVersion[8:], 7)
	withFlags := bytes.Clone(data)
	binary.LittleEndian.PutUint32(withFlags[12:], 1)
	huge := bytes.Clone(data[:28])
	huge = binary.LittleEndian.AppendUint64(huge, 1<<60) // the first section claims 1 EiB
	huge = append(huge, make([]byte, 40)...)
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"magic", append([]byte("ELF!xxxx"), data[8:]...), ErrBadMagic},
		{"version", withVersion, ErrVersion},
		{"flags", withFlags, ErrMalformed},
		{"huge section", huge, ErrTruncated},
		{"trailing garbage", append(bytes.Clone(data), 1, 2, 3), ErrChecksum},
	} {
		_, err := ReadState(bytes.NewReader(c.data), 1<<20)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := ReadState(bytes.NewReader(data), 10); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the size bound: %v", err)
	}
}

func TestWriteStateRefusesBadSections(t *testing.T) {
	for _, s := range [][]Section{{{"a", nil}, {"a", nil}}, {{"", nil}}, {{"has space", nil}}} {
		if err := WriteState(&bytes.Buffer{}, s); err == nil {
			t.Errorf("sections %v written", s)
		}
	}
}

func TestStateFileIsReplacedAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vmstate")
	if err := WriteStateFile(path, sample()); err != nil {
		t.Fatal(err)
	}
	if err := WriteStateFile(path, []Section{{"only", []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadStateFile(path)
	if err != nil || len(got) != 1 || got[0].Name != "only" {
		t.Fatalf("read %v, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only vmstate (no temporary left)", len(entries))
	}
}

func TestStateJSON(t *testing.T) {
	s, _ := NewState(nil)
	type cfg struct{ CPUs int }
	if err := s.PutJSON("config", cfg{2}); err != nil {
		t.Fatal(err)
	}
	s.PutJSON("vcpu/0", cfg{})
	s.PutJSON("vcpu/1", cfg{})
	s.PutJSON("config", cfg{4}) // replaces
	var c cfg
	if err := s.GetJSON("config", &c); err != nil || c.CPUs != 4 {
		t.Errorf("config = %+v, %v", c, err)
	}
	if got := s.Names("vcpu/"); !reflect.DeepEqual(got, []string{"vcpu/0", "vcpu/1"}) {
		t.Errorf("Names = %v", got)
	}
	if err := s.GetJSON("memory", &c); !errors.Is(err, ErrNoSection) {
		t.Errorf("missing section: %v", err)
	}
	s.PutJSON("odd", map[string]int{"Unknown": 1})
	if err := s.GetJSON("odd", &c); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown field: %v", err)
	}
}

func FuzzReadState(f *testing.F) {
	data := encoded(f, sample())
	f.Add(data)
	f.Add(data[:30])
	f.Add(encoded(f, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := ReadState(bytes.NewReader(in), 1<<20)
		if err != nil {
			return
		}
		if out := encoded(t, s); !bytes.Equal(out, in) {
			t.Fatalf("accepted input does not re-encode to itself")
		}
	})
}
