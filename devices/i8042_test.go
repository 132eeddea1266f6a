package devices_test

import (
	"errors"
	"testing"

	"github.com/ternvm/tern/devices"
)

// Registered at port 0x60 with size 5: the data port is offset 0 and the
// status/command port (0x64) offset 4. Status bits and commands are from
// the 8042 documentation (Linux drivers/input/serio/i8042.h).
const (
	kbdData   = 0
	kbdStatus = 4
	kbdCmd    = 4

	strOBF     = 0x01
	strIBF     = 0x02
	strSysFlag = 0x04
	strAuxData = 0x20
)

func kbdRead(k *devices.I8042, off uint64) byte {
	var b [1]byte
	k.Read(off, b[:])
	return b[0]
}

func kbdWrite(k *devices.I8042, off uint64, v byte) { k.Write(off, []byte{v}) }

func TestI8042Status(t *testing.T) {
	k := devices.NewI8042(nil, nil)
	st := kbdRead(k, kbdStatus)
	if st&strSysFlag == 0 {
		t.Errorf("status %#02x: system flag clear", st)
	}
	if st&(strOBF|strIBF) != 0 {
		t.Errorf("status %#02x: buffers not empty", st)
	}
}

func TestI8042ResetCommand(t *testing.T) {
	resets := 0
	k := devices.NewI8042(func() { resets++ }, nil)
	// Commands that must not reset: read/write command byte, self test,
	// port enables and an unknown one.
	for _, c := range []byte{0x20, 0xaa, 0xab, 0xad, 0xae, 0xa7, 0xa8, 0xc0, 0x90, 0xff} {
		kbdWrite(k, kbdCmd, c)
	}
	if resets != 0 {
		t.Fatalf("ordinary commands reset the CPU %d times", resets)
	}
	kbdWrite(k, kbdCmd, 0xfe)
	if resets != 1 {
		t.Fatalf("0xFE reset the CPU %d times, want 1", resets)
	}
	kbdWrite(k, kbdData, 0xfe) // a keyboard byte, not a command
	if resets != 1 {
		t.Fatal("0xFE written to the data port reset the CPU")
	}
}

func TestI8042OutputPortResetLine(t *testing.T) {
	resets := 0
	k := devices.NewI8042(func() { resets++ }, nil)
	kbdWrite(k, kbdCmd, 0xd1) // write output port
	kbdWrite(k, kbdData, 0xdf)
	if resets != 0 {
		t.Fatal("enabling A20 with the reset line high reset the CPU")
	}
	kbdWrite(k, kbdCmd, 0xd1)
	kbdWrite(k, kbdData, 0xde) // bit 0 low: reset asserted
	if resets != 1 {
		t.Fatalf("pulling the reset line low reset %d times, want 1", resets)
	}
}

func TestI8042CommandByte(t *testing.T) {
	k := devices.NewI8042(nil, nil)
	kbdWrite(k, kbdCmd, 0x20)
	if st := kbdRead(k, kbdStatus); st&strOBF == 0 {
		t.Fatalf("status %#02x after 0x20: no byte to read", st)
	}
	initial := kbdRead(k, kbdData)
	if initial&strSysFlag == 0 { // CTR bit 2 is the system flag too
		t.Errorf("command byte %#02x: system flag clear", initial)
	}
	if st := kbdRead(k, kbdStatus); st&strOBF != 0 {
		t.Fatalf("status %#02x: output still full after reading it", st)
	}

	kbdWrite(k, kbdCmd, 0x60)
	kbdWrite(k, kbdData, 0x65)
	kbdWrite(k, kbdCmd, 0x20)
	if got := kbdRead(k, kbdData); got != 0x65 {
		t.Fatalf("command byte = %#02x, want 0x65", got)
	}
	kbdWrite(k, kbdCmd, 0xa8) // enable AUX: clears CTR bit 5
	kbdWrite(k, kbdCmd, 0x20)
	if got := kbdRead(k, kbdData); got != 0x45 {
		t.Fatalf("command byte after AUX enable = %#02x, want 0x45", got)
	}
}

func TestI8042Responses(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  byte
		want byte
	}{
		{"controller self test passes", 0xaa, 0x55},
		{"keyboard interface test passes", 0xab, 0x00},
	} {
		k := devices.NewI8042(nil, nil)
		kbdWrite(k, kbdCmd, tc.cmd)
		if st := kbdRead(k, kbdStatus); st&strOBF == 0 {
			t.Errorf("%s: no response", tc.name)
			continue
		}
		if got := kbdRead(k, kbdData); got != tc.want {
			t.Errorf("%s: response %#02x, want %#02x", tc.name, got, tc.want)
		}
	}
}

func TestI8042FlushTerminates(t *testing.T) {
	// The Linux driver reads data while OBF is set, up to 16 times,
	// before deciding the controller is stuck.
	k := devices.NewI8042(nil, nil)
	kbdWrite(k, kbdCmd, 0xaa)
	reads := 0
	for kbdRead(k, kbdStatus)&strOBF != 0 {
		kbdRead(k, kbdData)
		if reads++; reads > 16 {
			t.Fatal("output buffer never empties")
		}
	}
}

func TestI8042AuxLooksAbsent(t *testing.T) {
	k := devices.NewI8042(nil, nil)
	kbdWrite(k, kbdCmd, 0xd3) // AUX loopback
	kbdWrite(k, kbdData, 0x5a)
	st := kbdRead(k, kbdStatus)
	if st&strOBF == 0 {
		t.Fatal("AUX loopback did not answer")
	}
	if st&strAuxData != 0 {
		t.Fatalf("status %#02x: loopback answered as AUX data, so Linux would probe a mouse", st)
	}
	kbdWrite(k, kbdCmd, 0xa9) // AUX interface test
	if got := kbdRead(k, kbdData); got == 0x00 || got == 0xfa || got == 0xff {
		t.Fatalf("AUX test answered %#02x, which Linux takes as a working port", got)
	}
}

// Ctrl+Alt+Del presses, written out from the scan code tables: set 2 is
// what the keyboard sends (left Ctrl 0x14, left Alt 0x11, Delete E0 71),
// set 1 what an 8042 with translation on hands the CPU (1D, 38, E0 53).
var (
	cadSet2 = []byte{0x14, 0x11, 0xe0, 0x71}
	cadSet1 = []byte{0x1d, 0x38, 0xe0, 0x53}
)

type irqCount struct{ n int }

func (c *irqCount) Trigger() error { c.n++; return nil }

// linuxKbdIRQ is Linux's i8042_interrupt: on each keyboard interrupt it
// reads the status register and, with OBF set, one byte of data. It runs
// as long as interrupts keep coming, as the guest would.
func linuxKbdIRQ(t *testing.T, k *devices.I8042, irq *irqCount) []byte {
	t.Helper()
	var got []byte
	for handled := 0; handled < irq.n; handled++ {
		if handled > 64 {
			t.Fatal("interrupts never stop")
		}
		if kbdRead(k, kbdStatus)&strOBF == 0 {
			continue
		}
		got = append(got, kbdRead(k, kbdData))
	}
	return got
}

func TestI8042CtrlAltDelTranslated(t *testing.T) {
	irq := &irqCount{}
	k := devices.NewI8042(nil, irq)
	if err := k.SendCtrlAltDel(); err != nil {
		t.Fatal(err)
	}
	if got := linuxKbdIRQ(t, k, irq); string(got) != string(cadSet1) {
		t.Fatalf("guest read % x with translation on, want % x", got, cadSet1)
	}
	if st := kbdRead(k, kbdStatus); st&strOBF != 0 {
		t.Fatalf("status %#02x: output still full after the sequence", st)
	}
}

func TestI8042CtrlAltDelUntranslated(t *testing.T) {
	// Linux sets i8042_direct when it finds translation off, and its
	// atkbd then expects set 2, which is what Firecracker's i8042 sends.
	irq := &irqCount{}
	k := devices.NewI8042(nil, irq)
	kbdWrite(k, kbdCmd, 0x60)
	kbdWrite(k, kbdData, 0x05) // keyboard interrupt, system flag
	if err := k.SendCtrlAltDel(); err != nil {
		t.Fatal(err)
	}
	if got := linuxKbdIRQ(t, k, irq); string(got) != string(cadSet2) {
		t.Fatalf("guest read % x with translation off, want % x", got, cadSet2)
	}
}

func TestI8042CtrlAltDelAfterLinuxInit(t *testing.T) {
	// What Linux's i8042 driver does with i8042.noaux i8042.nomux
	// i8042.dumbkbd: flush, self test, read the command byte,
	// write it back with the keyboard enabled and its interrupt on.
	irq := &irqCount{}
	k := devices.NewI8042(nil, irq)
	for n := 0; kbdRead(k, kbdStatus)&strOBF != 0; n++ {
		if n > 16 {
			t.Fatal("flush never ends")
		}
		kbdRead(k, kbdData)
	}
	kbdWrite(k, kbdCmd, 0xaa)
	if got := kbdRead(k, kbdData); got != 0x55 {
		t.Fatalf("self test answered %#02x", got)
	}
	kbdWrite(k, kbdCmd, 0x20)
	ctr := kbdRead(k, kbdData)
	ctr = ctr&^0x10 | 0x01 // keyboard enabled, its interrupt on
	kbdWrite(k, kbdCmd, 0x60)
	kbdWrite(k, kbdData, ctr)
	irq.n = 0
	if err := k.SendCtrlAltDel(); err != nil {
		t.Fatal(err)
	}
	want := cadSet1
	if ctr&0x40 == 0 {
		want = cadSet2
	}
	if got := linuxKbdIRQ(t, k, irq); string(got) != string(want) {
		t.Fatalf("guest read % x, want % x", got, want)
	}
}

func TestI8042CtrlAltDelInterruptOff(t *testing.T) {
	// With the keyboard interrupt off in the command byte no interrupt
	// is raised; a polling guest still finds the bytes.
	irq := &irqCount{}
	k := devices.NewI8042(nil, irq)
	kbdWrite(k, kbdCmd, 0x60)
	kbdWrite(k, kbdData, 0x44) // translation, system flag, no interrupt
	if err := k.SendCtrlAltDel(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for kbdRead(k, kbdStatus)&strOBF != 0 && len(got) < 16 {
		got = append(got, kbdRead(k, kbdData))
	}
	if irq.n != 0 {
		t.Errorf("%d interrupts with the keyboard interrupt off", irq.n)
	}
	if string(got) != string(cadSet1) {
		t.Errorf("polling read % x, want % x", got, cadSet1)
	}
}

func TestI8042CtrlAltDelBufferFull(t *testing.T) {
	k := devices.NewI8042(nil, &irqCount{})
	// 16 bytes hold four sequences; the fifth is refused whole.
	for i := 0; i < 4; i++ {
		if err := k.SendCtrlAltDel(); err != nil {
			t.Fatalf("sequence %d: %v", i+1, err)
		}
	}
	if err := k.SendCtrlAltDel(); !errors.Is(err, devices.ErrI8042Full) {
		t.Fatalf("fifth sequence into a full buffer: %v, want ErrI8042Full", err)
	}
	var n int
	for kbdRead(k, kbdStatus)&strOBF != 0 {
		kbdRead(k, kbdData)
		if n++; n > 16 {
			t.Fatal("more than 16 bytes came out of a 16-byte buffer")
		}
	}
	if n != 16 {
		t.Fatalf("read %d bytes, want the 16 of four sequences", n)
	}
}

func TestI8042StateRoundTrip(t *testing.T) {
	k := devices.NewI8042(nil, &irqCount{})
	kbdWrite(k, kbdCmd, 0x60)
	kbdWrite(k, kbdData, 0x05)
	if err := k.SendCtrlAltDel(); err != nil {
		t.Fatal(err)
	}
	kbdRead(k, kbdData) // one byte taken before the snapshot
	kbdWrite(k, kbdCmd, 0xd1)
	var st devices.I8042State
	roundTrip(t, k.State(), &st)

	irq := &irqCount{}
	k2 := devices.NewI8042(nil, irq)
	if err := k2.SetState(st); err != nil {
		t.Fatal(err)
	}
	// The pending output-port write survives: this byte is its parameter.
	resets := 0
	k3 := devices.NewI8042(func() { resets++ }, nil)
	if err := k3.SetState(st); err != nil {
		t.Fatal(err)
	}
	kbdWrite(k3, kbdData, 0x00)
	if resets != 1 {
		t.Errorf("restored pending 0xD1 then reset line low: %d resets, want 1", resets)
	}
	var got []byte
	for kbdRead(k2, kbdStatus)&strOBF != 0 && len(got) < 16 {
		got = append(got, kbdRead(k2, kbdData))
	}
	if string(got) != string(cadSet2[1:]) {
		t.Errorf("restored controller gave % x, want the rest of the sequence % x", got, cadSet2[1:])
	}
	kbdWrite(k2, kbdCmd, 0x20)
	if ctr := kbdRead(k2, kbdData); ctr != 0x05 {
		t.Errorf("restored command byte %#02x, want 0x05", ctr)
	}
}

func TestI8042SetStateRefusesImpossible(t *testing.T) {
	k := devices.NewI8042(nil, nil)
	for name, st := range map[string]devices.I8042State{
		"17 queued bytes":              {Output: make([]byte, 17)},
		"0xAA waiting for a parameter": {PendingCmd: 0xaa},
	} {
		if err := k.SetState(st); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
