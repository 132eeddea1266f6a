package devices_test

import (
	"testing"
	"time"

	"github.com/ternvm/tern/devices"
)

// MC146818 CMOS indexes and status B bits.
const (
	cmosSeconds = 0x00
	cmosMinutes = 0x02
	cmosHours   = 0x04
	cmosWeekday = 0x06
	cmosDay     = 0x07
	cmosMonth   = 0x08
	cmosYear    = 0x09
	cmosStatusA = 0x0a
	cmosStatusB = 0x0b
	cmosStatusC = 0x0c
	cmosStatusD = 0x0d
	cmosCentury = 0x32

	statusBDM   = 0x04 // binary
	statusB24h  = 0x02
	statusAUIP  = 0x80
	statusDVRT  = 0x80
	hourPMBit   = 0x80
	nmiDisable  = 0x80
	rtcIndex    = 0
	rtcDataPort = 1
)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func cmosRead(r *devices.RTC, idx byte) byte {
	r.Write(rtcIndex, []byte{idx})
	var b [1]byte
	r.Read(rtcDataPort, b[:])
	return b[0]
}

func cmosWrite(r *devices.RTC, idx, v byte) {
	r.Write(rtcIndex, []byte{idx})
	r.Write(rtcDataPort, []byte{v})
}

func TestRTCTimeFormats(t *testing.T) {
	// 2026-11-24 is a Tuesday: weekday 3 counting Sunday as 1.
	when := time.Date(2026, time.November, 24, 14, 5, 9, 0, time.UTC)
	type regs struct{ sec, min, hour, wday, day, month, year, century byte }
	tests := []struct {
		name     string
		statusB  byte
		expected regs
	}{
		{"BCD 24h", statusB24h, regs{0x09, 0x05, 0x14, 0x03, 0x24, 0x11, 0x26, 0x20}},
		{"binary 24h", statusB24h | statusBDM, regs{9, 5, 14, 3, 24, 11, 26, 20}},
		{"BCD 12h", 0, regs{0x09, 0x05, 0x02 | hourPMBit, 0x03, 0x24, 0x11, 0x26, 0x20}},
		{"binary 12h", statusBDM, regs{9, 5, 2 | hourPMBit, 3, 24, 11, 26, 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := devices.NewRTC(fixedClock(when))
			cmosWrite(r, cmosStatusB, tc.statusB)
			got := regs{
				cmosRead(r, cmosSeconds), cmosRead(r, cmosMinutes), cmosRead(r, cmosHours),
				cmosRead(r, cmosWeekday), cmosRead(r, cmosDay), cmosRead(r, cmosMonth),
				cmosRead(r, cmosYear), cmosRead(r, cmosCentury),
			}
			if got != tc.expected {
				t.Fatalf("registers %#v, want %#v", got, tc.expected)
			}
		})
	}
}

func TestRTCDefaultFormatIsBCD24h(t *testing.T) {
	r := devices.NewRTC(fixedClock(time.Date(2026, 11, 24, 14, 5, 9, 0, time.UTC)))
	if b := cmosRead(r, cmosStatusB); b&(statusBDM|statusB24h) != statusB24h {
		t.Fatalf("status B = %#02x, want BCD and 24h", b)
	}
	if h := cmosRead(r, cmosHours); h != 0x14 {
		t.Fatalf("hour = %#02x, want 0x14", h)
	}
}

func TestRTC12HourEdges(t *testing.T) {
	for _, tc := range []struct {
		hour int
		want byte // BCD, 12-hour
	}{
		{0, 0x12},              // 12 AM
		{1, 0x01},              // 1 AM
		{11, 0x11},             // 11 AM
		{12, 0x12 | hourPMBit}, // 12 PM
		{23, 0x11 | hourPMBit}, // 11 PM
	} {
		r := devices.NewRTC(fixedClock(time.Date(2026, 1, 1, tc.hour, 0, 0, 0, time.UTC)))
		cmosWrite(r, cmosStatusB, 0)
		if got := cmosRead(r, cmosHours); got != tc.want {
			t.Errorf("hour %d in 12h BCD = %#02x, want %#02x", tc.hour, got, tc.want)
		}
	}
}

func TestRTCReportsUTC(t *testing.T) {
	zone := time.FixedZone("UTC+9", 9*3600)
	r := devices.NewRTC(fixedClock(time.Date(2026, 11, 24, 23, 5, 9, 0, zone)))
	if h := cmosRead(r, cmosHours); h != 0x14 {
		t.Fatalf("hour = %#02x, want 0x14 (23:05 at UTC+9)", h)
	}
}

func TestRTCStatusRegisters(t *testing.T) {
	r := devices.NewRTC(fixedClock(time.Unix(0, 0)))
	if a := cmosRead(r, cmosStatusA); a != 0x26 {
		t.Errorf("status A = %#02x, want 0x26", a)
	}
	cmosWrite(r, cmosStatusA, statusAUIP|0x26)
	if a := cmosRead(r, cmosStatusA); a&statusAUIP != 0 {
		t.Errorf("status A = %#02x: update in progress", a)
	}
	if c := cmosRead(r, cmosStatusC); c != 0 {
		t.Errorf("status C = %#02x, want 0", c)
	}
	if d := cmosRead(r, cmosStatusD); d != statusDVRT {
		t.Errorf("status D = %#02x, want %#02x", d, statusDVRT)
	}
	cmosWrite(r, cmosStatusD, 0)
	if d := cmosRead(r, cmosStatusD); d != statusDVRT {
		t.Errorf("status D after a write = %#02x, want %#02x", d, statusDVRT)
	}
}

func TestRTCIndexMasksNMIBit(t *testing.T) {
	r := devices.NewRTC(fixedClock(time.Date(2026, 11, 24, 14, 5, 9, 0, time.UTC)))
	if s := cmosRead(r, nmiDisable|cmosSeconds); s != 0x09 {
		t.Fatalf("seconds through index 0x80 = %#02x, want 0x09", s)
	}
	cmosWrite(r, nmiDisable|0x40, 0x77)
	if v := cmosRead(r, 0x40); v != 0x77 {
		t.Fatalf("CMOS 0x40 = %#02x, want 0x77", v)
	}
}

func TestRTCStorageAndIgnoredTimeWrites(t *testing.T) {
	r := devices.NewRTC(fixedClock(time.Date(2026, 11, 24, 14, 5, 9, 0, time.UTC)))
	for idx := byte(0x0e); idx < 0x80; idx++ {
		if idx == cmosCentury {
			continue
		}
		cmosWrite(r, idx, idx^0x5a)
	}
	for idx := byte(0x0e); idx < 0x80; idx++ {
		if idx == cmosCentury {
			continue
		}
		if got := cmosRead(r, idx); got != idx^0x5a {
			t.Fatalf("CMOS %#02x = %#02x, want %#02x", idx, got, idx^0x5a)
		}
	}
	cmosWrite(r, cmosHours, 0x03)
	cmosWrite(r, cmosYear, 0x99)
	if h, y := cmosRead(r, cmosHours), cmosRead(r, cmosYear); h != 0x14 || y != 0x26 {
		t.Fatalf("after time writes hour=%#02x year=%#02x, want the clock's 0x14, 0x26", h, y)
	}
	cmosWrite(r, 0x01, 0x30) // seconds alarm: plain storage
	if got := cmosRead(r, 0x01); got != 0x30 {
		t.Fatalf("alarm seconds = %#02x", got)
	}
}

func TestRTCStateRoundTrip(t *testing.T) {
	clock := fixedClock(time.Date(2026, 11, 24, 14, 5, 9, 0, time.UTC))
	r := devices.NewRTC(clock)
	cmosWrite(r, cmosStatusB, statusBDM|statusB24h)
	cmosWrite(r, 0x50, 0xab)
	r.Write(rtcIndex, []byte{cmosMinutes})
	st := r.State()

	restored := devices.NewRTC(clock)
	if err := restored.SetState(st); err != nil {
		t.Fatal(err)
	}
	if got := restored.State(); got != st {
		t.Fatalf("state changed across SetState")
	}
	var b [1]byte
	restored.Read(rtcDataPort, b[:]) // index was restored: minutes
	if b[0] != 5 {
		t.Fatalf("minutes (binary) = %#02x, want 5", b[0])
	}
	if got := cmosRead(restored, 0x50); got != 0xab {
		t.Fatalf("CMOS 0x50 = %#02x", got)
	}
	if err := restored.SetState(devices.RTCState{Index: 0x80}); err == nil {
		t.Fatal("SetState accepted index 0x80")
	}
}
