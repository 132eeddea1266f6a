package vmm

import (
	"encoding/json"
	"testing"

	"github.com/ternvm/tern/kvm"
)

func BenchmarkVCPUStateJSON(b *testing.B) {
	var st vcpuState
	var x kvm.XSave
	for i := range x.Region {
		x.Region[i] = uint32(i * 2654435761)
	}
	st.XSave = xsaveBytes(x)
	st.LAPIC = make([]byte, 1024)
	data, _ := json.Marshal(st)
	b.ReportMetric(float64(len(data)), "bytes")
	for b.Loop() {
		var out vcpuState
		if err := json.Unmarshal(data, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRegisterPagesKeepTheKernelLayout(t *testing.T) {
	var x kvm.XSave
	x.Region[0] = 0x037f        // FCW in the legacy area
	x.Region[6] = 0x1f80        // MXCSR at byte 24
	x.Region[1023] = 0xdeadbeef // the last word
	b := xsaveBytes(x)
	if len(b) != 4096 || b[0] != 0x7f || b[1] != 0x03 || b[24] != 0x80 || b[25] != 0x1f || b[4095] != 0xde {
		t.Fatalf("XSAVE bytes not little-endian in kernel order: % x ... % x", b[:28], b[4092:])
	}
	back, err := xsaveFromBytes(b)
	if err != nil || back != x {
		t.Errorf("XSAVE round trip: %v", err)
	}
	if _, err := xsaveFromBytes(b[:100]); err == nil {
		t.Error("a short XSAVE area was accepted")
	}
	c := kvm.IRQChip{ChipID: kvm.IRQChipIOAPIC}
	c.Chip[0], c.Chip[511] = 1, 2
	got, err := irqChipStateOf(c).kvm()
	if err != nil || got != c {
		t.Errorf("IRQ chip round trip: %+v, %v", got, err)
	}
	if _, err := (irqChipState{ChipID: 2, Chip: make([]byte, 7)}).kvm(); err == nil {
		t.Error("a short IRQ chip state was accepted")
	}
}
