package acpi

import (
	"encoding/binary"

	"github.com/ternvm/tern/boot"
)

// The Fixed ACPI Description Table, revision 6 (ACPI 6.4 section 5.2.9).
// Only the fields a hardware-reduced platform uses are named; the PM1,
// PM2, PM timer and GPE blocks, SCI and SMI fields stay zero.
const (
	fadtSize = 276

	fadtDSDT           = 40
	fadtIAPCBootArch   = 109
	fadtFlags          = 112
	fadtResetReg       = 116
	fadtResetValue     = 128
	fadtMinorVersion   = 131
	fadtXDSDT          = 140
	fadtSleepControl   = 244
	fadtSleepStatus    = 256
	fadtHypervisorID   = 268
	fadtHypervisorSize = 8
)

// IAPC_BOOT_ARCH bits (ACPI 6.4 table 5.11).
const (
	// Left clear: bit 0, legacy devices (it only turns Linux's PnP BIOS
	// probe on); bit 1, 8042 (Linux finds tern's i8042 through the DSDT's
	// PNP0303 device instead; a reboot reaches port 0x64 either way);
	// bit 5, CMOS RTC not present (there is an RTC at port 0x70).
	bootArchVGANotPresent = 1 << 2
	// There is no PCI, so no MSI.
	bootArchMSINotSupported = 1 << 3
	// No PCIe either: keep the OS away from ASPM.
	bootArchPCIeASPMControls = 1 << 4

	iapcBootArch = bootArchVGANotPresent | bootArchMSINotSupported | bootArchPCIeASPMControls
)

// FADT feature flags (ACPI 6.4 table 5.10).
const (
	// Required of every processor in a new ACPI system.
	fadtFlagWBINVD = 1 << 0
	// Set: no fixed-feature power or sleep button. A hardware-reduced
	// platform has no fixed-feature hardware, and with the bits clear
	// Linux would try to install fixed-event button handlers.
	fadtFlagPowerButton = 1 << 4
	fadtFlagSleepButton = 1 << 5
	fadtFlagResetRegSup = 1 << 10
	fadtFlagHWReduced   = 1 << 20

	fadtFeatureFlags = fadtFlagWBINVD | fadtFlagPowerButton | fadtFlagSleepButton |
		fadtFlagResetRegSup | fadtFlagHWReduced
)

// buildFADT returns the FADT pointing at the DSDT at dsdt.
func buildFADT(dsdt uint64) []byte {
	t := newTable(sigFADT, fadtSize, fadtRevision)
	// The 32-bit DSDT field may be set alongside X_DSDT when both agree;
	// older parsers read only the 32-bit one.
	if dsdt <= 0xffffffff {
		binary.LittleEndian.PutUint32(t[fadtDSDT:], uint32(dsdt))
	}
	binary.LittleEndian.PutUint16(t[fadtIAPCBootArch:], iapcBootArch)
	binary.LittleEndian.PutUint32(t[fadtFlags:], fadtFeatureFlags)
	putIOPort8(t[fadtResetReg:], boot.PortACPIReset)
	t[fadtResetValue] = boot.ACPIResetValue
	t[fadtMinorVersion] = fadtMinor
	binary.LittleEndian.PutUint64(t[fadtXDSDT:], dsdt)
	putIOPort8(t[fadtSleepControl:], boot.PortACPISleepCtl)
	putIOPort8(t[fadtSleepStatus:], boot.PortACPISleepSts)
	copy(t[fadtHypervisorID:fadtHypervisorID+fadtHypervisorSize], HypervisorVendorID)
	sealTable(t)
	return t
}
