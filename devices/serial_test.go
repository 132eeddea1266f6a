package devices_test

import (
	"bytes"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/ternvm/tern/devices"
)

// 16550A register offsets and bits from the PC16550D datasheet.
const (
	regTHR = 0 // write, DLAB=0
	regRBR = 0 // read, DLAB=0
	regDLL = 0 // DLAB=1
	regIER = 1 // DLAB=0
	regDLM = 1 // DLAB=1
	regIIR = 2 // read
	regFCR = 2 // write
	regLCR = 3
	regMCR = 4
	regLSR = 5
	regMSR = 6
	regSCR = 7

	ierERBFI = 0x01
	ierETBEI = 0x02
	ierELSI  = 0x04
	ierEDSSI = 0x08

	iirNone  = 0x01
	iirMS    = 0x00
	iirTHRE  = 0x02
	iirRDA   = 0x04
	iirRLS   = 0x06
	iirFIFOs = 0xc0

	lcrDLAB = 0x80
	lcr8N1  = 0x03

	mcrDTR  = 0x01
	mcrRTS  = 0x02
	mcrOUT1 = 0x04
	mcrOUT2 = 0x08
	mcrLOOP = 0x10

	lsrDR   = 0x01
	lsrOE   = 0x02
	lsrTHRE = 0x20
	lsrTEMT = 0x40

	msrDDSR = 0x02
	msrTERI = 0x04
	msrDDCD = 0x08
	msrCTS  = 0x10
	msrDSR  = 0x20
	msrRI   = 0x40
	msrDCD  = 0x80
)

type countingTrigger struct {
	n   int
	err error
}

func (c *countingTrigger) Trigger() error { c.n++; return c.err }

func readReg(s *devices.Serial, off uint64) byte {
	var b [1]byte
	s.Read(off, b[:])
	return b[0]
}

func writeReg(s *devices.Serial, off uint64, v byte) { s.Write(off, []byte{v}) }

func newTestSerial() (*devices.Serial, *bytes.Buffer, *countingTrigger) {
	var out bytes.Buffer
	irq := &countingTrigger{}
	return devices.NewSerial(&out, irq), &out, irq
}

func TestSerialResetValues(t *testing.T) {
	s, _, irq := newTestSerial()
	for _, tc := range []struct {
		name string
		off  uint64
		want byte
	}{
		{"IER", regIER, 0x00},
		{"IIR", regIIR, iirNone},
		{"LCR", regLCR, 0x00},
		{"MCR", regMCR, 0x00},
		{"LSR", regLSR, lsrTHRE | lsrTEMT},
		{"MSR", regMSR, msrDCD | msrDSR | msrCTS},
	} {
		if got := readReg(s, tc.off); got != tc.want {
			t.Errorf("%s = %#02x, want %#02x", tc.name, got, tc.want)
		}
	}
	if irq.n != 0 {
		t.Errorf("reset state raised %d interrupts", irq.n)
	}
}

func TestSerialDivisorLatch(t *testing.T) {
	s, out, _ := newTestSerial()
	writeReg(s, regLCR, lcrDLAB|lcr8N1)
	writeReg(s, regDLL, 0x01) // 115200 baud
	writeReg(s, regDLM, 0x00)
	if got := readReg(s, regDLL); got != 0x01 {
		t.Errorf("DLL = %#02x, want 0x01", got)
	}
	if got := readReg(s, regDLM); got != 0x00 {
		t.Errorf("DLM = %#02x, want 0x00", got)
	}
	if out.Len() != 0 {
		t.Errorf("a divisor write was transmitted: %q", out.String())
	}
	writeReg(s, regDLM, 0x5a)
	writeReg(s, regLCR, lcr8N1)
	if got := readReg(s, regIER); got != 0 {
		t.Errorf("DLM write reached IER: IER = %#02x", got)
	}
	if got := readReg(s, regLCR); got != lcr8N1 {
		t.Errorf("LCR = %#02x, want %#02x", got, lcr8N1)
	}
	writeReg(s, regTHR, 'A')
	if out.String() != "A" {
		t.Errorf("output after clearing DLAB = %q, want %q", out.String(), "A")
	}
	writeReg(s, regLCR, lcrDLAB)
	if got := readReg(s, regDLM); got != 0x5a {
		t.Errorf("DLM lost across DLAB toggles: %#02x", got)
	}
}

func TestSerialOutput(t *testing.T) {
	s, out, _ := newTestSerial()
	for _, c := range []byte("hello\r\n") {
		writeReg(s, regTHR, c)
		if lsr := readReg(s, regLSR); lsr&(lsrTHRE|lsrTEMT) != lsrTHRE|lsrTEMT {
			t.Fatalf("LSR %#02x after a write: transmitter not empty", lsr)
		}
	}
	if out.String() != "hello\r\n" {
		t.Fatalf("output %q", out.String())
	}
}

func TestSerialMultiByteAccessHitsConsecutiveRegisters(t *testing.T) {
	s, _, _ := newTestSerial()
	s.Write(regLCR, []byte{lcr8N1, mcrDTR | mcrRTS}) // LCR then MCR
	got := make([]byte, 2)
	s.Read(regLCR, got)
	if got[0] != lcr8N1 || got[1] != mcrDTR|mcrRTS {
		t.Fatalf("LCR, MCR = %x, want %02x %02x", got, lcr8N1, mcrDTR|mcrRTS)
	}
}

func TestSerialInputAndLSR(t *testing.T) {
	s, _, _ := newTestSerial()
	if n, err := s.EnqueueInput([]byte("ok")); n != 2 || err != nil {
		t.Fatalf("EnqueueInput = %d, %v", n, err)
	}
	if lsr := readReg(s, regLSR); lsr != lsrDR|lsrTHRE|lsrTEMT {
		t.Fatalf("LSR with input = %#02x, want %#02x", lsr, lsrDR|lsrTHRE|lsrTEMT)
	}
	if c := readReg(s, regRBR); c != 'o' {
		t.Fatalf("first byte %q", c)
	}
	if c := readReg(s, regRBR); c != 'k' {
		t.Fatalf("second byte %q", c)
	}
	if lsr := readReg(s, regLSR); lsr != lsrTHRE|lsrTEMT {
		t.Fatalf("LSR after draining = %#02x", lsr)
	}
}

func TestSerialInputBound(t *testing.T) {
	const fifo = 64
	s, _, _ := newTestSerial()
	n, err := s.EnqueueInput(make([]byte, 100))
	if n != fifo || !errors.Is(err, devices.ErrInputFull) {
		t.Fatalf("EnqueueInput(100 bytes) = %d, %v; want %d, ErrInputFull", n, err, fifo)
	}
	if n, err := s.EnqueueInput([]byte{1}); n != 0 || !errors.Is(err, devices.ErrInputFull) {
		t.Fatalf("EnqueueInput on a full FIFO = %d, %v", n, err)
	}
	if free := s.InputFree(); free != 0 {
		t.Fatalf("InputFree = %d on a full FIFO", free)
	}
	readReg(s, regRBR)
	if n, err := s.EnqueueInput([]byte{1, 2}); n != 1 || !errors.Is(err, devices.ErrInputFull) {
		t.Fatalf("EnqueueInput with one free slot = %d, %v", n, err)
	}
	if got := len(s.State().Input); got != fifo {
		t.Fatalf("FIFO holds %d bytes, want %d", got, fifo)
	}
}

func TestSerialFCRClearsReceiveFIFO(t *testing.T) {
	s, _, _ := newTestSerial()
	writeReg(s, regFCR, 0x01)
	s.EnqueueInput([]byte("stale"))
	writeReg(s, regFCR, 0x01|0x02)
	if lsr := readReg(s, regLSR); lsr&lsrDR != 0 {
		t.Fatalf("LSR %#02x: data ready after FCR cleared the receive FIFO", lsr)
	}
}

func TestSerialInterrupts(t *testing.T) {
	t.Run("enabling THRE with THR empty raises it", func(t *testing.T) {
		s, _, irq := newTestSerial()
		writeReg(s, regIER, ierETBEI)
		if irq.n != 1 {
			t.Fatalf("%d interrupts, want 1", irq.n)
		}
		if iir := readReg(s, regIIR); iir != iirTHRE {
			t.Fatalf("IIR = %#02x, want %#02x", iir, iirTHRE)
		}
		if iir := readReg(s, regIIR); iir != iirNone {
			t.Fatalf("IIR after reading THRE = %#02x, want %#02x", iir, iirNone)
		}
		writeReg(s, regIER, ierETBEI) // already enabled: no new edge
		if irq.n != 1 {
			t.Fatalf("rewriting the same IER raised again (%d)", irq.n)
		}
	})
	t.Run("Linux THRE re-assert test", func(t *testing.T) {
		// serial8250_do_startup: IER=THRI, read IIR, IER=0, IER=THRI,
		// read IIR; a UART that does not re-assert gets UART_BUG_THRE.
		s, _, _ := newTestSerial()
		writeReg(s, regIER, ierETBEI)
		iir1 := readReg(s, regIIR)
		writeReg(s, regIER, 0)
		writeReg(s, regIER, ierETBEI)
		iir2 := readReg(s, regIIR)
		if iir1 != iirTHRE || iir2 != iirTHRE {
			t.Fatalf("IIR reads %#02x, %#02x; want %#02x twice", iir1, iir2, iirTHRE)
		}
	})
	t.Run("each transmit raises THRE", func(t *testing.T) {
		s, _, irq := newTestSerial()
		writeReg(s, regIER, ierETBEI)
		readReg(s, regIIR)
		writeReg(s, regTHR, 'a')
		writeReg(s, regTHR, 'b')
		if irq.n != 3 {
			t.Fatalf("%d interrupts, want 3 (enable + 2 writes)", irq.n)
		}
		if iir := readReg(s, regIIR); iir != iirTHRE {
			t.Fatalf("IIR = %#02x, want %#02x", iir, iirTHRE)
		}
	})
	t.Run("no THRE interrupt while disabled", func(t *testing.T) {
		s, _, irq := newTestSerial()
		writeReg(s, regTHR, 'a')
		if irq.n != 0 || readReg(s, regIIR) != iirNone {
			t.Fatalf("THR write with IER=0 raised an interrupt")
		}
	})
	t.Run("received data", func(t *testing.T) {
		s, _, irq := newTestSerial()
		writeReg(s, regIER, ierERBFI)
		if irq.n != 0 {
			t.Fatalf("enabling RDA with no data raised an interrupt")
		}
		s.EnqueueInput([]byte("x"))
		if irq.n != 1 {
			t.Fatalf("%d interrupts after input, want 1", irq.n)
		}
		if iir := readReg(s, regIIR); iir != iirRDA {
			t.Fatalf("IIR = %#02x, want %#02x", iir, iirRDA)
		}
		if iir := readReg(s, regIIR); iir != iirRDA {
			t.Fatalf("reading IIR cleared RDA: %#02x", iir)
		}
		readReg(s, regRBR)
		if iir := readReg(s, regIIR); iir != iirNone {
			t.Fatalf("IIR after reading the data = %#02x, want %#02x", iir, iirNone)
		}
	})
	t.Run("enabling RDA with data waiting raises it", func(t *testing.T) {
		s, _, irq := newTestSerial()
		s.EnqueueInput([]byte("x"))
		if irq.n != 0 {
			t.Fatal("input with RDA disabled raised an interrupt")
		}
		writeReg(s, regIER, ierERBFI)
		if irq.n != 1 {
			t.Fatalf("%d interrupts, want 1", irq.n)
		}
	})
	t.Run("RDA outranks THRE", func(t *testing.T) {
		s, _, _ := newTestSerial()
		writeReg(s, regIER, ierERBFI|ierETBEI)
		s.EnqueueInput([]byte("x"))
		if iir := readReg(s, regIIR); iir != iirRDA {
			t.Fatalf("IIR = %#02x, want %#02x", iir, iirRDA)
		}
		readReg(s, regRBR)
		// THRE was not the reported source, so it is still pending.
		if iir := readReg(s, regIIR); iir != iirTHRE {
			t.Fatalf("IIR = %#02x, want %#02x", iir, iirTHRE)
		}
	})
	t.Run("FIFO enabled bits", func(t *testing.T) {
		s, _, _ := newTestSerial()
		writeReg(s, regFCR, 0x01)
		if iir := readReg(s, regIIR); iir != iirFIFOs|iirNone {
			t.Fatalf("IIR = %#02x, want %#02x", iir, iirFIFOs|iirNone)
		}
		writeReg(s, regIER, ierETBEI)
		if iir := readReg(s, regIIR); iir != iirFIFOs|iirTHRE {
			t.Fatalf("IIR = %#02x, want %#02x", iir, iirFIFOs|iirTHRE)
		}
		writeReg(s, regIER, ierERBFI)
		s.EnqueueInput([]byte("x"))
		if iir := readReg(s, regIIR); iir != iirFIFOs|iirRDA {
			t.Fatalf("IIR = %#02x, want %#02x", iir, iirFIFOs|iirRDA)
		}
		writeReg(s, regFCR, 0x00)
		if iir := readReg(s, regIIR); iir&iirFIFOs != 0 {
			t.Fatalf("IIR = %#02x after disabling FIFOs", iir)
		}
	})
	t.Run("trigger errors are counted", func(t *testing.T) {
		var out bytes.Buffer
		irq := &countingTrigger{err: errors.New("eventfd closed")}
		s := devices.NewSerial(&out, irq)
		writeReg(s, regIER, ierETBEI)
		writeReg(s, regTHR, 'a')
		if got := s.TriggerErrors(); got != 2 {
			t.Fatalf("TriggerErrors = %d, want 2", got)
		}
		if out.String() != "a" {
			t.Fatalf("output %q", out.String())
		}
	})
}

func TestSerialIERUpperNibbleReadsZero(t *testing.T) {
	// Linux's autoconfig writes 0x0f and 0x00 to IER and checks the low
	// nibble; the Xscale test writes bit 6 and expects it to stay clear
	// on a 16550A.
	s, _, _ := newTestSerial()
	writeReg(s, regIER, 0xff)
	if ier := readReg(s, regIER); ier != 0x0f {
		t.Fatalf("IER = %#02x, want 0x0f", ier)
	}
}

func TestSerialScratch(t *testing.T) {
	s, _, _ := newTestSerial()
	writeReg(s, regSCR, 0xa5)
	if got := readReg(s, regSCR); got != 0xa5 {
		t.Fatalf("SCR = %#02x", got)
	}
}

func TestSerialLoopback(t *testing.T) {
	s, out, irq := newTestSerial()
	// The 8250 autoconfig probe: MCR = LOOP|OUT2|RTS, then MSR's status
	// bits must be DCD|CTS.
	writeReg(s, regMCR, mcrLOOP|mcrOUT2|mcrRTS)
	if msr := readReg(s, regMSR) & 0xf0; msr != msrDCD|msrCTS {
		t.Fatalf("MSR status in loopback = %#02x, want %#02x", msr, msrDCD|msrCTS)
	}
	writeReg(s, regIER, ierERBFI)
	writeReg(s, regTHR, 'x')
	if out.Len() != 0 {
		t.Fatalf("loopback byte reached the output: %q", out.String())
	}
	if irq.n != 1 {
		t.Fatalf("%d interrupts for a looped-back byte, want 1", irq.n)
	}
	if lsr := readReg(s, regLSR); lsr&lsrDR == 0 {
		t.Fatalf("LSR %#02x: looped-back byte not ready", lsr)
	}
	if c := readReg(s, regRBR); c != 'x' {
		t.Fatalf("read back %q, want 'x'", c)
	}
	writeReg(s, regMCR, 0)
	if msr := readReg(s, regMSR) & 0xf0; msr != msrDCD|msrDSR|msrCTS {
		t.Fatalf("MSR status after loopback = %#02x", msr)
	}
	writeReg(s, regTHR, 'y')
	if out.String() != "y" {
		t.Fatalf("output after leaving loopback = %q", out.String())
	}
}

func TestSerialLoopbackModemDeltas(t *testing.T) {
	s, _, irq := newTestSerial()
	writeReg(s, regMCR, mcrLOOP)
	readReg(s, regMSR) // discard the deltas of entering loopback
	writeReg(s, regIER, ierEDSSI)
	for _, step := range []struct {
		mcr      byte
		wantMSR  byte
		describe string
	}{
		{mcrLOOP | mcrOUT2, msrDCD | msrDDCD, "OUT2 drives DCD"},
		{mcrLOOP | mcrOUT1, msrRI | msrDDCD, "OUT1 drives RI, DCD drops"},
		{mcrLOOP, msrTERI, "RI trailing edge"},
		{mcrLOOP | mcrDTR, msrDSR | msrDDSR, "DTR drives DSR"},
	} {
		before := irq.n
		writeReg(s, regMCR, step.mcr)
		if irq.n != before+1 {
			t.Errorf("%s: no modem status interrupt", step.describe)
		}
		if iir := readReg(s, regIIR); iir != iirMS {
			t.Errorf("%s: IIR = %#02x, want %#02x", step.describe, iir, iirMS)
		}
		if msr := readReg(s, regMSR); msr != step.wantMSR {
			t.Errorf("%s: MSR = %#02x, want %#02x", step.describe, msr, step.wantMSR)
		}
		if iir := readReg(s, regIIR); iir != iirNone {
			t.Errorf("%s: IIR after reading MSR = %#02x", step.describe, iir)
		}
	}
}

func TestSerialLoopbackOverrun(t *testing.T) {
	s, _, irq := newTestSerial()
	writeReg(s, regMCR, mcrLOOP)
	writeReg(s, regIER, ierELSI)
	for i := 0; i < 64; i++ {
		writeReg(s, regTHR, byte(i))
	}
	if irq.n != 0 {
		t.Fatalf("line status interrupt before any overrun")
	}
	writeReg(s, regTHR, 0xff)
	if irq.n != 1 {
		t.Fatalf("%d interrupts after an overrun, want 1", irq.n)
	}
	if iir := readReg(s, regIIR); iir != iirRLS {
		t.Fatalf("IIR = %#02x, want %#02x", iir, iirRLS)
	}
	if lsr := readReg(s, regLSR); lsr&(lsrOE|lsrDR) != lsrOE|lsrDR {
		t.Fatalf("LSR = %#02x, want OE and DR", lsr)
	}
	if lsr := readReg(s, regLSR); lsr&lsrOE != 0 {
		t.Fatalf("reading LSR did not clear OE: %#02x", lsr)
	}
	if got := len(s.State().Input); got != 64 {
		t.Fatalf("FIFO holds %d bytes after overrun, want 64", got)
	}
}

type failingWriter struct{ calls int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.calls++
	return 0, errors.New("console gone")
}

func TestSerialOutputErrorsAreDroppedAndCounted(t *testing.T) {
	w := &failingWriter{}
	s := devices.NewSerial(w, nil)
	for _, c := range []byte("abc") {
		writeReg(s, regTHR, c)
	}
	if w.calls != 3 {
		t.Fatalf("writer called %d times, want 3 (no retries)", w.calls)
	}
	if got := s.OutputDropped(); got != 3 {
		t.Fatalf("OutputDropped = %d, want 3", got)
	}
	if lsr := readReg(s, regLSR); lsr&lsrTHRE == 0 {
		t.Fatalf("LSR %#02x: THR stuck full after write errors", lsr)
	}
}

func TestSerialStateRoundTrip(t *testing.T) {
	s, _, _ := newTestSerial()
	writeReg(s, regLCR, lcrDLAB)
	writeReg(s, regDLL, 0x01)
	writeReg(s, regDLM, 0x02)
	writeReg(s, regLCR, lcr8N1)
	writeReg(s, regFCR, 0x01)
	writeReg(s, regIER, ierERBFI|ierETBEI)
	writeReg(s, regMCR, mcrDTR|mcrRTS|mcrOUT2)
	writeReg(s, regSCR, 0x42)
	s.EnqueueInput([]byte("abc"))
	readReg(s, regRBR) // move the ring's head so the copy must reorder
	s.EnqueueInput([]byte("d"))

	st := s.State()
	restored, _, irq := newTestSerial()
	if err := restored.SetState(st); err != nil {
		t.Fatalf("SetState: %v", err)
	}
	if irq.n != 0 {
		t.Fatalf("SetState raised %d interrupts", irq.n)
	}
	if got := restored.State(); !reflect.DeepEqual(got, st) {
		t.Fatalf("state after round trip\n got %+v\nwant %+v", got, st)
	}
	if string(st.Input) != "bcd" {
		t.Fatalf("state input %q, want %q", st.Input, "bcd")
	}
	for _, tc := range []struct {
		name string
		off  uint64
		want byte
	}{
		{"IIR", regIIR, iirFIFOs | iirRDA},
		{"LCR", regLCR, lcr8N1},
		{"MCR", regMCR, mcrDTR | mcrRTS | mcrOUT2},
		{"SCR", regSCR, 0x42},
		{"RBR", regRBR, 'b'},
	} {
		if got := readReg(restored, tc.off); got != tc.want {
			t.Errorf("restored %s = %#02x, want %#02x", tc.name, got, tc.want)
		}
	}
	writeReg(restored, regLCR, lcrDLAB)
	if dll, dlm := readReg(restored, regDLL), readReg(restored, regDLM); dll != 0x01 || dlm != 0x02 {
		t.Errorf("restored divisor %#02x:%#02x, want 0x02:0x01", dlm, dll)
	}
}

func TestSerialSetStateRejectsImpossibleState(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   devices.SerialState
	}{
		{"input larger than the FIFO", devices.SerialState{Input: make([]byte, 65)}},
		{"IER upper bits", devices.SerialState{IER: 0x10}},
		{"MCR upper bits", devices.SerialState{MCR: 0x20}},
		{"MSR delta in status bits", devices.SerialState{MSRDelta: 0x10}},
	} {
		s, _, _ := newTestSerial()
		if err := s.SetState(tc.st); err == nil {
			t.Errorf("%s: SetState accepted it", tc.name)
		}
	}
}

func TestSerialConcurrentAccess(t *testing.T) {
	// Several vCPUs and the input pump at once; run with -race.
	var out bytes.Buffer
	s := devices.NewSerial(&out, &atomicTrigger{})
	writeReg(s, regIER, ierERBFI|ierETBEI)
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 500; i++ {
				writeReg(s, regTHR, 'x')
				readReg(s, regIIR)
				readReg(s, regLSR)
				readReg(s, regRBR)
				s.EnqueueInput([]byte("in"))
				_ = s.State()
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	if out.Len() != 4*500 {
		t.Fatalf("%d bytes of output, want %d", out.Len(), 4*500)
	}
}

type atomicTrigger struct{ n atomic.Int64 }

func (a *atomicTrigger) Trigger() error { a.n.Add(1); return nil }
