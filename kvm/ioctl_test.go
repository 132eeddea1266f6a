package kvm

import "testing"

// Each expected value is derived by hand from include/uapi/linux/kvm.h:
// dir<<30 | sizeof(type)<<16 | 0xAE<<8 | nr, with _IOR dir 2, _IOW dir 1,
// _IOWR dir 3, and the x86-64 sizes of the argument structs.
func TestIoctlNumbersMatchKernel(t *testing.T) {
	tests := []struct {
		req  ioctlReq
		name string
		want uintptr
	}{
		{kvmGetAPIVersion, "KVM_GET_API_VERSION", 0xae00},                     // _IO 0x00
		{kvmCreateVM, "KVM_CREATE_VM", 0xae01},                                // _IO 0x01
		{kvmGetMSRIndexList, "KVM_GET_MSR_INDEX_LIST", 0xc004ae02},            // _IOWR kvm_msr_list (4)
		{kvmCheckExtension, "KVM_CHECK_EXTENSION", 0xae03},                    // _IO 0x03
		{kvmGetVCPUMmapSize, "KVM_GET_VCPU_MMAP_SIZE", 0xae04},                // _IO 0x04
		{kvmGetSupportedCPUID, "KVM_GET_SUPPORTED_CPUID", 0xc008ae05},         // _IOWR kvm_cpuid2 (8)
		{kvmGetEmulatedCPUID, "KVM_GET_EMULATED_CPUID", 0xc008ae09},           // _IOWR kvm_cpuid2 (8)
		{kvmGetMSRFeatureIndex, "KVM_GET_MSR_FEATURE_INDEX_LIST", 0xc004ae0a}, // _IOWR kvm_msr_list (4)
		{kvmCreateVCPU, "KVM_CREATE_VCPU", 0xae41},                            // _IO 0x41
		{kvmGetDirtyLog, "KVM_GET_DIRTY_LOG", 0x4010ae42},                     // _IOW kvm_dirty_log (16)
		{kvmSetUserMemoryRegion, "KVM_SET_USER_MEMORY_REGION", 0x4020ae46},    // _IOW (32)
		{kvmSetTSSAddr, "KVM_SET_TSS_ADDR", 0xae47},                           // _IO 0x47
		{kvmSetIdentityMapAddr, "KVM_SET_IDENTITY_MAP_ADDR", 0x4008ae48},      // _IOW __u64
		{kvmCreateIRQChip, "KVM_CREATE_IRQCHIP", 0xae60},                      // _IO 0x60
		{kvmIRQLine, "KVM_IRQ_LINE", 0x4008ae61},                              // _IOW kvm_irq_level (8)
		{kvmGetIRQChip, "KVM_GET_IRQCHIP", 0xc208ae62},                        // _IOWR kvm_irqchip (520)
		{kvmSetIRQChip, "KVM_SET_IRQCHIP", 0x8208ae63},                        // _IOR kvm_irqchip (520)
		{kvmIRQFD, "KVM_IRQFD", 0x4020ae76},                                   // _IOW kvm_irqfd (32)
		{kvmCreatePIT2, "KVM_CREATE_PIT2", 0x4040ae77},                        // _IOW kvm_pit_config (64)
		{kvmIOEventFD, "KVM_IOEVENTFD", 0x4040ae79},                           // _IOW kvm_ioeventfd (64)
		{kvmSetClock, "KVM_SET_CLOCK", 0x4030ae7b},                            // _IOW kvm_clock_data (48)
		{kvmGetClock, "KVM_GET_CLOCK", 0x8030ae7c},                            // _IOR kvm_clock_data (48)
		{kvmGetPIT2, "KVM_GET_PIT2", 0x8070ae9f},                              // _IOR kvm_pit_state2 (112)
		{kvmSetPIT2, "KVM_SET_PIT2", 0x4070aea0},                              // _IOW kvm_pit_state2 (112)
		{kvmSignalMSI, "KVM_SIGNAL_MSI", 0x4020aea5},                          // _IOW kvm_msi (32)
		{kvmClearDirtyLog, "KVM_CLEAR_DIRTY_LOG", 0xc018aec0},                 // _IOWR kvm_clear_dirty_log (24)
		{kvmEnableCap, "KVM_ENABLE_CAP", 0x4068aea3},                          // _IOW kvm_enable_cap (104)
		{kvmRun, "KVM_RUN", 0xae80},                                           // _IO 0x80
		{kvmGetRegs, "KVM_GET_REGS", 0x8090ae81},                              // _IOR kvm_regs (144)
		{kvmSetRegs, "KVM_SET_REGS", 0x4090ae82},                              // _IOW kvm_regs (144)
		{kvmGetSregs, "KVM_GET_SREGS", 0x8138ae83},                            // _IOR kvm_sregs (312)
		{kvmSetSregs, "KVM_SET_SREGS", 0x4138ae84},                            // _IOW kvm_sregs (312)
		{kvmInterrupt, "KVM_INTERRUPT", 0x4004ae86},                           // _IOW kvm_interrupt (4)
		{kvmGetMSRs, "KVM_GET_MSRS", 0xc008ae88},                              // _IOWR kvm_msrs (8)
		{kvmSetMSRs, "KVM_SET_MSRS", 0x4008ae89},                              // _IOW kvm_msrs (8)
		{kvmGetFPU, "KVM_GET_FPU", 0x81a0ae8c},                                // _IOR kvm_fpu (416)
		{kvmSetFPU, "KVM_SET_FPU", 0x41a0ae8d},                                // _IOW kvm_fpu (416)
		{kvmGetLAPIC, "KVM_GET_LAPIC", 0x8400ae8e},                            // _IOR kvm_lapic_state (1024)
		{kvmSetLAPIC, "KVM_SET_LAPIC", 0x4400ae8f},                            // _IOW kvm_lapic_state (1024)
		{kvmSetCPUID2, "KVM_SET_CPUID2", 0x4008ae90},                          // _IOW kvm_cpuid2 (8)
		{kvmGetCPUID2, "KVM_GET_CPUID2", 0xc008ae91},                          // _IOWR kvm_cpuid2 (8)
		{kvmGetMPState, "KVM_GET_MP_STATE", 0x8004ae98},                       // _IOR kvm_mp_state (4)
		{kvmSetMPState, "KVM_SET_MP_STATE", 0x4004ae99},                       // _IOW kvm_mp_state (4)
		{kvmNMI, "KVM_NMI", 0xae9a},                                           // _IO 0x9a
		{kvmGetVCPUEvents, "KVM_GET_VCPU_EVENTS", 0x8040ae9f},                 // _IOR kvm_vcpu_events (64)
		{kvmSetVCPUEvents, "KVM_SET_VCPU_EVENTS", 0x4040aea0},                 // _IOW kvm_vcpu_events (64)
		{kvmGetDebugRegs, "KVM_GET_DEBUGREGS", 0x8080aea1},                    // _IOR kvm_debugregs (128)
		{kvmSetDebugRegs, "KVM_SET_DEBUGREGS", 0x4080aea2},                    // _IOW kvm_debugregs (128)
		{kvmSetTSCKHz, "KVM_SET_TSC_KHZ", 0xaea2},                             // _IO 0xa2
		{kvmGetTSCKHz, "KVM_GET_TSC_KHZ", 0xaea3},                             // _IO 0xa3
		{kvmGetXSave, "KVM_GET_XSAVE", 0x9000aea4},                            // _IOR kvm_xsave (4096)
		{kvmSetXSave, "KVM_SET_XSAVE", 0x5000aea5},                            // _IOW kvm_xsave (4096)
		{kvmGetXCRs, "KVM_GET_XCRS", 0x8188aea6},                              // _IOR kvm_xcrs (392)
		{kvmSetXCRs, "KVM_SET_XCRS", 0x4188aea7},                              // _IOW kvm_xcrs (392)
		{kvmKVMClockCtrl, "KVM_KVMCLOCK_CTRL", 0xaead},                        // _IO 0xad
	}
	for _, tt := range tests {
		if tt.req.name != tt.name {
			t.Errorf("request %#x is named %q, want %q", tt.req.num, tt.req.name, tt.name)
		}
		if tt.req.num != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.req.num, tt.want)
		}
		// RequestNumber must know every request, or a seccomp
		// filter built from it could not name one tern issues.
		if n, err := RequestNumber(tt.name); err != nil || uintptr(n) != tt.want {
			t.Errorf("RequestNumber(%q) = %#x, %v; want %#x", tt.name, n, err, tt.want)
		}
	}
	if len(requests) != len(tests) {
		t.Errorf("RequestNumber knows %d requests, the table above %d", len(requests), len(tests))
	}
	if _, err := RequestNumber("KVM_SET_GUEST_DEBUG"); err == nil {
		t.Error("RequestNumber named a request this package never issues")
	}
}
