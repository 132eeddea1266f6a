package kvm

import (
	"errors"
	"strings"
	"testing"
)

func TestCapNumbersAndNames(t *testing.T) {
	// Values and names from include/uapi/linux/kvm.h.
	tests := []struct {
		c    Cap
		num  uint32
		name string
	}{
		{CapIRQChip, 0, "KVM_CAP_IRQCHIP"},
		{CapHLT, 1, "KVM_CAP_HLT"},
		{CapUserMemory, 3, "KVM_CAP_USER_MEMORY"},
		{CapSetTSSAddr, 4, "KVM_CAP_SET_TSS_ADDR"},
		{CapExtCPUID, 7, "KVM_CAP_EXT_CPUID"},
		{CapNrVCPUs, 9, "KVM_CAP_NR_VCPUS"},
		{CapMPState, 14, "KVM_CAP_MP_STATE"},
		{CapSyncMMU, 16, "KVM_CAP_SYNC_MMU"},
		{CapIRQFD, 32, "KVM_CAP_IRQFD"},
		{CapPIT2, 33, "KVM_CAP_PIT2"},
		{CapPITState2, 35, "KVM_CAP_PIT_STATE2"},
		{CapIOEventFD, 36, "KVM_CAP_IOEVENTFD"},
		{CapSetIdentityMapAddr, 37, "KVM_CAP_SET_IDENTITY_MAP_ADDR"},
		{CapAdjustClock, 39, "KVM_CAP_ADJUST_CLOCK"},
		{CapVCPUEvents, 41, "KVM_CAP_VCPU_EVENTS"},
		{CapDebugRegs, 50, "KVM_CAP_DEBUGREGS"},
		{CapXSave, 55, "KVM_CAP_XSAVE"},
		{CapXCRS, 56, "KVM_CAP_XCRS"},
		{CapTSCControl, 60, "KVM_CAP_TSC_CONTROL"},
		{CapGetTSCKHz, 61, "KVM_CAP_GET_TSC_KHZ"},
		{CapMaxVCPUs, 66, "KVM_CAP_MAX_VCPUS"},
		{CapTSCDeadlineTimer, 72, "KVM_CAP_TSC_DEADLINE_TIMER"},
		{CapKVMClockCtrl, 76, "KVM_CAP_KVMCLOCK_CTRL"},
		{CapSplitIRQChip, 121, "KVM_CAP_SPLIT_IRQCHIP"},
		{CapX2APICAPI, 129, "KVM_CAP_X2APIC_API"},
		{CapImmediateExit, 136, "KVM_CAP_IMMEDIATE_EXIT"},
		{CapNestedState, 157, "KVM_CAP_NESTED_STATE"},
		{CapManualDirtyLogProtect2, 168, "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2"},
		{CapDirtyLogRing, 192, "KVM_CAP_DIRTY_LOG_RING"},
		{CapXSave2, 208, "KVM_CAP_XSAVE2"},
	}
	for _, tt := range tests {
		if uint32(tt.c) != tt.num {
			t.Errorf("%s = %d, want %d", tt.name, uint32(tt.c), tt.num)
		}
		if got := tt.c.String(); got != tt.name {
			t.Errorf("Cap(%d).String() = %q, want %q", tt.num, got, tt.name)
		}
	}
	if got := Cap(9999).String(); got != "KVM_CAP(9999)" {
		t.Errorf("unnamed cap String() = %q", got)
	}
}

func TestRequireCapsNamesEveryMissingCap(t *testing.T) {
	present := map[Cap]int{CapIRQChip: 1, CapUserMemory: 1, CapNrVCPUs: 4}
	check := func(c Cap) (int, error) { return present[c], nil }

	err := requireCaps(check, []Cap{CapIRQChip, CapIRQFD, CapUserMemory, CapImmediateExit, CapNrVCPUs})
	var missing *MissingCapsError
	if !errors.As(err, &missing) {
		t.Fatalf("err = %v, want *MissingCapsError", err)
	}
	if len(missing.Caps) != 2 || missing.Caps[0] != CapIRQFD || missing.Caps[1] != CapImmediateExit {
		t.Errorf("missing = %v, want [KVM_CAP_IRQFD KVM_CAP_IMMEDIATE_EXIT]", missing.Caps)
	}
	for _, name := range []string{"KVM_CAP_IRQFD", "KVM_CAP_IMMEDIATE_EXIT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if strings.Contains(err.Error(), "KVM_CAP_IRQCHIP") {
		t.Errorf("error %q names a capability that is present", err)
	}

	if err := requireCaps(check, []Cap{CapIRQChip, CapNrVCPUs}); err != nil {
		t.Errorf("all present: err = %v", err)
	}
}

func TestRequireCapsReportsCheckFailure(t *testing.T) {
	boom := errors.New("ioctl failed")
	err := requireCaps(func(Cap) (int, error) { return 0, boom }, []Cap{CapHLT})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "KVM_CAP_HLT") {
		t.Errorf("err = %v, want the check error wrapped with the cap name", err)
	}
}
