package devices

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// SerialInputCapacity bounds the UART's receive FIFO; it is the 64 bytes of
// a 16750, more than the 16 a 16550A has, so pasted lines need fewer
// retries, and a guest that never reads cannot make the VMM buffer more.
const SerialInputCapacity = 64

// ErrInputFull is returned by EnqueueInput when the receive FIFO could not
// take every byte offered.
var ErrInputFull = errors.New("serial input FIFO full")

// Serial is an 8250/16550A UART as the Linux 8250 driver sees it, for one
// 8-port window (COM1 at 0x3f8).
//
// Transmission is synchronous: a byte written to THR goes to the output
// writer before the write returns, so THR and the transmitter are always
// empty (LSR.THRE and LSR.TEMT always set). There are no parity, framing or
// break errors; the only line status error is an overrun when loopback
// output finds the receive FIFO full. Data-available interrupts ignore the
// FCR trigger level: any queued byte raises one, and there is no character
// timeout indication. MCR.OUT2 does not gate the interrupt line.
//
// Interrupts follow the 16550 rules: the THRE source is set when IER.ETBEI
// goes from 0 to 1 (THR being empty) and after each byte written to THR,
// and cleared by reading IIR while it is the reported source, by writing
// THR or by clearing ETBEI. Each time a source becomes pending the Trigger
// fires once.
type Serial struct {
	irq Trigger

	outMu  sync.Mutex // serialises calls into out
	out    io.Writer
	outBuf [1]byte

	mu          sync.Mutex
	dll, dlm    uint8
	ier         uint8
	lcr         uint8
	mcr         uint8
	scr         uint8
	fifoEnabled bool
	threPending bool
	overrun     bool
	msrDelta    uint8 // MSR bits 0-3, cleared by reading MSR
	rx          byteFIFO

	droppedOutput atomic.Uint64
	triggerErrors atomic.Uint64
}

// NewSerial returns a UART in its reset state. Output goes to out, one
// Write per byte; a nil out discards it. out should not block for long: the
// vCPU that wrote the byte waits for it. irq may be nil for a UART the
// guest polls.
func NewSerial(out io.Writer, irq Trigger) *Serial {
	if out == nil {
		out = io.Discard
	}
	return &Serial{out: out, irq: irq, dll: defaultDivisor}
}

// EnqueueInput queues host input for the guest and returns how many bytes
// of p it took. When the FIFO cannot take all of p it returns the count
// together with ErrInputFull; the caller keeps the rest and retries once
// the guest has read some (InputFree says how much room there is). Input
// is accepted in loopback mode too, as if it had arrived just before the
// guest switched loopback on.
func (s *Serial) EnqueueInput(p []byte) (int, error) {
	s.mu.Lock()
	n := s.rx.push(p)
	raise := n > 0 && s.ier&ierRDI != 0
	s.mu.Unlock()
	if raise {
		s.raise()
	}
	if n < len(p) {
		return n, fmt.Errorf("serial: accepted %d of %d input bytes: %w", n, len(p), ErrInputFull)
	}
	return n, nil
}

// InputFree returns how many bytes EnqueueInput would accept now.
func (s *Serial) InputFree() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rx.free()
}

// OutputDropped returns how many output bytes the writer failed to take.
// They are dropped rather than retried so a broken console cannot stall
// the guest.
func (s *Serial) OutputDropped() uint64 { return s.droppedOutput.Load() }

// TriggerErrors returns how many interrupt edges failed to be raised.
func (s *Serial) TriggerErrors() uint64 { return s.triggerErrors.Load() }

// Read handles a guest read; a multi-byte access reads consecutive
// registers, as an 8-bit device on the ISA bus would see it.
func (s *Serial) Read(offset uint64, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range data {
		data[i] = s.readRegister(offset + uint64(i))
	}
}

// Write handles a guest write; a multi-byte access writes consecutive
// registers.
func (s *Serial) Write(offset uint64, data []byte) {
	for i, v := range data {
		s.mu.Lock()
		transmit, raise := s.writeRegister(offset+uint64(i), v)
		s.mu.Unlock()
		if transmit {
			s.transmit(v)
		}
		if raise {
			s.raise()
		}
	}
}

func (s *Serial) dlab() bool     { return s.lcr&lcrDLAB != 0 }
func (s *Serial) loopback() bool { return s.mcr&mcrLoop != 0 }

func (s *Serial) readRegister(offset uint64) uint8 {
	switch offset {
	case uartData:
		if s.dlab() {
			return s.dll
		}
		c, _ := s.rx.pop()
		return c
	case uartIER:
		if s.dlab() {
			return s.dlm
		}
		return s.ier
	case uartIIR:
		iir := s.iir()
		if iir&iirIDMask == iirTHRI {
			s.threPending = false
		}
		return iir
	case uartLCR:
		return s.lcr
	case uartMCR:
		return s.mcr
	case uartLSR:
		lsr := uint8(lsrTHRE | lsrTEMT)
		if s.rx.len() > 0 {
			lsr |= lsrDR
		}
		if s.overrun {
			lsr |= lsrOE
			s.overrun = false
		}
		return lsr
	case uartMSR:
		msr := s.modemLines() | s.msrDelta
		s.msrDelta = 0
		return msr
	case uartSCR:
		return s.scr
	}
	return 0
}

// writeRegister applies one byte written by the guest. transmit says v
// must go to the output; raise says an interrupt source became pending.
func (s *Serial) writeRegister(offset uint64, v uint8) (transmit, raise bool) {
	switch offset {
	case uartData:
		if s.dlab() {
			s.dll = v
			return false, false
		}
		s.threPending = s.ier&ierTHRI != 0
		raise = s.threPending
		if !s.loopback() {
			return true, raise
		}
		if s.rx.push([]byte{v}) == 1 {
			raise = raise || s.ier&ierRDI != 0
		} else {
			s.overrun = true
			raise = raise || s.ier&ierRLSI != 0
		}
		return false, raise
	case uartIER:
		if s.dlab() {
			s.dlm = v
			return false, false
		}
		return false, s.setIER(v & ierValid)
	case uartIIR:
		s.writeFCR(v)
	case uartLCR:
		s.lcr = v
	case uartMCR:
		before := s.modemLines()
		s.mcr = v & mcrValid
		delta := modemDelta(before, s.modemLines())
		fresh := delta &^ s.msrDelta
		s.msrDelta |= delta
		return false, fresh != 0 && s.ier&ierMSI != 0
	case uartSCR:
		s.scr = v
	}
	// LSR and MSR writes are factory-test features of real parts; ignored.
	return false, false
}

// setIER stores a new interrupt enable value and reports whether that
// made a source pending.
func (s *Serial) setIER(ier uint8) bool {
	enabled := ier &^ s.ier
	s.ier = ier
	raise := false
	switch {
	case ier&ierTHRI == 0:
		s.threPending = false
	case enabled&ierTHRI != 0:
		// THR is always empty, so enabling the source asserts it;
		// Linux's THRE test at port startup depends on this.
		s.threPending = true
		raise = true
	}
	if enabled&ierRDI != 0 && s.rx.len() > 0 {
		raise = true
	}
	if enabled&ierRLSI != 0 && s.overrun {
		raise = true
	}
	if enabled&ierMSI != 0 && s.msrDelta != 0 {
		raise = true
	}
	return raise
}

// writeFCR follows the datasheet: the other FCR bits only take effect
// while bit 0 is written as 1, and changing bit 0 empties the FIFOs.
func (s *Serial) writeFCR(v uint8) {
	enable := v&fcrEnable != 0
	if enable != s.fifoEnabled {
		s.rx.reset()
		s.fifoEnabled = enable
	}
	if enable && v&fcrClearRecv != 0 {
		s.rx.reset()
	}
}

// iir returns the highest-priority pending source in 16550 order: line
// status, received data, THR empty, modem status.
func (s *Serial) iir() uint8 {
	id := uint8(iirNoInt)
	switch {
	case s.ier&ierRLSI != 0 && s.overrun:
		id = iirRLSI
	case s.ier&ierRDI != 0 && s.rx.len() > 0:
		id = iirRDI
	case s.ier&ierTHRI != 0 && s.threPending:
		id = iirTHRI
	case s.ier&ierMSI != 0 && s.msrDelta != 0:
		id = iirMSI
	}
	if s.fifoEnabled {
		id |= iirFIFOs
	}
	return id
}

// modemLines returns MSR bits 4-7. In loopback the modem inputs are wired
// to the MCR outputs (RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD); otherwise
// they show a console that is always there and ready.
func (s *Serial) modemLines() uint8 {
	if !s.loopback() {
		return msrConnected
	}
	var m uint8
	if s.mcr&mcrRTS != 0 {
		m |= msrCTS
	}
	if s.mcr&mcrDTR != 0 {
		m |= msrDSR
	}
	if s.mcr&mcrOUT1 != 0 {
		m |= msrRI
	}
	if s.mcr&mcrOUT2 != 0 {
		m |= msrDCD
	}
	return m
}

// modemDelta returns the MSR delta bits for a change of the modem lines:
// any change of CTS, DSR or DCD, and RI only on its trailing edge.
func modemDelta(before, after uint8) uint8 {
	changed := before ^ after
	var d uint8
	if changed&msrCTS != 0 {
		d |= msrDCTS
	}
	if changed&msrDSR != 0 {
		d |= msrDDSR
	}
	if before&msrRI != 0 && after&msrRI == 0 {
		d |= msrTERI
	}
	if changed&msrDCD != 0 {
		d |= msrDDCD
	}
	return d
}

func (s *Serial) transmit(v uint8) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	s.outBuf[0] = v
	if n, err := s.out.Write(s.outBuf[:]); err != nil || n != 1 {
		s.droppedOutput.Add(1)
	}
}

func (s *Serial) raise() {
	if s.irq == nil {
		return
	}
	if err := s.irq.Trigger(); err != nil {
		s.triggerErrors.Add(1)
	}
}
