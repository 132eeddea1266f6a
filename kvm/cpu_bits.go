package kvm

// Control register, EFER, RFLAGS and XCR0 bits (Intel SDM vol. 3, ch. 2),
// for building Sregs and XCRs.
const (
	CR0PE = 1 << 0  // protected mode
	CR0MP = 1 << 1  // monitor coprocessor
	CR0EM = 1 << 2  // x87 emulation
	CR0TS = 1 << 3  // task switched
	CR0ET = 1 << 4  // extension type
	CR0NE = 1 << 5  // numeric error
	CR0WP = 1 << 16 // write protect
	CR0AM = 1 << 18 // alignment mask
	CR0NW = 1 << 29 // not write-through
	CR0CD = 1 << 30 // cache disable
	CR0PG = 1 << 31 // paging

	CR4VME        = 1 << 0
	CR4PVI        = 1 << 1
	CR4TSD        = 1 << 2
	CR4DE         = 1 << 3
	CR4PSE        = 1 << 4
	CR4PAE        = 1 << 5
	CR4MCE        = 1 << 6
	CR4PGE        = 1 << 7
	CR4PCE        = 1 << 8
	CR4OSFXSR     = 1 << 9
	CR4OSXMMEXCPT = 1 << 10
	CR4UMIP       = 1 << 11
	CR4LA57       = 1 << 12
	CR4VMXE       = 1 << 13
	CR4SMXE       = 1 << 14
	CR4FSGSBASE   = 1 << 16
	CR4PCIDE      = 1 << 17
	CR4OSXSAVE    = 1 << 18
	CR4SMEP       = 1 << 20
	CR4SMAP       = 1 << 21
	CR4PKE        = 1 << 22

	EFERSCE   = 1 << 0  // SYSCALL enable
	EFERLME   = 1 << 8  // long mode enable
	EFERLMA   = 1 << 10 // long mode active
	EFERNXE   = 1 << 11 // no-execute enable
	EFERSVME  = 1 << 12
	EFERFFXSR = 1 << 14

	// RFLAGSReserved1 is bit 1, which always reads as 1; a fresh RFLAGS
	// must contain it.
	RFLAGSReserved1 = 1 << 1
	RFLAGSIF        = 1 << 9

	XCR0X87 = 1 << 0
	XCR0SSE = 1 << 1
	XCR0AVX = 1 << 2
)
