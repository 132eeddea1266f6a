package main

import (
	"io"

	"github.com/ternvm/tern/vmm"
)

// termFilter is an io.Writer that passes the guest's console output to
// the operator's terminal without the sequences that make a terminal do
// something other than show text: ESC-introduced sequences (CSI, OSC,
// DCS, APC, PM, SOS and the short ones such as ESC c), C1 controls
// written as UTF-8 (U+0080 to U+009F), and C0 controls other than \n,
// \r, \t and \b. A hostile guest could otherwise set the clipboard (OSC
// 52), retitle the window, remap keys or answer-back into the
// operator's shell. It is a state machine, so a sequence split across
// writes is still recognised.
type termFilter struct {
	w     io.Writer
	state termState
	out   []byte
}

type termState uint8

const (
	tsGround    termState = iota
	tsEsc                 // after ESC
	tsEscInter            // ESC, intermediate bytes, awaiting the final byte
	tsCSI                 // ESC [, awaiting the final byte
	tsString              // OSC, DCS, APC, PM or SOS: until ST or BEL
	tsStringEsc           // ESC inside a string: ST if '\' follows
	tsC2                  // a 0xC2 lead byte, perhaps of a C1 control
)

const (
	esc = 0x1b
	can = 0x18 // cancels a sequence
	sub = 0x1a // cancels a sequence
	bel = 0x07
)

func newTermFilter(w io.Writer) *termFilter { return &termFilter{w: w} }

// A VM filters on the vCPU's thread and writes the result itself.
var _ vmm.ConsoleFilter = (*termFilter)(nil)

// Filter appends to dst what of p may be shown.
func (f *termFilter) Filter(dst, p []byte) []byte {
	for _, b := range p {
		dst = f.step(dst, b)
	}
	return dst
}

// Underlying is the terminal the filter writes to.
func (f *termFilter) Underlying() io.Writer { return f.w }

// Write filters p and writes what remains in one write. It reports
// len(p) when that write succeeds.
func (f *termFilter) Write(p []byte) (int, error) {
	out := f.Filter(f.out[:0], p)
	f.out = out[:0]
	if len(out) == 0 {
		return len(p), nil
	}
	if _, err := f.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// step feeds one byte through the state machine, appending what may be
// shown to out.
func (f *termFilter) step(out []byte, b byte) []byte {
	switch f.state {
	case tsGround:
		return f.ground(out, b)
	case tsC2:
		f.state = tsGround
		if b >= 0x80 && b <= 0x9f {
			return out // U+0080..U+009F: a C1 control; dropped
		}
		return f.ground(append(out, 0xc2), b)
	case tsEsc:
		switch {
		case b == '[':
			f.state = tsCSI
		case b == ']' || b == 'P' || b == '_' || b == '^' || b == 'X':
			f.state = tsString
		case b == esc:
			// ESC ESC: the second starts afresh.
		case b >= 0x20 && b <= 0x2f:
			f.state = tsEscInter
		case b == can || b == sub:
			f.state = tsGround
		case b < 0x20:
			// A control inside a sequence; dropped, the sequence goes on.
		default:
			f.state = tsGround // the final byte of a short sequence
		}
	case tsEscInter:
		switch {
		case b == esc:
			f.state = tsEsc
		case b == can || b == sub:
			f.state = tsGround
		case b >= 0x30 && b <= 0x7e:
			f.state = tsGround
		}
	case tsCSI:
		switch {
		case b == esc:
			f.state = tsEsc
		case b == can || b == sub:
			f.state = tsGround
		case b >= 0x40 && b <= 0x7e:
			f.state = tsGround
		}
	case tsString:
		switch b {
		case esc:
			f.state = tsStringEsc
		case bel, can, sub:
			f.state = tsGround
		}
	case tsStringEsc:
		if b == '\\' {
			f.state = tsGround // ST
			break
		}
		// Any other ESC ends the string and begins a new sequence.
		f.state = tsEsc
		return f.step(out, b)
	}
	return out
}

func (f *termFilter) ground(out []byte, b byte) []byte {
	switch {
	case b == esc:
		f.state = tsEsc
	case b == 0xc2:
		f.state = tsC2
	case b == '\n' || b == '\r' || b == '\t' || b == '\b':
		out = append(out, b)
	case b < 0x20:
		// Other C0 controls: BEL, SO/SI (character sets), ENQ (answer-back)...
	default:
		out = append(out, b)
	}
	return out
}
