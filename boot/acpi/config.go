package acpi

import (
	"fmt"

	"github.com/ternvm/tern/boot"
)

// VirtioDevice is one virtio-mmio transport: its register window and the
// GSI (I/O APIC pin) it raises, edge-triggered and active high.
type VirtioDevice struct {
	Addr, Size uint64
	IRQ        uint32
}

// Config describes the machine the tables advertise.
type Config struct {
	// CPUs is the number of vCPUs, 1 to boot.MaxVCPUs; vCPU i has APIC id i.
	CPUs int
	// VirtioDevices become DSDT devices VR00, VR01, ... in this order.
	VirtioDevices []VirtioDevice
	// WithSerial adds a COM1 device at boot.PortCOM1, IRQ boot.IRQCOM1.
	WithSerial bool
	// WithRTC adds the CMOS RTC at boot.PortRTC (PNP0B00), without an
	// interrupt.
	WithRTC bool
	// WithI8042 adds the PS/2 keyboard controller (PNP0303) at ports
	// 0x60 and 0x64 with IRQ boot.IRQKeyboard.
	WithI8042 bool
}

// IOAPICPins is the number of pins of KVM's in-kernel I/O APIC
// (KVM_IOAPIC_NUM_PINS); GSIs at or above it cannot be raised.
const IOAPICPins = 24

// maxVirtioDevices is what the two hex digits of a VRxx name count.
const maxVirtioDevices = 256

// reservedIRQs are the legacy lines a virtio device must not take: the
// PIT's IRQ 0, the 8259 cascade IRQ 2 and the RTC's IRQ 8, which Linux's
// rtc_cmos driver requests without sharing.
var reservedIRQs = map[uint32]string{0: "the PIT timer", 2: "the 8259 cascade", 8: "the CMOS RTC"}

func (c Config) validate() error {
	if c.CPUs < 1 || c.CPUs > boot.MaxVCPUs {
		return fmt.Errorf("acpi: %d CPUs, want 1 to %d", c.CPUs, boot.MaxVCPUs)
	}
	if len(c.VirtioDevices) > maxVirtioDevices {
		return fmt.Errorf("acpi: %d virtio devices, at most %d fit", len(c.VirtioDevices), maxVirtioDevices)
	}
	irqOwner := map[uint32]string{}
	if c.WithSerial {
		irqOwner[boot.IRQCOM1] = "COM1"
	}
	if c.WithI8042 {
		irqOwner[boot.IRQKeyboard] = "the i8042 keyboard"
	}
	for i, d := range c.VirtioDevices {
		name := fmt.Sprintf("virtio device %d", i)
		if d.Size == 0 || d.Addr+d.Size < d.Addr || d.Addr+d.Size > 1<<32 {
			return fmt.Errorf("acpi: %s window %#x+%#x is empty or not below 4 GiB", name, d.Addr, d.Size)
		}
		for j, o := range c.VirtioDevices[:i] {
			if d.Addr < o.Addr+o.Size && o.Addr < d.Addr+d.Size {
				return fmt.Errorf("acpi: %s window %#x+%#x overlaps virtio device %d", name, d.Addr, d.Size, j)
			}
		}
		if d.IRQ >= IOAPICPins {
			return fmt.Errorf("acpi: %s IRQ %d, the I/O APIC has pins 0 to %d", name, d.IRQ, IOAPICPins-1)
		}
		if what, ok := reservedIRQs[d.IRQ]; ok {
			return fmt.Errorf("acpi: %s IRQ %d belongs to %s", name, d.IRQ, what)
		}
		if owner, ok := irqOwner[d.IRQ]; ok {
			return fmt.Errorf("acpi: %s IRQ %d already used by %s", name, d.IRQ, owner)
		}
		irqOwner[d.IRQ] = name
	}
	return nil
}
