package acpi

import (
	"encoding/binary"

	"github.com/ternvm/tern/boot"
)

// The Multiple APIC Description Table (ACPI 6.4 section 5.2.12).
const (
	madtLocalAPICAddr = 36
	madtFlags         = 40
	madtEntries       = 44

	madtTypeLocalAPIC    = 0
	madtTypeIOAPIC       = 1
	madtTypeLocalAPICNMI = 4

	madtLocalAPICSize    = 8
	madtIOAPICSize       = 12
	madtLocalAPICNMISize = 6

	localAPICEnabled = 1 << 0
	// allProcessors as an ACPI processor UID addresses every processor.
	allProcessors = 0xff
	// lint1 is the local APIC input wired to NMI on PC-compatible systems.
	lint1 = 1
	// mpsINTIConforming: polarity and trigger mode conform to the bus.
	mpsINTIConforming = 0
)

// buildMADT returns the MADT for cpus processors. Processor i has ACPI
// processor UID i and APIC id i; the I/O APIC takes id cpus so that it
// does not share an id with a local APIC.
//
// The PCAT_COMPAT flag stays clear: the VMM routes every interrupt through
// the I/O APIC, and Linux probes for an 8259 itself whatever the flag says.
//
// There are no Interrupt Source Overrides: ISA IRQ n reaches I/O APIC pin
// n edge-triggered and active high, which is what the OS assumes without
// an override and what KVM's default GSI routing does (it sends GSI 0 to
// pin 0, not pin 2 as PC chipsets do). A hardware-reduced platform has no
// SCI, so there is no SCI override either.
func buildMADT(cpus int) []byte {
	size := madtEntries + cpus*madtLocalAPICSize + madtIOAPICSize + madtLocalAPICNMISize
	t := newTable(sigMADT, size, madtRevision)
	binary.LittleEndian.PutUint32(t[madtLocalAPICAddr:], boot.LAPICAddr)
	binary.LittleEndian.PutUint32(t[madtFlags:], 0)

	e := t[madtEntries:]
	for i := 0; i < cpus; i++ {
		e[0] = madtTypeLocalAPIC
		e[1] = madtLocalAPICSize
		e[2] = byte(i) // ACPI processor UID
		e[3] = byte(i) // APIC id
		binary.LittleEndian.PutUint32(e[4:], localAPICEnabled)
		e = e[madtLocalAPICSize:]
	}

	e[0] = madtTypeIOAPIC
	e[1] = madtIOAPICSize
	e[2] = byte(cpus) // I/O APIC id
	binary.LittleEndian.PutUint32(e[4:], boot.IOAPICAddr)
	binary.LittleEndian.PutUint32(e[8:], 0) // global system interrupt base
	e = e[madtIOAPICSize:]

	e[0] = madtTypeLocalAPICNMI
	e[1] = madtLocalAPICNMISize
	e[2] = allProcessors
	binary.LittleEndian.PutUint16(e[3:], mpsINTIConforming)
	e[5] = lint1

	sealTable(t)
	return t
}
