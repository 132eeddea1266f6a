package vmm

import (
	"errors"
	"strings"
	"testing"

	"github.com/ternvm/tern/kvm"
)

// vendorLeaf is CPUID leaf 0 for the 12-byte vendor string v.
func vendorLeaf(v string) kvm.CPUIDEntry2 {
	le := func(s string) uint32 { return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24 }
	return kvm.CPUIDEntry2{Function: 0, EAX: 0xd, EBX: le(v[0:4]), EDX: le(v[4:8]), ECX: le(v[8:12])}
}

func TestCheckCPUIDAcceptsTheSameCPUAndTernsOwnBits(t *testing.T) {
	host := []kvm.CPUIDEntry2{vendorLeaf("AuthenticAMD"), {Function: 1, ECX: 1 << 0, EDX: 1 << 25}, {Function: 7, Flags: kvm.CPUIDFlagSignificantIndex, EBX: 1 << 5}}
	// The guest's copy has the bits KVM or tern set regardless of the
	// host: OSXSAVE (27), TSC deadline (24) and hypervisor (31).
	guest := []kvm.CPUIDEntry2{vendorLeaf("AuthenticAMD"), {Function: 1, ECX: 1<<0 | 1<<27 | 1<<24 | 1<<31, EDX: 1 << 25}, {Function: 7, Flags: kvm.CPUIDFlagSignificantIndex, EBX: 1 << 5}}
	if err := checkCPUID(host, host, nil, guest); err != nil {
		t.Fatalf("same CPU refused: %v", err)
	}
}

func TestCheckCPUIDNamesMissingFeaturesAndVendor(t *testing.T) {
	host := []kvm.CPUIDEntry2{vendorLeaf("AuthenticAMD"), {Function: 7, Flags: kvm.CPUIDFlagSignificantIndex, EBX: 1 << 3}}
	guest := []kvm.CPUIDEntry2{vendorLeaf("AuthenticAMD"), {Function: 7, Flags: kvm.CPUIDFlagSignificantIndex, EBX: 1<<3 | 1<<5 | 1<<16}}
	source := []kvm.CPUIDEntry2{vendorLeaf("AuthenticAMD"), {Function: 7, Flags: kvm.CPUIDFlagSignificantIndex, EBX: 1<<3 | 1<<5 | 1<<16}}
	err := checkCPUID(host, source, nil, guest)
	if err == nil || !strings.Contains(err.Error(), "leaf 0x7.0 EBX bits 5,16") {
		t.Errorf("missing AVX2/AVX-512F: err = %v, want it to name leaf 0x7.0 EBX bits 5,16", err)
	}
	amd := []kvm.CPUIDEntry2{vendorLeaf("AuthenticAMD")}
	err = checkCPUID([]kvm.CPUIDEntry2{vendorLeaf("GenuineIntel")}, amd, nil, amd)
	if err == nil || !strings.Contains(err.Error(), `snapshot "AuthenticAMD", this host "GenuineIntel"`) {
		t.Errorf("vendor change: err = %v", err)
	}
}

// On a backend that fills a vCPU's CPUID with host bits KVM never lists as
// supported (PVM does), a snapshot must restore on the host that took it:
// only the bits the source supported are required here.
func TestCheckCPUIDIgnoresGuestBitsTheSourceNeverSupported(t *testing.T) {
	supported := []kvm.CPUIDEntry2{vendorLeaf("AuthenticAMD"), {Function: 7, Flags: kvm.CPUIDFlagSignificantIndex, EBX: 1 << 3}}
	guest := []kvm.CPUIDEntry2{vendorLeaf("AuthenticAMD"), {Function: 7, Flags: kvm.CPUIDFlagSignificantIndex, EBX: 1<<3 | 1<<9 | 1<<18}}
	if err := checkCPUID(supported, supported, nil, guest); err != nil {
		t.Fatalf("snapshot refused on the host that took it: %v", err)
	}
}

// An empty CPUID list must not skip the check.
func TestCheckCPUIDRefusesMissingLists(t *testing.T) {
	supported := []kvm.CPUIDEntry2{vendorLeaf("AuthenticAMD"), {Function: 7, Flags: kvm.CPUIDFlagSignificantIndex, EBX: 1 << 3}}
	if err := checkCPUID(supported, supported, nil, nil); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("empty guest CPUID: err = %v, want ErrBadSnapshot", err)
	}
	if err := checkCPUID(supported, nil, nil, supported); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("empty source CPUID: err = %v, want ErrBadSnapshot", err)
	}
}

func TestAdvanceTSCMovesOnlyTheTSC(t *testing.T) {
	in := []kvm.MSREntry{{Index: msrTSC, Data: 1000}, {Index: 0xc0000080, Data: 0x500}}
	// 2 s at 3 GHz (3,000,000 kHz) is 6e9 cycles.
	out := advanceTSC(in, 3_000_000, 2_000_000_000)
	if out[0].Data != 1000+6_000_000_000 || out[1].Data != 0x500 {
		t.Errorf("advanced MSRs = %+v", out)
	}
	if in[0].Data != 1000 {
		t.Error("advanceTSC changed its input")
	}
}
