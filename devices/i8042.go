package devices

import "sync"

// i8042 port offsets when registered at 0x60 with size 5, status and
// control-register bits, and controller commands (the names follow Linux's
// drivers/input/serio/i8042.h).
const (
	i8042Data    = 0 // port 0x60
	i8042Command = 4 // port 0x64: status on read, command on write

	i8042StrOBF     = 0x01
	i8042StrSysFlag = 0x04
	i8042StrCmdDat  = 0x08 // the last write went to the command port
	i8042StrKeylock = 0x10 // set: the keyboard is not inhibited
	i8042StrAuxData = 0x20

	i8042CtrSysFlag = 0x04
	i8042CtrKbdDis  = 0x10
	i8042CtrAuxDis  = 0x20

	i8042CmdReadCTR     = 0x20
	i8042CmdWriteCTR    = 0x60
	i8042CmdAuxDisable  = 0xa7
	i8042CmdAuxEnable   = 0xa8
	i8042CmdAuxTest     = 0xa9
	i8042CmdSelfTest    = 0xaa
	i8042CmdKbdTest     = 0xab
	i8042CmdKbdDisable  = 0xad
	i8042CmdKbdEnable   = 0xae
	i8042CmdReadOutput  = 0xd0
	i8042CmdWriteOutput = 0xd1
	i8042CmdKbdLoop     = 0xd2
	i8042CmdAuxLoop     = 0xd3
	i8042CmdAuxSend     = 0xd4
	i8042CmdResetCPU    = 0xfe

	i8042SelfTestOK   = 0x55
	i8042PortTestOK   = 0x00
	i8042ClockStuckLo = 0x01 // interface test result: clock line stuck low

	i8042OutResetLine = 0x01 // output port bit 0; writing 0 resets the CPU
	i8042OutA20       = 0x02

	// The control byte a BIOS leaves: translation, system flag,
	// keyboard interrupt, the auxiliary port disabled.
	i8042DefaultCTR = 0x40 | i8042CtrSysFlag | 0x01 | i8042CtrAuxDis
)

// I8042 is the PS/2 controller's command interface, kept for the CPU reset
// line (command 0xFE) and for the probe the Linux i8042 driver runs. No
// keyboard or mouse is attached and no interrupt is wired: bytes meant for
// the keyboard are dropped.
//
// Commands that answer a byte answer at once, so the driver never spins
// on its 0.5 s timeout: self test 0x55, keyboard test 0x00, and the
// command byte. The auxiliary port looks absent in the way the driver
// detects fastest: its loopback (0xD3) echoes the byte as keyboard data,
// not auxiliary data, and its interface test (0xA9) reports a stuck clock
// line.
type I8042 struct {
	reset func()

	mu         sync.Mutex
	ctr        uint8
	outputPort uint8
	out        uint8 // output buffer; kept after it is read, as on hardware
	outFull    bool
	outAux     bool
	cmdLast    bool  // status bit 3
	pendingCmd uint8 // a command waiting for its parameter byte, or 0
}

// NewI8042 returns a controller whose reset line calls reset, which may be
// nil.
func NewI8042(reset func()) *I8042 {
	return &I8042{reset: reset, ctr: i8042DefaultCTR, outputPort: i8042OutResetLine | i8042OutA20}
}

// Read handles reads of the data port (offset 0) and the status register
// (offset 4); the offsets between read as 0.
func (k *I8042) Read(offset uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(data)
	switch offset {
	case i8042Data:
		data[0] = k.out
		k.outFull = false
		k.outAux = false
	case i8042Command:
		data[0] = k.status()
	}
}

// Write handles writes of the data port (offset 0) and commands (offset 4).
// Only the first byte of a wider access is used.
func (k *I8042) Write(offset uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	k.mu.Lock()
	var reset bool
	switch offset {
	case i8042Data:
		k.cmdLast = false
		reset = k.writeData(data[0])
	case i8042Command:
		k.cmdLast = true
		reset = k.command(data[0])
	}
	k.mu.Unlock()
	if reset && k.reset != nil {
		k.reset()
	}
}

func (k *I8042) status() uint8 {
	st := uint8(i8042StrKeylock)
	if k.ctr&i8042CtrSysFlag != 0 {
		st |= i8042StrSysFlag
	}
	if k.cmdLast {
		st |= i8042StrCmdDat
	}
	if k.outFull {
		st |= i8042StrOBF
		if k.outAux {
			st |= i8042StrAuxData
		}
	}
	return st
}

func (k *I8042) respond(v uint8) {
	k.out, k.outFull, k.outAux = v, true, false
}

// command runs a controller command and reports whether it reset the CPU.
func (k *I8042) command(c uint8) bool {
	k.pendingCmd = 0
	switch c {
	case i8042CmdReadCTR:
		k.respond(k.ctr)
	case i8042CmdWriteCTR, i8042CmdWriteOutput, i8042CmdKbdLoop, i8042CmdAuxLoop, i8042CmdAuxSend:
		k.pendingCmd = c
	case i8042CmdAuxDisable:
		k.ctr |= i8042CtrAuxDis
	case i8042CmdAuxEnable:
		k.ctr &^= i8042CtrAuxDis
	case i8042CmdKbdDisable:
		k.ctr |= i8042CtrKbdDis
	case i8042CmdKbdEnable:
		k.ctr &^= i8042CtrKbdDis
	case i8042CmdAuxTest:
		k.respond(i8042ClockStuckLo)
	case i8042CmdSelfTest:
		k.respond(i8042SelfTestOK)
	case i8042CmdKbdTest:
		k.respond(i8042PortTestOK)
	case i8042CmdReadOutput:
		k.respond(k.outputPort)
	case i8042CmdResetCPU:
		return true
	}
	return false
}

// writeData takes a parameter for the pending command; with none pending
// the byte was for the keyboard, which is not there.
func (k *I8042) writeData(v uint8) bool {
	c := k.pendingCmd
	k.pendingCmd = 0
	switch c {
	case i8042CmdWriteCTR:
		k.ctr = v
	case i8042CmdWriteOutput:
		k.outputPort = v
		return v&i8042OutResetLine == 0
	case i8042CmdKbdLoop, i8042CmdAuxLoop:
		k.respond(v)
	}
	return false
}
