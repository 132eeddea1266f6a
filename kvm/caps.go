package kvm

import (
	"fmt"
	"strings"
)

// Cap is a KVM capability number, as passed to KVM_CHECK_EXTENSION and
// KVM_ENABLE_CAP (KVM_CAP_* in include/uapi/linux/kvm.h).
type Cap uint32

// Capabilities a VMM commonly checks or enables.
const (
	CapIRQChip                Cap = 0
	CapHLT                    Cap = 1
	CapUserMemory             Cap = 3
	CapSetTSSAddr             Cap = 4
	CapExtCPUID               Cap = 7
	CapNrVCPUs                Cap = 9
	CapNrMemslots             Cap = 10
	CapMPState                Cap = 14
	CapCoalescedMMIO          Cap = 15
	CapSyncMMU                Cap = 16
	CapUserNMI                Cap = 22
	CapSetGuestDebug          Cap = 23
	CapIRQRouting             Cap = 25
	CapIRQFD                  Cap = 32
	CapPIT2                   Cap = 33
	CapPITState2              Cap = 35
	CapIOEventFD              Cap = 36
	CapSetIdentityMapAddr     Cap = 37
	CapAdjustClock            Cap = 39
	CapInternalErrorData      Cap = 40
	CapVCPUEvents             Cap = 41
	CapDebugRegs              Cap = 50
	CapEnableCap              Cap = 54
	CapXSave                  Cap = 55
	CapXCRS                   Cap = 56
	CapTSCControl             Cap = 60
	CapGetTSCKHz              Cap = 61
	CapMaxVCPUs               Cap = 66
	CapTSCDeadlineTimer       Cap = 72
	CapKVMClockCtrl           Cap = 76
	CapSignalMSI              Cap = 77
	CapReadonlyMem            Cap = 81
	CapEnableCapVM            Cap = 98
	CapIOEventFDNoLength      Cap = 100
	CapCheckExtensionVM       Cap = 105
	CapDisableQuirks          Cap = 116
	CapSplitIRQChip           Cap = 121
	CapIOEventFDAnyLength     Cap = 122
	CapMaxVCPUID              Cap = 128
	CapX2APICAPI              Cap = 129
	CapImmediateExit          Cap = 136
	CapX86DisableExits        Cap = 143
	CapGetMSRFeatures         Cap = 153
	CapNestedState            Cap = 157
	CapCoalescedPIO           Cap = 162
	CapExceptionPayload       Cap = 164
	CapManualDirtyLogProtect2 Cap = 168
	CapDirtyLogRing           Cap = 192
	CapSregs2                 Cap = 200
	CapExitOnEmulationFailure Cap = 204
	CapXSave2                 Cap = 208
	CapDisableQuirks2         Cap = 213
	CapVMTSCControl           Cap = 214
	CapSystemEventData        Cap = 215
	CapX86TripleFaultEvent    Cap = 218
	CapDirtyLogRingAcqRel     Cap = 223
)

var capNames = map[Cap]string{
	CapIRQChip:                "KVM_CAP_IRQCHIP",
	CapHLT:                    "KVM_CAP_HLT",
	CapUserMemory:             "KVM_CAP_USER_MEMORY",
	CapSetTSSAddr:             "KVM_CAP_SET_TSS_ADDR",
	CapExtCPUID:               "KVM_CAP_EXT_CPUID",
	CapNrVCPUs:                "KVM_CAP_NR_VCPUS",
	CapNrMemslots:             "KVM_CAP_NR_MEMSLOTS",
	CapMPState:                "KVM_CAP_MP_STATE",
	CapCoalescedMMIO:          "KVM_CAP_COALESCED_MMIO",
	CapSyncMMU:                "KVM_CAP_SYNC_MMU",
	CapUserNMI:                "KVM_CAP_USER_NMI",
	CapSetGuestDebug:          "KVM_CAP_SET_GUEST_DEBUG",
	CapIRQRouting:             "KVM_CAP_IRQ_ROUTING",
	CapIRQFD:                  "KVM_CAP_IRQFD",
	CapPIT2:                   "KVM_CAP_PIT2",
	CapPITState2:              "KVM_CAP_PIT_STATE2",
	CapIOEventFD:              "KVM_CAP_IOEVENTFD",
	CapSetIdentityMapAddr:     "KVM_CAP_SET_IDENTITY_MAP_ADDR",
	CapAdjustClock:            "KVM_CAP_ADJUST_CLOCK",
	CapInternalErrorData:      "KVM_CAP_INTERNAL_ERROR_DATA",
	CapVCPUEvents:             "KVM_CAP_VCPU_EVENTS",
	CapDebugRegs:              "KVM_CAP_DEBUGREGS",
	CapEnableCap:              "KVM_CAP_ENABLE_CAP",
	CapXSave:                  "KVM_CAP_XSAVE",
	CapXCRS:                   "KVM_CAP_XCRS",
	CapTSCControl:             "KVM_CAP_TSC_CONTROL",
	CapGetTSCKHz:              "KVM_CAP_GET_TSC_KHZ",
	CapMaxVCPUs:               "KVM_CAP_MAX_VCPUS",
	CapTSCDeadlineTimer:       "KVM_CAP_TSC_DEADLINE_TIMER",
	CapKVMClockCtrl:           "KVM_CAP_KVMCLOCK_CTRL",
	CapSignalMSI:              "KVM_CAP_SIGNAL_MSI",
	CapReadonlyMem:            "KVM_CAP_READONLY_MEM",
	CapEnableCapVM:            "KVM_CAP_ENABLE_CAP_VM",
	CapIOEventFDNoLength:      "KVM_CAP_IOEVENTFD_NO_LENGTH",
	CapCheckExtensionVM:       "KVM_CAP_CHECK_EXTENSION_VM",
	CapDisableQuirks:          "KVM_CAP_DISABLE_QUIRKS",
	CapSplitIRQChip:           "KVM_CAP_SPLIT_IRQCHIP",
	CapIOEventFDAnyLength:     "KVM_CAP_IOEVENTFD_ANY_LENGTH",
	CapMaxVCPUID:              "KVM_CAP_MAX_VCPU_ID",
	CapX2APICAPI:              "KVM_CAP_X2APIC_API",
	CapImmediateExit:          "KVM_CAP_IMMEDIATE_EXIT",
	CapX86DisableExits:        "KVM_CAP_X86_DISABLE_EXITS",
	CapGetMSRFeatures:         "KVM_CAP_GET_MSR_FEATURES",
	CapNestedState:            "KVM_CAP_NESTED_STATE",
	CapCoalescedPIO:           "KVM_CAP_COALESCED_PIO",
	CapExceptionPayload:       "KVM_CAP_EXCEPTION_PAYLOAD",
	CapManualDirtyLogProtect2: "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2",
	CapDirtyLogRing:           "KVM_CAP_DIRTY_LOG_RING",
	CapSregs2:                 "KVM_CAP_SREGS2",
	CapExitOnEmulationFailure: "KVM_CAP_EXIT_ON_EMULATION_FAILURE",
	CapXSave2:                 "KVM_CAP_XSAVE2",
	CapDisableQuirks2:         "KVM_CAP_DISABLE_QUIRKS2",
	CapVMTSCControl:           "KVM_CAP_VM_TSC_CONTROL",
	CapSystemEventData:        "KVM_CAP_SYSTEM_EVENT_DATA",
	CapX86TripleFaultEvent:    "KVM_CAP_X86_TRIPLE_FAULT_EVENT",
	CapDirtyLogRingAcqRel:     "KVM_CAP_DIRTY_LOG_RING_ACQ_REL",
}

// String returns the capability's name in the KVM API, or KVM_CAP(n) for a
// number this package has no name for.
func (c Cap) String() string {
	if name, ok := capNames[c]; ok {
		return name
	}
	return fmt.Sprintf("KVM_CAP(%d)", uint32(c))
}

// MissingCapsError reports the capabilities KVM_CHECK_EXTENSION answered
// with 0 (absent) for.
type MissingCapsError struct {
	Caps []Cap
}

func (e *MissingCapsError) Error() string {
	names := make([]string, len(e.Caps))
	for i, c := range e.Caps {
		names[i] = c.String()
	}
	return "host KVM lacks required capabilities: " + strings.Join(names, ", ")
}

// requireCaps checks every cap with check and names all that are absent in
// one *MissingCapsError, so a host's shortcomings are reported at once
// rather than one per attempt.
func requireCaps(check func(Cap) (int, error), caps []Cap) error {
	var missing []Cap
	for _, c := range caps {
		v, err := check(c)
		if err != nil {
			return fmt.Errorf("checking %s: %w", c, err)
		}
		if v <= 0 {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return &MissingCapsError{Caps: missing}
	}
	return nil
}
