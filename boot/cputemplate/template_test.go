package cputemplate

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ternvm/tern/boot"
)

// feature is one CPUID bit a static template must clear or set, as
// Firecracker's CPU template documentation and definitions list it by
// name (Intel SDM / AMD APM bit positions), written out here by hand.
type feature struct {
	leaf, subleaf uint32
	reg           Register
	bit           uint
	name          string
	set           bool // shown whatever the host has; otherwise hidden
}

func hide(leaf, sub uint32, r Register, bit uint, name string) feature {
	return feature{leaf, sub, r, bit, name, false}
}
func show(leaf, sub uint32, r Register, bit uint, name string) feature {
	return feature{leaf, sub, r, bit, name, true}
}

// leaf1Intel: what T2, T2S and T2A hide or show in leaf 1.
var leaf1T2 = []feature{
	hide(1, 0, ECX, 2, "DTES64"), hide(1, 0, ECX, 3, "MONITOR"), hide(1, 0, ECX, 4, "DS-CPL"), hide(1, 0, ECX, 5, "VMX"),
	hide(1, 0, ECX, 6, "SMX"), hide(1, 0, ECX, 7, "EIST"), hide(1, 0, ECX, 8, "TM2"), hide(1, 0, ECX, 10, "CNXT-ID"),
	hide(1, 0, ECX, 11, "SDBG"), hide(1, 0, ECX, 14, "xTPR"), hide(1, 0, ECX, 15, "PDCM"), hide(1, 0, ECX, 18, "DCA"),
	show(1, 0, EDX, 7, "MCE"), show(1, 0, EDX, 12, "MTRR"), hide(1, 0, EDX, 18, "PSN"), hide(1, 0, EDX, 21, "DS"),
	hide(1, 0, EDX, 22, "ACPI"), hide(1, 0, EDX, 27, "SS"), hide(1, 0, EDX, 29, "TM"), hide(1, 0, EDX, 30, "IA64"),
	hide(1, 0, EDX, 31, "PBE"),
}

var leaf7T2 = []feature{
	hide(7, 0, EBX, 2, "SGX"), hide(7, 0, EBX, 4, "HLE"), show(7, 0, EBX, 9, "ERMS"), hide(7, 0, EBX, 11, "RTM"),
	hide(7, 0, EBX, 12, "RDT-M"), hide(7, 0, EBX, 14, "MPX"), hide(7, 0, EBX, 15, "RDT-A"), hide(7, 0, EBX, 16, "AVX512F"),
	hide(7, 0, EBX, 17, "AVX512DQ"), hide(7, 0, EBX, 18, "RDSEED"), hide(7, 0, EBX, 19, "ADX"), hide(7, 0, EBX, 21, "AVX512_IFMA"),
	hide(7, 0, EBX, 22, "PCOMMIT"), hide(7, 0, EBX, 23, "CLFLUSHOPT"), hide(7, 0, EBX, 24, "CLWB"), hide(7, 0, EBX, 25, "PT"),
	hide(7, 0, EBX, 26, "AVX512PF"), hide(7, 0, EBX, 27, "AVX512ER"), hide(7, 0, EBX, 28, "AVX512CD"), hide(7, 0, EBX, 29, "SHA"),
	hide(7, 0, EBX, 30, "AVX512BW"), hide(7, 0, EBX, 31, "AVX512VL"),
	hide(7, 0, ECX, 1, "AVX512_VBMI"), hide(7, 0, ECX, 2, "UMIP"), hide(7, 0, ECX, 3, "PKU"), hide(7, 0, ECX, 4, "OSPKE"),
	hide(7, 0, ECX, 6, "AVX512_VBMI2"), hide(7, 0, ECX, 8, "GFNI"), hide(7, 0, ECX, 9, "VAES"), hide(7, 0, ECX, 10, "VPCLMULQDQ"),
	hide(7, 0, ECX, 11, "AVX512_VNNI"), hide(7, 0, ECX, 12, "AVX512_BITALG"), hide(7, 0, ECX, 14, "AVX512_VPOPCNTDQ"),
	hide(7, 0, ECX, 16, "LA57"), hide(7, 0, ECX, 22, "RDPID"), hide(7, 0, ECX, 30, "SGX_LC"),
	hide(7, 0, EDX, 2, "AVX512_4VNNIW"), hide(7, 0, EDX, 3, "AVX512_4FMAPS"), hide(7, 0, EDX, 4, "FSRM"), hide(7, 0, EDX, 8, "AVX512_VP2INTERSECT"),
}

var xsaveAll = []feature{
	hide(0xd, 0, EAX, 3, "MPX BNDREGS"), hide(0xd, 0, EAX, 4, "MPX BNDCSR"), hide(0xd, 0, EAX, 5, "AVX-512 opmask"),
	hide(0xd, 0, EAX, 6, "AVX-512 ZMM_Hi256"), hide(0xd, 0, EAX, 7, "AVX-512 Hi16_ZMM"), hide(0xd, 0, EAX, 9, "PKRU"),
	hide(0xd, 1, EAX, 1, "XSAVEC"), hide(0xd, 1, EAX, 2, "XGETBV ECX=1"), hide(0xd, 1, EAX, 3, "XSAVES"),
}

func cat(lists ...[]feature) []feature {
	var out []feature
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

var t2Features = cat(leaf1T2, leaf7T2, xsaveAll, []feature{
	hide(0x80000001, 0, ECX, 8, "PREFETCHW"), hide(0x80000001, 0, ECX, 29, "MONITORX"),
	hide(0x80000001, 0, EDX, 26, "1GB pages"), hide(0x80000008, 0, EBX, 9, "WBNOINVD"),
})

var c3Features = cat(xsaveAll, []feature{
	hide(1, 0, ECX, 2, "DTES64"), hide(1, 0, ECX, 3, "MONITOR"), hide(1, 0, ECX, 4, "DS-CPL"), hide(1, 0, ECX, 5, "VMX"),
	hide(1, 0, ECX, 8, "TM2"), hide(1, 0, ECX, 10, "CNXT-ID"), hide(1, 0, ECX, 11, "SDBG"), hide(1, 0, ECX, 12, "FMA"),
	hide(1, 0, ECX, 14, "xTPR"), hide(1, 0, ECX, 15, "PDCM"), hide(1, 0, ECX, 22, "MOVBE"),
	show(1, 0, EDX, 7, "MCE"), show(1, 0, EDX, 12, "MTRR"), hide(1, 0, EDX, 18, "PSN"), hide(1, 0, EDX, 21, "DS"),
	hide(1, 0, EDX, 22, "ACPI"), hide(1, 0, EDX, 27, "SS"), hide(1, 0, EDX, 29, "TM"), hide(1, 0, EDX, 31, "PBE"),
	hide(7, 0, EBX, 2, "SGX"), hide(7, 0, EBX, 3, "BMI1"), hide(7, 0, EBX, 4, "HLE"), hide(7, 0, EBX, 5, "AVX2"),
	hide(7, 0, EBX, 8, "BMI2"), hide(7, 0, EBX, 10, "INVPCID"), hide(7, 0, EBX, 11, "RTM"), hide(7, 0, EBX, 12, "RDT-M"),
	hide(7, 0, EBX, 14, "MPX"), hide(7, 0, EBX, 15, "RDT-A"), hide(7, 0, EBX, 16, "AVX512F"), hide(7, 0, EBX, 17, "AVX512DQ"),
	hide(7, 0, EBX, 18, "RDSEED"), hide(7, 0, EBX, 19, "ADX"), hide(7, 0, EBX, 21, "AVX512_IFMA"), hide(7, 0, EBX, 23, "CLFLUSHOPT"),
	hide(7, 0, EBX, 24, "CLWB"), hide(7, 0, EBX, 25, "PT"), hide(7, 0, EBX, 26, "AVX512PF"), hide(7, 0, EBX, 27, "AVX512ER"),
	hide(7, 0, EBX, 28, "AVX512CD"), hide(7, 0, EBX, 29, "SHA"), hide(7, 0, EBX, 30, "AVX512BW"), hide(7, 0, EBX, 31, "AVX512VL"),
	hide(7, 0, ECX, 1, "AVX512_VBMI"), hide(7, 0, ECX, 2, "UMIP"), hide(7, 0, ECX, 3, "PKU"), hide(7, 0, ECX, 4, "OSPKE"),
	hide(7, 0, ECX, 11, "AVX512_VNNI"), hide(7, 0, ECX, 14, "AVX512_VPOPCNTDQ"), hide(7, 0, ECX, 16, "LA57"),
	hide(7, 0, ECX, 22, "RDPID"), hide(7, 0, ECX, 30, "SGX_LC"),
	hide(7, 0, EDX, 2, "AVX512_4VNNIW"), hide(7, 0, EDX, 3, "AVX512_4FMAPS"),
	hide(0x80000001, 0, ECX, 5, "LZCNT"), hide(0x80000001, 0, ECX, 8, "PREFETCHW"), hide(0x80000001, 0, EDX, 26, "1GB pages"),
})

var t2aFeatures = cat(leaf1T2, leaf7T2, xsaveAll, []feature{
	hide(0x80000001, 0, ECX, 2, "SVM"), hide(0x80000001, 0, ECX, 6, "SSE4A"), hide(0x80000001, 0, ECX, 7, "MisAlignSse"),
	hide(0x80000001, 0, ECX, 8, "3DNowPrefetch"), hide(0x80000001, 0, ECX, 29, "MONITORX"),
	hide(0x80000001, 0, EDX, 22, "MmxExt"), hide(0x80000001, 0, EDX, 25, "FFXSR"), hide(0x80000001, 0, EDX, 26, "Page1GB"),
	hide(0x80000008, 0, EBX, 0, "CLZERO"), show(0x80000008, 0, EBX, 2, "RstrFpErrPtrs"), hide(0x80000008, 0, EBX, 9, "WBNOINVD"),
	show(0x80000008, 0, EBX, 18, "IbrsPreferred"), show(0x80000008, 0, EBX, 19, "IbrsSameMode"),
	show(0x80000008, 0, EBX, 20, "EferLmsleUnsupported"),
})

// hostEntries is a host CPUID with every leaf the templates touch, each
// register all ones or all zeros.
func hostEntries(fill uint32) []boot.CPUIDEntry {
	var es []boot.CPUIDEntry
	for _, k := range [][2]uint32{{1, 0}, {7, 0}, {0xd, 0}, {0xd, 1}, {0x80000001, 0}, {0x80000008, 0}} {
		es = append(es, boot.CPUIDEntry{Function: k[0], Index: k[1], EAX: fill, EBX: fill, ECX: fill, EDX: fill})
	}
	return es
}

func regOf(e boot.CPUIDEntry, r Register) uint32 {
	return [...]uint32{e.EAX, e.EBX, e.ECX, e.EDX}[r]
}

func TestStaticTemplatesPinTheDocumentedBits(t *testing.T) {
	for _, tc := range []struct {
		name      string
		features  []feature
		signature uint32 // leaf 1 EAX family/model/stepping
	}{
		{"T2", t2Features, 0x000306f2},  // family 6 model 0x3f stepping 2 (Haswell, as a t2.micro shows)
		{"T2S", t2Features, 0x000306f2}, // as T2
		{"C3", c3Features, 0x000306e4},  // family 6 model 0x3e stepping 4 (Ivy Bridge-EP, as a c3.large shows)
		{"T2A", t2aFeatures, 0x000306f2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := Static(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if tmpl.Name != tc.name {
				t.Errorf("Name %q", tmpl.Name)
			}
			for _, fill := range []uint32{0, ^uint32(0)} {
				got, err := tmpl.ApplyCPUID(hostEntries(fill))
				if err != nil {
					t.Fatal(err)
				}
				listed := map[[3]uint32]uint32{}
				for _, f := range tc.features {
					e := got[findEntry(got, f.leaf, f.subleaf)]
					if on := regOf(e, f.reg)>>f.bit&1 == 1; on != f.set {
						t.Errorf("host %#x: leaf %#x.%d %v bit %d (%s) is %v, want %v", fill, f.leaf, f.subleaf, f.reg, f.bit, f.name, on, f.set)
					}
					listed[[3]uint32{f.leaf, f.subleaf, uint32(f.reg)}] |= 1 << f.bit
				}
				listed[[3]uint32{1, 0, uint32(EAX)}] |= 0x0fff3fff
				// Every bit not listed keeps the host's value.
				for _, e := range got {
					for r := EAX; r <= EDX; r++ {
						keep := ^listed[[3]uint32{e.Function, e.Index, uint32(r)}]
						if v := regOf(e, r); v&keep != fill&keep {
							t.Errorf("host %#x: leaf %#x.%d %v = %#x: bits %#x changed that the template does not list", fill, e.Function, e.Index, r, v, (v^fill)&keep)
						}
					}
				}
				l1 := got[findEntry(got, 1, 0)]
				if l1.EAX&0x0fff3fff != tc.signature {
					t.Errorf("host %#x: leaf 1 EAX signature %#x, want %#x", fill, l1.EAX&0x0fff3fff, tc.signature)
				}
			}
		})
	}
}

func TestT2SPinsArchCapabilities(t *testing.T) {
	tmpl, _ := Static("T2S")
	if len(tmpl.MSRs) != 1 || tmpl.MSRs[0].Addr != 0x10a {
		t.Fatalf("MSR modifiers %+v, want one of IA32_ARCH_CAPABILITIES (0x10a)", tmpl.MSRs)
	}
	// RSBA(2), SKIP_L1DFL_VMENTRY(3), IF_PSCHANGE_MC_NO(6), MISC_PACKAGE_CTLS(10),
	// ENERGY_FILTERING_CTL(11), FB_CLEAR(17), RRSBA(19), GDS_NO(26), RFDS_NO(27).
	const want = 1<<2 | 1<<3 | 1<<6 | 1<<10 | 1<<11 | 1<<17 | 1<<19 | 1<<26 | 1<<27
	for _, host := range []uint64{0, ^uint64(0), 0x1234_5678_9abc_def0} {
		if got := tmpl.MSRs[0].Bits.Apply(host); got != want {
			t.Errorf("host value %#x becomes %#x, want %#x whatever the host has", host, got, want)
		}
	}
	for _, name := range []string{"T2", "C3", "T2A"} {
		if tm, _ := Static(name); len(tm.MSRs) != 0 {
			t.Errorf("%s has MSR modifiers %+v; Firecracker's has none", name, tm.MSRs)
		}
	}
}

func TestStaticNames(t *testing.T) {
	if got := StaticNames(); !reflect.DeepEqual(got, []string{"C3", "T2", "T2A", "T2S"}) {
		t.Errorf("StaticNames() = %v", got)
	}
	for _, none := range []string{"", "None"} {
		if tm, err := Static(none); tm != nil || err != nil {
			t.Errorf("Static(%q) = %v, %v; want no template", none, tm, err)
		}
	}
	_, err := Static("T3")
	if err == nil || !strings.Contains(err.Error(), `"T3"`) || !strings.Contains(err.Error(), "T2A") {
		t.Errorf("Static(T3): %v; want an error naming it and the known templates", err)
	}
}

func TestVendorCheck(t *testing.T) {
	for _, tc := range []struct {
		name, host string
		ok         bool
	}{
		{"T2", VendorIntel, true}, {"T2S", VendorIntel, true}, {"C3", VendorIntel, true}, {"T2A", VendorAMD, true},
		{"T2", VendorAMD, false}, {"T2S", VendorAMD, false}, {"C3", VendorAMD, false}, {"T2A", VendorIntel, false},
		{"T2A", "HygonGenuine", false},
	} {
		tm, _ := Static(tc.name)
		err := tm.CheckVendor(tc.host)
		if (err == nil) != tc.ok {
			t.Errorf("%s on %s: %v", tc.name, tc.host, err)
		}
		if err != nil && (!strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), tc.host)) {
			t.Errorf("%s on %s: error %q should name both", tc.name, tc.host, err)
		}
	}
	custom, err := ParseCustom([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{VendorIntel, VendorAMD} {
		if err := custom.CheckVendor(host); err != nil {
			t.Errorf("custom template on %s: %v", host, err)
		}
	}
}

func TestApplyCPUIDRefusesALeafTheHostLacks(t *testing.T) {
	tm, _ := Static("T2")
	es := hostEntries(0)
	es = append(es[:5], es[6:]...) // no 0x80000008
	_, err := tm.ApplyCPUID(es)
	if err == nil || !strings.Contains(err.Error(), "0x80000008") {
		t.Errorf("got %v, want an error naming leaf 0x80000008", err)
	}
}

// The example of Firecracker's docs/cpu_templates/cpu-templates.md, and
// what that page says it does.
const docExample = `{
        "kvm_capabilities": ["!56"],
        "cpuid_modifiers": [
          {
            "leaf": "0x1",
            "subleaf": "0x0",
            "flags": 0,
            "modifiers": [
              {
                "register": "eax",
                "bitmap": "0bxxxx000000000011xx00011011110010"
              }
            ]
          }
        ],
        "msr_modifiers": [
          {
            "addr": "0x10a",
            "bitmap": "0b0000000000000000000000000000000000000000000000000000000000000000"
          }
        ]
      }`

func TestParseCustomDocExample(t *testing.T) {
	tm, err := ParseCustom([]byte(docExample))
	if err != nil {
		t.Fatal(err)
	}
	const clears, sets, keeps = 0b00001111111111000011100100001101, 0b00000000000000110000011011110010, 0b11110000000000001100000000000000
	want := &Template{
		KVMCapabilities: []Capability{{Number: 56, Remove: true}},
		CPUID: []CPUIDModifier{{Leaf: 1, Registers: []RegisterModifier{
			{Register: EAX, Bits: Bits32{Filter: clears | sets, Value: sets}},
		}}},
		MSRs: []MSRModifier{{Addr: 0x10a, Bits: Bits64{Filter: ^uint64(0), Value: 0}}},
	}
	if !reflect.DeepEqual(tm, want) {
		t.Fatalf("parsed %+v\nwant %+v", tm, want)
	}
	if got := tm.CPUID[0].Registers[0].Bits.Apply(0xffffffff); got != keeps|sets {
		t.Errorf("applied to all ones: %#x, want %#x", got, keeps|sets)
	}
}

func TestParseCustomBitmaps(t *testing.T) {
	for _, tc := range []struct {
		bitmap        string
		filter, value uint32
	}{
		{"0b101", 0b111, 0b101}, // short: the high bits are x
		{"0b1_0x_1", 0b1101, 0b1001},
		{"0b" + strings.Repeat("x", 32), 0, 0},
		{"0b1" + strings.Repeat("x", 31), 1 << 31, 1 << 31},
		{"0b0000_xxxx", 0xf0, 0},
	} {
		tm, err := ParseCustom([]byte(`{"cpuid_modifiers":[{"leaf":"0b111","subleaf":"0x2","flags":1,"modifiers":[{"register":"edx","bitmap":"` + tc.bitmap + `"}]}]}`))
		if err != nil {
			t.Errorf("%s: %v", tc.bitmap, err)
			continue
		}
		m := tm.CPUID[0]
		if m.Leaf != 7 || m.Subleaf != 2 || m.Flags != 1 || m.Registers[0].Register != EDX {
			t.Errorf("%s: leaf %+v", tc.bitmap, m)
		}
		if b := m.Registers[0].Bits; b.Filter != tc.filter || b.Value != tc.value {
			t.Errorf("%s: filter %#b value %#b, want %#b %#b", tc.bitmap, b.Filter, b.Value, tc.filter, tc.value)
		}
	}
}

func TestParseCustomRefusesBadInput(t *testing.T) {
	leaf := func(l, sub, reg, bm string) string {
		return `{"cpuid_modifiers":[{"leaf":"` + l + `","subleaf":"` + sub + `","flags":0,"modifiers":[{"register":"` + reg + `","bitmap":"` + bm + `"}]}]}`
	}
	for _, tc := range []struct{ in, mention string }{
		{leaf("1", "0x0", "eax", "0b1"), `"1"`},                   // Firecracker wants 0x or 0b
		{leaf("0x100000000", "0x0", "eax", "0b1"), "0x100000000"}, // wider than 32 bits
		{leaf("0x", "0x0", "eax", "0b1"), `"0x"`},
		{leaf("0x1", "zz", "eax", "0b1"), "subleaf"},
		{leaf("0x1", "0x0", "rax", "0b1"), `"rax"`},
		{leaf("0x1", "0x0", "eax", "101"), `"101"`},
		{leaf("0x1", "0x0", "eax", "0b102"), `'2'`},
		{leaf("0x1", "0x0", "eax", "0b"), "no bits"},
		{leaf("0x1", "0x0", "eax", "0b__"), "no bits"},
		{leaf("0x1", "0x0", "eax", "0b"+strings.Repeat("1", 33)), "more than 32 bits"},
		{`{"msr_modifiers":[{"addr":"0x10a","bitmap":"0b` + strings.Repeat("x", 65) + `"}]}`, "more than 64 bits"},
		{`{"msr_modifiers":[{"addr":"10","bitmap":"0b1"}]}`, "msr_modifiers[0] addr"},
		{`{"kvm_capabilities":["abc"]}`, `"abc"`},
		{`{"kvm_capabilities":["!-1"]}`, `"!-1"`},
		{`{"reg_modifiers":[]}`, "aarch64"},
		{`{"vcpu_features":[]}`, "aarch64"},
		{`{"cpuid_modifier":[]}`, "cpuid_modifier"},
		{`{"cpuid_modifiers":{}}`, "cpuid_modifiers"},
		{`{} {}`, "after"},
		{`[`, "unexpected EOF"},
		{`{"cpuid_modifiers":[` + strings.Repeat(`{"leaf":"0x1","subleaf":"0x0","modifiers":[]},`, maxCPUIDModifiers) + `{"leaf":"0x1","subleaf":"0x0","modifiers":[]}]}`, "too many"},
	} {
		_, err := ParseCustom([]byte(tc.in))
		if err == nil {
			t.Errorf("%.60s: accepted", tc.in)
			continue
		}
		if !errors.Is(err, ErrBadTemplate) || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%.60s: %v; want ErrBadTemplate naming %s", tc.in, err, tc.mention)
		}
	}
}

func TestMarshalCustomRoundTrips(t *testing.T) {
	doc, err := ParseCustom([]byte(docExample))
	if err != nil {
		t.Fatal(err)
	}
	tms := []*Template{doc}
	for _, n := range StaticNames() {
		tm, _ := Static(n)
		tm.Name = "" // the custom form has no name
		tms = append(tms, tm)
	}
	for _, tm := range tms {
		data, err := tm.MarshalCustom()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseCustom(data)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if !reflect.DeepEqual(back, tm) {
			t.Errorf("%s read back as %+v, want %+v", data, back, tm)
		}
	}
}
