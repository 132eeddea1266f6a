package vmm

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/boot/cputemplate"
	"github.com/ternvm/tern/kvm"
)

// checkTemplateHost checks that this host can take the CPU template: a
// static template's vendor is the host's, and the KVM capabilities it
// names are here ("N") or are not ones tern needs ("!N": tern cannot
// skip a check it relies on, and skipping one it does not make is
// nothing).
func checkTemplateHost(t *cputemplate.Template, sys *kvm.System, supported []kvm.CPUIDEntry2) error {
	if t == nil {
		return nil
	}
	if err := t.CheckVendor(boot.CPUVendor(toBootCPUID(supported))); err != nil {
		return err
	}
	for _, c := range t.KVMCapabilities {
		kc := kvm.Cap(c.Number)
		if c.Remove {
			if slices.Contains(requiredCaps, kc) {
				return fmt.Errorf("CPU template %s drops the check of KVM capability %s, which tern cannot run without", t, capName(kc))
			}
			continue
		}
		n, err := sys.CheckExtension(kc)
		if err != nil {
			return fmt.Errorf("CPU template %s: check KVM capability %s: %w", t, capName(kc), err)
		}
		if n <= 0 {
			return fmt.Errorf("CPU template %s needs KVM capability %s, which this host's KVM lacks", t, capName(kc))
		}
	}
	return nil
}

// capName is the capability's number, with its name where tern knows it.
func capName(c kvm.Cap) string {
	if name := c.String(); !strings.HasPrefix(name, "KVM_CAP(") {
		return fmt.Sprintf("%d (%s)", uint32(c), name)
	}
	return fmt.Sprint(uint32(c))
}

// templatedCPUID is what KVM supports with the template applied: the
// CPUID the guest's vCPUs are shaped from.
func templatedCPUID(t *cputemplate.Template, supported []kvm.CPUIDEntry2) ([]kvm.CPUIDEntry2, error) {
	if t == nil {
		return supported, nil
	}
	out, err := t.ApplyCPUID(toBootCPUID(supported))
	if err != nil {
		return nil, err
	}
	return fromBootCPUID(out), nil
}

// templateDrift lists the template's bits that the vCPU's CPUID (got,
// what KVM_GET_CPUID2 reports after KVM_SET_CPUID2 of set) does not
// show as set. Some KVM backends fill feature leaves from the host
// whatever the VMM set (PVM does), and KVM may drop bits quietly; a
// template it does not honour promises the guest a CPU it does not have.
func templateDrift(t *cputemplate.Template, set, got []kvm.CPUIDEntry2) []string {
	if t == nil {
		return nil
	}
	find := func(es []kvm.CPUIDEntry2, leaf, sub uint32) (kvm.CPUIDEntry2, bool) {
		for _, e := range es {
			if e.Function == leaf && e.Index == sub {
				return e, true
			}
		}
		return kvm.CPUIDEntry2{}, false
	}
	regs := func(e kvm.CPUIDEntry2) [4]uint32 { return [4]uint32{e.EAX, e.EBX, e.ECX, e.EDX} }
	var out []string
	for _, m := range t.CPUID {
		s, ok1 := find(set, m.Leaf, m.Subleaf)
		g, ok2 := find(got, m.Leaf, m.Subleaf)
		if !ok1 || !ok2 {
			continue
		}
		for _, r := range m.Registers {
			if d := (regs(s)[r.Register] ^ regs(g)[r.Register]) & r.Bits.Filter; d != 0 {
				out = append(out, fmt.Sprintf("leaf %#x.%d %v bits %s", m.Leaf, m.Subleaf, r.Register, bitList(d)))
			}
		}
	}
	return out
}

// applyTemplateMSRs sets the MSRs the template modifies, each from the
// value the vCPU has now (what KVM or bootMSRs gave it).
func applyTemplateMSRs(t *cputemplate.Template, k *kvm.VCPU) error {
	if t == nil {
		return nil
	}
	for _, m := range t.MSRs {
		cur, err := k.GetMSRs([]uint32{m.Addr})
		if err != nil {
			return fmt.Errorf("CPU template %s: read MSR %#x: %w", t, m.Addr, err)
		}
		if len(cur) != 1 {
			return fmt.Errorf("CPU template %s modifies MSR %#x, which this host's KVM does not have", t, m.Addr)
		}
		v := m.Bits.Apply(cur[0].Data)
		n, err := k.SetMSRs([]kvm.MSREntry{{Index: m.Addr, Data: v}})
		if err != nil {
			return fmt.Errorf("CPU template %s: set MSR %#x: %w", t, m.Addr, err)
		}
		if n != 1 {
			return fmt.Errorf("CPU template %s: KVM refuses MSR %#x = %#x", t, m.Addr, v)
		}
	}
	return nil
}

// cpuTemplateRecord is the template in a snapshot or migration: a static
// template by name, a custom one in Firecracker's JSON.
type cpuTemplateRecord struct {
	Static string                `json:",omitempty"`
	Custom *cputemplate.Template `json:",omitempty"`
}

func recordTemplate(t *cputemplate.Template) *cpuTemplateRecord {
	switch {
	case t == nil:
		return nil
	case t.Name != "":
		return &cpuTemplateRecord{Static: t.Name}
	}
	return &cpuTemplateRecord{Custom: t}
}

// template reads the record back: a static template this tern knows, or
// a custom one (checked as it was decoded).
func (r *cpuTemplateRecord) template() (*cputemplate.Template, error) {
	switch {
	case r == nil:
		return nil, nil
	case r.Static != "" && r.Custom != nil:
		return nil, fmt.Errorf("%w: the CPU template is both static (%s) and custom", ErrBadSnapshot, r.Static)
	case r.Static != "":
		t, err := cputemplate.Static(r.Static)
		if err != nil || t == nil {
			return nil, fmt.Errorf("%w: CPU template %q: %v", ErrBadSnapshot, r.Static, err)
		}
		return t, nil
	case r.Custom == nil:
		return nil, fmt.Errorf("%w: an empty CPU template record", ErrBadSnapshot)
	}
	return r.Custom, nil
}

func toBootCPUID(es []kvm.CPUIDEntry2) []boot.CPUIDEntry {
	out := make([]boot.CPUIDEntry, len(es))
	for i, e := range es {
		out[i] = boot.CPUIDEntry{Function: e.Function, Index: e.Index, Flags: e.Flags, EAX: e.EAX, EBX: e.EBX, ECX: e.ECX, EDX: e.EDX}
	}
	return out
}

func fromBootCPUID(es []boot.CPUIDEntry) []kvm.CPUIDEntry2 {
	out := make([]kvm.CPUIDEntry2, len(es))
	for i, e := range es {
		out[i] = kvm.CPUIDEntry2{Function: e.Function, Index: e.Index, Flags: e.Flags, EAX: e.EAX, EBX: e.EBX, ECX: e.ECX, EDX: e.EDX}
	}
	return out
}

// CPUTemplate is the CPU template the guest's vCPUs were made with (nil
// for none); a restored or migrated VM has its source's.
func (v *VM) CPUTemplate() *cputemplate.Template { return v.cfg.CPUTemplate }
