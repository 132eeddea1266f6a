package devices

import "fmt"

// SerialState is a UART's guest-visible state for snapshots. Input holds
// the queued receive bytes, oldest first; the rest are register values
// under their 16550 names.
type SerialState struct {
	DLL, DLM    uint8
	IER         uint8
	LCR         uint8
	MCR         uint8
	SCR         uint8
	FIFOEnabled bool
	// THREPending is the THR-empty source that reading IIR clears.
	THREPending bool
	// Overrun is LSR.OE, cleared by reading LSR.
	Overrun bool
	// MSRDelta is MSR bits 0-3, cleared by reading MSR.
	MSRDelta uint8
	Input    []byte
}

// State returns a copy of the UART's state.
func (s *Serial) State() SerialState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SerialState{
		DLL: s.dll, DLM: s.dlm, IER: s.ier, LCR: s.lcr, MCR: s.mcr, SCR: s.scr,
		FIFOEnabled: s.fifoEnabled, THREPending: s.threPending, Overrun: s.overrun,
		MSRDelta: s.msrDelta, Input: s.rx.contents(),
	}
}

// SetState replaces the UART's state with st, which must hold values the
// UART itself could have produced. It raises no interrupt: pending
// interrupts are part of the interrupt controller's own snapshot.
func (s *Serial) SetState(st SerialState) error {
	switch {
	case len(st.Input) > SerialInputCapacity:
		return fmt.Errorf("serial state: %d input bytes exceed the %d-byte FIFO", len(st.Input), SerialInputCapacity)
	case st.IER&^ierValid != 0:
		return fmt.Errorf("serial state: IER %#02x has bits outside %#02x", st.IER, ierValid)
	case st.MCR&^mcrValid != 0:
		return fmt.Errorf("serial state: MCR %#02x has bits outside %#02x", st.MCR, mcrValid)
	case st.MSRDelta&^msrDeltaMask != 0:
		return fmt.Errorf("serial state: MSR delta %#02x has bits outside %#02x", st.MSRDelta, msrDeltaMask)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dll, s.dlm, s.ier, s.lcr, s.mcr, s.scr = st.DLL, st.DLM, st.IER, st.LCR, st.MCR, st.SCR
	s.fifoEnabled, s.threPending, s.overrun, s.msrDelta = st.FIFOEnabled, st.THREPending, st.Overrun, st.MSRDelta
	s.rx.reset()
	s.rx.push(st.Input)
	return nil
}
