package snapshot

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzMergeDiff merges a diff into a base from an arbitrary memory
// section (JSON, as a crafted state file holds it) and arbitrary small
// files: basePages and diffPages pages, each page filled with one byte of
// fill (zero pages become holes). A refused merge leaves the base as it
// was; an accepted one leaves exactly the marked pages of the diff over
// the base.
func FuzzMergeDiff(f *testing.F) {
	f.Add([]byte(`{"Kind":"diff","PageSize":4096,"Regions":[{"GPA":0,"Size":16384}],"Dirty":[5]}`), uint8(4), uint8(4), []byte{1, 2, 3, 4, 0, 6, 0, 8})
	f.Add([]byte(`{"Kind":"diff","PageSize":4096,"Regions":[{"GPA":0,"Size":8192},{"GPA":1048576,"Size":4096}],"Dirty":[7]}`), uint8(3), uint8(3), []byte{1, 1, 1, 0, 0, 0})
	f.Add([]byte(`{"Kind":"full","PageSize":4096,"Regions":[{"GPA":0,"Size":4096}]}`), uint8(1), uint8(1), []byte{1, 2})
	f.Add([]byte(`{"Kind":"diff","PageSize":4096,"Regions":[{"GPA":0,"Size":8192}],"Dirty":[3]}`), uint8(2), uint8(3), []byte{1, 2, 3, 4, 5})
	f.Add([]byte(`{"Kind":"diff","PageSize":4096,"Regions":[{"GPA":0,"Size":8192}],"Dirty":[255, 1]}`), uint8(2), uint8(2), []byte{1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, js []byte, basePages, diffPages uint8, fill []byte) {
		var info MemoryInfo
		if json.Unmarshal(js, &info) != nil {
			return
		}
		basePages, diffPages = basePages%17, diffPages%17
		page := func(i int) []byte {
			var v byte
			if i < len(fill) {
				v = fill[i]
			}
			return bytes.Repeat([]byte{v}, PageSize)
		}
		var base, diff []byte
		for i := range int(basePages) {
			base = append(base, page(i)...)
		}
		for i := range int(diffPages) {
			diff = append(diff, page(int(basePages)+i)...)
		}
		dir := t.TempDir()
		basePath, diffPath := filepath.Join(dir, "base"), filepath.Join(dir, "diff")
		if err := os.WriteFile(basePath, base, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(diffPath, diff, 0o600); err != nil {
			t.Fatal(err)
		}
		err := MergeDiff(basePath, diffPath, info)
		got, rerr := os.ReadFile(basePath)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if !bytes.Equal(got, base) {
				t.Fatalf("refused merge (%v) changed the base", err)
			}
			return
		}
		if info.Kind != MemoryDiff || info.TotalBytes() != uint64(len(base)) || len(base) != len(diff) {
			t.Fatalf("merged %d-byte files for %+v", len(base), info)
		}
		for p := range uint64(basePages) {
			want := base[p*PageSize : (p+1)*PageSize]
			if info.Dirty.Test(p) {
				want = diff[p*PageSize : (p+1)*PageSize]
			}
			if !bytes.Equal(got[p*PageSize:(p+1)*PageSize], want) {
				t.Fatalf("page %d after the merge is not the %s's", p, map[bool]string{true: "diff", false: "base"}[info.Dirty.Test(p)])
			}
		}
	})
}
