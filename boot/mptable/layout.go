package mptable

// The MP floating pointer structure (MP spec 1.4 section 4.1).
const (
	floatingSize = 16

	fpSignature   = 0
	fpPhysPointer = 4
	fpLength      = 8 // in 16-byte paragraphs
	fpSpecRev     = 9
	fpChecksum    = 10
	fpFeature1    = 11 // 0: a configuration table is present
	fpFeature2    = 12 // bit 7 clear: virtual wire mode, no IMCR
)

// The MP configuration table header (MP spec 1.4 section 4.2).
const (
	headerSize = 44

	hdrSignature    = 0
	hdrBaseLength   = 4
	hdrSpecRev      = 6
	hdrChecksum     = 7
	hdrOEMID        = 8
	hdrProductID    = 16
	hdrEntryCount   = 34
	hdrLocalAPIC    = 36
	oemIDSize       = 8
	productIDSize   = 12
	specRevision1_4 = 4
)

// Configuration table entries (MP spec 1.4 section 4.3), in the order the
// spec requires: processors, buses, I/O APICs, I/O interrupts, local
// interrupts.
const (
	entryProcessor      = 0
	entryBus            = 1
	entryIOAPIC         = 2
	entryIOInterrupt    = 3
	entryLocalInterrupt = 4

	processorSize = 20
	otherSize     = 8
)

// Interrupt types of I/O and local interrupt entries (MP spec table 4-8).
const (
	intTypeINT    = 0
	intTypeNMI    = 1
	intTypeExtINT = 3
	// intFlagsConforming: polarity and trigger conform to the bus (ISA:
	// active high, edge-triggered).
	intFlagsConforming = 0
	// allLocalAPICs as a destination APIC id means every processor.
	allLocalAPICs = 0xff
)

// Identification and processor description.
const (
	// OEMID and ProductID name the tables.
	OEMID     = "TERNVM"
	ProductID = "TERN MICROVM"

	// localAPICVersion is that of an integrated xAPIC, what KVM's local
	// APIC reports in its version register.
	localAPICVersion = 0x14
	// ioAPICVersion is that of an 82093AA-style I/O APIC (KVM reports it).
	ioAPICVersion = 0x11
	// cpuSignature is family 6, model 0, stepping 0 in CPUID(1).EAX format.
	cpuSignature = 6 << 8
	// cpuFeatures are CPUID(1).EDX bits FPU (0) and APIC (9).
	cpuFeatures = 1<<0 | 1<<9

	cpuEnabled = 1 << 0
	cpuBSP     = 1 << 1
	ioAPICOn   = 1 << 0

	isaBusID = 0
	isaIRQs  = 16
)

// isaBusType is the six-character, space-padded bus type string.
var isaBusType = [6]byte{'I', 'S', 'A', ' ', ' ', ' '}
