package mmio_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ternvm/tern/virtio/internal/virtqtest"
	"github.com/ternvm/tern/virtio/mmio"
	"github.com/ternvm/tern/virtio/rng"
)

// FuzzRestoreJSON restores an entropy device's transport from arbitrary
// JSON, as a crafted snapshot file holds it. A state the transport could
// not have produced is refused with ErrBadState or a reactivation error;
// an accepted one reads back as itself and restores again unchanged.
func FuzzRestoreJSON(f *testing.F) {
	f.Add([]byte(`{"Status":15,"DriverFeatures":4294967296,"Queues":[{"Size":16,"Ready":true,"DescTable":4096,"AvailRing":8192,"UsedRing":12288}]}`))
	f.Add([]byte(`{"Status":3,"Queues":[{"Size":256}]}`))
	f.Add([]byte(`{"Status":15,"DriverFeatures":4294967296,"Queues":[{"Size":3,"Ready":true,"DescTable":65530}]}`))
	f.Add([]byte(`{"Status":8,"Queues":[]}`))
	f.Add([]byte(`{"Status":143,"NeedsReset":true,"InterruptStatus":3,"Queues":[{"Size":1,"NextAvail":65535,"NextUsed":7}]}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		var st mmio.State
		if json.Unmarshal(js, &st) != nil {
			return
		}
		mem := virtqtest.NewMemory(0, 1<<16)
		tr, err := mmio.New(rng.New(), mem, &countingTrigger{})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Restore(st); err != nil {
			return
		}
		got := tr.State()
		if err := tr.Restore(got); err != nil {
			t.Fatalf("refuses its own state %+v: %v", got, err)
		}
		if again := tr.State(); !reflect.DeepEqual(again, got) {
			t.Fatalf("restore of %+v reads back as %+v", got, again)
		}
		if !mem.GuardsIntact() {
			t.Fatal("restore wrote outside guest RAM")
		}
	})
}
