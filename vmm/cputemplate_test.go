package vmm

import (
	"errors"
	"strings"
	"testing"

	"github.com/ternvm/tern/boot/cputemplate"
	"github.com/ternvm/tern/kvm"
)

// intelHost is a host CPUID with the leaves the T2 template changes;
// leaf 7 EBX is ebx7.
func intelHost(ebx7 uint32) []kvm.CPUIDEntry2 {
	return []kvm.CPUIDEntry2{
		vendorLeaf("GenuineIntel"),
		{Function: 1, EAX: 0x50657, ECX: 1 << 0, EDX: 1 << 25},
		{Function: 7, Flags: kvm.CPUIDFlagSignificantIndex, EBX: ebx7},
		{Function: 0xd, Index: 0, Flags: kvm.CPUIDFlagSignificantIndex, EAX: 0xe7},
		{Function: 0xd, Index: 1, Flags: kvm.CPUIDFlagSignificantIndex, EAX: 0xf},
		{Function: 0x80000001, ECX: 1 << 5, EDX: 1 << 26},
		{Function: 0x80000008, EAX: 0x3027},
	}
}

// A T2 guest from a host with AVX-512F (leaf 7 EBX bit 16) and ERMS (bit
// 9) restores on one with neither: T2 hides AVX-512F and shows ERMS on
// every host. Without the template the same move is refused.
func TestCheckCPUIDComparesTheTemplatedCPUID(t *testing.T) {
	const avx512f, erms, avx2 = 1 << 16, 1 << 9, 1 << 5
	src := intelHost(avx2 | erms | avx512f)
	dst := intelHost(avx2)
	t2, err := cputemplate.Static("T2")
	if err != nil {
		t.Fatal(err)
	}
	guest, err := templatedCPUID(t2, src)
	if err != nil {
		t.Fatal(err)
	}
	if g := guest[2].EBX; g&avx512f != 0 || g&erms == 0 || g&avx2 == 0 {
		t.Fatalf("T2 guest's leaf 7 EBX = %#x: want AVX-512F hidden, ERMS and AVX2 shown", g)
	}
	if err := checkCPUID(dst, src, t2, guest); err != nil {
		t.Errorf("T2 guest refused on a host without AVX-512F: %v", err)
	}
	if err := checkCPUID(dst, src, nil, guest); err == nil || !strings.Contains(err.Error(), "leaf 0x7.0 EBX bits 9") {
		t.Errorf("untemplated check of the T2 guest: %v; want ERMS (bit 9) named as missing", err)
	}
	if err := checkCPUID(dst, src, nil, src); err == nil || !strings.Contains(err.Error(), "bits 9,16") {
		t.Errorf("untemplated guest: %v; want bits 9,16 named as missing", err)
	}
	// What the template shows must still be there: AVX2 is kept by T2.
	if err := checkCPUID(intelHost(0), src, t2, guest); err == nil || !strings.Contains(err.Error(), "bits 5") {
		t.Errorf("T2 guest on a host without AVX2: %v; want bit 5 named", err)
	}
	// A host whose KVM lacks a leaf the template changes cannot apply it.
	short := intelHost(avx2)[:6]
	if err := checkCPUID(short, src, t2, guest); err == nil || !strings.Contains(err.Error(), "0x80000008") {
		t.Errorf("host without leaf 0x80000008: %v", err)
	}
}

func TestCPUTemplateRecordRoundTrip(t *testing.T) {
	t2s, _ := cputemplate.Static("T2S")
	custom, err := cputemplate.ParseCustom([]byte(`{"cpuid_modifiers":[{"leaf":"0x80000001","subleaf":"0x0","flags":0,"modifiers":[{"register":"ecx","bitmap":"0bx0xxxxxx"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range []*cputemplate.Template{nil, t2s, custom} {
		got, err := recordTemplate(tm).template()
		if err != nil {
			t.Fatalf("%v: %v", tm, err)
		}
		if tm == nil {
			if got != nil {
				t.Errorf("no template read back as %v", got)
			}
			continue
		}
		if got.String() != tm.String() || len(got.CPUID) != len(tm.CPUID) || len(got.MSRs) != len(tm.MSRs) {
			t.Errorf("%v read back as %+v", tm, got)
		}
	}
	for _, bad := range []*cpuTemplateRecord{{Static: "T9"}, {}, {Static: "T2", Custom: custom}} {
		if _, err := bad.template(); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("record %+v: %v, want ErrBadSnapshot", bad, err)
		}
	}
}
