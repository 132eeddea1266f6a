package devices_test

import (
	"io"
	"testing"

	"github.com/ternvm/tern/devices"
)

// Every vCPU exit goes through Bus lookup and, for console output, a THR
// write; neither should allocate.
func TestHotPathsDoNotAllocate(t *testing.T) {
	b := devices.NewBus("pio")
	s := devices.NewSerial(io.Discard, nil)
	for i, base := range []uint64{0x3f8, 0x60, 0x70, 0x440, 0x600} {
		var d devices.Device = &recorder{}
		if i == 0 {
			d = s
		}
		if err := b.Register(base, 8, d); err != nil {
			t.Fatal(err)
		}
	}
	buf := []byte{'x'}
	if n := testing.AllocsPerRun(100, func() {
		b.Write(0x3f8, buf)
		b.Read(0x3fd, buf)
		b.Read(0x500, buf)
	}); n != 0 {
		t.Fatalf("%v allocations per serial access through the bus", n)
	}
}
