package virtionet

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzStateJSON restores a network device from arbitrary JSON, as a
// crafted snapshot holds it: a bad MAC, foreign TAP or unoffered feature
// is refused; an accepted state is what State then reports.
func FuzzStateJSON(f *testing.F) {
	f.Add([]byte(`{"TAP":"","MAC":"UlQAAAAC","AckedFeatures":4294967297,"Counters":{"RxFrames":3}}`))
	f.Add([]byte(`{"TAP":"tap9","MAC":"UlQAAAAC"}`))
	f.Add([]byte(`{"MAC":"AQIDBAUG"}`))
	f.Add([]byte(`{"MAC":"AAAAAAAA","AckedFeatures":131072}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		var st State
		if json.Unmarshal(js, &st) != nil {
			return
		}
		d := &Device{}
		if err := d.SetState(st); err != nil {
			return
		}
		if len(st.MAC) != 6 {
			t.Fatalf("accepted MAC %v", st.MAC)
		}
		if got := d.State(); !reflect.DeepEqual(got, st) {
			t.Fatalf("restored %+v, State says %+v", st, got)
		}
	})
}
