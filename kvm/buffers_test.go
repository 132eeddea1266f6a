package kvm

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// wordsToBytes gives the bytes the kernel sees for a buffer of
// little-endian words.
func wordsToBytes[T uint32 | uint64](words []T) []byte {
	var b []byte
	for _, w := range words {
		switch v := any(w).(type) {
		case uint32:
			b = binary.LittleEndian.AppendUint32(b, v)
		case uint64:
			b = binary.LittleEndian.AppendUint64(b, v)
		}
	}
	return b
}

// struct kvm_cpuid2: nent at 0, entries from 8, each kvm_cpuid_entry2 40
// bytes with function 0, index 4, flags 8, eax 12, ebx 16, ecx 20, edx 24.
func TestCPUID2BufferLayout(t *testing.T) {
	entries := []CPUIDEntry2{
		{Function: 0, EAX: 0xd, EBX: 0x756e6547},
		{Function: 7, Index: 1, Flags: CPUIDFlagSignificantIndex, EAX: 0x11, EBX: 0x22, ECX: 0x33, EDX: 0x44},
	}
	b := wordsToBytes(packCPUID2(entries))
	if len(b) != 8+2*40 {
		t.Fatalf("buffer is %d bytes, want 88", len(b))
	}
	u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
	if u32(0) != 2 {
		t.Errorf("nent = %d, want 2", u32(0))
	}
	e1 := 8 + 40
	if u32(e1) != 7 || u32(e1+4) != 1 || u32(e1+8) != 1 || u32(e1+12) != 0x11 ||
		u32(e1+16) != 0x22 || u32(e1+20) != 0x33 || u32(e1+24) != 0x44 {
		t.Errorf("second entry bytes % x", b[e1:e1+40])
	}
	if u32(8+16) != 0x756e6547 {
		t.Errorf("first entry ebx = %#x", u32(8+16))
	}

	back, err := unpackCPUID2(packCPUID2(entries))
	if err != nil || !reflect.DeepEqual(back, entries) {
		t.Errorf("round trip = %+v, %v", back, err)
	}
}

func TestUnpackCPUID2UsesKernelCountAndRejectsOverflow(t *testing.T) {
	buf := newCPUID2Buffer(4)
	buf[0] = 1 // the kernel filled one entry
	buf[2] = 0x80000000
	got, err := unpackCPUID2(buf)
	if err != nil || len(got) != 1 || got[0].Function != 0x80000000 {
		t.Errorf("got %+v, %v; want one entry for leaf 0x80000000", got, err)
	}
	buf[0] = 5
	if _, err := unpackCPUID2(buf); err == nil {
		t.Error("unpackCPUID2 accepted nent larger than the buffer")
	}
}

// struct kvm_msrs: nmsrs at 0, entries from 8, each kvm_msr_entry 16 bytes
// with index at 0 and data at 8.
func TestMSRsBufferLayout(t *testing.T) {
	entries := []MSREntry{{Index: MSREFER, Data: 0x500}, {Index: MSRIA32TSC, Data: 0x1122334455667788}}
	b := wordsToBytes(packMSREntries(entries))
	if len(b) != 8+2*16 {
		t.Fatalf("buffer is %d bytes, want 40", len(b))
	}
	if binary.LittleEndian.Uint32(b[0:]) != 2 {
		t.Errorf("nmsrs = %d, want 2", binary.LittleEndian.Uint32(b[0:]))
	}
	if binary.LittleEndian.Uint32(b[8:]) != 0xc0000080 || binary.LittleEndian.Uint64(b[16:]) != 0x500 {
		t.Errorf("first entry bytes % x", b[8:24])
	}
	if binary.LittleEndian.Uint32(b[24:]) != 0x10 || binary.LittleEndian.Uint64(b[32:]) != 0x1122334455667788 {
		t.Errorf("second entry bytes % x", b[24:40])
	}

	idx := wordsToBytes(packMSRIndices([]uint32{0x174, 0xc0000102}))
	if binary.LittleEndian.Uint32(idx[8:]) != 0x174 || binary.LittleEndian.Uint32(idx[24:]) != 0xc0000102 {
		t.Errorf("index buffer bytes % x", idx)
	}

	back := unpackMSREntries(packMSREntries(entries), 1)
	if len(back) != 1 || back[0] != entries[0] {
		t.Errorf("unpack of the first entry = %+v", back)
	}
}
