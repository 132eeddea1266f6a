package devices

// Offsets of the hardware-reduced ACPI registers within the ACPIPM window
// (boot.PortACPISleepCtl, .PortACPISleepSts, .PortACPIReset), and their
// bits (ACPI 6.x, "Sleep Control and Status Registers").
const (
	acpiSleepControl = 0
	acpiSleepStatus  = 1
	acpiReset        = 2

	acpiSlpEn      = 0x20
	acpiSlpTypMask = 0x07
	acpiSlpTypShft = 2
	// acpiSlpTypS5 is the SLP_TYP the DSDT's \_S5 package must name.
	acpiSlpTypS5 = 5
	// acpiResetValue mirrors boot.ACPIResetValue, the FADT RESET_VALUE.
	acpiResetValue = 0x01
)

// ACPIPM is the sleep control, sleep status and reset registers a
// hardware-reduced FADT points at, registered as one 3-byte window at
// boot.PortACPISleepCtl.
//
// Only S5 exists: writing SLP_EN with SLP_TYP 5 to sleep control powers
// off, any other sleep type is ignored. Since the guest never sleeps and
// wakes, sleep status reads 0 (WAK_STS, bit 7, clear) and its
// write-1-to-clear writes do nothing. Writing the FADT's reset value to the
// reset register resets. All three registers read 0 otherwise. The device
// has no state, so it needs no lock.
type ACPIPM struct {
	poweroff, reset func()
}

// NewACPIPM returns the registers; either callback may be nil.
func NewACPIPM(poweroff, reset func()) *ACPIPM {
	return &ACPIPM{poweroff: poweroff, reset: reset}
}

// Read returns 0 for every register.
func (a *ACPIPM) Read(offset uint64, data []byte) {
	clear(data)
}

// Write acts on the first byte written to sleep control or reset.
func (a *ACPIPM) Write(offset uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	v := data[0]
	switch offset {
	case acpiSleepControl:
		if v&acpiSlpEn != 0 && (v>>acpiSlpTypShft)&acpiSlpTypMask == acpiSlpTypS5 && a.poweroff != nil {
			a.poweroff()
		}
	case acpiReset:
		if v == acpiResetValue && a.reset != nil {
			a.reset()
		}
	}
}
