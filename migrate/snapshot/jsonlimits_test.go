package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestJSONLimitsCountBeforeDecoding(t *testing.T) {
	lim := JSONLimits{MaxBytes: 200, MaxElems: 3, MaxDepth: 3}
	for _, ok := range []string{
		`{"A":[1,2,3],"B":{"x":1,"y":2},"C":"s"}`,
		`{"A":"[,,,,{{{{","B":"\",\",\",","C":[[]]}`, // brackets and commas in strings do not count
		`[]`, `{}`, `[[[]]]`,
	} {
		if err := lim.Check([]byte(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{
		`[1,2,3,4]`,
		`{"a":1,"b":2,"c":3,"d":4}`,
		`{"A":[{},{}],"B":[{},{},{},{}]}`,
		`[[[[]]]]`,
		`"` + strings.Repeat("x", 200) + `"`,
	} {
		if err := lim.Check([]byte(bad)); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v, want ErrTooLarge", bad, err)
		}
	}
	if err := (JSONLimits{}).Check([]byte(`[` + strings.Repeat("1,", 10000) + `1]`)); err != nil {
		t.Errorf("no limits: %v", err)
	}
	var v struct{ A []int }
	if err := DecodeJSON([]byte(`{"A":[1,2]}`), &v, lim); err != nil || len(v.A) != 2 {
		t.Errorf("DecodeJSON = %v, %v", v, err)
	}
	if err := DecodeJSON([]byte(`{"A":[1],"Z":1}`), &v, lim); !errors.Is(err, ErrMalformed) {
		t.Errorf("an unknown field: %v, want ErrMalformed", err)
	}
}

// TestGetJSONWithinRefusesAnInflatingSectionCheaply: a section of tiny
// array elements that would each decode to a 40-byte struct is refused
// for what it declares, at a cost well below its own size.
func TestGetJSONWithinRefusesAnInflatingSectionCheaply(t *testing.T) {
	data := []byte(`{"E":[` + strings.Repeat("{},", 2<<20) + `{}]}`)
	st, _ := NewState([]Section{{Name: "vcpu/0", Data: data}})
	var v struct {
		E []struct{ A, B, C, D, E, F, G, H, I, J uint32 }
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	err := st.GetJSONWithin("vcpu/0", &v, JSONLimits{MaxBytes: 64 << 20, MaxElems: 1024, MaxDepth: 8})
	runtime.ReadMemStats(&m1)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), `section "vcpu/0"`) {
		t.Errorf("%v, want ErrTooLarge naming the section", err)
	}
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 64<<10 {
		t.Errorf("refusing a %d-byte section allocated %d bytes", len(data), alloc)
	}
}

// TestReadStateFileCostsAboutItsSize: the file is read into one buffer of
// its size (then each section copied out), not grown by doubling.
func TestReadStateFileCostsAboutItsSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vmstate")
	secs := []Section{{Name: "a", Data: make([]byte, 12<<20)}, {Name: "b", Data: make([]byte, 1<<20)}}
	if err := WriteStateFile(path, secs); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if _, err := ReadStateFile(path); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > uint64(fi.Size())*5/2 {
		t.Errorf("reading a %d-byte state file allocated %d bytes, more than 2.5 times its size", fi.Size(), alloc)
	}
}
