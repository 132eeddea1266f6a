package snapshot

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
)

// FuzzReadState feeds arbitrary bytes to the reader: it must never panic,
// and a file it accepts must be exactly what the writer makes of the
// sections it returned (the format has one encoding per content). Each
// input is also tried with its last 32 bytes replaced by the right
// checksum, so that the fuzzer explores the structure checks instead of
// stopping at the checksum.
func FuzzReadState(f *testing.F) {
	valid := [][]byte{
		mustEncode(f, nil),
		mustEncode(f, sampleSections()),
		mustEncode(f, []Section{{"memory", []byte(`{"Kind":"full"}`)}}),
	}
	for _, v := range valid {
		f.Add(v)
		f.Add(v[:len(v)/2])
		f.Add(v[:len(v)-1])
	}
	f.Add(rawFile(1, 0, 1, rawSection("x", 1<<62, nil)))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkReadState(t, in)
		if len(in) >= sha256.Size {
			fixed := bytes.Clone(in)
			sum := sha256.Sum256(fixed[:len(fixed)-sha256.Size])
			copy(fixed[len(fixed)-sha256.Size:], sum[:])
			checkReadState(t, fixed)
		}
	})
}

func checkReadState(t *testing.T, in []byte) {
	sections, err := ReadState(bytes.NewReader(in), 1<<20)
	if err != nil {
		if sections != nil {
			t.Fatalf("sections returned with error %v", err)
		}
		return
	}
	var out bytes.Buffer
	if err := WriteState(&out, sections); err != nil {
		t.Fatalf("accepted sections do not re-encode: %v", err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Fatalf("accepted input does not re-encode to the same bytes")
	}
}

// FuzzStateRoundTrip writes fuzzer-chosen sections: whatever the writer
// accepts must read back identical.
func FuzzStateRoundTrip(f *testing.F) {
	f.Add("config,vcpu/0,device/disk0", []byte("abcdefgh"))
	f.Add("a,a", []byte{})
	f.Add("with space", []byte{0})
	f.Fuzz(func(t *testing.T, names string, data []byte) {
		var sections []Section
		for i, name := range strings.Split(names, ",") {
			sections = append(sections, Section{Name: name, Data: data[:min(i, len(data))]})
		}
		var b bytes.Buffer
		if err := WriteState(&b, sections); err != nil {
			return
		}
		got, err := ReadState(&b, 1<<20)
		if err != nil {
			t.Fatalf("a file the writer produced was refused: %v", err)
		}
		if len(got) != len(sections) {
			t.Fatalf("read %d sections, wrote %d", len(got), len(sections))
		}
		for i := range got {
			if got[i].Name != sections[i].Name || !bytes.Equal(got[i].Data, sections[i].Data) {
				t.Fatalf("section %d differs", i)
			}
		}
	})
}
