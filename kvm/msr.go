package kvm

// MSR indices a VMM commonly sets at boot or saves for snapshots (Intel
// SDM vol. 4; KVM's paravirtual MSRs from arch/x86/include/uapi/asm/kvm_para.h).
const (
	MSRIA32TSC            = 0x10
	MSRIA32APICBase       = 0x1b
	MSRIA32FeatureControl = 0x3a
	MSRIA32TSCAdjust      = 0x3b
	MSRIA32SysenterCS     = 0x174
	MSRIA32SysenterESP    = 0x175
	MSRIA32SysenterEIP    = 0x176
	MSRIA32MiscEnable     = 0x1a0
	MSRIA32CRPAT          = 0x277
	MSRMTRRDefType        = 0x2ff
	MSRIA32TSCDeadline    = 0x6e0

	MSREFER         = 0xc0000080
	MSRStar         = 0xc0000081
	MSRLStar        = 0xc0000082
	MSRCStar        = 0xc0000083
	MSRSyscallMask  = 0xc0000084 // SFMASK
	MSRFSBase       = 0xc0000100
	MSRGSBase       = 0xc0000101
	MSRKernelGSBase = 0xc0000102
	MSRTSCAux       = 0xc0000103

	MSRKVMWallClock        = 0x11
	MSRKVMSystemTime       = 0x12
	MSRKVMWallClockNew     = 0x4b564d00
	MSRKVMSystemTimeNew    = 0x4b564d01
	MSRKVMAsyncPFEn        = 0x4b564d02
	MSRKVMStealTime        = 0x4b564d03
	MSRKVMPVEOIEn          = 0x4b564d04
	MSRKVMPollControl      = 0x4b564d05
	MSRKVMAsyncPFInt       = 0x4b564d06
	MSRKVMAsyncPFAck       = 0x4b564d07
	MSRKVMMigrationControl = 0x4b564d08
)

// Bits of IA32_APIC_BASE.
const (
	APICBaseBSP     = 1 << 8
	APICBaseX2APIC  = 1 << 10
	APICBaseEnable  = 1 << 11
	APICBaseDefault = 0xfee00000 // reset value of the base address field
)

// Bits of IA32_MISC_ENABLE.
const MiscEnableFastString = 1 << 0

// Bits of IA32_MTRR_DEF_TYPE: memory type in bits 0-7, fixed-range MTRRs
// enable, MTRRs enable.
const (
	MTRRDefTypeWriteBack = 0x6
	MTRRDefTypeFE        = 1 << 10
	MTRRDefTypeE         = 1 << 11
)
