package devices_test

import (
	"testing"
	"time"

	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/devices"
)

func TestBootTimer(t *testing.T) {
	const elapsed = 250 * time.Millisecond
	var reports []time.Duration
	bt := devices.NewBootTimer(time.Now().Add(-elapsed), func(d time.Duration) { reports = append(reports, d) })

	bt.Write(0, []byte{boot.BootTimerMagic - 1})
	bt.Write(0, []byte{boot.BootTimerMagic, 0}) // not a byte write
	bt.Write(1, []byte{boot.BootTimerMagic})
	if len(reports) != 0 {
		t.Fatalf("non-magic writes reported %v", reports)
	}
	bt.Write(0, []byte{boot.BootTimerMagic})
	if len(reports) != 1 || reports[0] < elapsed || reports[0] > elapsed+time.Minute {
		t.Fatalf("reports %v, want one of at least %v", reports, elapsed)
	}
	bt.Write(0, []byte{boot.BootTimerMagic})
	if len(reports) != 2 || reports[1] < reports[0] {
		t.Fatalf("second magic write: reports %v", reports)
	}
}
