package vmm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ternvm/tern/kvm"
)

// vcpuState is one vCPU's part of a snapshot (section "vcpu/N"). The
// fields mirror the KVM structures they come from; the two big register
// pages are their kernel layout as bytes (base64 in JSON), which decodes
// an order of magnitude faster than a JSON array of numbers.
type vcpuState struct {
	ID        int
	CPUID     []kvm.CPUIDEntry2
	MPState   kvm.MPState
	Regs      kvm.Regs
	Sregs     kvm.Sregs
	FPU       kvm.FPU
	XSave     []byte // struct kvm_xsave, 4096 bytes
	XCRs      kvm.XCRs
	DebugRegs kvm.DebugRegs
	LAPIC     []byte // struct kvm_lapic_state, 1024 bytes
	MSRs      []kvm.MSREntry
	Events    kvm.VCPUEvents
	TSCKHz    uint32
}

// msrTSC is IA32_TIME_STAMP_COUNTER, advanced on restore by the time the
// guest spent saved.
const msrTSC = 0x10

// saveState reads the vCPU's whole state. It runs on the vCPU's thread
// while the vCPU is parked.
func (c *vcpu) saveState(msrIndices []uint32) (vcpuState, error) {
	k := c.kvm
	st := vcpuState{ID: c.id}
	var err error
	wrap := func(what string, e error) error { return fmt.Errorf("vCPU %d: save %s: %w", c.id, what, e) }
	if st.CPUID, err = k.GetCPUID2(); err != nil {
		return st, wrap("CPUID", err)
	}
	if st.MPState, err = k.GetMPState(); err != nil {
		return st, wrap("MP state", err)
	}
	if st.Regs, err = k.GetRegs(); err != nil {
		return st, wrap("registers", err)
	}
	if st.Sregs, err = k.GetSregs(); err != nil {
		return st, wrap("special registers", err)
	}
	if st.FPU, err = k.GetFPU(); err != nil {
		return st, wrap("FPU", err)
	}
	xs, err := k.GetXSave()
	if err != nil {
		return st, wrap("XSAVE area", err)
	}
	st.XSave = xsaveBytes(xs)
	if st.XCRs, err = k.GetXCRs(); err != nil {
		return st, wrap("XCRs", err)
	}
	if st.DebugRegs, err = k.GetDebugRegs(); err != nil {
		return st, wrap("debug registers", err)
	}
	lapic, err := k.GetLAPIC()
	if err != nil {
		return st, wrap("LAPIC", err)
	}
	st.LAPIC = lapic.Regs[:]
	if st.MSRs, err = readMSRs(k, msrIndices); err != nil {
		return st, wrap("MSRs", err)
	}
	if st.Events, err = k.GetVCPUEvents(); err != nil {
		return st, wrap("events", err)
	}
	if st.TSCKHz, err = k.GetTSCKHz(); err != nil {
		return st, wrap("TSC frequency", err)
	}
	return st, nil
}

// readMSRs reads every MSR in indices that this vCPU has. KVM's list holds
// MSRs a given guest CPU model lacks (KVM_GET_MSRS stops at the first it
// refuses), so each refused one is skipped and the read goes on after it.
func readMSRs(k *kvm.VCPU, indices []uint32) ([]kvm.MSREntry, error) {
	var out []kvm.MSREntry
	for len(indices) > 0 {
		got, err := k.GetMSRs(indices)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		indices = indices[min(len(got)+1, len(indices)):]
	}
	return out, nil
}

// restoreState loads a saved state into a new vCPU, in the order KVM needs:
// CPUID before anything that depends on the CPU model, the special
// registers (which set the APIC base) before the LAPIC, the LAPIC before
// the MSRs (TSC deadline), pending events last.
func (c *vcpu) restoreState(st vcpuState, advanceNS int64) error {
	k := c.kvm
	wrap := func(what string, e error) error { return fmt.Errorf("vCPU %d: restore %s: %w", c.id, what, e) }
	if err := k.SetCPUID2(st.CPUID); err != nil {
		return wrap("CPUID", err)
	}
	if st.TSCKHz != 0 {
		if cur, err := k.GetTSCKHz(); err == nil && cur != st.TSCKHz {
			if err := k.SetTSCKHz(st.TSCKHz); err != nil {
				return wrap(fmt.Sprintf("TSC frequency (snapshot %d kHz, this host %d kHz)", st.TSCKHz, cur), err)
			}
		}
	}
	if err := k.SetMPState(st.MPState); err != nil {
		return wrap("MP state", err)
	}
	if err := k.SetRegs(st.Regs); err != nil {
		return wrap("registers", err)
	}
	if err := k.SetSregs(st.Sregs); err != nil {
		return wrap("special registers", err)
	}
	if err := k.SetFPU(st.FPU); err != nil {
		return wrap("FPU", err)
	}
	xs, err := xsaveFromBytes(st.XSave)
	if err != nil {
		return wrap("XSAVE area", err)
	}
	if err := k.SetXSave(xs); err != nil {
		return wrap("XSAVE area (does this host's CPU have the snapshot's XSAVE features?)", err)
	}
	if err := k.SetXCRs(st.XCRs); err != nil {
		return wrap("XCRs", err)
	}
	if err := k.SetDebugRegs(st.DebugRegs); err != nil {
		return wrap("debug registers", err)
	}
	var lapic kvm.LAPICState
	if len(st.LAPIC) != len(lapic.Regs) {
		return wrap("LAPIC", fmt.Errorf("%w: %d bytes saved, the page is %d", ErrBadSnapshot, len(st.LAPIC), len(lapic.Regs)))
	}
	copy(lapic.Regs[:], st.LAPIC)
	if err := k.SetLAPIC(lapic); err != nil {
		return wrap("LAPIC", err)
	}
	msrs := advanceTSC(st.MSRs, st.TSCKHz, advanceNS)
	if err := writeMSRs(k, msrs); err != nil {
		return wrap("MSRs", err)
	}
	if err := k.SetVCPUEvents(st.Events); err != nil {
		return wrap("events", err)
	}
	return nil
}

// xsaveBytes is the XSAVE area in the kernel's layout.
func xsaveBytes(x kvm.XSave) []byte {
	out := make([]byte, 0, 4*len(x.Region))
	for _, w := range x.Region {
		out = binary.LittleEndian.AppendUint32(out, w)
	}
	return out
}

func xsaveFromBytes(b []byte) (kvm.XSave, error) {
	var x kvm.XSave
	if len(b) != 4*len(x.Region) {
		return x, fmt.Errorf("%w: %d bytes saved, the area is %d", ErrBadSnapshot, len(b), 4*len(x.Region))
	}
	for i := range x.Region {
		x.Region[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return x, nil
}

// advanceTSC moves the saved TSC on by ns of elapsed host time, so that the
// guest's TSC and kvmclock move on together.
func advanceTSC(msrs []kvm.MSREntry, khz uint32, ns int64) []kvm.MSREntry {
	out := append([]kvm.MSREntry(nil), msrs...)
	if ns <= 0 || khz == 0 {
		return out
	}
	for i := range out {
		if out[i].Index == msrTSC {
			out[i].Data += uint64(ns) / 1000 * uint64(khz) / 1000
		}
	}
	return out
}

// errMSRRefused names an MSR this host's KVM would not take.
var errMSRRefused = errors.New("KVM refused the MSR")

// writeMSRs sets every MSR. One this host refuses is an error unless the
// new vCPU already holds the saved value, in which case nothing is lost.
func writeMSRs(k *kvm.VCPU, msrs []kvm.MSREntry) error {
	for len(msrs) > 0 {
		n, err := k.SetMSRs(msrs)
		if err != nil {
			return err
		}
		if n >= len(msrs) {
			return nil
		}
		bad := msrs[n]
		cur, err := k.GetMSRs([]uint32{bad.Index})
		if err != nil || len(cur) != 1 || cur[0].Data != bad.Data {
			return fmt.Errorf("%w: MSR %#x = %#x (this host's CPU or KVM lacks it)", errMSRRefused, bad.Index, bad.Data)
		}
		msrs = msrs[n+1:]
	}
	return nil
}
