package devices_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/devices"
)

type counter struct{ n int }

func (c *counter) Trigger() error { c.n++; return nil }
func (c *counter) fn()            { c.n++ }

type byteCount struct{ n int }

func (b *byteCount) Write(p []byte) (int, error) { b.n += len(p); return len(p), nil }

// legacyWindows is the port I/O map vmm's platform builds, written out
// here from boot's port constants.
var legacyWindows = []struct{ base, size uint64 }{
	{boot.PortCOM1, 8}, {boot.PortI8042Data, 5}, {boot.PortRTC, 2}, {boot.PortACPISleepCtl, 3}, {boot.PortBootTimer, 1},
}

// FuzzLegacyPIO drives the real legacy devices (8250 UART, i8042, CMOS
// RTC, ACPI PM registers, boot timer) on a bus laid out as the platform
// lays it out, with sequences of port accesses, 4 bytes each: flags
// (write, size 1/2/4), a window and offset, and two value bytes. It
// checks the dispatch against the map, that the side effects (power off,
// reset, boot report, console output) only follow writes that can cause
// them, and that every state the UART, i8042 and RTC reach can be
// restored. An item whose flags have bits 0x60 set is not an access: it
// has the i8042 send Ctrl+Alt+Del.
func FuzzLegacyPIO(f *testing.F) {
	f.Add([]byte{0x81, 0x00, 'h', 0, 0x81, 0x00, 'i', 0})                     // COM1 THR
	f.Add([]byte{0x81, 0x20, 0x0b, 0, 0x01, 0x21, 0, 0, 0x82, 0x20, 0x8b, 7}) // RTC index then data
	f.Add([]byte{0x81, 0x14, 0xfe, 0})                                        // i8042 pulse reset
	f.Add([]byte{0x60, 0, 0, 0, 0x01, 0x15, 0, 0, 0x01, 0x11, 0, 0})          // Ctrl+Alt+Del, status, data
	f.Add([]byte{0x81, 0x30, 0x34, 0, 0x81, 0x32, 0x01, 0})                   // ACPI S5, reset
	f.Add([]byte{0x81, 0x40, 123, 0, 0x84, 0x3f, 1, 2, 0x02, 0x07, 0, 0})     // boot timer, window edges
	f.Add([]byte{0x81, 0x03, 0x80, 0, 0x81, 0x00, 1, 0, 0x81, 0x03, 3, 0, 0x01, 0x05, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var out byteCount
		var com1, kbdReset, kbdIRQ, acpiOff, acpiReset, booted counter
		serial := devices.NewSerial(&out, &com1)
		kbd := devices.NewI8042(kbdReset.fn, &kbdIRQ)
		rtc := devices.NewRTC(func() time.Time { return time.Date(2026, 12, 6, 5, 4, 3, 0, time.UTC) })
		bus := devices.NewBus("pio")
		for i, d := range []devices.Device{
			serial, kbd, rtc, devices.NewACPIPM(acpiOff.fn, acpiReset.fn),
			devices.NewBootTimer(time.Now(), func(time.Duration) { booted.fn() }),
		} {
			if err := bus.Register(legacyWindows[i].base, legacyWindows[i].size, d); err != nil {
				t.Fatal(err)
			}
		}
		var writesTo [5]int // write accesses that reach each window
		var comBytes, cads, readsOf8042 int
		for ; len(ops) >= 4; ops = ops[4:] {
			if ops[0]&0x60 == 0x60 {
				cads++
				if err := kbd.SendCtrlAltDel(); err != nil && !errors.Is(err, devices.ErrI8042Full) {
					t.Fatalf("Ctrl+Alt+Del: %v", err)
				}
				continue
			}
			write := ops[0]&0x80 != 0
			size := []int{1, 2, 4, 1}[ops[0]&3]
			w := legacyWindows[int(ops[1]>>4)%len(legacyWindows)]
			// Offsets -1 to 14 around the window's base reach its edges
			// and the ports just outside it.
			port := w.base + uint64(ops[1]&0x0f) - 1
			data := []byte{ops[2], ops[3], ops[2] ^ 0xff, ops[3] ^ 0xff}[:size]
			inside := -1
			for i, w := range legacyWindows {
				if port >= w.base && port+uint64(size) <= w.base+w.size {
					inside = i
				}
			}
			var ok bool
			if write {
				ok = bus.Write(port, data)
			} else {
				before := append([]byte(nil), data...)
				ok = bus.Read(port, data)
				if !ok && string(before) != string(data) {
					t.Fatalf("unclaimed read at %#x changed the buffer", port)
				}
			}
			if ok != (inside >= 0) {
				t.Fatalf("%d-byte access at %#x claimed=%v, map says window %d", size, port, ok, inside)
			}
			if ok && !write && inside == 1 {
				readsOf8042++
			}
			if ok && write {
				writesTo[inside]++
				if inside == 0 {
					comBytes += size
				}
			}
		}
		switch {
		case out.n > comBytes:
			t.Fatalf("console got %d bytes from %d written to COM1", out.n, comBytes)
		case kbdReset.n > writesTo[1]:
			t.Fatalf("%d i8042 resets from %d writes", kbdReset.n, writesTo[1])
		case kbdIRQ.n > cads+readsOf8042:
			t.Fatalf("%d keyboard interrupts from %d Ctrl+Alt+Del and %d reads", kbdIRQ.n, cads, readsOf8042)
		case acpiOff.n+acpiReset.n > writesTo[3]:
			t.Fatalf("%d power-offs and %d resets from %d ACPI writes", acpiOff.n, acpiReset.n, writesTo[3])
		case booted.n > writesTo[4]:
			t.Fatalf("%d boot reports from %d writes", booted.n, writesTo[4])
		}
		// Whatever state the guest drove the devices into is one a
		// snapshot must restore, through JSON as snapshots store it.
		ss := serial.State()
		var ss2 devices.SerialState
		roundTrip(t, ss, &ss2)
		if err := devices.NewSerial(&out, &com1).SetState(ss2); err != nil {
			t.Fatalf("serial refuses its own state %+v: %v", ss, err)
		}
		ks := kbd.State()
		var ks2 devices.I8042State
		roundTrip(t, ks, &ks2)
		kbd2 := devices.NewI8042(nil, nil)
		if err := kbd2.SetState(ks2); err != nil {
			t.Fatalf("i8042 refuses its own state %+v: %v", ks, err)
		}
		if got := kbd2.State(); !reflect.DeepEqual(got, ks) {
			t.Fatalf("i8042 restored %+v, State says %+v", ks, got)
		}
		rs := rtc.State()
		var rs2 devices.RTCState
		roundTrip(t, rs, &rs2)
		if err := devices.NewRTC(time.Now).SetState(rs2); err != nil {
			t.Fatalf("RTC refuses its own state %+v: %v", rs, err)
		}
	})
}

func roundTrip(t *testing.T, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

// FuzzStateJSON restores the UART and the RTC from arbitrary JSON, as a
// crafted snapshot would hold: a bad state is refused, and an accepted one
// is what State then reports.
func FuzzStateJSON(f *testing.F) {
	f.Add(false, []byte(`{"DLL":12,"IER":15,"LCR":3,"MCR":31,"FIFOEnabled":true,"Input":"aGVsbG8="}`))
	f.Add(false, []byte(`{"IER":255,"MSRDelta":240}`))
	f.Add(false, []byte(`{"Input":"`+string(make([]byte, 0))+`"}`))
	f.Add(true, []byte(`{"Index":11,"CMOS":[0,0,0,0,0,0,0,0,0,0,38,2]}`))
	f.Add(true, []byte(`{"Index":200}`))
	f.Add(true, []byte(`{"CMOS":"AAEC"}`))
	f.Fuzz(func(t *testing.T, isRTC bool, js []byte) {
		if isRTC {
			var st devices.RTCState
			if json.Unmarshal(js, &st) != nil {
				return
			}
			r := devices.NewRTC(time.Now)
			if err := r.SetState(st); err != nil {
				return
			}
			if got := r.State(); !reflect.DeepEqual(got, st) {
				t.Fatalf("restored %+v, State says %+v", st, got)
			}
			return
		}
		var st devices.SerialState
		if json.Unmarshal(js, &st) != nil {
			return
		}
		s := devices.NewSerial(&byteCount{}, &counter{})
		if err := s.SetState(st); err != nil {
			return
		}
		got := s.State()
		if len(st.Input) == 0 && len(got.Input) == 0 {
			got.Input = st.Input // nil and empty are the same queue
		}
		if !reflect.DeepEqual(got, st) {
			t.Fatalf("restored %+v, State says %+v", st, got)
		}
		// A second restore from what it reports changes nothing.
		if err := s.SetState(got); err != nil || !reflect.DeepEqual(s.State(), s.State()) {
			t.Fatalf("refuses its own state: %v", err)
		}
	})
}
