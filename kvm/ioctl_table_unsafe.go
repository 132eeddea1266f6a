package kvm

import "unsafe"

// Every KVM request this package issues, built like the kernel's
// _IO/_IOR/_IOW/_IOWR(KVMIO, nr, type) from include/uapi/linux/kvm.h, with
// the argument size taken from the Go mirror of that type. Directions are
// copied from the header even where they look backwards (KVM_SET_IRQCHIP is
// _IOR), because the number is what the kernel matches on.
var (
	// System (/dev/kvm) requests.
	kvmGetAPIVersion      = newIoctl("KVM_GET_API_VERSION", ioctlIO(0x00))
	kvmCreateVM           = newIoctl("KVM_CREATE_VM", ioctlIO(0x01))
	kvmGetMSRIndexList    = newIoctl("KVM_GET_MSR_INDEX_LIST", ioctlIOWR(0x02, unsafe.Sizeof(msrListHeader{})))
	kvmCheckExtension     = newIoctl("KVM_CHECK_EXTENSION", ioctlIO(0x03))
	kvmGetVCPUMmapSize    = newIoctl("KVM_GET_VCPU_MMAP_SIZE", ioctlIO(0x04))
	kvmGetSupportedCPUID  = newIoctl("KVM_GET_SUPPORTED_CPUID", ioctlIOWR(0x05, unsafe.Sizeof(cpuid2Header{})))
	kvmGetEmulatedCPUID   = newIoctl("KVM_GET_EMULATED_CPUID", ioctlIOWR(0x09, unsafe.Sizeof(cpuid2Header{})))
	kvmGetMSRFeatureIndex = newIoctl("KVM_GET_MSR_FEATURE_INDEX_LIST", ioctlIOWR(0x0a, unsafe.Sizeof(msrListHeader{})))

	// VM requests.
	kvmCreateVCPU          = newIoctl("KVM_CREATE_VCPU", ioctlIO(0x41))
	kvmGetDirtyLog         = newIoctl("KVM_GET_DIRTY_LOG", ioctlIOW(0x42, unsafe.Sizeof(dirtyLog{})))
	kvmSetUserMemoryRegion = newIoctl("KVM_SET_USER_MEMORY_REGION", ioctlIOW(0x46, unsafe.Sizeof(UserspaceMemoryRegion{})))
	kvmSetTSSAddr          = newIoctl("KVM_SET_TSS_ADDR", ioctlIO(0x47))
	kvmSetIdentityMapAddr  = newIoctl("KVM_SET_IDENTITY_MAP_ADDR", ioctlIOW(0x48, unsafe.Sizeof(uint64(0))))
	kvmCreateIRQChip       = newIoctl("KVM_CREATE_IRQCHIP", ioctlIO(0x60))
	kvmIRQLine             = newIoctl("KVM_IRQ_LINE", ioctlIOW(0x61, unsafe.Sizeof(irqLevel{})))
	kvmGetIRQChip          = newIoctl("KVM_GET_IRQCHIP", ioctlIOWR(0x62, unsafe.Sizeof(IRQChip{})))
	kvmSetIRQChip          = newIoctl("KVM_SET_IRQCHIP", ioctlIOR(0x63, unsafe.Sizeof(IRQChip{})))
	kvmIRQFD               = newIoctl("KVM_IRQFD", ioctlIOW(0x76, unsafe.Sizeof(irqfd{})))
	kvmCreatePIT2          = newIoctl("KVM_CREATE_PIT2", ioctlIOW(0x77, unsafe.Sizeof(pitConfig{})))
	kvmIOEventFD           = newIoctl("KVM_IOEVENTFD", ioctlIOW(0x79, unsafe.Sizeof(ioeventfd{})))
	kvmSetClock            = newIoctl("KVM_SET_CLOCK", ioctlIOW(0x7b, unsafe.Sizeof(ClockData{})))
	kvmGetClock            = newIoctl("KVM_GET_CLOCK", ioctlIOR(0x7c, unsafe.Sizeof(ClockData{})))
	kvmGetPIT2             = newIoctl("KVM_GET_PIT2", ioctlIOR(0x9f, unsafe.Sizeof(PITState2{})))
	kvmSetPIT2             = newIoctl("KVM_SET_PIT2", ioctlIOW(0xa0, unsafe.Sizeof(PITState2{})))
	kvmSignalMSI           = newIoctl("KVM_SIGNAL_MSI", ioctlIOW(0xa5, unsafe.Sizeof(msi{})))
	kvmClearDirtyLog       = newIoctl("KVM_CLEAR_DIRTY_LOG", ioctlIOWR(0xc0, unsafe.Sizeof(clearDirtyLog{})))
	kvmEnableCap           = newIoctl("KVM_ENABLE_CAP", ioctlIOW(0xa3, unsafe.Sizeof(enableCap{}))) // VM and vCPU

	// vCPU requests.
	kvmRun           = newIoctl("KVM_RUN", ioctlIO(0x80))
	kvmGetRegs       = newIoctl("KVM_GET_REGS", ioctlIOR(0x81, unsafe.Sizeof(Regs{})))
	kvmSetRegs       = newIoctl("KVM_SET_REGS", ioctlIOW(0x82, unsafe.Sizeof(Regs{})))
	kvmGetSregs      = newIoctl("KVM_GET_SREGS", ioctlIOR(0x83, unsafe.Sizeof(Sregs{})))
	kvmSetSregs      = newIoctl("KVM_SET_SREGS", ioctlIOW(0x84, unsafe.Sizeof(Sregs{})))
	kvmInterrupt     = newIoctl("KVM_INTERRUPT", ioctlIOW(0x86, unsafe.Sizeof(uint32(0))))
	kvmGetMSRs       = newIoctl("KVM_GET_MSRS", ioctlIOWR(0x88, unsafe.Sizeof(msrsHeader{})))
	kvmSetMSRs       = newIoctl("KVM_SET_MSRS", ioctlIOW(0x89, unsafe.Sizeof(msrsHeader{})))
	kvmGetFPU        = newIoctl("KVM_GET_FPU", ioctlIOR(0x8c, unsafe.Sizeof(FPU{})))
	kvmSetFPU        = newIoctl("KVM_SET_FPU", ioctlIOW(0x8d, unsafe.Sizeof(FPU{})))
	kvmGetLAPIC      = newIoctl("KVM_GET_LAPIC", ioctlIOR(0x8e, unsafe.Sizeof(LAPICState{})))
	kvmSetLAPIC      = newIoctl("KVM_SET_LAPIC", ioctlIOW(0x8f, unsafe.Sizeof(LAPICState{})))
	kvmSetCPUID2     = newIoctl("KVM_SET_CPUID2", ioctlIOW(0x90, unsafe.Sizeof(cpuid2Header{})))
	kvmGetCPUID2     = newIoctl("KVM_GET_CPUID2", ioctlIOWR(0x91, unsafe.Sizeof(cpuid2Header{})))
	kvmGetMPState    = newIoctl("KVM_GET_MP_STATE", ioctlIOR(0x98, unsafe.Sizeof(MPState{})))
	kvmSetMPState    = newIoctl("KVM_SET_MP_STATE", ioctlIOW(0x99, unsafe.Sizeof(MPState{})))
	kvmNMI           = newIoctl("KVM_NMI", ioctlIO(0x9a))
	kvmGetVCPUEvents = newIoctl("KVM_GET_VCPU_EVENTS", ioctlIOR(0x9f, unsafe.Sizeof(VCPUEvents{})))
	kvmSetVCPUEvents = newIoctl("KVM_SET_VCPU_EVENTS", ioctlIOW(0xa0, unsafe.Sizeof(VCPUEvents{})))
	kvmGetDebugRegs  = newIoctl("KVM_GET_DEBUGREGS", ioctlIOR(0xa1, unsafe.Sizeof(DebugRegs{})))
	kvmSetDebugRegs  = newIoctl("KVM_SET_DEBUGREGS", ioctlIOW(0xa2, unsafe.Sizeof(DebugRegs{})))
	kvmSetTSCKHz     = newIoctl("KVM_SET_TSC_KHZ", ioctlIO(0xa2))
	kvmGetTSCKHz     = newIoctl("KVM_GET_TSC_KHZ", ioctlIO(0xa3))
	kvmGetXSave      = newIoctl("KVM_GET_XSAVE", ioctlIOR(0xa4, unsafe.Sizeof(XSave{})))
	kvmSetXSave      = newIoctl("KVM_SET_XSAVE", ioctlIOW(0xa5, unsafe.Sizeof(XSave{})))
	kvmGetXCRs       = newIoctl("KVM_GET_XCRS", ioctlIOR(0xa6, unsafe.Sizeof(XCRs{})))
	kvmSetXCRs       = newIoctl("KVM_SET_XCRS", ioctlIOW(0xa7, unsafe.Sizeof(XCRs{})))
	kvmKVMClockCtrl  = newIoctl("KVM_KVMCLOCK_CTRL", ioctlIO(0xad))
)

// requests lists every request above, for RequestNumber.
var requests = []ioctlReq{
	kvmGetAPIVersion, kvmCreateVM, kvmGetMSRIndexList, kvmCheckExtension, kvmGetVCPUMmapSize,
	kvmGetSupportedCPUID, kvmGetEmulatedCPUID, kvmGetMSRFeatureIndex,
	kvmCreateVCPU, kvmGetDirtyLog, kvmSetUserMemoryRegion, kvmSetTSSAddr, kvmSetIdentityMapAddr,
	kvmCreateIRQChip, kvmIRQLine, kvmGetIRQChip, kvmSetIRQChip, kvmIRQFD, kvmCreatePIT2,
	kvmIOEventFD, kvmSetClock, kvmGetClock, kvmGetPIT2, kvmSetPIT2, kvmSignalMSI,
	kvmClearDirtyLog, kvmEnableCap,
	kvmRun, kvmGetRegs, kvmSetRegs, kvmGetSregs, kvmSetSregs, kvmInterrupt, kvmGetMSRs, kvmSetMSRs,
	kvmGetFPU, kvmSetFPU, kvmGetLAPIC, kvmSetLAPIC, kvmSetCPUID2, kvmGetCPUID2,
	kvmGetMPState, kvmSetMPState, kvmNMI, kvmGetVCPUEvents, kvmSetVCPUEvents,
	kvmGetDebugRegs, kvmSetDebugRegs, kvmSetTSCKHz, kvmGetTSCKHz, kvmGetXSave, kvmSetXSave,
	kvmGetXCRs, kvmSetXCRs, kvmKVMClockCtrl,
}
