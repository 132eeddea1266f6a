package vmm

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ternvm/tern/kvm"
)

// defaultTSCTolerancePPM is KVM's kvm.tsc_tolerance_ppm when the host does
// not say: how far a requested TSC rate may sit from the host's before
// KVM must scale it.
const defaultTSCTolerancePPM = 250

// tscToleranceFile is where KVM publishes its tolerance.
var tscToleranceFile = "/sys/module/kvm/parameters/tsc_tolerance_ppm"

// checkTSCRate refuses, before anything is copied, a guest whose TSC rate
// this host's KVM cannot give it, as KVM_SET_TSC_KHZ would refuse it when
// the vCPUs take their state at the very end of a migration. Where KVM
// cannot say the host's rate before a vCPU exists, the check is left to
// then.
func (v *VM) checkTSCRate(guestKHz uint32) error {
	if guestKHz == 0 {
		return nil
	}
	// Kernels before the VM-wide KVM_GET_TSC_KHZ (5.19) refuse it.
	hostKHz, err := v.vm.DefaultTSCKHz()
	if err != nil || hostKHz == 0 {
		return nil
	}
	scaling := false
	if n, err := v.sys.CheckExtension(kvm.CapTSCControl); err == nil && n > 0 {
		scaling = true
	}
	return tscRateCompatible(guestKHz, hostKHz, scaling, tscTolerancePPM())
}

// tscRateCompatible is KVM's rule: a rate within the tolerance runs at the
// host's; one further off needs TSC scaling, except that a faster one can
// be emulated by catching the guest's TSC up.
func tscRateCompatible(guestKHz, hostKHz uint32, scaling bool, ppm uint64) error {
	low := uint64(hostKHz) * (1_000_000 - min(ppm, 1_000_000)) / 1_000_000
	if scaling || uint64(guestKHz) >= low {
		return nil
	}
	apart := (uint64(hostKHz) - uint64(guestKHz)) * 1_000_000 / uint64(hostKHz)
	return fmt.Errorf("%w: this host cannot run the guest's TSC at its rate: the guest's ticks at %d kHz, this host's at %d kHz (%d ppm slower), and KVM here can neither scale a guest's TSC (no KVM_CAP_TSC_CONTROL) nor run one more than %d ppm slower than the host's (kvm.tsc_tolerance_ppm)",
		ErrInvalidConfig, guestKHz, hostKHz, apart, ppm)
}

// tscTolerancePPM reads KVM's tolerance, or assumes its default.
func tscTolerancePPM() uint64 {
	b, err := os.ReadFile(tscToleranceFile)
	if err != nil {
		return defaultTSCTolerancePPM
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return defaultTSCTolerancePPM
	}
	return n
}
