package acpi

import (
	"fmt"

	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/boot/acpi/aml"
)

// SleepTypeS5 is the SLP_TYP value of \_S5_. On power-off the OS writes
// SLP_TYP<<2 | SLP_EN (bit 5) to SLEEP_CONTROL_REG, so the VMM powers off
// when it sees (value>>2)&7 == SleepTypeS5 with bit 5 set.
const SleepTypeS5 = 5

// virtioMMIOHID is the ACPI id Linux's virtio_mmio driver matches.
const virtioMMIOHID = "LNRO0005"

// buildDSDT returns the DSDT: \_S5_ and, under \_SB, COM1 and the
// virtio-mmio devices.
func buildDSDT(cfg Config) ([]byte, error) {
	var devices []aml.Object
	if cfg.WithSerial {
		devices = append(devices, com1Device())
	}
	if cfg.WithRTC {
		devices = append(devices, rtcDevice())
	}
	if cfg.WithI8042 {
		devices = append(devices, keyboardDevice())
	}
	for i, d := range cfg.VirtioDevices {
		devices = append(devices, virtioDevice(i, d))
	}
	// SLP_TYPa is SleepTypeS5; SLP_TYPb and the two reserved elements are
	// zero (a hardware-reduced OS uses only SLP_TYPa).
	s5 := aml.Name{Path: "_S5_", Value: aml.Package{aml.Integer(SleepTypeS5), aml.Integer(0), aml.Integer(0), aml.Integer(0)}}
	body, err := aml.Encode(s5, aml.Scope{Path: `\_SB_`, Body: devices})
	if err != nil {
		return nil, fmt.Errorf("acpi: DSDT: %w", err)
	}
	t := newTable(sigDSDT, headerSize+len(body), dsdtRevision)
	copy(t[headerSize:], body)
	sealTable(t)
	return t, nil
}

func virtioDevice(index int, d VirtioDevice) aml.Object {
	return aml.Device{
		Path: fmt.Sprintf("VR%02X", index),
		Body: []aml.Object{
			aml.Name{Path: "_HID", Value: aml.String(virtioMMIOHID)},
			aml.Name{Path: "_UID", Value: aml.Integer(index)},
			// DMA is cache-coherent.
			aml.Name{Path: "_CCA", Value: aml.Integer(1)},
			aml.Name{Path: "_CRS", Value: aml.ResourceTemplate{
				aml.Memory32Fixed{ReadWrite: true, Base: uint32(d.Addr), Length: uint32(d.Size)},
				// The VMM raises virtio-mmio interrupts as edges (irqfd).
				aml.Interrupt{Consumer: true, Edge: true, Numbers: []uint32{d.IRQ}},
			}},
		},
	}
}

func com1Device() aml.Object {
	return aml.Device{
		Path: "COM1",
		Body: []aml.Object{
			aml.Name{Path: "_HID", Value: aml.EISAID("PNP0501")},
			aml.Name{Path: "_UID", Value: aml.Integer(1)},
			aml.Name{Path: "_CRS", Value: aml.ResourceTemplate{
				aml.IO{Decode16: true, Min: boot.PortCOM1, Max: boot.PortCOM1, Alignment: 0, Length: 8},
				aml.IRQNoFlags{boot.IRQCOM1},
			}},
		},
	}
}

// rtcDevice describes the CMOS RTC. It has no interrupt resource because
// the VMM's RTC raises none (no alarm or update interrupts): without one,
// Linux's rtc_cmos binds and works without alarms, whereas its legacy
// platform device asks for IRQ 8, which a hardware-reduced platform without
// a PIC does not map, and fails to probe.
func rtcDevice() aml.Object {
	return aml.Device{
		Path: "RTC_",
		Body: []aml.Object{
			aml.Name{Path: "_HID", Value: aml.EISAID("PNP0B00")},
			aml.Name{Path: "_CRS", Value: aml.ResourceTemplate{
				aml.IO{Decode16: true, Min: boot.PortRTC, Max: boot.PortRTC, Alignment: 0, Length: 2},
			}},
		},
	}
}

// keyboardDevice describes the i8042 with its keyboard. Its interrupt is
// the reason it is here: a hardware-reduced platform has no PIC, so Linux
// numbers the interrupt of GSI 1 dynamically when a device's resources
// name it. The i8042 driver finds that number through this PNP0303
// device; probing the ports directly (i8042.nopnp) it asks for IRQ 1,
// which is not it, and its probe fails with EINVAL.
func keyboardDevice() aml.Object {
	return aml.Device{
		Path: "PS2K",
		Body: []aml.Object{
			aml.Name{Path: "_HID", Value: aml.EISAID("PNP0303")},
			aml.Name{Path: "_CRS", Value: aml.ResourceTemplate{
				aml.IO{Decode16: true, Min: boot.PortI8042Data, Max: boot.PortI8042Data, Alignment: 0, Length: 1},
				aml.IO{Decode16: true, Min: boot.PortI8042Command, Max: boot.PortI8042Command, Alignment: 0, Length: 1},
				aml.IRQNoFlags{boot.IRQKeyboard},
			}},
		},
	}
}
