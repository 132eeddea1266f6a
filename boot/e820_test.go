package boot

import (
	"slices"
	"testing"
)

func TestE820Map(t *testing.T) {
	const MiB, GiB = 1 << 20, 1 << 30
	for _, tc := range []struct {
		name string
		size uint64
		want []E820Entry
	}{
		{"128 MiB", 128 * MiB, []E820Entry{
			{Addr: 0, Size: 0x9fc00, Type: 1},
			{Addr: 0x100000, Size: 128*MiB - 0x100000, Type: 1},
		}},
		// 3 GiB is exactly the start of the MMIO hole: nothing above 4 GiB.
		{"3 GiB", 3 * GiB, []E820Entry{
			{Addr: 0, Size: 0x9fc00, Type: 1},
			{Addr: 0x100000, Size: 0xc0000000 - 0x100000, Type: 1},
		}},
		// 5 GiB: 3 GiB below the hole, the remaining 2 GiB from 4 GiB.
		{"5 GiB", 5 * GiB, []E820Entry{
			{Addr: 0, Size: 0x9fc00, Type: 1},
			{Addr: 0x100000, Size: 0xc0000000 - 0x100000, Type: 1},
			{Addr: 0x100000000, Size: 2 * GiB, Type: 1},
		}},
		{"512 KiB", 512 << 10, []E820Entry{{Addr: 0, Size: 512 << 10, Type: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := E820Map(tc.size); !slices.Equal(got, tc.want) {
				t.Errorf("E820Map(%#x)\n got %+v\nwant %+v", tc.size, got, tc.want)
			}
		})
	}
}

func TestLowMemEnd(t *testing.T) {
	if got := LowMemEnd(128 << 20); got != 128<<20 {
		t.Errorf("LowMemEnd(128 MiB) = %#x", got)
	}
	if got := LowMemEnd(5 << 30); got != 0xc0000000 {
		t.Errorf("LowMemEnd(5 GiB) = %#x, want the hole start 0xc0000000", got)
	}
}
