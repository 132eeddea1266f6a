// Package cputemplate pins what a guest's vCPUs report about their CPU:
// Firecracker's CPU templates, static ones by name (T2, T2S, C3 for Intel
// hosts, T2A for AMD) and custom ones in Firecracker's JSON. A template
// clears, sets or keeps single bits of CPUID registers and MSRs, so that
// hosts of different models show a guest the same CPU and a snapshot of
// it can be restored, or the guest migrated, across them.
//
// Templates hide features; they are no protection against a guest that
// uses an instruction without checking its CPUID bit.
package cputemplate

import (
	"fmt"

	"github.com/ternvm/tern/boot"
)

// Register names one of the four CPUID output registers.
type Register int

// The CPUID output registers.
const (
	EAX Register = iota
	EBX
	ECX
	EDX
)

var registerNames = [...]string{"eax", "ebx", "ecx", "edx"}

func (r Register) String() string {
	if r < EAX || r > EDX {
		return fmt.Sprintf("register(%d)", int(r))
	}
	return registerNames[r]
}

// Bits32 changes a 32-bit value: bits set in Filter are replaced by those
// of Value, the others are kept. Value has no bits outside Filter.
type Bits32 struct{ Filter, Value uint32 }

// Apply returns v with the filtered bits replaced.
func (b Bits32) Apply(v uint32) uint32 { return v&^b.Filter | b.Value }

// Bits64 is Bits32 for a 64-bit MSR.
type Bits64 struct{ Filter, Value uint64 }

// Apply returns v with the filtered bits replaced.
func (b Bits64) Apply(v uint64) uint64 { return v&^b.Filter | b.Value }

// RegisterModifier changes one register of a CPUID leaf.
type RegisterModifier struct {
	Register Register
	Bits     Bits32
}

// CPUIDModifier changes the CPUID entry of one leaf and subleaf; Flags
// replaces the entry's KVM flags (KVM_CPUID_FLAG_*), as in Firecracker.
type CPUIDModifier struct {
	Leaf, Subleaf, Flags uint32
	Registers            []RegisterModifier
}

// MSRModifier changes the value a vCPU starts with in one MSR.
type MSRModifier struct {
	Addr uint32
	Bits Bits64
}

// Capability is a KVM capability (KVM_CAP_* number) the template wants
// checked on the host, or, with Remove, taken off the list of those
// checked.
type Capability struct {
	Number uint32
	Remove bool
}

// Template is a CPU template. Name is a static template's name and empty
// for a custom one.
type Template struct {
	Name            string
	CPUID           []CPUIDModifier
	MSRs            []MSRModifier
	KVMCapabilities []Capability
}

// Vendor strings of CPUID leaf 0.
const (
	VendorIntel = "GenuineIntel"
	VendorAMD   = "AuthenticAMD"
)

// Vendor is the CPU vendor a static template is made for, or "" for a
// custom template, which any host may take.
func (t *Template) Vendor() string {
	if s, ok := statics[t.Name]; ok {
		return s.vendor
	}
	return ""
}

// CheckVendor refuses a static template made for another vendor's CPUs
// than hostVendor (CPUID leaf 0 of the host): a template pins feature
// bits, and one vendor cannot be dressed up as another.
func (t *Template) CheckVendor(hostVendor string) error {
	want := t.Vendor()
	if want == "" || want == hostVendor {
		return nil
	}
	return fmt.Errorf("CPU template %s is for %s CPUs, this host's CPU is %q", t.Name, vendorName(want), hostVendor)
}

func vendorName(v string) string {
	switch v {
	case VendorIntel:
		return "Intel"
	case VendorAMD:
		return "AMD"
	}
	return v
}

// String names the template for logs and errors.
func (t *Template) String() string {
	if t == nil {
		return "None"
	}
	if t.Name != "" {
		return t.Name
	}
	return "custom"
}

// ApplyCPUID returns a copy of entries with the template's CPUID
// modifiers applied. Every leaf and subleaf the template names must be
// among entries (what KVM offers): a template that changes a leaf the
// host lacks would not pin what it promises.
func (t *Template) ApplyCPUID(entries []boot.CPUIDEntry) ([]boot.CPUIDEntry, error) {
	out := append([]boot.CPUIDEntry(nil), entries...)
	for _, m := range t.CPUID {
		i := findEntry(out, m.Leaf, m.Subleaf)
		if i < 0 {
			return nil, fmt.Errorf("CPU template %s changes CPUID leaf %#x subleaf %#x, which this host's KVM does not offer", t, m.Leaf, m.Subleaf)
		}
		e := &out[i]
		e.Flags = m.Flags
		for _, r := range m.Registers {
			switch r.Register {
			case EAX:
				e.EAX = r.Bits.Apply(e.EAX)
			case EBX:
				e.EBX = r.Bits.Apply(e.EBX)
			case ECX:
				e.ECX = r.Bits.Apply(e.ECX)
			case EDX:
				e.EDX = r.Bits.Apply(e.EDX)
			default:
				return nil, fmt.Errorf("CPU template %s: leaf %#x: no such register %v", t, m.Leaf, r.Register)
			}
		}
	}
	return out, nil
}

// findEntry matches leaf and subleaf exactly, as Firecracker keys CPUID
// entries; KVM lists a leaf without subleaves at subleaf 0.
func findEntry(es []boot.CPUIDEntry, leaf, subleaf uint32) int {
	for i, e := range es {
		if e.Function == leaf && e.Index == subleaf {
			return i
		}
	}
	return -1
}
