package kvm

import (
	"encoding/binary"
	"fmt"
)

// LAPICState mirrors struct kvm_lapic_state: the local APIC's 1 KiB
// register page as the xAPIC MMIO layout, each register a little-endian
// 32-bit value at a 16-byte aligned offset.
type LAPICState struct {
	Regs [1024]byte
}

// Local APIC register offsets (Intel SDM vol. 3, "Local APIC Register
// Address Map").
const (
	LAPICRegID       = 0x20
	LAPICRegVersion  = 0x30
	LAPICRegTPR      = 0x80
	LAPICRegLDR      = 0xd0
	LAPICRegDFR      = 0xe0
	LAPICRegSVR      = 0xf0
	LAPICRegICRLow   = 0x300
	LAPICRegICRHigh  = 0x310
	LAPICRegLVTTmr   = 0x320
	LAPICRegLVTLINT0 = 0x350
	LAPICRegLVTLINT1 = 0x360
	LAPICRegLVTErr   = 0x370
)

// LVT delivery modes (bits 8-10 of an LVT entry).
const (
	LVTDeliveryFixed  = 0x0
	LVTDeliverySMI    = 0x2
	LVTDeliveryNMI    = 0x4
	LVTDeliveryINIT   = 0x5
	LVTDeliveryExtINT = 0x7
)

func lapicRegCheck(offset uint32) error {
	if offset%4 != 0 || offset > uint32(len(LAPICState{}.Regs))-4 {
		return fmt.Errorf("local APIC register offset %#x is not an aligned offset inside the 1 KiB page", offset)
	}
	return nil
}

// Reg returns the 32-bit register at offset, or 0 for an offset that is
// not a 4-byte aligned place in the page (no register lives there).
func (s *LAPICState) Reg(offset uint32) uint32 {
	if lapicRegCheck(offset) != nil {
		return 0
	}
	return binary.LittleEndian.Uint32(s.Regs[offset:])
}

// SetReg stores value in the 32-bit register at offset; a misaligned or
// out-of-page offset is an error and changes nothing.
func (s *LAPICState) SetReg(offset uint32, value uint32) error {
	if err := lapicRegCheck(offset); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(s.Regs[offset:], value)
	return nil
}

// LVTWithDeliveryMode returns LVT entry lvt with its delivery mode
// replaced by mode (an LVTDelivery* value). A PC-compatible BSP wants
// LINT0 as ExtINT (the 8259 PIC) and LINT1 as NMI.
func LVTWithDeliveryMode(lvt uint32, mode uint32) uint32 {
	return lvt&^(0x7<<8) | (mode&0x7)<<8
}
