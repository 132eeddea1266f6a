package kvm

import (
	"encoding/binary"
	"testing"
)

func TestLAPICRegisterAccess(t *testing.T) {
	var s LAPICState
	// LVT LINT0 lives at 0x350 and LINT1 at 0x360 (Intel SDM vol. 3).
	if err := s.SetReg(LAPICRegLVTLINT0, 0x00010700); err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint32(s.Regs[0x350:]); got != 0x00010700 {
		t.Errorf("bytes at 0x350 = %#x", got)
	}
	binary.LittleEndian.PutUint32(s.Regs[0x360:], 0x400)
	if v := s.Reg(LAPICRegLVTLINT1); v != 0x400 {
		t.Errorf("Reg(LINT1) = %#x, want 0x400", v)
	}
	for i := range s.Regs {
		s.Regs[i] = 0xff
	}
	for _, off := range []uint32{0x3fd, 0x400, 0x351, 0xffffffff} {
		if v := s.Reg(off); v != 0 {
			t.Errorf("Reg(%#x) = %#x for a bad offset, want 0", off, v)
		}
		if err := s.SetReg(off, 1); err == nil {
			t.Errorf("SetReg(%#x) accepted a bad offset", off)
		}
	}
	if v := s.Reg(0x3fc); v != 0xffffffff {
		t.Errorf("Reg(0x3fc), the last word = %#x", v)
	}
}

func TestLVTWithDeliveryMode(t *testing.T) {
	// Masked LINT0 in fixed mode, vector 0x30 -> ExtINT keeps mask and vector.
	if got := LVTWithDeliveryMode(0x00010030, LVTDeliveryExtINT); got != 0x00010730 {
		t.Errorf("ExtINT: got %#x, want 0x10730", got)
	}
	if got := LVTWithDeliveryMode(0x00000730, LVTDeliveryNMI); got != 0x00000430 {
		t.Errorf("NMI: got %#x, want 0x430", got)
	}
}
