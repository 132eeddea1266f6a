package boot

import (
	"bytes"
	"strings"
	"testing"
)

func TestLoadInitrdPlacedHighAndPageAligned(t *testing.T) {
	data := pattern(0x1234, 9)
	k := &Kernel{End: 0x2000000, InitrdAddrMax: 0x7fffffff}
	mem := newFakeMem(64 << 20)
	addr, err := LoadInitrd(mem, bytes.NewReader(data), int64(len(data)), k, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	// 0x4000000 - 0x1234 = 0x3ffedcc, rounded down to a page.
	if addr != 0x3ffe000 {
		t.Errorf("initrd at %#x, want 0x3ffe000", addr)
	}
	if got := mem.bytes(t, addr, len(data)); !bytes.Equal(got, data) {
		t.Error("initrd contents differ")
	}
}

func TestLoadInitrdHonoursInitrdAddrMax(t *testing.T) {
	data := pattern(0x2000, 3)
	// An ELF kernel's default ceiling 0x37ffffff is below RAM's end of
	// 3 GiB, so the initrd must end at or below 0x38000000.
	k := &Kernel{End: 0x3e00000, InitrdAddrMax: 0x37ffffff}
	mem := newFakeMem(0xc0000000)
	addr, err := LoadInitrd(mem, bytes.NewReader(data), int64(len(data)), k, 0xc0000000)
	if err != nil {
		t.Fatal(err)
	}
	if addr != 0x37ffe000 {
		t.Errorf("initrd at %#x, want 0x37ffe000", addr)
	}
}

func TestLoadInitrdRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int64
		reader int // bytes the reader really has
		end    uint64
		want   string
	}{
		{"overlaps kernel", 0x3000000, 0x3000000, 0x1400000, "does not fit between the kernel's end 0x1400000"},
		{"bigger than RAM", 0x5000000, 0x5000000, 0x1400000, "does not fit below 0x4000000"},
		{"empty", 0, 0, 0x1400000, "empty"},
		{"truncated file", 0x3000, 0x1000, 0x1400000, "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &Kernel{End: tc.end, InitrdAddrMax: 0x7fffffff}
			r := shortReader{b: make([]byte, tc.reader), n: tc.reader}
			_, err := LoadInitrd(newFakeMem(64<<20), r, tc.size, k, 64<<20)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadInitrdExactFit(t *testing.T) {
	// A page-sized initrd in the single page between End and RAM's end.
	k := &Kernel{End: 0x3fff000, InitrdAddrMax: 0x7fffffff}
	addr, err := LoadInitrd(newFakeMem(64<<20), bytes.NewReader(make([]byte, 0x1000)), 0x1000, k, 64<<20)
	if err != nil || addr != 0x3fff000 {
		t.Errorf("got %#x, %v; want 0x3fff000", addr, err)
	}
}
