package kvm

import (
	"testing"
	"unsafe"
)

// Sizes and offsets below are read off arch/x86/include/uapi/asm/kvm.h and
// include/uapi/linux/kvm.h with x86-64 C alignment rules.

func TestStructSizesMatchKernel(t *testing.T) {
	tests := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"kvm_regs", unsafe.Sizeof(Regs{}), 144},
		{"kvm_segment", unsafe.Sizeof(Segment{}), 24},
		{"kvm_dtable", unsafe.Sizeof(DTable{}), 16},
		{"kvm_sregs", unsafe.Sizeof(Sregs{}), 312},
		{"kvm_fpu", unsafe.Sizeof(FPU{}), 416},
		{"kvm_xsave", unsafe.Sizeof(XSave{}), 4096},
		{"kvm_xcr", unsafe.Sizeof(XCR{}), 16},
		{"kvm_xcrs", unsafe.Sizeof(XCRs{}), 392},
		{"kvm_lapic_state", unsafe.Sizeof(LAPICState{}), 1024},
		{"kvm_vcpu_events", unsafe.Sizeof(VCPUEvents{}), 64},
		{"kvm_debugregs", unsafe.Sizeof(DebugRegs{}), 128},
		{"kvm_mp_state", unsafe.Sizeof(MPState{}), 4},
		{"kvm_msr_entry", unsafe.Sizeof(MSREntry{}), 16},
		{"kvm_cpuid_entry2", unsafe.Sizeof(CPUIDEntry2{}), 40},
		{"kvm_cpuid2 header", unsafe.Sizeof(cpuid2Header{}), 8},
		{"kvm_msrs header", unsafe.Sizeof(msrsHeader{}), 8},
		{"kvm_msr_list header", unsafe.Sizeof(msrListHeader{}), 4},
		{"kvm_userspace_memory_region", unsafe.Sizeof(UserspaceMemoryRegion{}), 32},
		{"kvm_clock_data", unsafe.Sizeof(ClockData{}), 48},
		{"kvm_irqchip", unsafe.Sizeof(IRQChip{}), 520},
		{"kvm_pit_channel_state", unsafe.Sizeof(PITChannelState{}), 24},
		{"kvm_pit_state2", unsafe.Sizeof(PITState2{}), 112},
		{"kvm_pit_config", unsafe.Sizeof(pitConfig{}), 64},
		{"kvm_irq_level", unsafe.Sizeof(irqLevel{}), 8},
		{"kvm_irqfd", unsafe.Sizeof(irqfd{}), 32},
		{"kvm_ioeventfd", unsafe.Sizeof(ioeventfd{}), 64},
		{"kvm_enable_cap", unsafe.Sizeof(enableCap{}), 104},
		{"kvm_msi", unsafe.Sizeof(msi{}), 32},
		{"kvm_dirty_log", unsafe.Sizeof(dirtyLog{}), 16},
		{"kvm_clear_dirty_log", unsafe.Sizeof(clearDirtyLog{}), 24},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("sizeof(struct %s) = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

func TestFieldOffsetsMatchKernel(t *testing.T) {
	var (
		regs   Regs
		seg    Segment
		sregs  Sregs
		fpu    FPU
		xcrs   XCRs
		ev     VCPUEvents
		dbg    DebugRegs
		cpuid  CPUIDEntry2
		msr    MSREntry
		mem    UserspaceMemoryRegion
		clock  ClockData
		chip   IRQChip
		pitch  PITChannelState
		pit    PITState2
		irqfdv irqfd
		ioev   ioeventfd
		ecap   enableCap
		dlog   dirtyLog
		cdlog  clearDirtyLog
	)
	tests := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"kvm_regs.rip", unsafe.Offsetof(regs.RIP), 128},
		{"kvm_regs.rflags", unsafe.Offsetof(regs.RFLAGS), 136},
		{"kvm_segment.limit", unsafe.Offsetof(seg.Limit), 8},
		{"kvm_segment.selector", unsafe.Offsetof(seg.Selector), 12},
		{"kvm_segment.type", unsafe.Offsetof(seg.Type), 14},
		{"kvm_segment.present", unsafe.Offsetof(seg.Present), 15},
		{"kvm_segment.avl", unsafe.Offsetof(seg.AVL), 21},
		{"kvm_segment.unusable", unsafe.Offsetof(seg.Unusable), 22},
		{"kvm_sregs.ss", unsafe.Offsetof(sregs.SS), 120},
		{"kvm_sregs.tr", unsafe.Offsetof(sregs.TR), 144},
		{"kvm_sregs.ldt", unsafe.Offsetof(sregs.LDT), 168},
		{"kvm_sregs.gdt", unsafe.Offsetof(sregs.GDT), 192},
		{"kvm_sregs.idt", unsafe.Offsetof(sregs.IDT), 208},
		{"kvm_sregs.cr0", unsafe.Offsetof(sregs.CR0), 224},
		{"kvm_sregs.cr3", unsafe.Offsetof(sregs.CR3), 240},
		{"kvm_sregs.cr4", unsafe.Offsetof(sregs.CR4), 248},
		{"kvm_sregs.efer", unsafe.Offsetof(sregs.EFER), 264},
		{"kvm_sregs.apic_base", unsafe.Offsetof(sregs.APICBase), 272},
		{"kvm_sregs.interrupt_bitmap", unsafe.Offsetof(sregs.InterruptBitmap), 280},
		{"kvm_fpu.fcw", unsafe.Offsetof(fpu.FCW), 128},
		{"kvm_fpu.ftwx", unsafe.Offsetof(fpu.FTWX), 132},
		{"kvm_fpu.last_opcode", unsafe.Offsetof(fpu.LastOpcode), 134},
		{"kvm_fpu.last_ip", unsafe.Offsetof(fpu.LastIP), 136},
		{"kvm_fpu.xmm", unsafe.Offsetof(fpu.XMM), 152},
		{"kvm_fpu.mxcsr", unsafe.Offsetof(fpu.MXCSR), 408},
		{"kvm_xcrs.xcrs", unsafe.Offsetof(xcrs.XCRs), 8},
		{"kvm_xcrs.padding", unsafe.Offsetof(xcrs.Padding), 264},
		{"kvm_vcpu_events.exception.error_code", unsafe.Offsetof(ev.ExceptionErrorCode), 4},
		{"kvm_vcpu_events.interrupt.injected", unsafe.Offsetof(ev.InterruptInjected), 8},
		{"kvm_vcpu_events.nmi.injected", unsafe.Offsetof(ev.NMIInjected), 12},
		{"kvm_vcpu_events.sipi_vector", unsafe.Offsetof(ev.SIPIVector), 16},
		{"kvm_vcpu_events.flags", unsafe.Offsetof(ev.Flags), 20},
		{"kvm_vcpu_events.smi.smm", unsafe.Offsetof(ev.SMISMM), 24},
		{"kvm_vcpu_events.triple_fault.pending", unsafe.Offsetof(ev.TripleFaultPending), 28},
		{"kvm_vcpu_events.reserved", unsafe.Offsetof(ev.Reserved), 29},
		{"kvm_vcpu_events.exception_has_payload", unsafe.Offsetof(ev.ExceptionHasPayload), 55},
		{"kvm_vcpu_events.exception_payload", unsafe.Offsetof(ev.ExceptionPayload), 56},
		{"kvm_debugregs.dr6", unsafe.Offsetof(dbg.DR6), 32},
		{"kvm_debugregs.dr7", unsafe.Offsetof(dbg.DR7), 40},
		{"kvm_debugregs.flags", unsafe.Offsetof(dbg.Flags), 48},
		{"kvm_cpuid_entry2.eax", unsafe.Offsetof(cpuid.EAX), 12},
		{"kvm_cpuid_entry2.edx", unsafe.Offsetof(cpuid.EDX), 24},
		{"kvm_msr_entry.data", unsafe.Offsetof(msr.Data), 8},
		{"kvm_userspace_memory_region.guest_phys_addr", unsafe.Offsetof(mem.GuestPhysAddr), 8},
		{"kvm_userspace_memory_region.memory_size", unsafe.Offsetof(mem.MemorySize), 16},
		{"kvm_userspace_memory_region.userspace_addr", unsafe.Offsetof(mem.UserspaceAddr), 24},
		{"kvm_clock_data.flags", unsafe.Offsetof(clock.Flags), 8},
		{"kvm_clock_data.realtime", unsafe.Offsetof(clock.Realtime), 16},
		{"kvm_clock_data.host_tsc", unsafe.Offsetof(clock.HostTSC), 24},
		{"kvm_irqchip.chip", unsafe.Offsetof(chip.Chip), 8},
		{"kvm_pit_channel_state.gate", unsafe.Offsetof(pitch.Gate), 15},
		{"kvm_pit_channel_state.count_load_time", unsafe.Offsetof(pitch.CountLoadTime), 16},
		{"kvm_pit_state2.flags", unsafe.Offsetof(pit.Flags), 72},
		{"kvm_irqfd.flags", unsafe.Offsetof(irqfdv.Flags), 8},
		{"kvm_irqfd.resamplefd", unsafe.Offsetof(irqfdv.ResampleFD), 12},
		{"kvm_ioeventfd.len", unsafe.Offsetof(ioev.Len), 16},
		{"kvm_ioeventfd.fd", unsafe.Offsetof(ioev.FD), 20},
		{"kvm_ioeventfd.flags", unsafe.Offsetof(ioev.Flags), 24},
		{"kvm_enable_cap.args", unsafe.Offsetof(ecap.Args), 8},
		{"kvm_dirty_log.dirty_bitmap", unsafe.Offsetof(dlog.Bitmap), 8},
		{"kvm_clear_dirty_log.first_page", unsafe.Offsetof(cdlog.FirstPage), 8},
		{"kvm_clear_dirty_log.dirty_bitmap", unsafe.Offsetof(cdlog.Bitmap), 16},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("offsetof(%s) = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

// struct kvm_run is decoded by byte offset rather than through a Go
// struct, so its offsets are checked as the constants the decoder uses.
func TestRunOffsetsMatchKernel(t *testing.T) {
	tests := []struct {
		name string
		got  int
		want int
	}{
		{"immediate_exit", runOffImmediateExit, 1},
		{"exit_reason", runOffExitReason, 8},
		{"ready_for_interrupt_injection", runOffReadyForInjection, 12},
		{"if_flag", runOffIFFlag, 13},
		{"flags", runOffFlags, 14},
		{"cr8", runOffCR8, 16},
		{"apic_base", runOffAPICBase, 24},
		{"hw.hardware_exit_reason", runOffHWExitReason, 32},
		{"fail_entry.hardware_entry_failure_reason", runOffFailEntryReason, 32},
		{"fail_entry.cpu", runOffFailEntryCPU, 40},
		{"io.direction", runOffIODirection, 32},
		{"io.size", runOffIOSize, 33},
		{"io.port", runOffIOPort, 34},
		{"io.count", runOffIOCount, 36},
		{"io.data_offset", runOffIODataOffset, 40},
		{"debug.arch.exception", runOffDebugException, 32},
		{"debug.arch.pc", runOffDebugPC, 40},
		{"debug.arch.dr6", runOffDebugDR6, 48},
		{"debug.arch.dr7", runOffDebugDR7, 56},
		{"mmio.phys_addr", runOffMMIOPhysAddr, 32},
		{"mmio.data", runOffMMIOData, 40},
		{"mmio.len", runOffMMIOLen, 48},
		{"mmio.is_write", runOffMMIOIsWrite, 52},
		{"internal.suberror", runOffInternalSuberror, 32},
		{"internal.ndata", runOffInternalNData, 36},
		{"internal.data", runOffInternalData, 40},
		{"emulation_failure.flags", runOffEmulationFlags, 40},
		{"emulation_failure.insn_size", runOffEmulationInsnSize, 48},
		{"emulation_failure.insn_bytes", runOffEmulationInsn, 49},
		{"system_event.type", runOffSystemEventType, 32},
		{"system_event.ndata", runOffSystemEventNData, 36},
		{"system_event.data", runOffSystemEventData, 40},
		{"eoi.vector", runOffEOIVector, 32},
		{"kvm_valid_regs", runOffValidRegs, 288},
		{"kvm_dirty_regs", runOffDirtyRegs, 296},
		{"s.regs", runOffSyncRegs, 304},
		{"sizeof(struct kvm_run)", runStructSize, 2352},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("kvm_run.%s at %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}
