package kvm

// Byte offsets into struct kvm_run (include/uapi/linux/kvm.h) on x86-64,
// where the s390-only psw fields are absent. The exit union starts at 32
// and is 256 bytes; kvm_valid_regs, kvm_dirty_regs and the 2048-byte sync
// register area follow.
const (
	runOffRequestInterruptWindow = 0
	runOffImmediateExit          = 1
	runOffExitReason             = 8
	runOffReadyForInjection      = 12
	runOffIFFlag                 = 13
	runOffFlags                  = 14
	runOffCR8                    = 16
	runOffAPICBase               = 24
	runOffExitUnion              = 32
	runOffValidRegs              = 288
	runOffDirtyRegs              = 296
	runOffSyncRegs               = 304
	runStructSize                = 2352

	// hw (KVM_EXIT_UNKNOWN)
	runOffHWExitReason = runOffExitUnion + 0

	// fail_entry
	runOffFailEntryReason = runOffExitUnion + 0
	runOffFailEntryCPU    = runOffExitUnion + 8

	// io
	runOffIODirection  = runOffExitUnion + 0
	runOffIOSize       = runOffExitUnion + 1
	runOffIOPort       = runOffExitUnion + 2
	runOffIOCount      = runOffExitUnion + 4
	runOffIODataOffset = runOffExitUnion + 8

	// debug.arch (struct kvm_debug_exit_arch)
	runOffDebugException = runOffExitUnion + 0
	runOffDebugPC        = runOffExitUnion + 8
	runOffDebugDR6       = runOffExitUnion + 16
	runOffDebugDR7       = runOffExitUnion + 24

	// mmio
	runOffMMIOPhysAddr = runOffExitUnion + 0
	runOffMMIOData     = runOffExitUnion + 8
	runOffMMIOLen      = runOffExitUnion + 16
	runOffMMIOIsWrite  = runOffExitUnion + 20
	mmioDataMax        = 8

	// internal, and its emulation_failure overlay
	runOffInternalSuberror  = runOffExitUnion + 0
	runOffInternalNData     = runOffExitUnion + 4
	runOffInternalData      = runOffExitUnion + 8
	internalDataMax         = 16
	runOffEmulationFlags    = runOffExitUnion + 8
	runOffEmulationInsnSize = runOffExitUnion + 16
	runOffEmulationInsn     = runOffExitUnion + 17
	emulationInsnMax        = 15

	// system_event
	runOffSystemEventType  = runOffExitUnion + 0
	runOffSystemEventNData = runOffExitUnion + 4
	runOffSystemEventData  = runOffExitUnion + 8 // flags is data[0]
	systemEventDataMax     = 16

	// eoi
	runOffEOIVector = runOffExitUnion + 0
)

// KVM_EXIT_IO directions.
const (
	exitIODirectionIn  = 0
	exitIODirectionOut = 1
)
