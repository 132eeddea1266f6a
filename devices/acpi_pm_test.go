package devices_test

import (
	"testing"

	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/devices"
)

func TestACPIPM(t *testing.T) {
	const (
		sleepControl = boot.PortACPISleepCtl - boot.PortACPISleepCtl
		sleepStatus  = boot.PortACPISleepSts - boot.PortACPISleepCtl
		resetReg     = boot.PortACPIReset - boot.PortACPISleepCtl
		slpEn        = 1 << 5
	)
	slpTyp := func(n byte) byte { return n << 2 }
	tests := []struct {
		name          string
		offset        uint64
		value         byte
		poweroff, rst int
	}{
		{"S5 with SLP_EN powers off", sleepControl, slpEn | slpTyp(5), 1, 0},
		{"S5 without SLP_EN", sleepControl, slpTyp(5), 0, 0},
		{"S3", sleepControl, slpEn | slpTyp(3), 0, 0},
		{"S0", sleepControl, slpEn | slpTyp(0), 0, 0},
		{"S7", sleepControl, slpEn | slpTyp(7), 0, 0},
		{"reset value", resetReg, boot.ACPIResetValue, 0, 1},
		{"other reset value", resetReg, 0x06, 0, 0},
		{"reset value on sleep control", sleepControl, boot.ACPIResetValue, 0, 0},
		{"clearing WAK_STS", sleepStatus, 0x80, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var off, rst int
			pm := devices.NewACPIPM(func() { off++ }, func() { rst++ })
			b := devices.NewBus("pio")
			if err := b.Register(boot.PortACPISleepCtl, 3, pm); err != nil {
				t.Fatal(err)
			}
			if !b.Write(boot.PortACPISleepCtl+tc.offset, []byte{tc.value}) {
				t.Fatal("write not dispatched")
			}
			if off != tc.poweroff || rst != tc.rst {
				t.Fatalf("poweroff called %d times, reset %d; want %d, %d", off, rst, tc.poweroff, tc.rst)
			}
		})
	}
}

func TestACPIPMSleepStatusWakeClear(t *testing.T) {
	pm := devices.NewACPIPM(nil, nil)
	b := []byte{0xff}
	pm.Read(boot.PortACPISleepSts-boot.PortACPISleepCtl, b)
	if b[0]&0x80 != 0 {
		t.Fatalf("sleep status %#02x: WAK_STS set", b[0])
	}
	// Nil callbacks are allowed.
	pm.Write(0, []byte{1<<5 | 5<<2})
	pm.Write(2, []byte{boot.ACPIResetValue})
}
