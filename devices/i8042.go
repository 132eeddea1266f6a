package devices

import (
	"errors"
	"fmt"
	"sync"
)

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

	i8042CtrKbdInt  = 0x01
	i8042CtrSysFlag = 0x04
	i8042CtrKbdDis  = 0x10
	i8042CtrAuxDis  = 0x20
	i8042CtrXlate   = 0x40

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
	i8042DefaultCTR = i8042CtrXlate | i8042CtrSysFlag | i8042CtrKbdInt | i8042CtrAuxDis

	// I8042BufferSize is how many bytes the controller's output buffer
	// holds, as in Firecracker's i8042 (and Linux's I8042_BUFFER_SIZE,
	// the most its flush loop reads).
	I8042BufferSize = 16
)

// Ctrl+Alt+Del as a keyboard sends it in scan code set 2, presses only, as
// Firecracker's i8042 emits it: left Ctrl (0x14), left Alt (0x11), Delete
// (0xE0 0x71).
var ctrlAltDelSet2 = [...]byte{0x14, 0x11, 0xe0, 0x71}

// set2ToSet1 is the 8042's translation (control byte bit 6) of the set-2
// codes in ctrlAltDelSet2: what a guest that left translation on reads.
// The 0xE0 prefix passes through unchanged.
var set2ToSet1 = map[byte]byte{0x14: 0x1d, 0x11: 0x38, 0x71: 0x53, 0xe0: 0xe0}

// ErrI8042Full is returned when the output buffer has no room for a whole
// key sequence: the guest has not been reading its keyboard.
var ErrI8042Full = errors.New("i8042 output buffer full: the guest is not reading its keyboard")

// I8042 is the PS/2 controller: the CPU reset line (command 0xFE and the
// output port), the probe the Linux i8042 driver runs, and a keyboard that
// can only press Ctrl+Alt+Del (SendCtrlAltDel), on IRQ 1. Bytes the guest
// sends to the keyboard are dropped: with i8042.dumbkbd (tern's default
// command line) Linux sends none.
//
// The output buffer is a FIFO, as on Firecracker's i8042: each data port
// read takes one byte, and while bytes remain another keyboard interrupt
// is raised, since Linux's handler reads one byte per interrupt. Commands
// that answer a byte replace what is queued and answer at once, so the
// driver never spins on its 0.5 s timeout: self test 0x55, keyboard test
// 0x00, and the command byte. The auxiliary port looks absent in the way
// the driver detects fastest: its loopback (0xD3) echoes the byte as
// keyboard data, not auxiliary data, and its interface test (0xA9) reports
// a stuck clock line.
type I8042 struct {
	reset func()
	kbd   Trigger

	mu         sync.Mutex
	ctr        uint8
	outputPort uint8
	buf        [I8042BufferSize]byte
	head, n    int
	last       uint8 // the byte read last; read again from an empty buffer, as on hardware
	cmdLast    bool  // status bit 3
	pendingCmd uint8 // a command waiting for its parameter byte, or 0
}

// NewI8042 returns a controller whose reset line calls reset and whose
// keyboard interrupt is kbd; either may be nil.
func NewI8042(reset func(), kbd Trigger) *I8042 {
	return &I8042{reset: reset, kbd: kbd, ctr: i8042DefaultCTR, outputPort: i8042OutResetLine | i8042OutA20}
}

// Read handles reads of the data port (offset 0) and the status register
// (offset 4); the offsets between read as 0.
func (k *I8042) Read(offset uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	k.mu.Lock()
	clear(data)
	var irq bool
	switch offset {
	case i8042Data:
		if c, ok := k.pop(); ok {
			k.last = c
		}
		data[0] = k.last
		irq = k.n > 0 && k.ctr&i8042CtrKbdInt != 0
	case i8042Command:
		data[0] = k.status()
	}
	k.mu.Unlock()
	if irq {
		k.interrupt()
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

// SendCtrlAltDel queues the Ctrl+Alt+Del key presses for the guest and
// raises the keyboard interrupt, unless the guest turned that interrupt
// off in the control byte (it then finds the keys by polling). The codes
// are scan code set 2, translated to set 1 while the guest has the
// controller translate. The whole sequence is queued or, with too little
// room, none of it (ErrI8042Full).
func (k *I8042) SendCtrlAltDel() error {
	k.mu.Lock()
	if len(k.buf)-k.n < len(ctrlAltDelSet2) {
		k.mu.Unlock()
		return ErrI8042Full
	}
	for _, c := range ctrlAltDelSet2 {
		if k.ctr&i8042CtrXlate != 0 {
			c = set2ToSet1[c]
		}
		k.push(c)
	}
	irq := k.ctr&i8042CtrKbdInt != 0
	k.mu.Unlock()
	if irq {
		return k.interrupt()
	}
	return nil
}

func (k *I8042) interrupt() error {
	if k.kbd == nil {
		return nil
	}
	if err := k.kbd.Trigger(); err != nil {
		return fmt.Errorf("i8042 keyboard interrupt: %w", err)
	}
	return nil
}

func (k *I8042) push(c byte) {
	if k.n == len(k.buf) {
		return
	}
	k.buf[(k.head+k.n)%len(k.buf)] = c
	k.n++
}

func (k *I8042) pop() (byte, bool) {
	if k.n == 0 {
		return 0, false
	}
	c := k.buf[k.head]
	k.head = (k.head + 1) % len(k.buf)
	k.n--
	return c, true
}

func (k *I8042) status() uint8 {
	st := uint8(i8042StrKeylock)
	if k.ctr&i8042CtrSysFlag != 0 {
		st |= i8042StrSysFlag
	}
	if k.cmdLast {
		st |= i8042StrCmdDat
	}
	if k.n > 0 {
		st |= i8042StrOBF
	}
	return st
}

// respond answers a command: the answer replaces whatever was queued, so
// the next data read is the answer (as on Firecracker's i8042).
func (k *I8042) respond(v uint8) {
	k.head, k.n = 0, 0
	k.push(v)
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
// the byte was for the keyboard, which takes no commands.
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

// I8042State is the controller's state for a snapshot.
type I8042State struct {
	CTR        uint8
	OutputPort uint8
	Output     []byte // queued for the guest, oldest first
	Last       uint8
	CmdLast    bool
	PendingCmd uint8
}

// State returns the controller's state.
func (k *I8042) State() I8042State {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]byte, k.n)
	for i := range out {
		out[i] = k.buf[(k.head+i)%len(k.buf)]
	}
	return I8042State{CTR: k.ctr, OutputPort: k.outputPort, Output: out, Last: k.last, CmdLast: k.cmdLast, PendingCmd: k.pendingCmd}
}

// SetState replaces the controller's state with st, which must be one the
// controller could have reached. It raises no interrupt: one pending is
// part of the interrupt controller's own snapshot.
func (k *I8042) SetState(st I8042State) error {
	if len(st.Output) > I8042BufferSize {
		return fmt.Errorf("i8042 state: %d queued bytes exceed the %d-byte buffer", len(st.Output), I8042BufferSize)
	}
	switch st.PendingCmd {
	case 0, i8042CmdWriteCTR, i8042CmdWriteOutput, i8042CmdKbdLoop, i8042CmdAuxLoop, i8042CmdAuxSend:
	default:
		return fmt.Errorf("i8042 state: %#02x is not a command that waits for a parameter", st.PendingCmd)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ctr, k.outputPort, k.last, k.cmdLast, k.pendingCmd = st.CTR, st.OutputPort, st.Last, st.CmdLast, st.PendingCmd
	k.head, k.n = 0, 0
	for _, c := range st.Output {
		k.push(c)
	}
	return nil
}
