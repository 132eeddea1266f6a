package kvm

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// VCPU is a virtual CPU fd from KVM_CREATE_VCPU together with its mapped
// kvm_run area. Run and the register accessors belong to the vCPU's own
// OS thread; SetImmediateExit may be called from any goroutine.
type VCPU struct {
	id int
	h  *fdHandle

	// run is the mmap'ed kvm_run area. runMu orders SetImmediateExit
	// against Close's munmap so a late kick cannot touch unmapped memory;
	// Run does not take it.
	runMu sync.Mutex
	run   []byte
}

// ID returns the id the vCPU was created with (its initial APIC ID).
func (v *VCPU) ID() int { return v.id }

// Fd returns the file descriptor, for diagnostics only.
func (v *VCPU) Fd() uintptr { return v.h.fd() }

// Close unmaps kvm_run and closes the vCPU fd. Call it from the vCPU's own
// thread once Run has returned for good: exits already returned alias the
// mapping and become invalid.
func (v *VCPU) Close() error {
	v.runMu.Lock()
	run := v.run
	v.run = nil
	v.runMu.Unlock()
	var errs []error
	if run != nil {
		if err := unix.Munmap(run); err != nil {
			errs = append(errs, fmt.Errorf("unmapping kvm_run of vCPU %d: %w", v.id, err))
		}
	}
	if err := v.h.close(); err != nil {
		errs = append(errs, fmt.Errorf("closing vCPU %d: %w", v.id, err))
	}
	return errors.Join(errs...)
}

// Run enters the guest once (KVM_RUN) and decodes why it came back. A run
// cut short by a signal or by immediate_exit returns ExitInterrupted with
// a nil error. Slices in the exit alias kvm_run and are valid until the
// next Run.
func (v *VCPU) Run() (Exit, error) {
	run := v.run
	if run == nil {
		return nil, fmt.Errorf("KVM_RUN on closed vCPU %d", v.id)
	}
	_, err := v.h.rawIoctl(kvmRun, false, func(fd uintptr) (uintptr, unix.Errno) {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, fd, kvmRun.num, 0)
		return r, e
	})
	if errors.Is(err, unix.EINTR) {
		return ExitInterrupted{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vCPU %d: %w", v.id, err)
	}
	exit, err := decodeExit(run)
	if err != nil {
		return nil, fmt.Errorf("vCPU %d: %w", v.id, err)
	}
	return exit, nil
}

// SetImmediateExit sets or clears kvm_run.immediate_exit. While set, KVM_RUN
// returns EINTR at once instead of entering the guest. To kick a vCPU: set
// it, then signal the vCPU's thread (which covers a thread already inside
// the guest); the vCPU loop clears it after seeing ExitInterrupted. Safe
// to call from any goroutine, including after Close (then it does
// nothing).
func (v *VCPU) SetImmediateExit(on bool) {
	v.runMu.Lock()
	defer v.runMu.Unlock()
	if v.run != nil {
		storeRunByte(v.run, runOffImmediateExit, on)
	}
}

// GetRegs reads the general-purpose registers (KVM_GET_REGS).
func (v *VCPU) GetRegs() (Regs, error) {
	var r Regs
	_, err := ioctlPtr(v.h, kvmGetRegs, &r)
	return r, err
}

// SetRegs writes the general-purpose registers (KVM_SET_REGS).
func (v *VCPU) SetRegs(r Regs) error {
	_, err := ioctlPtr(v.h, kvmSetRegs, &r)
	return err
}

// GetSregs reads segment, descriptor-table and control registers
// (KVM_GET_SREGS).
func (v *VCPU) GetSregs() (Sregs, error) {
	var s Sregs
	_, err := ioctlPtr(v.h, kvmGetSregs, &s)
	return s, err
}

// SetSregs writes segment, descriptor-table and control registers
// (KVM_SET_SREGS).
func (v *VCPU) SetSregs(s Sregs) error {
	_, err := ioctlPtr(v.h, kvmSetSregs, &s)
	return err
}

// GetFPU reads the x87/SSE state (KVM_GET_FPU).
func (v *VCPU) GetFPU() (FPU, error) {
	var f FPU
	_, err := ioctlPtr(v.h, kvmGetFPU, &f)
	return f, err
}

// SetFPU writes the x87/SSE state (KVM_SET_FPU).
func (v *VCPU) SetFPU(f FPU) error {
	_, err := ioctlPtr(v.h, kvmSetFPU, &f)
	return err
}

// GetXSave reads the XSAVE area (KVM_GET_XSAVE).
func (v *VCPU) GetXSave() (XSave, error) {
	var x XSave
	_, err := ioctlPtr(v.h, kvmGetXSave, &x)
	return x, err
}

// SetXSave writes the XSAVE area (KVM_SET_XSAVE).
func (v *VCPU) SetXSave(x XSave) error {
	_, err := ioctlPtr(v.h, kvmSetXSave, &x)
	return err
}

// GetXCRs reads the extended control registers, XCR0 among them
// (KVM_GET_XCRS).
func (v *VCPU) GetXCRs() (XCRs, error) {
	var x XCRs
	_, err := ioctlPtr(v.h, kvmGetXCRs, &x)
	return x, err
}

// SetXCRs writes the extended control registers (KVM_SET_XCRS).
func (v *VCPU) SetXCRs(x XCRs) error {
	_, err := ioctlPtr(v.h, kvmSetXCRs, &x)
	return err
}

// GetMSRs reads the MSRs named by indices (KVM_GET_MSRS). The kernel stops
// at the first MSR it cannot read, so the result holds only the entries it
// filled: fewer than len(indices) means indices[len(result)] failed.
func (v *VCPU) GetMSRs(indices []uint32) ([]MSREntry, error) {
	buf := packMSRIndices(indices)
	n, err := ioctlPtr(v.h, kvmGetMSRs, &buf[0])
	if err != nil {
		return nil, err
	}
	if int(n) > len(indices) {
		return nil, fmt.Errorf("KVM_GET_MSRS: kernel reports %d MSRs read of %d asked", n, len(indices))
	}
	return unpackMSREntries(buf, int(n)), nil
}

// SetMSRs writes entries (KVM_SET_MSRS) and returns how many were set; the
// kernel stops at the first MSR it refuses, entries[n].
func (v *VCPU) SetMSRs(entries []MSREntry) (int, error) {
	buf := packMSREntries(entries)
	n, err := ioctlPtr(v.h, kvmSetMSRs, &buf[0])
	return int(n), err
}

// GetLAPIC reads the local APIC register page (KVM_GET_LAPIC); needs the
// in-kernel irqchip.
func (v *VCPU) GetLAPIC() (LAPICState, error) {
	var l LAPICState
	_, err := ioctlPtr(v.h, kvmGetLAPIC, &l)
	return l, err
}

// SetLAPIC writes the local APIC register page (KVM_SET_LAPIC).
func (v *VCPU) SetLAPIC(l LAPICState) error {
	_, err := ioctlPtr(v.h, kvmSetLAPIC, &l)
	return err
}

// GetVCPUEvents reads pending exceptions, interrupts, NMIs and SMIs
// (KVM_GET_VCPU_EVENTS).
func (v *VCPU) GetVCPUEvents() (VCPUEvents, error) {
	var e VCPUEvents
	_, err := ioctlPtr(v.h, kvmGetVCPUEvents, &e)
	return e, err
}

// SetVCPUEvents writes pending events (KVM_SET_VCPU_EVENTS); e.Flags
// selects which optional fields apply.
func (v *VCPU) SetVCPUEvents(e VCPUEvents) error {
	_, err := ioctlPtr(v.h, kvmSetVCPUEvents, &e)
	return err
}

// GetMPState reads the multiprocessing state (KVM_GET_MP_STATE).
func (v *VCPU) GetMPState() (MPState, error) {
	var s MPState
	_, err := ioctlPtr(v.h, kvmGetMPState, &s)
	return s, err
}

// SetMPState writes the multiprocessing state (KVM_SET_MP_STATE).
func (v *VCPU) SetMPState(s MPState) error {
	_, err := ioctlPtr(v.h, kvmSetMPState, &s)
	return err
}

// GetDebugRegs reads DR0-3, DR6 and DR7 (KVM_GET_DEBUGREGS).
func (v *VCPU) GetDebugRegs() (DebugRegs, error) {
	var d DebugRegs
	_, err := ioctlPtr(v.h, kvmGetDebugRegs, &d)
	return d, err
}

// SetDebugRegs writes DR0-3, DR6 and DR7 (KVM_SET_DEBUGREGS).
func (v *VCPU) SetDebugRegs(d DebugRegs) error {
	_, err := ioctlPtr(v.h, kvmSetDebugRegs, &d)
	return err
}

// SetCPUID2 sets the CPUID table the guest sees (KVM_SET_CPUID2). Call it
// before the first Run: later calls fail on newer kernels unless the table
// is unchanged.
func (v *VCPU) SetCPUID2(entries []CPUIDEntry2) error {
	buf := packCPUID2(entries)
	_, err := ioctlPtr(v.h, kvmSetCPUID2, &buf[0])
	return err
}

// GetCPUID2 reads back the vCPU's CPUID table (KVM_GET_CPUID2).
func (v *VCPU) GetCPUID2() ([]CPUIDEntry2, error) {
	return getCPUIDGrowing(v.h, kvmGetCPUID2)
}

// GetTSCKHz returns the guest TSC frequency in kHz (KVM_GET_TSC_KHZ).
func (v *VCPU) GetTSCKHz() (uint32, error) {
	khz, err := v.h.ioctlArg(kvmGetTSCKHz, 0)
	return uint32(khz), err
}

// SetTSCKHz sets the guest TSC frequency in kHz (KVM_SET_TSC_KHZ, needs
// KVM_CAP_TSC_CONTROL), e.g. to keep it across migration.
func (v *VCPU) SetTSCKHz(khz uint32) error {
	_, err := v.h.ioctlArg(kvmSetTSCKHz, uintptr(khz))
	return err
}

// KVMClockCtrl tells the guest's kvmclock that the VM was paused by the
// host (KVM_KVMCLOCK_CTRL), so its soft-lockup watchdog does not fire on
// resume. It fails with EINVAL if the guest has not enabled kvmclock.
func (v *VCPU) KVMClockCtrl() error {
	_, err := v.h.ioctlArg(kvmKVMClockCtrl, 0)
	return err
}

// NMI injects a non-maskable interrupt (KVM_NMI).
func (v *VCPU) NMI() error {
	_, err := v.h.ioctlArg(kvmNMI, 0)
	return err
}

// Interrupt queues external interrupt vector irq (KVM_INTERRUPT); only
// valid without the in-kernel irqchip.
func (v *VCPU) Interrupt(irq uint32) error {
	_, err := ioctlPtr(v.h, kvmInterrupt, &irq)
	return err
}

// EnableCap enables capability c on this vCPU with up to four arguments
// (KVM_ENABLE_CAP on the vCPU fd).
func (v *VCPU) EnableCap(c Cap, args ...uint64) error {
	return enableCapOn(v.h, c, args)
}
