package kvm

import "fmt"

// struct kvm_cpuid2 is a header {u32 nent; u32 padding} followed by nent
// 40-byte kvm_cpuid_entry2; everything is a u32, so a []uint32 holds it
// with the right alignment and no reinterpretation of Go structs.
const (
	cpuid2HeaderWords = 2
	cpuidEntryWords   = 10
)

func newCPUID2Buffer(n int) []uint32 {
	buf := make([]uint32, cpuid2HeaderWords+n*cpuidEntryWords)
	buf[0] = uint32(n)
	return buf
}

func packCPUID2(entries []CPUIDEntry2) []uint32 {
	buf := newCPUID2Buffer(len(entries))
	for i, e := range entries {
		w := buf[cpuid2HeaderWords+i*cpuidEntryWords:]
		w[0], w[1], w[2] = e.Function, e.Index, e.Flags
		w[3], w[4], w[5], w[6] = e.EAX, e.EBX, e.ECX, e.EDX
		w[7], w[8], w[9] = e.Padding[0], e.Padding[1], e.Padding[2]
	}
	return buf
}

// unpackCPUID2 reads the nent entries the kernel reported, refusing a
// count larger than the buffer.
func unpackCPUID2(buf []uint32) ([]CPUIDEntry2, error) {
	capacity := (len(buf) - cpuid2HeaderWords) / cpuidEntryWords
	n := int(buf[0])
	if n > capacity {
		return nil, fmt.Errorf("kernel reports %d CPUID entries in a %d-entry buffer", n, capacity)
	}
	out := make([]CPUIDEntry2, n)
	for i := range out {
		w := buf[cpuid2HeaderWords+i*cpuidEntryWords:]
		out[i] = CPUIDEntry2{
			Function: w[0], Index: w[1], Flags: w[2],
			EAX: w[3], EBX: w[4], ECX: w[5], EDX: w[6],
			Padding: [3]uint32{w[7], w[8], w[9]},
		}
	}
	return out, nil
}
