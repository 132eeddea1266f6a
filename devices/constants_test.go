package devices

import (
	"testing"

	"github.com/ternvm/tern/boot"
)

// The package mirrors these instead of importing boot; they must agree.
func TestConstantsMatchBootLayout(t *testing.T) {
	if acpiResetValue != boot.ACPIResetValue {
		t.Errorf("acpiResetValue %#x, boot.ACPIResetValue %#x", acpiResetValue, boot.ACPIResetValue)
	}
	if bootTimerMagic != boot.BootTimerMagic {
		t.Errorf("bootTimerMagic %d, boot.BootTimerMagic %d", bootTimerMagic, boot.BootTimerMagic)
	}
	if acpiSleepStatus != boot.PortACPISleepSts-boot.PortACPISleepCtl || acpiReset != boot.PortACPIReset-boot.PortACPISleepCtl {
		t.Error("ACPI register offsets disagree with boot's port layout")
	}
	if i8042Command != boot.PortI8042Command-boot.PortI8042Data {
		t.Error("i8042 command offset disagrees with boot's port layout")
	}
}
