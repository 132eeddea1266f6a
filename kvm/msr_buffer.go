package kvm

// struct kvm_msrs is a header {u32 nmsrs; u32 pad} followed by 16-byte
// kvm_msr_entry {u32 index; u32 reserved; u64 data}; with the header
// 8 bytes and entries 8-aligned, a []uint64 holds it exactly: word 0 is
// the header, then two words per entry (index|reserved<<32, data), in the
// little-endian byte order of x86.

func newMSRsBuffer(n int) []uint64 {
	buf := make([]uint64, 1+2*n)
	buf[0] = uint64(uint32(n))
	return buf
}

func packMSRIndices(indices []uint32) []uint64 {
	buf := newMSRsBuffer(len(indices))
	for i, idx := range indices {
		buf[1+2*i] = uint64(idx)
	}
	return buf
}

func packMSREntries(entries []MSREntry) []uint64 {
	buf := newMSRsBuffer(len(entries))
	for i, e := range entries {
		buf[1+2*i] = uint64(e.Index) | uint64(e.Reserved)<<32
		buf[2+2*i] = e.Data
	}
	return buf
}

// unpackMSREntries returns the first n entries of buf; the caller bounds n
// by the buffer's capacity.
func unpackMSREntries(buf []uint64, n int) []MSREntry {
	out := make([]MSREntry, n)
	for i := range out {
		out[i] = MSREntry{
			Index:    uint32(buf[1+2*i]),
			Reserved: uint32(buf[1+2*i] >> 32),
			Data:     buf[2+2*i],
		}
	}
	return out
}
