package kvm

import (
	"fmt"
	"strings"
)

// ExitReason is kvm_run.exit_reason (KVM_EXIT_*).
type ExitReason uint32

// Exit reasons from include/uapi/linux/kvm.h.
const (
	ExitReasonUnknown       ExitReason = 0
	ExitReasonException     ExitReason = 1
	ExitReasonIO            ExitReason = 2
	ExitReasonHypercall     ExitReason = 3
	ExitReasonDebug         ExitReason = 4
	ExitReasonHLT           ExitReason = 5
	ExitReasonMMIO          ExitReason = 6
	ExitReasonIRQWindowOpen ExitReason = 7
	ExitReasonShutdown      ExitReason = 8
	ExitReasonFailEntry     ExitReason = 9
	ExitReasonIntr          ExitReason = 10
	ExitReasonSetTPR        ExitReason = 11
	ExitReasonTPRAccess     ExitReason = 12
	ExitReasonNMI           ExitReason = 16
	ExitReasonInternalError ExitReason = 17
	ExitReasonSystemEvent   ExitReason = 24
	ExitReasonIOAPICEOI     ExitReason = 26
	ExitReasonHyperV        ExitReason = 27
	ExitReasonX86RDMSR      ExitReason = 29
	ExitReasonX86WRMSR      ExitReason = 30
	ExitReasonDirtyRingFull ExitReason = 31
	ExitReasonAPResetHold   ExitReason = 32
	ExitReasonX86BusLock    ExitReason = 33
	ExitReasonXen           ExitReason = 34
	ExitReasonNotify        ExitReason = 37
)

var exitReasonNames = [...]string{
	"KVM_EXIT_UNKNOWN", "KVM_EXIT_EXCEPTION", "KVM_EXIT_IO", "KVM_EXIT_HYPERCALL",
	"KVM_EXIT_DEBUG", "KVM_EXIT_HLT", "KVM_EXIT_MMIO", "KVM_EXIT_IRQ_WINDOW_OPEN",
	"KVM_EXIT_SHUTDOWN", "KVM_EXIT_FAIL_ENTRY", "KVM_EXIT_INTR", "KVM_EXIT_SET_TPR",
	"KVM_EXIT_TPR_ACCESS", "KVM_EXIT_S390_SIEIC", "KVM_EXIT_S390_RESET", "KVM_EXIT_DCR",
	"KVM_EXIT_NMI", "KVM_EXIT_INTERNAL_ERROR", "KVM_EXIT_OSI", "KVM_EXIT_PAPR_HCALL",
	"KVM_EXIT_S390_UCONTROL", "KVM_EXIT_WATCHDOG", "KVM_EXIT_S390_TSCH", "KVM_EXIT_EPR",
	"KVM_EXIT_SYSTEM_EVENT", "KVM_EXIT_S390_STSI", "KVM_EXIT_IOAPIC_EOI", "KVM_EXIT_HYPERV",
	"KVM_EXIT_ARM_NISV", "KVM_EXIT_X86_RDMSR", "KVM_EXIT_X86_WRMSR", "KVM_EXIT_DIRTY_RING_FULL",
	"KVM_EXIT_AP_RESET_HOLD", "KVM_EXIT_X86_BUS_LOCK", "KVM_EXIT_XEN", "KVM_EXIT_RISCV_SBI",
	"KVM_EXIT_RISCV_CSR", "KVM_EXIT_NOTIFY",
}

func (r ExitReason) String() string {
	if int(r) < len(exitReasonNames) {
		return exitReasonNames[r]
	}
	return fmt.Sprintf("KVM_EXIT(%d)", uint32(r))
}

// Exit is one decoded KVM_RUN exit; switch on its concrete type.
type Exit interface {
	Reason() ExitReason
}

// ExitIO is a port I/O access (KVM_EXIT_IO). Count > 1 for string
// instructions (rep ins/outs). Data aliases the vCPU's kvm_run mapping and
// holds Size*Count bytes: for Out it is what the guest wrote; for In the
// handler must fill it in place before the next Run. It is only valid
// until the next Run or Close.
type ExitIO struct {
	Port  uint16
	Size  uint8
	In    bool
	Count uint32
	Data  []byte
}

// ExitMMIO is a guest access to an address no memory slot covers
// (KVM_EXIT_MMIO). Data aliases kvm_run.mmio.data[:len]: for writes it is
// what the guest wrote; for reads the handler fills it in place before the
// next Run. It is only valid until the next Run or Close.
type ExitMMIO struct {
	Addr  uint64
	Write bool
	Data  []byte
}

// ExitHLT: the guest executed HLT and no in-kernel irqchip handles it
// (KVM_EXIT_HLT).
type ExitHLT struct{}

// ExitShutdown: the guest triple-faulted or otherwise shut the CPU down
// (KVM_EXIT_SHUTDOWN); on a PC this means reset.
type ExitShutdown struct{}

// KVM_EXIT_SYSTEM_EVENT types (KVM_SYSTEM_EVENT_*).
const (
	SystemEventShutdown = 1
	SystemEventReset    = 2
	SystemEventCrash    = 3
	SystemEventWakeup   = 4
	SystemEventSuspend  = 5
	SystemEventSEVTerm  = 6
)

// ExitSystemEvent is a platform event the kernel raised
// (KVM_EXIT_SYSTEM_EVENT): Type is a SystemEvent* constant. Flags is the
// old single flags word, which newer kernels overlay on Data[0]; Data
// holds the ndata words those kernels report (a copy, at most 16).
type ExitSystemEvent struct {
	Type  uint32
	Flags uint64
	Data  []uint64
}

// ExitFailEntry: VM entry failed (KVM_EXIT_FAIL_ENTRY).
// HardwareEntryFailureReason is the VMX exit qualification or SVM exit
// code; CPU is the host CPU it happened on.
type ExitFailEntry struct {
	HardwareEntryFailureReason uint64
	CPU                        uint32
}

// ExitDebug is a debug exception intercepted for the VMM
// (KVM_EXIT_DEBUG, mirrors struct kvm_debug_exit_arch).
type ExitDebug struct {
	Exception uint32
	PC        uint64
	DR6       uint64
	DR7       uint64
}

// ExitIOAPICEOI: the guest acknowledged a level-triggered interrupt of a
// user-space IOAPIC (KVM_EXIT_IOAPIC_EOI, split irqchip).
type ExitIOAPICEOI struct {
	Vector uint8
}

// ExitInterrupted: KVM_RUN returned early because of a signal or
// immediate_exit (EINTR), or with KVM_EXIT_INTR. The guest did not make
// progress worth handling; the run loop checks why it was kicked.
type ExitInterrupted struct{}

// ExitUnknown is any exit reason this package does not decode.
// HardwareExitReason is kvm_run.hw.hardware_exit_reason, meaningful only
// for Code 0 (KVM_EXIT_UNKNOWN).
type ExitUnknown struct {
	Code               uint32
	HardwareExitReason uint64
}

// KVM_EXIT_INTERNAL_ERROR suberrors (KVM_INTERNAL_ERROR_*).
const (
	InternalErrorEmulation            = 1
	InternalErrorSimulEx              = 2
	InternalErrorDeliveryEv           = 3
	InternalErrorUnexpectedExitReason = 4
)

// internalErrorEmulationFlagInstructionBytes is
// KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES: emulation_failure
// carries insn_size and insn_bytes.
const internalErrorEmulationFlagInstructionBytes = 1 << 0

var internalErrorNames = map[uint32]string{
	InternalErrorEmulation:            "KVM_INTERNAL_ERROR_EMULATION",
	InternalErrorSimulEx:              "KVM_INTERNAL_ERROR_SIMUL_EX",
	InternalErrorDeliveryEv:           "KVM_INTERNAL_ERROR_DELIVERY_EV",
	InternalErrorUnexpectedExitReason: "KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON",
}

// ExitInternalError: KVM hit a condition it cannot handle
// (KVM_EXIT_INTERNAL_ERROR). Data is a copy of the ndata words the kernel
// reported (kvm_run.internal.data, at most 16). It is also an error, so a
// run loop can return it as is.
type ExitInternalError struct {
	Suberror uint32
	Data     []uint64
}

// InstructionBytes returns the bytes of the instruction KVM failed to
// emulate, when the suberror is KVM_INTERNAL_ERROR_EMULATION and the
// kernel set KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES. In that
// layout data[0] is flags and data[1..2] hold insn_size followed by up to
// 15 insn_bytes.
func (e ExitInternalError) InstructionBytes() ([]byte, bool) {
	if e.Suberror != InternalErrorEmulation || len(e.Data) < 3 ||
		e.Data[0]&internalErrorEmulationFlagInstructionBytes == 0 {
		return nil, false
	}
	var raw [16]byte
	for i := range 8 {
		raw[i] = byte(e.Data[1] >> (8 * i))
		raw[8+i] = byte(e.Data[2] >> (8 * i))
	}
	n := min(int(raw[0]), emulationInsnMax)
	return append([]byte(nil), raw[1:1+n]...), true
}

// SuberrorName returns the KVM_INTERNAL_ERROR_* name of the suberror.
func (e ExitInternalError) SuberrorName() string {
	if name, ok := internalErrorNames[e.Suberror]; ok {
		return name
	}
	return fmt.Sprintf("KVM_INTERNAL_ERROR(%d)", e.Suberror)
}

func (e ExitInternalError) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "KVM internal error %s", e.SuberrorName())
	if insn, ok := e.InstructionBytes(); ok {
		b.WriteString(", instruction bytes:")
		for _, x := range insn {
			fmt.Fprintf(&b, " %02x", x)
		}
	}
	if len(e.Data) > 0 {
		b.WriteString(", data:")
		for _, d := range e.Data {
			fmt.Fprintf(&b, " %#x", d)
		}
	}
	return b.String()
}

func (e ExitInternalError) Error() string { return e.String() }

func (ExitIO) Reason() ExitReason            { return ExitReasonIO }
func (ExitMMIO) Reason() ExitReason          { return ExitReasonMMIO }
func (ExitHLT) Reason() ExitReason           { return ExitReasonHLT }
func (ExitShutdown) Reason() ExitReason      { return ExitReasonShutdown }
func (ExitSystemEvent) Reason() ExitReason   { return ExitReasonSystemEvent }
func (ExitFailEntry) Reason() ExitReason     { return ExitReasonFailEntry }
func (ExitDebug) Reason() ExitReason         { return ExitReasonDebug }
func (ExitIOAPICEOI) Reason() ExitReason     { return ExitReasonIOAPICEOI }
func (ExitInterrupted) Reason() ExitReason   { return ExitReasonIntr }
func (ExitInternalError) Reason() ExitReason { return ExitReasonInternalError }
func (e ExitUnknown) Reason() ExitReason     { return ExitReason(e.Code) }
