package devices_test

import (
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/ternvm/tern/devices"
)

// FuzzSerial drives a UART with an arbitrary sequence of guest accesses,
// host input and snapshots. Each operation takes two bytes: op selects
// what to do (top three bits) and a register offset (low four bits, so
// offsets past the 8-byte window are exercised too); arg is the value,
// width or input length.
func FuzzSerial(f *testing.F) {
	f.Fuzz(func(t *testing.T, ops []byte) {
		irq := &countingTrigger{}
		s := devices.NewSerial(io.Discard, irq)
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], ops[i+1]
			off := uint64(op & 0x0f)
			switch op >> 5 {
			case 0, 1:
				s.Write(off, []byte{arg})
			case 2, 3:
				var b [1]byte
				s.Read(off, b[:])
			case 4:
				n, err := s.EnqueueInput(make([]byte, int(arg)%100))
				if err != nil && !errors.Is(err, devices.ErrInputFull) {
					t.Fatalf("EnqueueInput: unexpected error %v", err)
				}
				if n > int(arg)%100 {
					t.Fatalf("EnqueueInput accepted %d of %d bytes", n, int(arg)%100)
				}
			case 5:
				buf := make([]byte, int(arg)%4+1)
				s.Read(off, buf)
				s.Write(off, buf)
			case 6:
				st := s.State()
				if err := s.SetState(st); err != nil {
					t.Fatalf("SetState(State()): %v", err)
				}
				if again := s.State(); !reflect.DeepEqual(again, st) {
					t.Fatalf("state changed across a round trip:\n%+v\n%+v", st, again)
				}
			case 7:
				var b [1]byte
				s.Read(2, b[:]) // IIR
				if b[0]&0x30 != 0 {
					t.Fatalf("IIR %#02x has bits 4-5 set, which a 16550A never reports", b[0])
				}
			}
			queued := len(s.State().Input)
			if queued > 64 {
				t.Fatalf("input FIFO holds %d bytes, beyond its 64-byte bound", queued)
			}
			if free := s.InputFree(); free+queued != 64 {
				t.Fatalf("InputFree %d with %d queued", free, queued)
			}
		}
	})
}
