package boot

import (
	"bytes"
	"testing"
)

func TestResetVectorPulsesTheI8042ResetLine(t *testing.T) {
	mem := newFakeMem(1 << 20)
	if err := WriteResetVector(mem); err != nil {
		t.Fatal(err)
	}
	// Hand-assembled: mov al,0xfe; out 0x64,al; hlt; jmp short -3 (to hlt).
	want := []byte{0xb0, 0xfe, 0xe6, 0x64, 0xf4, 0xeb, 0xfd}
	got := make([]byte, len(want))
	if _, err := mem.ReadAt(got, 0xffff0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("reset vector = % x, want % x", got, want)
	}
	if ResetVectorAddr+len(want) > 0x100000 {
		t.Errorf("reset stub runs past the 1 MiB boundary")
	}
}
