package boot

import (
	"slices"
	"testing"
)

// Vendor strings as CPUID leaf 0 returns them in EBX, EDX, ECX.
const (
	genu, ineI, ntel = 0x756e6547, 0x49656e69, 0x6c65746e // "Genu" "ineI" "ntel"
	auth, enti, camd = 0x68747541, 0x69746e65, 0x444d4163 // "Auth" "enti" "cAMD"
)

var kvmLeaves = []CPUIDEntry{
	{Function: 0x40000000, EAX: 0x40000001, EBX: 0x4b4d564b, ECX: 0x564b4d56, EDX: 0x4d}, // "KVMKVMKVM"
	{Function: 0x40000001, EAX: 0x01007afb},
}

// intelSupported resembles KVM_GET_SUPPORTED_CPUID on a 2-socket Intel
// host: leaf 1 and 4, 0xb and 0x1f carry the host's topology.
func intelSupported() []CPUIDEntry {
	l := []CPUIDEntry{
		{Function: 0, EAX: 0x1f, EBX: genu, ECX: ntel, EDX: ineI},
		{Function: 1, EAX: 0x000806f8, EBX: 0x0a100800, ECX: 0x76fa3223, EDX: 0x178bfbff},
		{Function: 4, Index: 0, Flags: 1, EAX: 0x7c004121, EBX: 0x02c0003f, ECX: 0x3f},
		{Function: 4, Index: 1, Flags: 1, EAX: 0x7c004122, EBX: 0x01c0003f, ECX: 0x3f},
		{Function: 4, Index: 2, Flags: 1, EAX: 0x7c004143, EBX: 0x03c0003f, ECX: 0x7ff},
		{Function: 4, Index: 3, Flags: 1, EAX: 0x7c1fc163, EBX: 0x03c0003f, ECX: 0xbfff},
		{Function: 4, Index: 4, Flags: 1},
		{Function: 6, EAX: 0x77, EBX: 2, ECX: 9},
		{Function: 0xa, EAX: 0x08300805, EDX: 0x603},
		{Function: 0xb, Index: 0, Flags: 1, EAX: 1, EBX: 2, ECX: 0x100, EDX: 0x0a},
		{Function: 0xb, Index: 1, Flags: 1, EAX: 7, EBX: 0x40, ECX: 0x201, EDX: 0x0a},
		{Function: 0x1f, Index: 0, Flags: 1, EAX: 1, EBX: 2, ECX: 0x100, EDX: 0x0a},
		{Function: 0x1f, Index: 1, Flags: 1, EAX: 7, EBX: 0x40, ECX: 0x201, EDX: 0x0a},
		{Function: 0x1f, Index: 2, Flags: 1, ECX: 2, EDX: 0x0a},
	}
	l = append(l, kvmLeaves...)
	return append(l,
		CPUIDEntry{Function: 0x80000000, EAX: 0x80000008},
		CPUIDEntry{Function: 0x80000001, ECX: 0x121, EDX: 0x2c100800},
		CPUIDEntry{Function: 0x80000008, EAX: 0x3030},
	)
}

// amdSupported resembles KVM_GET_SUPPORTED_CPUID on an AMD EPYC host.
func amdSupported() []CPUIDEntry {
	l := []CPUIDEntry{
		{Function: 0, EAX: 0x10, EBX: auth, ECX: camd, EDX: enti},
		{Function: 1, EAX: 0x00a00f11, EBX: 0x05200800, ECX: 0x7ed8320b, EDX: 0x178bfbff},
		{Function: 4, Flags: 1},
		{Function: 6, EAX: 0x4, ECX: 1},
		{Function: 0xa, EAX: 0x30606},
		{Function: 0xb, Index: 0, Flags: 1, EAX: 1, EBX: 2, ECX: 0x100, EDX: 5},
	}
	l = append(l, kvmLeaves...)
	return append(l,
		CPUIDEntry{Function: 0x80000000, EAX: 0x80000021},
		CPUIDEntry{Function: 0x80000001, ECX: 0x75c237ff, EDX: 0x2fd3fbff},
		CPUIDEntry{Function: 0x80000008, EAX: 0x3030, ECX: 0x1703f},
		CPUIDEntry{Function: 0x8000001d, Index: 0, Flags: 1, EAX: 0x4121, EBX: 0x01c0003f, ECX: 0x3f},
		CPUIDEntry{Function: 0x8000001d, Index: 1, Flags: 1, EAX: 0x4122, EBX: 0x01c0003f, ECX: 0x3f},
		CPUIDEntry{Function: 0x8000001d, Index: 2, Flags: 1, EAX: 0x4143, EBX: 0x01c0003f, ECX: 0x3ff},
		CPUIDEntry{Function: 0x8000001d, Index: 3, Flags: 1, EAX: 0x3c163, EBX: 0x03c0003f, ECX: 0x7fff},
		CPUIDEntry{Function: 0x8000001d, Index: 4, Flags: 1},
		CPUIDEntry{Function: 0x8000001e, EAX: 0x0a, EBX: 0x105},
	)
}

func leaf(t *testing.T, l []CPUIDEntry, fn, idx uint32) CPUIDEntry {
	t.Helper()
	for _, e := range l {
		if e.Function == fn && e.Index == idx {
			return e
		}
	}
	t.Fatalf("no CPUID leaf %#x subleaf %d", fn, idx)
	return CPUIDEntry{}
}

func leaves(l []CPUIDEntry, fn uint32) []CPUIDEntry {
	var r []CPUIDEntry
	for _, e := range l {
		if e.Function == fn {
			r = append(r, e)
		}
	}
	return r
}

// regs is the expected EAX, EBX, ECX, EDX of one leaf.
type regs struct{ eax, ebx, ecx, edx uint32 }

func checkLeaf(t *testing.T, l []CPUIDEntry, fn, idx uint32, want regs) {
	t.Helper()
	e := leaf(t, l, fn, idx)
	if got := (regs{e.EAX, e.EBX, e.ECX, e.EDX}); got != want {
		t.Errorf("leaf %#x.%d = %#x, want %#x", fn, idx, got, want)
	}
}

// topology is leaf 0xb/0x1f for one package of count single-thread cores:
// SMT level (type 1, shift 0, 1 processor), Core level (type 2, shift
// ceil(log2 count), count processors), then the invalid level 2.
func topology(fn uint32, coreShift, count, x2apic uint32) []CPUIDEntry {
	return []CPUIDEntry{
		{Function: fn, Index: 0, Flags: 1, EAX: 0, EBX: 1, ECX: 1<<8 | 0, EDX: x2apic},
		{Function: fn, Index: 1, Flags: 1, EAX: coreShift, EBX: count, ECX: 2<<8 | 1, EDX: x2apic},
		{Function: fn, Index: 2, Flags: 1, EAX: 0, EBX: 0, ECX: 2, EDX: x2apic},
	}
}

func TestShapeCPUIDIntel(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		id, count             int
		leaf1                 regs
		l1d, l1i, l2, l3      uint32 // leaf 4 EAX
		coreShift, x2apic, nc uint32
	}{
		{
			name: "1 vCPU", id: 0, count: 1,
			// APIC ID 0, 1 logical processor, CLFLUSH 8 kept; ECX gains
			// hypervisor (31) and TSC-deadline (24); HTT (EDX 28) cleared.
			leaf1: regs{0x000806f8, 0x00010800, 0xf7fa3223, 0x078bfbff},
			// Cores-per-package-1 = 0, no sharing.
			l1d: 0x00000121, l1i: 0x00000122, l2: 0x00000143, l3: 0x00000163,
			coreShift: 0, x2apic: 0,
		},
		{
			name: "vCPU 3 of 4", id: 3, count: 4,
			leaf1: regs{0x000806f8, 0x03040800, 0xf7fa3223, 0x178bfbff},
			// EAX[31:26] = 3; L3 shared by 4 (EAX[25:14] = 3).
			l1d: 0x0c000121, l1i: 0x0c000122, l2: 0x0c000143, l3: 0x0c00c163,
			coreShift: 2, x2apic: 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := intelSupported()
			out := ShapeCPUID(in, tc.id, tc.count)
			if !slices.Equal(in, intelSupported()) {
				t.Fatal("ShapeCPUID modified its input")
			}
			checkLeaf(t, out, 1, 0, tc.leaf1)
			for i, want := range []uint32{tc.l1d, tc.l1i, tc.l2, tc.l3, 0} {
				if got := leaf(t, out, 4, uint32(i)).EAX; got != want {
					t.Errorf("leaf 4.%d EAX = %#x, want %#x", i, got, want)
				}
			}
			if got := leaf(t, out, 4, 3).EBX; got != 0x03c0003f {
				t.Errorf("leaf 4.3 EBX (cache geometry) changed to %#x", got)
			}
			checkLeaf(t, out, 6, 0, regs{0x4, 0, 0, 0}) // ARAT only
			checkLeaf(t, out, 0xa, 0, regs{})
			for _, fn := range []uint32{0xb, 0x1f} {
				if got, want := leaves(out, fn), topology(fn, tc.coreShift, uint32(tc.count), tc.x2apic); !slices.Equal(got, want) {
					t.Errorf("leaf %#x\n got %+v\nwant %+v", fn, got, want)
				}
			}
			// Intel: the AMD topology fields stay as KVM reported them.
			checkLeaf(t, out, 0x80000001, 0, regs{0, 0, 0x121, 0x2c100800})
			checkLeaf(t, out, 0x80000008, 0, regs{0x3030, 0, 0, 0})
			checkLeaf(t, out, 0x40000000, 0, regs{0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d})
			checkLeaf(t, out, 0x40000001, 0, regs{0x01007afb, 0, 0, 0})
			checkLeaf(t, out, 0, 0, regs{0x1f, genu, ntel, ineI})
		})
	}
}

func TestShapeCPUIDAMD(t *testing.T) {
	for _, tc := range []struct {
		name             string
		id, count        int
		leaf1            regs
		cmpLegacyECX     uint32 // 0x80000001 ECX
		ecx80000008      uint32
		l1d, l1i, l2, l3 uint32 // 0x8000001d EAX
		coreShift        uint32
	}{
		{
			name: "1 vCPU", id: 0, count: 1,
			leaf1: regs{0x00a00f11, 0x00010800, 0xffd8320b, 0x078bfbff},
			// CmpLegacy (bit 1) cleared for a single core.
			cmpLegacyECX: 0x75c237fd,
			// NC = 0, ApicIdCoreIdSize = 0, PerfTscSize (17:16) kept.
			ecx80000008: 0x10000,
			l1d:         0x121, l1i: 0x122, l2: 0x143, l3: 0x163,
		},
		{
			name: "vCPU 3 of 4", id: 3, count: 4,
			leaf1:        regs{0x00a00f11, 0x03040800, 0xffd8320b, 0x178bfbff},
			cmpLegacyECX: 0x75c237ff,
			// NC = 3, ApicIdCoreIdSize = 2.
			ecx80000008: 0x12003,
			l1d:         0x121, l1i: 0x122, l2: 0x143, l3: 0xc163,
			coreShift: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := ShapeCPUID(amdSupported(), tc.id, tc.count)
			checkLeaf(t, out, 1, 0, tc.leaf1)
			checkLeaf(t, out, 4, 0, regs{}) // reserved on AMD, left alone
			checkLeaf(t, out, 6, 0, regs{0x4, 0, 0, 0})
			checkLeaf(t, out, 0xa, 0, regs{})
			if got, want := leaves(out, 0xb), topology(0xb, tc.coreShift, uint32(tc.count), uint32(tc.id)); !slices.Equal(got, want) {
				t.Errorf("leaf 0xb\n got %+v\nwant %+v", got, want)
			}
			if len(leaves(out, 0x1f)) != 0 {
				t.Error("leaf 0x1f invented")
			}
			checkLeaf(t, out, 0x80000001, 0, regs{0, 0, tc.cmpLegacyECX, 0x2fd3fbff})
			checkLeaf(t, out, 0x80000008, 0, regs{0x3030, 0, tc.ecx80000008, 0})
			for i, want := range []uint32{tc.l1d, tc.l1i, tc.l2, tc.l3, 0} {
				if got := leaf(t, out, 0x8000001d, uint32(i)).EAX; got != want {
					t.Errorf("leaf 0x8000001d.%d EAX = %#x, want %#x", i, got, want)
				}
			}
			// Extended APIC ID = vCPU, core ID = vCPU with one thread per
			// core, node 0 of 1.
			checkLeaf(t, out, 0x8000001e, 0, regs{uint32(tc.id), uint32(tc.id), 0, 0})
			checkLeaf(t, out, 0x40000000, 0, regs{0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d})
		})
	}
}

func TestShapeCPUIDKeepsUnrelatedLeavesAndOrder(t *testing.T) {
	in := amdSupported()
	out := ShapeCPUID(in, 1, 2)
	var fnsIn, fnsOut []uint32
	for _, e := range in {
		fnsIn = append(fnsIn, e.Function)
	}
	for _, e := range out {
		fnsOut = append(fnsOut, e.Function)
	}
	// Leaf 0xb grows from one subleaf to three; everything else keeps its
	// place.
	want := slices.Clone(fnsIn)
	i := slices.Index(want, 0xb)
	want = slices.Insert(want, i, 0xb, 0xb)
	if !slices.Equal(fnsOut, want) {
		t.Errorf("leaf order\n got %#x\nwant %#x", fnsOut, want)
	}
}

func TestCPUVendor(t *testing.T) {
	if v := CPUVendor(intelSupported()); v != "GenuineIntel" {
		t.Errorf("got %q", v)
	}
	if v := CPUVendor(amdSupported()); v != "AuthenticAMD" {
		t.Errorf("got %q", v)
	}
	if v := CPUVendor(nil); v != "" {
		t.Errorf("got %q", v)
	}
}
