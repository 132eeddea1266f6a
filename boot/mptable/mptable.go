package mptable

import (
	"encoding/binary"
	"fmt"

	"github.com/ternvm/tern/boot"
)

// Limit is the address the tables must end at or below: the start of the
// VGA hole, the top of the EBDA.
const Limit = 0xa0000

// Size returns the number of bytes Build writes for cpus processors.
func Size(cpus int) int {
	return floatingSize + headerSize + cpus*processorSize +
		otherSize*(1+1+isaIRQs+2) // bus, I/O APIC, ISA IRQs, LINT0 and LINT1
}

// Build returns the bytes to write at base (boot.MPTableAddr): the floating
// pointer structure, then the configuration table right after it.
//
// vCPU i has local APIC id i and vCPU 0 is the bootstrap processor. The
// I/O APIC has id cpus. ISA IRQ n goes to I/O APIC pin n for n in 0-15,
// IRQ 0 included: KVM's default GSI routing sends GSI 0 to pin 0, not to
// pin 2 as PC chipsets do. LINT0 is ExtINT and LINT1 NMI on every CPU.
func Build(cpus int, base uint64) ([]byte, error) {
	if cpus < 1 || cpus > boot.MaxVCPUs {
		return nil, fmt.Errorf("mptable: %d CPUs, want 1 to %d", cpus, boot.MaxVCPUs)
	}
	if base%16 != 0 {
		return nil, fmt.Errorf("mptable: base %#x is not 16-byte aligned", base)
	}
	size := Size(cpus)
	if base > Limit || uint64(size) > Limit-base {
		return nil, fmt.Errorf("mptable: %d bytes at %#x pass %#x", size, base, uint64(Limit))
	}
	out := make([]byte, size)
	putFloatingPointer(out[:floatingSize], uint32(base+floatingSize))
	putConfigTable(out[floatingSize:], cpus)
	return out, nil
}

func putFloatingPointer(fp []byte, table uint32) {
	copy(fp[fpSignature:], "_MP_")
	binary.LittleEndian.PutUint32(fp[fpPhysPointer:], table)
	fp[fpLength] = floatingSize / 16
	fp[fpSpecRev] = specRevision1_4
	fp[fpFeature1] = 0
	fp[fpFeature2] = 0
	fp[fpChecksum] = checksum(fp)
}

func putConfigTable(t []byte, cpus int) {
	copy(t[hdrSignature:], "PCMP")
	binary.LittleEndian.PutUint16(t[hdrBaseLength:], uint16(len(t)))
	t[hdrSpecRev] = specRevision1_4
	copy(t[hdrOEMID:hdrOEMID+oemIDSize], pad(OEMID, oemIDSize))
	copy(t[hdrProductID:hdrProductID+productIDSize], pad(ProductID, productIDSize))
	binary.LittleEndian.PutUint32(t[hdrLocalAPIC:], boot.LAPICAddr)

	e := t[headerSize:]
	count := 0
	for i := 0; i < cpus; i++ {
		flags := byte(cpuEnabled)
		if i == 0 {
			flags |= cpuBSP
		}
		e[0] = entryProcessor
		e[1] = byte(i) // local APIC id
		e[2] = localAPICVersion
		e[3] = flags
		binary.LittleEndian.PutUint32(e[4:], cpuSignature)
		binary.LittleEndian.PutUint32(e[8:], cpuFeatures)
		e = e[processorSize:]
		count++
	}

	e[0] = entryBus
	e[1] = isaBusID
	copy(e[2:8], isaBusType[:])
	e = e[otherSize:]
	count++

	ioapicID := byte(cpus)
	e[0] = entryIOAPIC
	e[1] = ioapicID
	e[2] = ioAPICVersion
	e[3] = ioAPICOn
	binary.LittleEndian.PutUint32(e[4:], boot.IOAPICAddr)
	e = e[otherSize:]
	count++

	for irq := 0; irq < isaIRQs; irq++ {
		putInterrupt(e, entryIOInterrupt, intTypeINT, byte(irq), ioapicID, byte(irq))
		e = e[otherSize:]
		count++
	}

	putInterrupt(e, entryLocalInterrupt, intTypeExtINT, 0, allLocalAPICs, 0)
	e = e[otherSize:]
	putInterrupt(e, entryLocalInterrupt, intTypeNMI, 0, allLocalAPICs, 1)
	count += 2

	binary.LittleEndian.PutUint16(t[hdrEntryCount:], uint16(count))
	t[hdrChecksum] = checksum(t)
}

// putInterrupt writes an I/O or local interrupt assignment entry from the
// ISA bus's line srcIRQ to input pin of the APIC with id dst.
func putInterrupt(e []byte, entryType, intType, srcIRQ, dst, pin byte) {
	e[0] = entryType
	e[1] = intType
	binary.LittleEndian.PutUint16(e[2:], intFlagsConforming)
	e[4] = isaBusID
	e[5] = srcIRQ
	e[6] = dst
	e[7] = pin
}

// pad returns s space-padded to n bytes, as the spec's id strings are.
func pad(s string, n int) []byte {
	b := []byte(s)
	for len(b) < n {
		b = append(b, ' ')
	}
	return b[:n]
}

// checksum returns the byte that makes b sum to zero once it is stored in
// b's (zero) checksum field.
func checksum(b []byte) byte {
	var sum byte
	for _, c := range b {
		sum += c
	}
	return -sum
}
