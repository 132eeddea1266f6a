package boot

import (
	"encoding/binary"
	"math/bits"
)

// CPUIDEntry mirrors struct kvm_cpuid_entry2 without its padding.
type CPUIDEntry struct {
	Function, Index, Flags, EAX, EBX, ECX, EDX uint32
}

// CPUIDFlagSignificantIndex is KVM_CPUID_FLAG_SIGNIFCANT_INDEX: the entry
// applies only to its Index (subleaf).
const CPUIDFlagSignificantIndex = 1 << 0

// CPUID bits this file sets or clears.
const (
	cpuid1EDXHTT              = 1 << 28
	cpuid1ECXTSCDeadline      = 1 << 24
	cpuid1ECXHypervisor       = 1 << 31
	cpuid6EAXARAT             = 1 << 2
	cpuid80000001ECXCmpLegacy = 1 << 1

	topoLevelSMT  = 1
	topoLevelCore = 2
)

// CPUVendor returns the 12-character vendor string of CPUID leaf 0, or ""
// if the list has no leaf 0.
func CPUVendor(entries []CPUIDEntry) string {
	for _, e := range entries {
		if e.Function == 0 && e.Index == 0 {
			var b [12]byte
			binary.LittleEndian.PutUint32(b[0:], e.EBX)
			binary.LittleEndian.PutUint32(b[4:], e.EDX)
			binary.LittleEndian.PutUint32(b[8:], e.ECX)
			return string(b[:])
		}
	}
	return ""
}

func isAMDLike(vendor string) bool {
	return vendor == "AuthenticAMD" || vendor == "HygonGenuine"
}

// ShapeCPUID returns a copy of what KVM_GET_SUPPORTED_CPUID reported,
// adjusted for vCPU vcpuID of vcpuCount. The topology it describes is one
// package of vcpuCount single-threaded cores whose APIC IDs are the vCPU
// indexes, the same IDs the MP table and MADT list:
//
//   - leaf 1: initial APIC ID, logical processor count, HTT when there is
//     more than one vCPU, the hypervisor bit, and TSC-deadline (the
//     in-kernel LAPIC emulates it);
//   - leaves 0xb and 0x1f, when present: rebuilt as SMT (1 thread) and Core
//     (vcpuCount) levels plus the terminating invalid level, EDX = the
//     x2APIC ID in every subleaf;
//   - Intel-style vendors, leaf 4: cores per package, and L1/L2 shared by
//     one thread, L3 and beyond by all vCPUs;
//   - AMD and Hygon: CmpLegacy (0x80000001), NC and ApicIdCoreIdSize
//     (0x80000008), cache sharing (0x8000001d) as for leaf 4, and the
//     extended APIC / core / node IDs (0x8000001e);
//   - leaf 6: only ARAT is kept (the emulated LAPIC timer does not stop in
//     deep C-states); no thermal sensors, turbo, HWP, APERF/MPERF or
//     energy bias, which the VMM does not provide;
//   - leaf 0xa: zeroed, as there is no virtual PMU.
//
// The KVM leaves (0x40000000 and up) and everything else are kept as KVM
// reported them. vcpuCount below 1 counts as 1; IDs are truncated to the
// 8 bits the legacy fields hold.
func ShapeCPUID(supported []CPUIDEntry, vcpuID, vcpuCount int) []CPUIDEntry {
	count := uint32(max(vcpuCount, 1))
	id := uint32(max(vcpuID, 0))
	amd := isAMDLike(CPUVendor(supported))
	coreBits := uint32(bits.Len32(count - 1)) // ceil(log2(count))

	out := make([]CPUIDEntry, 0, len(supported)+3)
	topologyDone := map[uint32]bool{}
	for _, e := range supported {
		switch e.Function {
		case 0x1:
			e.EBX = e.EBX&0xffff | (count&0xff)<<16 | (id&0xff)<<24
			e.ECX |= cpuid1ECXHypervisor | cpuid1ECXTSCDeadline
			if count > 1 {
				e.EDX |= cpuid1EDXHTT
			} else {
				e.EDX &^= cpuid1EDXHTT
			}
		case 0x4:
			if !amd {
				e.EAX = cacheSharing(e.EAX, count, true)
			}
		case 0x6:
			e.EAX &= cpuid6EAXARAT
			e.EBX, e.ECX, e.EDX = 0, 0, 0
		case 0xa:
			e.EAX, e.EBX, e.ECX, e.EDX = 0, 0, 0, 0
		case 0xb, 0x1f:
			if !topologyDone[e.Function] {
				topologyDone[e.Function] = true
				out = append(out, extendedTopology(e.Function, id, count, coreBits)...)
			}
			continue
		case 0x80000001:
			if amd {
				if count > 1 {
					e.ECX |= cpuid80000001ECXCmpLegacy
				} else {
					e.ECX &^= cpuid80000001ECXCmpLegacy
				}
			}
		case 0x80000008:
			if amd {
				e.ECX = e.ECX&^(0xff|0xf<<12) | (count - 1) | coreBits<<12
			}
		case 0x8000001d:
			if amd {
				e.EAX = cacheSharing(e.EAX, count, false)
			}
		case 0x8000001e:
			if amd {
				e.EAX = id          // extended APIC ID
				e.EBX = id & 0xff   // core ID; threads per core - 1 = 0
				e.ECX, e.EDX = 0, 0 // node 0, one node per package
			}
		}
		out = append(out, e)
	}
	return out
}

// extendedTopology builds leaf 0xb or 0x1f: SMT level (shift 0, one
// logical processor), Core level (shift coreBits, count processors), and
// the invalid level that ends the enumeration.
func extendedTopology(fn, id, count, coreBits uint32) []CPUIDEntry {
	return []CPUIDEntry{
		{Function: fn, Index: 0, Flags: CPUIDFlagSignificantIndex,
			EAX: 0, EBX: 1, ECX: topoLevelSMT << 8, EDX: id},
		{Function: fn, Index: 1, Flags: CPUIDFlagSignificantIndex,
			EAX: coreBits, EBX: count, ECX: topoLevelCore<<8 | 1, EDX: id},
		{Function: fn, Index: 2, Flags: CPUIDFlagSignificantIndex,
			EAX: 0, EBX: 0, ECX: 2, EDX: id},
	}
}

// cacheSharing rewrites a deterministic cache parameters EAX (leaf 4 or
// 0x8000001d): EAX[25:14] = logical processors sharing the cache - 1 (one
// for L1/L2, all for L3 and up), and for leaf 4 EAX[31:26] = cores per
// package - 1. Null subleaves (cache type 0) are left alone.
func cacheSharing(eax, count uint32, coresField bool) uint32 {
	if eax&0x1f == 0 {
		return eax
	}
	sharing := uint32(0)
	if level := eax >> 5 & 7; level >= 3 {
		sharing = count - 1
	}
	eax = eax&^(0xfff<<14) | (sharing&0xfff)<<14
	if coresField {
		eax = eax&^(0x3f<<26) | ((count-1)&0x3f)<<26
	}
	return eax
}
