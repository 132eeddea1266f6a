package kvm

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
)

// fakeRun is a vCPU mapping of three pages, as KVM_GET_VCPU_MMAP_SIZE
// reports on x86 (kvm_run, the PIO data page, the coalesced MMIO ring).
// Offsets written below come from struct kvm_run in
// include/uapi/linux/kvm.h: exit_reason at 8, the exit union at 32.
func fakeRun(reason uint32) []byte {
	run := make([]byte, 3*4096)
	binary.LittleEndian.PutUint32(run[8:], reason)
	return run
}

func put16(b []byte, off int, v uint16) { binary.LittleEndian.PutUint16(b[off:], v) }
func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func put64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }

func decodeOK(t *testing.T, run []byte) Exit {
	t.Helper()
	exit, err := decodeExit(run)
	if err != nil {
		t.Fatalf("decodeExit: %v", err)
	}
	return exit
}

func TestDecodeIOOut(t *testing.T) {
	run := fakeRun(2) // KVM_EXIT_IO
	run[32] = 1       // io.direction = KVM_EXIT_IO_OUT
	run[33] = 1       // io.size
	put16(run, 34, 0x3f8)
	put32(run, 36, 1)
	put64(run, 40, 4096) // io.data_offset: the PIO page
	run[4096] = 'A'

	got, ok := decodeOK(t, run).(ExitIO)
	if !ok {
		t.Fatalf("decoded %T, want ExitIO", got)
	}
	if got.Port != 0x3f8 || got.Size != 1 || got.In || got.Count != 1 || !bytes.Equal(got.Data, []byte{'A'}) {
		t.Errorf("got %+v, want OUT of 'A' to port 0x3f8", got)
	}
	if got.Reason() != ExitReasonIO || got.Reason().String() != "KVM_EXIT_IO" {
		t.Errorf("Reason() = %v", got.Reason())
	}
}

func TestDecodeIOInFillsRunPageInPlace(t *testing.T) {
	run := fakeRun(2)
	run[32] = 0 // KVM_EXIT_IO_IN
	run[33] = 2 // word-sized
	put16(run, 34, 0x1f0)
	put32(run, 36, 3) // rep insw of three words
	put64(run, 40, 4096)

	got := decodeOK(t, run).(ExitIO)
	if !got.In || got.Size != 2 || got.Count != 3 || len(got.Data) != 6 {
		t.Fatalf("got %+v, want IN of 3 words (6 bytes)", got)
	}
	copy(got.Data, []byte{1, 2, 3, 4, 5, 6})
	if !bytes.Equal(run[4096:4102], []byte{1, 2, 3, 4, 5, 6}) {
		t.Errorf("handler's IN data did not land in the kvm_run mapping: % x", run[4096:4102])
	}
	if cap(got.Data) != len(got.Data) {
		t.Errorf("Data can be appended into the rest of the mapping (cap %d > len %d)", cap(got.Data), len(got.Data))
	}
}

func TestDecodeIORejectsDataOutsideMapping(t *testing.T) {
	run := fakeRun(2)
	run[33] = 4
	put32(run, 36, 2)
	put64(run, 40, uint64(len(run)-4)) // 8 bytes from 4 before the end
	if _, err := decodeExit(run); err == nil {
		t.Error("decodeExit accepted I/O data running past the mapping")
	}
	put64(run, 40, 1<<63)
	if _, err := decodeExit(run); err == nil {
		t.Error("decodeExit accepted an I/O data offset far outside the mapping")
	}
}

func TestDecodeMMIO(t *testing.T) {
	run := fakeRun(6) // KVM_EXIT_MMIO
	put64(run, 32, 0xd0000050)
	copy(run[40:], []byte{0xde, 0xad, 0xbe, 0xef})
	put32(run, 48, 4)
	run[52] = 1 // is_write

	got := decodeOK(t, run).(ExitMMIO)
	if got.Addr != 0xd0000050 || !got.Write || !bytes.Equal(got.Data, []byte{0xde, 0xad, 0xbe, 0xef}) {
		t.Errorf("got %+v, want 4-byte write of de ad be ef at 0xd0000050", got)
	}

	run[52] = 0
	put32(run, 48, 8)
	read := decodeOK(t, run).(ExitMMIO)
	if read.Write || len(read.Data) != 8 {
		t.Fatalf("got %+v, want 8-byte read", read)
	}
	copy(read.Data, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	if !bytes.Equal(run[40:48], []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Errorf("handler's read data did not land in kvm_run.mmio.data: % x", run[40:48])
	}

	put32(run, 48, 9)
	if _, err := decodeExit(run); err == nil {
		t.Error("decodeExit accepted an MMIO length beyond the 8-byte data field")
	}
}

func TestDecodeSystemEvent(t *testing.T) {
	run := fakeRun(24) // KVM_EXIT_SYSTEM_EVENT
	put32(run, 32, 2)  // KVM_SYSTEM_EVENT_RESET
	put32(run, 36, 2)  // ndata
	put64(run, 40, 0x5)
	put64(run, 48, 0x77)

	got := decodeOK(t, run).(ExitSystemEvent)
	want := ExitSystemEvent{Type: SystemEventReset, Flags: 0x5, Data: []uint64{0x5, 0x77}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}

	// Kernels without KVM_CAP_SYSTEM_EVENT_DATA leave ndata zero (it was
	// padding) and only set flags.
	put32(run, 32, 1) // SHUTDOWN
	put32(run, 36, 0)
	got = decodeOK(t, run).(ExitSystemEvent)
	if got.Type != SystemEventShutdown || got.Flags != 0x5 || len(got.Data) != 0 {
		t.Errorf("old-style event: got %+v", got)
	}

	put32(run, 36, 1000) // ndata beyond data[16] is capped
	if got := decodeOK(t, run).(ExitSystemEvent); len(got.Data) != 16 {
		t.Errorf("ndata 1000 gave %d words, want 16", len(got.Data))
	}
}

func TestDecodeInternalErrorEmulationWithInstructionBytes(t *testing.T) {
	run := fakeRun(17) // KVM_EXIT_INTERNAL_ERROR
	put32(run, 32, 1)  // KVM_INTERNAL_ERROR_EMULATION
	put32(run, 36, 4)  // ndata: flags, 16 bytes of instruction, one debug word
	put64(run, 40, 1)  // KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES
	run[48] = 3        // insn_size
	copy(run[49:], []byte{0x0f, 0x0b, 0x90})
	put64(run, 64, 0xabc)

	got, ok := decodeOK(t, run).(ExitInternalError)
	if !ok {
		t.Fatalf("decoded %T, want ExitInternalError", got)
	}
	if got.Suberror != InternalErrorEmulation || len(got.Data) != 4 || got.Data[3] != 0xabc {
		t.Errorf("got %+v", got)
	}
	insn, ok := got.InstructionBytes()
	if !ok || !bytes.Equal(insn, []byte{0x0f, 0x0b, 0x90}) {
		t.Errorf("InstructionBytes() = % x, %v; want 0f 0b 90, true", insn, ok)
	}
	msg := got.Error()
	for _, want := range []string{"KVM_INTERNAL_ERROR_EMULATION", "0f 0b 90"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q, want it to contain %q", msg, want)
		}
	}
}

func TestInternalErrorWithoutInstructionBytes(t *testing.T) {
	run := fakeRun(17)
	put32(run, 32, 1) // emulation failure from a kernel without the flag
	got := decodeOK(t, run).(ExitInternalError)
	if insn, ok := got.InstructionBytes(); ok {
		t.Errorf("InstructionBytes() = % x, true; want none", insn)
	}

	put32(run, 32, 3) // KVM_INTERNAL_ERROR_DELIVERY_EV
	put32(run, 36, 1)
	put64(run, 40, 1) // looks like the flag, but means nothing for this suberror
	got = decodeOK(t, run).(ExitInternalError)
	if _, ok := got.InstructionBytes(); ok {
		t.Error("InstructionBytes() reported bytes for a non-emulation suberror")
	}
	if !strings.Contains(got.String(), "KVM_INTERNAL_ERROR_DELIVERY_EV") {
		t.Errorf("String() = %q, want the suberror named", got.String())
	}
}

func TestDecodeFailEntry(t *testing.T) {
	run := fakeRun(9) // KVM_EXIT_FAIL_ENTRY
	put64(run, 32, 0x80000021)
	put32(run, 40, 3)
	got := decodeOK(t, run)
	want := ExitFailEntry{HardwareEntryFailureReason: 0x80000021, CPU: 3}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestDecodeDebug(t *testing.T) {
	run := fakeRun(4) // KVM_EXIT_DEBUG
	put32(run, 32, 1) // #DB
	put64(run, 40, 0xffffffff81000000)
	put64(run, 48, 0xffff0ff1)
	put64(run, 56, 0x401)
	want := ExitDebug{Exception: 1, PC: 0xffffffff81000000, DR6: 0xffff0ff1, DR7: 0x401}
	if got := decodeOK(t, run); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestDecodeSimpleExits(t *testing.T) {
	tests := []struct {
		reason uint32
		want   Exit
	}{
		{5, ExitHLT{}},
		{8, ExitShutdown{}},
		{10, ExitInterrupted{}},
		{7, ExitUnknown{Code: 7}},   // KVM_EXIT_IRQ_WINDOW_OPEN, not decoded
		{99, ExitUnknown{Code: 99}}, // newer than this package
	}
	for _, tt := range tests {
		if got := decodeOK(t, fakeRun(tt.reason)); got != tt.want {
			t.Errorf("reason %d decoded as %#v, want %#v", tt.reason, got, tt.want)
		}
	}

	run := fakeRun(26) // KVM_EXIT_IOAPIC_EOI
	run[32] = 0x31
	if got := decodeOK(t, run); got != (ExitIOAPICEOI{Vector: 0x31}) {
		t.Errorf("IOAPIC EOI decoded as %#v", got)
	}

	run = fakeRun(0) // KVM_EXIT_UNKNOWN carries hw.hardware_exit_reason
	put64(run, 32, 0x30)
	if got := decodeOK(t, run); got != (ExitUnknown{Code: 0, HardwareExitReason: 0x30}) {
		t.Errorf("KVM_EXIT_UNKNOWN decoded as %#v", got)
	}
}

func TestDecodeRejectsShortMapping(t *testing.T) {
	if _, err := decodeExit(make([]byte, 2351)); err == nil {
		t.Error("decodeExit accepted a mapping smaller than struct kvm_run (2352 bytes)")
	}
}

func TestExitReasonString(t *testing.T) {
	tests := map[ExitReason]string{
		0:   "KVM_EXIT_UNKNOWN",
		2:   "KVM_EXIT_IO",
		6:   "KVM_EXIT_MMIO",
		17:  "KVM_EXIT_INTERNAL_ERROR",
		24:  "KVM_EXIT_SYSTEM_EVENT",
		37:  "KVM_EXIT_NOTIFY",
		200: "KVM_EXIT(200)",
	}
	for r, want := range tests {
		if got := r.String(); got != want {
			t.Errorf("ExitReason(%d).String() = %q, want %q", uint32(r), got, want)
		}
	}
}
