package devices_test

import (
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
	k := devices.NewI8042(nil)
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
	k := devices.NewI8042(func() { resets++ })
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
	k := devices.NewI8042(func() { resets++ })
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
	k := devices.NewI8042(nil)
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
		k := devices.NewI8042(nil)
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
	k := devices.NewI8042(nil)
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
	k := devices.NewI8042(nil)
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
