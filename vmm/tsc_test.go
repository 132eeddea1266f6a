package vmm

import (
	"errors"
	"strings"
	"testing"
)

// The two test hosts of the pair scenario measured 2597853 and 2599993
// kHz: KVM refused the slower guest on the faster host at the very end of
// a migration (823 ppm, its tolerance 250). The handshake must say so
// first, and accept what KVM accepts.
func TestTSCRateCompatibleFollowsKVM(t *testing.T) {
	for _, c := range []struct {
		guest, host uint32
		scaling     bool
		ppm         uint64
		ok          bool
	}{
		{2597853, 2597853, false, 250, true},  // same rate
		{2597853, 2599993, false, 250, false}, // 823 ppm slower, no scaling
		{2597853, 2599993, true, 250, true},   // scaling makes any rate work
		{2597853, 2599993, false, 10000, true},
		{2599993, 2597853, false, 250, true}, // faster: KVM catches the TSC up
		{2599400, 2599993, false, 250, true}, // 228 ppm slower: within tolerance
	} {
		err := tscRateCompatible(c.guest, c.host, c.scaling, c.ppm)
		if (err == nil) != c.ok {
			t.Errorf("guest %d kHz on host %d kHz (scaling %v, %d ppm): %v, want ok=%v", c.guest, c.host, c.scaling, c.ppm, err, c.ok)
		}
		if err != nil && (!errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "2597853 kHz") || !strings.Contains(err.Error(), "823 ppm")) {
			t.Errorf("refusal %q does not name the rates and the distance", err)
		}
	}
}
