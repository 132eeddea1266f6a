package kvm

// UserspaceMemoryRegion mirrors struct kvm_userspace_memory_region
// (KVM_SET_USER_MEMORY_REGION): guest physical range
// [GuestPhysAddr, GuestPhysAddr+MemorySize) backed by host virtual memory
// at UserspaceAddr. A MemorySize of 0 deletes the slot.
type UserspaceMemoryRegion struct {
	Slot          uint32
	Flags         uint32 // MemLogDirtyPages, MemReadonly
	GuestPhysAddr uint64
	MemorySize    uint64
	UserspaceAddr uint64
}

// UserspaceMemoryRegion.Flags bits (KVM_MEM_*).
const (
	MemLogDirtyPages = 1 << 0
	MemReadonly      = 1 << 1
)

// ClockData mirrors struct kvm_clock_data (KVM_GET_CLOCK / KVM_SET_CLOCK):
// the kvmclock value in nanoseconds, and with newer kernels the host
// CLOCK_REALTIME and TSC sampled at the same instant.
type ClockData struct {
	Clock    uint64
	Flags    uint32 // ClockTSCStable, ClockRealtime, ClockHostTSC
	Pad0     uint32
	Realtime uint64
	HostTSC  uint64
	Pad      [4]uint32
}

// ClockData.Flags bits (KVM_CLOCK_*). Bit 0 is unused on purpose: old
// kernels answered KVM_CHECK_EXTENSION(KVM_CAP_ADJUST_CLOCK) with 1.
const (
	ClockTSCStable = 2
	ClockRealtime  = 1 << 2
	ClockHostTSC   = 1 << 3
)

// IRQChip mirrors struct kvm_irqchip (KVM_GET_IRQCHIP / KVM_SET_IRQCHIP).
// Chip holds the 512-byte union raw: struct kvm_pic_state for the two PICs
// or struct kvm_ioapic_state for the IOAPIC, selected by ChipID.
type IRQChip struct {
	ChipID uint32 // IRQChipPICMaster, IRQChipPICSlave or IRQChipIOAPIC
	Pad    uint32
	Chip   [512]byte
}

// IRQChip.ChipID values (KVM_IRQCHIP_*).
const (
	IRQChipPICMaster = 0
	IRQChipPICSlave  = 1
	IRQChipIOAPIC    = 2
)

// PITChannelState mirrors struct kvm_pit_channel_state.
type PITChannelState struct {
	Count         uint32 // can be 65536
	LatchedCount  uint16
	CountLatched  uint8
	StatusLatched uint8
	Status        uint8
	ReadState     uint8
	WriteState    uint8
	WriteLatch    uint8
	RWMode        uint8
	Mode          uint8
	BCD           uint8
	Gate          uint8
	CountLoadTime int64
}

// PITState2 mirrors struct kvm_pit_state2 (KVM_GET_PIT2 / KVM_SET_PIT2).
type PITState2 struct {
	Channels [3]PITChannelState
	Flags    uint32 // PITFlagsHPETLegacy, PITFlagsSpeakerDataOn
	Reserved [9]uint32
}

// PITState2.Flags bits (KVM_PIT_FLAGS_*).
const (
	PITFlagsHPETLegacy    = 0x1
	PITFlagsSpeakerDataOn = 0x2
)

// PITSpeakerDummy (KVM_PIT_SPEAKER_DUMMY) asks CreatePIT2 for a dummy
// port 0x61 speaker, so the guest's PIT channel 2 probing works without a
// userspace device.
const PITSpeakerDummy = 1

// pitConfig mirrors struct kvm_pit_config.
type pitConfig struct {
	Flags uint32
	Pad   [15]uint32
}

// irqLevel mirrors struct kvm_irq_level (the irq member of its union).
type irqLevel struct {
	IRQ   uint32
	Level uint32
}

// irqfd mirrors struct kvm_irqfd.
type irqfd struct {
	FD         uint32
	GSI        uint32
	Flags      uint32
	ResampleFD uint32
	Pad        [16]uint8
}

// Flags of struct kvm_irqfd.
const (
	irqfdFlagDeassign = 1 << 0
	irqfdFlagResample = 1 << 1
)

// ioeventfd mirrors struct kvm_ioeventfd.
type ioeventfd struct {
	Datamatch uint64
	Addr      uint64
	Len       uint32
	FD        int32
	Flags     uint32
	Pad       [36]uint8
}

// Flags of struct kvm_ioeventfd.
const (
	ioeventfdFlagDatamatch = 1 << 0
	ioeventfdFlagPIO       = 1 << 1
	ioeventfdFlagDeassign  = 1 << 2
)

// enableCap mirrors struct kvm_enable_cap.
type enableCap struct {
	Cap   uint32
	Flags uint32
	Args  [4]uint64
	Pad   [64]uint8
}

// msi mirrors struct kvm_msi (KVM_SIGNAL_MSI).
type msi struct {
	AddressLo uint32
	AddressHi uint32
	Data      uint32
	Flags     uint32
	DevID     uint32
	Pad       [12]uint8
}

// Headers of the variable-length structs, without their flexible arrays;
// the ioctl numbers encode only these sizes.

// cpuid2Header mirrors struct kvm_cpuid2 minus entries[].
type cpuid2Header struct {
	Nent    uint32
	Padding uint32
}

// msrsHeader mirrors struct kvm_msrs minus entries[].
type msrsHeader struct {
	NMSRs uint32
	Pad   uint32
}

// msrListHeader mirrors struct kvm_msr_list minus indices[].
type msrListHeader struct {
	NMSRs uint32
}

// Enable-cap arguments of common VM capabilities.
const (
	// X2APICAPIUse32BitIDs and X2APICAPIDisableBroadcastQuirk are the
	// argument bits of KVM_CAP_X2APIC_API.
	X2APICAPIUse32BitIDs           = 1 << 0
	X2APICAPIDisableBroadcastQuirk = 1 << 1

	// DirtyLogManualProtectEnable and DirtyLogInitiallySet are the
	// argument bits of KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2.
	DirtyLogManualProtectEnable = 1 << 0
	DirtyLogInitiallySet        = 1 << 1

	// X86DisableExits* are the argument bits of KVM_CAP_X86_DISABLE_EXITS.
	X86DisableExitsMWait  = 1 << 0
	X86DisableExitsHLT    = 1 << 1
	X86DisableExitsPause  = 1 << 2
	X86DisableExitsCState = 1 << 3
)
