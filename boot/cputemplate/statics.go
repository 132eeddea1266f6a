package cputemplate

import (
	"fmt"
	"sort"
	"strings"
)

// The static templates follow Firecracker's (src/vmm/src/cpu_config/
// x86_64/static_cpu_templates, read at its commit 81b38b9 of 2026-08):
// T2 and C3 look like AWS T2 and C3 instances, T2S is T2 made safe to move
// between Skylake and Cascade Lake, T2A gives AMD Milan the instruction
// set T2CL gives Intel. T2CL itself is not offered.

// kvmCPUIDFlagSignificantIndex is KVM_CPUID_FLAG_SIGNIFCANT_INDEX.
const kvmCPUIDFlagSignificantIndex = 1

// clear returns a modifier that clears the given bits.
func clear(bits ...uint) Bits32 { return Bits32{Filter: mask32(bits)} }

// clearSet clears the bits of cl and sets those of st.
func clearSet(cl, st []uint) Bits32 {
	return Bits32{Filter: mask32(cl) | mask32(st), Value: mask32(st)}
}

func mask32(bits []uint) uint32 {
	var m uint32
	for _, b := range bits {
		m |= 1 << b
	}
	return m
}

func reg(r Register, b Bits32) RegisterModifier { return RegisterModifier{Register: r, Bits: b} }

// signature pins leaf 1 EAX's stepping, model, family, type, extended
// model and extended family (bits 0-13, 16-27) to sig.
func signature(sig uint32) Bits32 { return Bits32{Filter: 0x0fff3fff, Value: sig} }

// Leaf 1: what the T2-like templates hide. ECX: DTES64, MONITOR, DS-CPL,
// VMX, SMX, EIST, TM2, CNXT-ID, SDBG, xTPR, PDCM, DCA. EDX: PSN, DS, ACPI,
// SS, TM, IA64, PBE cleared; MCE and MTRR always shown.
var (
	t2Leaf1ECX = clear(2, 3, 4, 5, 6, 7, 8, 10, 11, 14, 15, 18)
	t2Leaf1EDX = clearSet([]uint{18, 21, 22, 27, 29, 30, 31}, []uint{7, 12})
)

// Leaf 7.0 of T2, T2S and T2A. EBX: SGX, HLE, RTM, RDT-M, MPX, RDT-A,
// AVX512F/DQ, RDSEED, ADX, AVX512_IFMA, bit 22, CLFLUSHOPT, CLWB, PT,
// AVX512PF/ER/CD, SHA, AVX512BW/VL cleared; ERMS shown. ECX: AVX512_VBMI,
// UMIP, PKU, OSPKE, AVX512_VBMI2, GFNI, VAES, VPCLMULQDQ, AVX512_VNNI,
// AVX512_BITALG, AVX512_VPOPCNTDQ, LA57, RDPID, SGX_LC. EDX:
// AVX512_4VNNIW, AVX512_4FMAPS, FSRM, AVX512_VP2INTERSECT.
var t2Leaf7 = CPUIDModifier{Leaf: 0x7, Subleaf: 0, Flags: kvmCPUIDFlagSignificantIndex, Registers: []RegisterModifier{
	reg(EBX, clearSet([]uint{2, 4, 11, 12, 14, 15, 16, 17, 18, 19, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31}, []uint{9})),
	reg(ECX, clear(1, 2, 3, 4, 6, 8, 9, 10, 11, 12, 14, 16, 22, 30)),
	reg(EDX, clear(2, 3, 4, 8)),
}}

// XSAVE, all templates: leaf 0xd.0 EAX hides the MPX, AVX-512 and PKRU
// state components, 0xd.1 EAX XSAVEC, XGETBV-ECX1 and XSAVES.
var xsaveLeaves = []CPUIDModifier{
	{Leaf: 0xd, Subleaf: 0, Flags: kvmCPUIDFlagSignificantIndex, Registers: []RegisterModifier{reg(EAX, clear(3, 4, 5, 6, 7, 9))}},
	{Leaf: 0xd, Subleaf: 1, Flags: kvmCPUIDFlagSignificantIndex, Registers: []RegisterModifier{reg(EAX, clear(1, 2, 3))}},
}

func join(parts ...[]CPUIDModifier) []CPUIDModifier {
	var out []CPUIDModifier
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func t2CPUID() []CPUIDModifier {
	return join(
		[]CPUIDModifier{
			{Leaf: 0x1, Registers: []RegisterModifier{reg(EAX, signature(0x000306f2)), reg(ECX, t2Leaf1ECX), reg(EDX, t2Leaf1EDX)}},
			t2Leaf7,
		},
		xsaveLeaves,
		[]CPUIDModifier{
			// PREFETCHW, MONITORX; 1 GiB pages.
			{Leaf: 0x80000001, Registers: []RegisterModifier{reg(ECX, clear(8, 29)), reg(EDX, clear(26))}},
			// WBNOINVD.
			{Leaf: 0x80000008, Registers: []RegisterModifier{reg(EBX, clear(9))}},
		},
	)
}

// msrArchCapabilities is IA32_ARCH_CAPABILITIES.
const msrArchCapabilities = 0x10a

// t2sArchCapabilities is the whole IA32_ARCH_CAPABILITIES a T2S guest
// sees: RSBA, SKIP_L1DFL_VMENTRY, IF_PSCHANGE_MC_NO, MISC_PACKAGE_CTLS,
// ENERGY_FILTERING_CTL, FB_CLEAR, RRSBA, GDS_NO, RFDS_NO.
const t2sArchCapabilities = 1<<2 | 1<<3 | 1<<6 | 1<<10 | 1<<11 | 1<<17 | 1<<19 | 1<<26 | 1<<27

type static struct {
	vendor string
	build  func() Template
}

var statics = map[string]static{
	"T2": {VendorIntel, func() Template { return Template{CPUID: t2CPUID()} }},
	"T2S": {VendorIntel, func() Template {
		return Template{CPUID: t2CPUID(), MSRs: []MSRModifier{{Addr: msrArchCapabilities, Bits: Bits64{Filter: ^uint64(0), Value: t2sArchCapabilities}}}}
	}},
	"C3": {VendorIntel, func() Template {
		return Template{CPUID: join(
			[]CPUIDModifier{
				{Leaf: 0x1, Registers: []RegisterModifier{
					reg(EAX, signature(0x000306e4)),
					// DTES64, MONITOR, DS-CPL, VMX, TM2, CNXT-ID, SDBG, FMA, xTPR, PDCM, MOVBE.
					reg(ECX, clear(2, 3, 4, 5, 8, 10, 11, 12, 14, 15, 22)),
					// PSN, DS, ACPI, SS, TM, PBE; MCE and MTRR shown.
					reg(EDX, clearSet([]uint{18, 21, 22, 27, 29, 31}, []uint{7, 12})),
				}},
				{Leaf: 0x7, Subleaf: 0, Flags: kvmCPUIDFlagSignificantIndex, Registers: []RegisterModifier{
					// SGX, BMI1, HLE, AVX2, BMI2, INVPCID, RTM, RDT-M, MPX, RDT-A, AVX512F/DQ,
					// RDSEED, ADX, AVX512_IFMA, CLFLUSHOPT, CLWB, PT, AVX512PF/ER/CD, SHA, AVX512BW/VL.
					reg(EBX, clear(2, 3, 4, 5, 8, 10, 11, 12, 14, 15, 16, 17, 18, 19, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31)),
					// AVX512_VBMI, UMIP, PKU, OSPKE, AVX512_VNNI, AVX512_VPOPCNTDQ, LA57, RDPID, SGX_LC.
					reg(ECX, clear(1, 2, 3, 4, 11, 14, 16, 22, 30)),
					// AVX512_4VNNIW, AVX512_4FMAPS.
					reg(EDX, clear(2, 3)),
				}},
			},
			xsaveLeaves,
			// LZCNT, PREFETCHW; 1 GiB pages.
			[]CPUIDModifier{{Leaf: 0x80000001, Registers: []RegisterModifier{reg(ECX, clear(5, 8)), reg(EDX, clear(26))}}},
		)}
	}},
	"T2A": {VendorAMD, func() Template {
		return Template{CPUID: join(
			[]CPUIDModifier{
				{Leaf: 0x1, Registers: []RegisterModifier{reg(EAX, signature(0x000306f2)), reg(ECX, t2Leaf1ECX), reg(EDX, t2Leaf1EDX)}},
				t2Leaf7,
			},
			xsaveLeaves,
			[]CPUIDModifier{
				// SVM, SSE4A, MisAlignSse, 3DNowPrefetch, MONITORX; MmxExt, FFXSR, 1 GiB pages.
				{Leaf: 0x80000001, Registers: []RegisterModifier{reg(ECX, clear(2, 6, 7, 8, 29)), reg(EDX, clear(22, 25, 26))}},
				// CLZERO and WBNOINVD hidden; RstrFpErrPtrs, IbrsPreferred,
				// IbrsSameMode and EferLmsleUnsupported shown.
				{Leaf: 0x80000008, Registers: []RegisterModifier{reg(EBX, clearSet([]uint{0, 9}, []uint{2, 18, 19, 20}))}},
			},
		)}
	}},
}

// StaticNames are the static templates' names, sorted.
func StaticNames() []string {
	names := make([]string, 0, len(statics))
	for n := range statics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Static returns the static template of that name; "None" (or "") is no
// template, nil. Another name is an error that lists the known ones.
func Static(name string) (*Template, error) {
	if name == "" || name == "None" {
		return nil, nil
	}
	s, ok := statics[name]
	if !ok {
		return nil, fmt.Errorf("no static CPU template %q: tern has %s, or None", name, strings.Join(StaticNames(), ", "))
	}
	t := s.build()
	t.Name = name
	return &t, nil
}
