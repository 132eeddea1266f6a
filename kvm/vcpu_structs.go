package kvm

// The mirrors below are handed to the kernel as they are, so their field
// order, sizes and padding must match the C structs byte for byte
// (arch/x86/include/uapi/asm/kvm.h); layout_unsafe_test.go checks them.

// Regs mirrors struct kvm_regs (KVM_GET_REGS / KVM_SET_REGS).
type Regs struct {
	RAX, RBX, RCX, RDX uint64
	RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11   uint64
	R12, R13, R14, R15 uint64
	RIP, RFLAGS        uint64
}

// Segment mirrors struct kvm_segment: a segment register's hidden part as
// the CPU caches it, with the descriptor attributes unpacked into bytes.
type Segment struct {
	Base     uint64
	Limit    uint32
	Selector uint16
	Type     uint8
	Present  uint8
	DPL      uint8
	DB       uint8
	S        uint8
	L        uint8
	G        uint8
	AVL      uint8
	Unusable uint8
	Padding  uint8
}

// DTable mirrors struct kvm_dtable, a GDTR or IDTR.
type DTable struct {
	Base    uint64
	Limit   uint16
	Padding [3]uint16
}

// Sregs mirrors struct kvm_sregs (KVM_GET_SREGS / KVM_SET_SREGS).
// InterruptBitmap has one bit per vector (KVM_NR_INTERRUPTS = 256) and
// marks an interrupt pending injection.
type Sregs struct {
	CS, DS, ES, FS, GS, SS Segment
	TR, LDT                Segment
	GDT, IDT               DTable
	CR0, CR2, CR3, CR4     uint64
	CR8                    uint64
	EFER                   uint64
	APICBase               uint64
	InterruptBitmap        [4]uint64
}

// FPU mirrors struct kvm_fpu, the legacy FXSAVE-style view of the x87 and
// SSE state (KVM_GET_FPU / KVM_SET_FPU).
type FPU struct {
	FPR        [8][16]uint8
	FCW        uint16
	FSW        uint16
	FTWX       uint8 // abridged tag word, as FXSAVE stores it
	Pad1       uint8
	LastOpcode uint16
	LastIP     uint64
	LastDP     uint64
	XMM        [16][16]uint8
	MXCSR      uint32
	Pad2       uint32
}

// XSave mirrors struct kvm_xsave without its flexible tail: the 4096-byte
// XSAVE area, laid out as CPUID leaf 0xD describes on the host. Guests
// given dynamically enabled features (AMX) need KVM_GET_XSAVE2 with a
// larger buffer, which this type does not cover.
type XSave struct {
	Region [1024]uint32
}

// XCR mirrors struct kvm_xcr.
type XCR struct {
	XCR      uint32
	Reserved uint32
	Value    uint64
}

// MaxXCRs is KVM_MAX_XCRS, the capacity of XCRs.XCRs.
const MaxXCRs = 16

// XCRs mirrors struct kvm_xcrs (KVM_GET_XCRS / KVM_SET_XCRS); only the
// first NrXCRs entries are meaningful.
type XCRs struct {
	NrXCRs  uint32
	Flags   uint32
	XCRs    [MaxXCRs]XCR
	Padding [16]uint64
}

// DebugRegs mirrors struct kvm_debugregs (KVM_GET_DEBUGREGS /
// KVM_SET_DEBUGREGS).
type DebugRegs struct {
	DB       [4]uint64
	DR6      uint64
	DR7      uint64
	Flags    uint64
	Reserved [9]uint64
}

// VCPUEvents mirrors struct kvm_vcpu_events. The C struct groups fields
// into small sub-structs (exception, interrupt, nmi, smi, triple_fault);
// they are flattened here with the group as a name prefix, which keeps the
// layout because every group is byte-aligned except exception, whose
// uint32 already sits 4-aligned.
type VCPUEvents struct {
	ExceptionInjected     uint8
	ExceptionNr           uint8
	ExceptionHasErrorCode uint8
	ExceptionPending      uint8
	ExceptionErrorCode    uint32

	InterruptInjected uint8
	InterruptNr       uint8
	InterruptSoft     uint8
	InterruptShadow   uint8

	NMIInjected uint8
	NMIPending  uint8
	NMIMasked   uint8
	NMIPad      uint8

	SIPIVector uint32
	Flags      uint32 // VCPUEventValid* bits: which optional fields SET applies

	SMISMM             uint8
	SMIPending         uint8
	SMIInsideNMI       uint8
	SMILatchedInit     uint8
	TripleFaultPending uint8

	Reserved            [26]uint8
	ExceptionHasPayload uint8
	ExceptionPayload    uint64
}

// VCPUEvents.Flags bits (KVM_VCPUEVENT_VALID_*).
const (
	VCPUEventValidNMIPending  = 0x01
	VCPUEventValidSIPIVector  = 0x02
	VCPUEventValidShadow      = 0x04
	VCPUEventValidSMM         = 0x08
	VCPUEventValidPayload     = 0x10
	VCPUEventValidTripleFault = 0x20
)

// MPState mirrors struct kvm_mp_state: the vCPU's multiprocessing state.
type MPState struct {
	State uint32
}

// MPState.State values (KVM_MP_STATE_*) that apply to x86.
const (
	MPStateRunnable      = 0
	MPStateUninitialized = 1
	MPStateInitReceived  = 2
	MPStateHalted        = 3
	MPStateSIPIReceived  = 4
	MPStateAPResetHold   = 9
)

// MSREntry mirrors struct kvm_msr_entry.
type MSREntry struct {
	Index    uint32
	Reserved uint32
	Data     uint64
}

// CPUIDEntry2 mirrors struct kvm_cpuid_entry2: one CPUID leaf (Function)
// and subleaf (Index) with the register values the guest reads.
type CPUIDEntry2 struct {
	Function uint32
	Index    uint32
	Flags    uint32 // CPUIDFlag* bits
	EAX      uint32
	EBX      uint32
	ECX      uint32
	EDX      uint32
	Padding  [3]uint32
}

// CPUIDEntry2.Flags bits (KVM_CPUID_FLAG_*).
const (
	// CPUIDFlagSignificantIndex: the entry applies only to this Index
	// (subleaf); without it Index is ignored on lookup.
	CPUIDFlagSignificantIndex = 1 << 0
	CPUIDFlagStatefulFunc     = 1 << 1
	CPUIDFlagStateReadNext    = 1 << 2
)
